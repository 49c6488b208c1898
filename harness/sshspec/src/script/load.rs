//! Reading scenario files: TOML with spans, so every error names file, line and column.

use super::message;
use super::*;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use toml::Spanned;

/// A scenario file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path.display(), self.line, self.column, self.message)
    }
}

impl std::error::Error for LoadError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    format: Option<Spanned<u32>>,
    title: String,
    spec: String,
    clauses: Vec<String>,
    level: Level,
    requirement: String,
    #[serde(default)]
    tier: Tier,
    #[serde(default)]
    requires: Requires,
    #[serde(default)]
    destructive: bool,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    defaults: RawDefaults,
    /// Read by `expand::cases` before this struct is; kept so the file may carry them.
    #[serde(default, rename = "parameters")]
    _parameters: Option<toml::Value>,
    #[serde(default, rename = "case")]
    _case: Option<toml::Value>,
    #[serde(rename = "step")]
    steps: Vec<Spanned<RawStep>>,
    /// Named continuations (`[[branch.NAME]]`), taken by `expect_any` alternatives' `then`.
    #[serde(default, rename = "branch")]
    branches: BTreeMap<String, Vec<Spanned<RawStep>>>,
}

/// What every `expect` and `expect_any` step of the scenario has unless it sets its own.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    pass_over: Option<Vec<String>>,
    timeout: Option<String>,
}

/// A fragment file (`fragments/NAME.toml`): steps that scenarios include by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFragment {
    /// What the steps do, for readers.
    #[allow(dead_code)]
    description: String,
    /// The fragment's arguments and their defaults; an argument without one must be given. Read
    /// from the document before it is expanded (`include`); declared so the file may carry it.
    #[serde(default)]
    #[allow(dead_code)]
    args: toml::Table,
    #[serde(rename = "step")]
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStep {
    // actions: exactly one
    #[serde(rename = "do")]
    do_: Option<String>,
    /// The steps of a fragment (`fragments/NAME.toml`), with `args` filling its `${name}` slots.
    include: Option<String>,
    args: Option<toml::Table>,
    send: Option<String>,
    send_payload: Option<Bytes>,
    send_bytes: Option<Bytes>,
    expect: Option<String>,
    expect_any: Option<Vec<RawAlternative>>,
    sleep: Option<String>,
    // options
    with: Option<Spanned<toml::Table>>,
    #[serde(rename = "match")]
    matches: Option<Spanned<toml::Table>>,
    trailing: Option<Bytes>,
    padding: Option<usize>,
    padding_length: Option<u8>,
    packet_length: Option<u32>,
    corrupt_mac: Option<bool>,
    timeout: Option<String>,
    strict: Option<bool>,
    pass_over: Option<Vec<String>>,
    judged: Option<bool>,
    banner: Option<String>,
    pre_banner: Option<Vec<String>>,
    kex: Option<String>,
    host_key: Option<String>,
    cipher: Option<String>,
    mac: Option<String>,
    compression: Option<String>,
    rekey_after: Option<RawRekey>,
    guess: Option<bool>,
    traffic: Option<String>,
    order: Option<String>,
    limit: Option<RawRekey>,
    times: Option<u32>,
    method: Option<String>,
    outcome: Option<String>,
    query: Option<bool>,
    password: Option<Bytes>,
    user: Option<String>,
    key: Option<String>,
    algorithm: Option<String>,
    unknown_key: Option<bool>,
    client_host: Option<String>,
    tamper: Option<String>,
    change_requested: Option<bool>,
    old_password: Option<Bytes>,
    responses: Option<String>,
    window: Option<u32>,
    max_packet: Option<u32>,
    size: Option<toml::Value>,
    channels: Option<u32>,
    program: Option<String>,
    /// Left from format 1's shell lines, refused with a pointer to `program`.
    command: Option<String>,
    stdin: Option<Bytes>,
    stdin_size: Option<toml::Value>,
    echo: Option<bool>,
    stdout: Option<Bytes>,
    stderr: Option<Bytes>,
    exit_status: Option<u32>,
    /// Free text for readers of the file; ignored by the interpreter.
    #[allow(dead_code)]
    note: Option<String>,
    /// The step runs this many times in a row (counted as that many steps: step numbers in
    /// evidence and expected failures count each).
    repeat: Option<u32>,
}

/// More repeats than any scenario needs is a slip (a size where a count was meant).
const MAX_REPEAT: u32 = 1000;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawRekey {
    bytes: Option<toml::Value>,
    packets: Option<u64>,
    time: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAlternative {
    Name(String),
    Full {
        expect: String,
        #[serde(rename = "match", default)]
        matches: toml::Table,
        /// This answer means the server lacks an optional feature: the scenario SKIPs with this reason.
        #[serde(default)]
        unsupported: Option<String>,
        /// The branch the scenario goes on with when this is what came.
        #[serde(default)]
        then: Option<String>,
    },
}

/// Fragments scenarios may include by name: the catalogue's own (built into the binary, so a
/// user's scenarios anywhere can include them) and those in a `fragments/` folder beside the
/// scenarios being loaded, which come first.
#[derive(Clone, Debug, Default)]
pub struct Fragments {
    own: BTreeMap<String, (PathBuf, String)>,
}

/// The folder, under a scenarios folder, that holds fragments rather than scenarios.
pub const FRAGMENTS_DIR: &str = "fragments";

const BUILTIN_FRAGMENTS: [(&str, &str); 3] = [
    ("connect", include_str!("../../../../scenarios/fragments/connect.toml")),
    ("login", include_str!("../../../../scenarios/fragments/login.toml")),
    ("session", include_str!("../../../../scenarios/fragments/session.toml")),
];

/// Includes within includes stop here: deeper is a cycle or a slip.
const MAX_INCLUDE_DEPTH: usize = 4;

impl Fragments {
    /// The built-in fragments and `root/fragments/*.toml`.
    pub fn beside(root: &Path) -> Result<Fragments, LoadError> {
        let mut own = BTreeMap::new();
        let dir = root.join(FRAGMENTS_DIR);
        let mut files = Vec::new();
        collect(&dir, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| LoadError {
                path: f.clone(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            })?;
            own.insert(scenario_id(&dir, &f), (f, text));
        }
        Ok(Fragments { own })
    }

    fn get(&self, name: &str) -> Option<(PathBuf, &str)> {
        if let Some((p, t)) = self.own.get(name) {
            return Some((p.clone(), t.as_str()));
        }
        BUILTIN_FRAGMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, t)| (PathBuf::from(format!("{FRAGMENTS_DIR}/{n}.toml")), *t))
    }

    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.own.keys().cloned().collect();
        n.extend(BUILTIN_FRAGMENTS.iter().map(|(n, _)| n.to_string()));
        n.sort();
        n.dedup();
        n
    }
}

/// Parses a file that holds one scenario (no parameters), including built-in fragments only.
pub fn parse(id: &str, path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let mut all = parse_all(id, path, text, &Fragments::default())?;
    if all.len() != 1 {
        return Err(LoadError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("this file expands into {} scenarios; load it with its folder", all.len()),
        });
    }
    Ok(all.remove(0))
}

/// Parses a scenario file: one scenario, or one per case of its parameters (ids `ID/CASE`).
/// `id` and `path` name it in errors and results.
pub fn parse_all(id: &str, path: &Path, text: &str, fragments: &Fragments) -> Result<Vec<Scenario>, LoadError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        LoadError { path: path.to_path_buf(), line, column, message }
    };
    let doc: toml::Table = toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;
    let cases = super::expand::cases(&doc).map_err(|m| {
        let key = ["[parameters]", "[[case]]"].iter().find_map(|k| text.find(k)).unwrap_or(0);
        at(key..key, m)
    })?;
    let mut out = Vec::with_capacity(cases.len());
    for case in cases {
        let expanded = super::expand::substitute(text, &case.values).map_err(|(i, m)| at(i..i, m))?;
        let case_id = match &case.suffix {
            Some(s) => format!("{id}/{s}"),
            None => id.to_owned(),
        };
        let one = parse_one(&case_id, path, &expanded, fragments).map_err(|mut e| {
            if let Some(s) = &case.suffix {
                e.message = format!("{} (case {s})", e.message);
            }
            e
        })?;
        out.push(one);
    }
    Ok(out)
}

fn parse_one(id: &str, path: &Path, text: &str, fragments: &Fragments) -> Result<Scenario, LoadError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        LoadError { path: path.to_path_buf(), line, column, message }
    };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(span, e.message().to_string())
    })?;
    if let Some(f) = &raw.format
        && *f.get_ref() != FORMAT_VERSION
    {
        return Err(at(
            f.span(),
            format!("format {} is not supported; this sshspec reads format {FORMAT_VERSION}", f.get_ref()),
        ));
    }
    let timeout = match &raw.timeout {
        Some(t) => parse_duration(t.get_ref()).map_err(|m| at(t.span(), m))?,
        None => DEFAULT_SCENARIO_TIMEOUT,
    };
    if let Some(v) = &raw.requires.variant {
        crate::targets::check_variant(v).map_err(|m| at(text.find("variant").map_or(0..0, |i| i..i), m))?;
    }
    super::names::check_requires(&raw.requires).map_err(|(name, m)| {
        // The name as written, in the `requires` table (its first quoted occurrence after it).
        let from = text.find("requires").unwrap_or(0);
        let at_name = text[from..].find(&format!("\"{name}\"")).map_or(from, |i| from + i + 1);
        at(at_name..at_name, m)
    })?;
    if raw.steps.is_empty() {
        return Err(at(0..0, "a scenario needs at least one [[step]]".into()));
    }
    if raw.clauses.is_empty() {
        return Err(at(0..0, "`clauses` must name at least one clause id from the inventory".into()));
    }
    if let Some(t) = &raw.defaults.timeout {
        parse_duration(t).map_err(|m| at(text.find("[defaults]").map_or(0..0, |i| i..i), format!("defaults: {m}")))?;
    }
    let mut steps = Vec::with_capacity(raw.steps.len());
    let mut x = Expansion {
        defaults: &raw.defaults,
        fragments,
        digest: <sha2::Sha256 as sha2::Digest>::new_with_prefix(text.as_bytes()),
    };
    // The main list, then each branch (in name order): one numbering for evidence and expected
    // failures, the last step of each list marked as the end.
    let mut starts = BTreeMap::new();
    let branch_at = |n: &str| text.find(&format!("branch.{n}")).map_or(0..0, |i| i..i);
    let lists = std::iter::once((None, raw.steps)).chain(raw.branches.into_iter().map(|(n, b)| (Some(n), b)));
    for (name, list) in lists {
        if let Some(n) = &name {
            if list.is_empty() {
                return Err(at(branch_at(n), format!("branch {n:?} has no steps")));
            }
            starts.insert(n.clone(), steps.len());
        }
        for s in list {
            let span = s.span();
            let (line, _) = line_col(text, span.start);
            let expanded =
                expand_step(s.into_inner(), line, 0, &mut x).map_err(|(key, m)| at(key.unwrap_or(span), m))?;
            steps.extend(expanded);
        }
        if let Some(last) = steps.last_mut() {
            last.ends = true;
        }
    }
    let mut taken = BTreeSet::new();
    for st in &mut steps {
        for b in st.then.iter_mut().flatten() {
            let Some(start) = starts.get(&b.name) else {
                let known: Vec<&str> = starts.keys().map(String::as_str).collect();
                let (path, line) = (path.to_path_buf(), st.line);
                let hint = if known.is_empty() {
                    "the file has no [[branch.NAME]]".to_owned()
                } else {
                    super::names::hint(&b.name, &known)
                };
                return Err(LoadError { path, line, column: 1, message: format!("no branch {:?}; {hint}", b.name) });
            };
            b.start = *start;
            taken.insert(b.name.clone());
        }
    }
    if let Some(n) = starts.keys().find(|n| !taken.contains(*n)) {
        return Err(at(branch_at(n), format!("branch {n:?} is never taken: no `then = {n:?}` names it")));
    }
    let digest = x.digest;
    let mut requires = raw.requires;
    add_pinned(&mut requires, &steps);
    Ok(Scenario {
        id: id.to_owned(),
        path: path.to_path_buf(),
        title: raw.title,
        spec: raw.spec,
        clauses: raw.clauses,
        level: raw.level,
        requirement: raw.requirement,
        tier: raw.tier,
        requires,
        destructive: raw.destructive,
        timeout,
        steps,
        digest: hex::encode(sha2::Digest::finalize(digest)),
    })
}

/// What expanding a file's steps carries along.
struct Expansion<'a> {
    defaults: &'a RawDefaults,
    fragments: &'a Fragments,
    /// Covers what ran: the file's text and every fragment it included, as expanded.
    digest: sha2::Sha256,
}

/// One step of a file, as the steps it stands for: itself (`repeat` times), or the steps of the
/// fragment it includes, every one at this step's line. The scenario's defaults apply to all.
fn expand_step(mut r: RawStep, line: usize, depth: usize, x: &mut Expansion<'_>) -> Result<Vec<Step>, StepError> {
    let times = r.repeat.unwrap_or(1);
    if !(1..=MAX_REPEAT).contains(&times) {
        return Err((None, format!("`repeat = {times}`: a step runs 1 to {MAX_REPEAT} times")));
    }
    let once = match r.include.take() {
        Some(name) => include(&name, r, line, depth, x)?,
        None => {
            if r.expect.is_some() || r.expect_any.is_some() {
                if r.pass_over.is_none() {
                    r.pass_over = x.defaults.pass_over.clone();
                }
                if r.timeout.is_none() {
                    r.timeout = x.defaults.timeout.clone();
                }
            }
            if r.args.is_some() {
                return Err((None, "`args` goes with `include`".into()));
            }
            vec![step(r, line)?]
        }
    };
    let mut out = Vec::with_capacity(once.len() * times as usize);
    for _ in 0..times {
        out.extend(once.iter().cloned());
    }
    Ok(out)
}

/// The steps of fragment `name`, its slots filled from its defaults and the step's `args`.
fn include(name: &str, r: RawStep, line: usize, depth: usize, x: &mut Expansion<'_>) -> Result<Vec<Step>, StepError> {
    if let Some(other) = stray_for_include(&r) {
        return Err((None, format!("a step with `include` takes only `args`, `repeat` and `note`, not `{other}`")));
    }
    if depth >= MAX_INCLUDE_DEPTH {
        return Err((None, format!("fragments include each other more than {MAX_INCLUDE_DEPTH} deep (a cycle?)")));
    }
    let Some((path, text)) = x.fragments.get(name) else {
        let names = x.fragments.names();
        let known: Vec<&str> = names.iter().map(String::as_str).collect();
        return Err((None, format!("no fragment {name:?}; {}", super::names::hint(name, &known))));
    };
    let within = |offset: usize, m: String| {
        let (l, c) = line_col(text, offset);
        (None, format!("in fragment {name:?} ({}:{l}:{c}): {m}", path.display()))
    };
    let doc: toml::Table =
        toml::from_str(text).map_err(|e| within(e.span().unwrap_or(0..0).start, e.message().into()))?;
    let mut values: super::expand::Values = match doc.get("args") {
        Some(toml::Value::Table(t)) => t.clone().into_iter().collect(),
        _ => Default::default(),
    };
    let slots: BTreeSet<&str> = super::expand::slots(text).into_iter().map(|(_, n)| n).collect();
    for (k, v) in r.args.unwrap_or_default() {
        if !values.contains_key(&k) && !slots.contains(k.as_str()) {
            let takes: Vec<&str> = slots.iter().copied().collect();
            return Err((None, format!("fragment {name:?} takes no argument `{k}` (it takes: {})", takes.join(", "))));
        }
        values.insert(k, v);
    }
    let expanded = super::expand::substitute(text, &values).map_err(|(i, m)| within(i, m))?;
    sha2::Digest::update(&mut x.digest, expanded.as_bytes());
    let frag: RawFragment =
        toml::from_str(&expanded).map_err(|e| within(e.span().unwrap_or(0..0).start, e.message().into()))?;
    let mut out = Vec::new();
    for s in frag.steps {
        let offset = s.span().start;
        let steps = expand_step(s.into_inner(), line, depth + 1, x)
            .map_err(|(key, m)| within(key.map_or(offset, |k| k.start), m))?;
        out.extend(steps);
    }
    Ok(out)
}

/// The keys that name a step's action, and whether each is set (a step sets exactly one).
fn action_fields(r: &RawStep) -> [(&'static str, bool); 7] {
    [
        ("do", r.do_.is_some()),
        ("send", r.send.is_some()),
        ("send_payload", r.send_payload.is_some()),
        ("send_bytes", r.send_bytes.is_some()),
        ("expect", r.expect.is_some()),
        ("expect_any", r.expect_any.is_some()),
        ("sleep", r.sleep.is_some()),
    ]
}

/// An option set on an `include` step that does not belong there.
fn stray_for_include(r: &RawStep) -> Option<&'static str> {
    let others = [
        ("timeout", r.timeout.is_some()),
        ("judged", r.judged.is_some()),
        ("padding", r.padding.is_some() || r.padding_length.is_some() || r.packet_length.is_some()),
        ("corrupt_mac", r.corrupt_mac.is_some()),
        ("command", r.command.is_some()),
    ];
    if let Some((name, _)) = action_fields(r).into_iter().chain(others).find(|(_, set)| *set) {
        return Some(name);
    }
    option_table(r).iter().find(|(name, set, _)| *set && *name != "args").map(|(name, ..)| *name)
}

/// An algorithm a `key-exchange` step pins is one the target must offer: a scenario never runs,
/// to FAIL on "no common algorithm", against a server that does not list what it pins.
fn add_pinned(r: &mut Requires, steps: &[Step]) {
    for step in steps {
        if let Action::KeyExchange { pins, .. } = &step.action {
            let lists = [
                (&pins.kex, &mut r.kex),
                (&pins.host_key, &mut r.host_key),
                (&pins.cipher, &mut r.cipher),
                (&pins.mac, &mut r.mac),
                (&pins.compression, &mut r.compression),
            ];
            for (pin, list) in lists {
                if let Some(p) = pin
                    && !list.contains(p)
                {
                    list.push(p.clone());
                }
            }
        }
    }
}

/// A step error, located at the key that caused it when known (else at the step).
type StepError = (Option<std::ops::Range<usize>>, String);

fn step(r: RawStep, line: usize) -> Result<Step, StepError> {
    let with_span = r.with.as_ref().map(|w| w.span());
    let match_span = r.matches.as_ref().map(|m| m.span());
    step_inner(r, line).map_err(|e| match e {
        Located::With(m) => (with_span, m),
        Located::Match(m) => (match_span, m),
        Located::Step(m) => (None, m),
    })
}

enum Located {
    With(String),
    Match(String),
    Step(String),
}

impl From<String> for Located {
    fn from(s: String) -> Self {
        Located::Step(s)
    }
}

impl From<&str> for Located {
    fn from(s: &str) -> Self {
        Located::Step(s.to_owned())
    }
}

fn step_inner(r: RawStep, line: usize) -> Result<Step, Located> {
    if r.command.is_some() {
        return Err("`command` is gone: name a program, e.g. program = \"echo-stdin\" or program = \"exit 3\" (scenarios/README.md, Programs)".into());
    }
    match action_fields(&r).iter().filter(|(_, set)| *set).count() {
        0 => {
            return Err(
                "a step needs one action: do, send, send_payload, send_bytes, expect, expect_any or sleep".into()
            );
        }
        1 => {}
        _ => {
            return Err(
                "a step has exactly one action (do, send, send_payload, send_bytes, expect, expect_any, sleep)".into(),
            );
        }
    }
    let timeout = r.timeout.as_deref().map(parse_duration).transpose()?;
    let strict = r.strict.unwrap_or(false);
    let framing = Framing {
        padding: r.padding,
        padding_length_field: r.padding_length,
        packet_length_field: r.packet_length,
        corrupt_mac: r.corrupt_mac.unwrap_or(false),
    };
    let framed =
        r.padding.is_some() || r.padding_length.is_some() || r.packet_length.is_some() || r.corrupt_mac.is_some();

    let mut then = Vec::new();
    let action = if let Some(d) = &r.do_ {
        match d.as_str() {
            "version-exchange" => Action::VersionExchange {
                banner: r.banner.clone(),
                pre_banner: r.pre_banner.clone().unwrap_or_default(),
            },
            "key-exchange" => {
                let with = r.with.clone().map(Spanned::into_inner).unwrap_or_default();
                message::build_check("kexinit", &with).map_err(Located::With)?;
                let pins = Pins {
                    kex: r.kex.clone(),
                    host_key: r.host_key.clone(),
                    cipher: r.cipher.clone(),
                    mac: r.mac.clone(),
                    compression: r.compression.clone(),
                };
                super::names::check_pins(&pins).map_err(Located::Step)?;
                let rekey = match &r.rekey_after {
                    None => None,
                    Some(k) => {
                        let p = RekeyPolicy {
                            bytes: k.bytes.as_ref().map(parse_size).transpose()?,
                            packets: k.packets,
                            time: k.time.as_deref().map(parse_duration).transpose()?,
                        };
                        if p == RekeyPolicy::default() {
                            return Err("`rekey_after` needs bytes, packets or time".into());
                        }
                        Some(p)
                    }
                };
                Action::KeyExchange { pins, with, rekey, guess: r.guess.unwrap_or(false) }
            }
            "rekey" => Action::Rekey,
            "server-rekeys" => {
                let traffic = match r.traffic.as_deref() {
                    Some("upload") => Traffic::Upload,
                    Some("download") => Traffic::Download,
                    Some("trickle") => Traffic::Trickle,
                    Some(t) => return Err(format!("unknown traffic {t:?}: use upload, download or trickle").into()),
                    None => return Err("`do = \"server-rekeys\"` needs `traffic` (upload, download or trickle)".into()),
                };
                let limit = match r.limit.clone() {
                    Some(RawRekey { bytes: Some(b), packets: None, time: None }) => ServerLimit::Bytes(parse_size(&b)?),
                    Some(RawRekey { bytes: None, packets: None, time: Some(t) }) => {
                        ServerLimit::Time(parse_duration(&t)?)
                    }
                    _ => return Err("`limit` is `{ bytes = \"256KiB\" }` or `{ time = \"2s\" }`".into()),
                };
                match (traffic, limit) {
                    (Traffic::Trickle, ServerLimit::Bytes(_)) => {
                        return Err("traffic = \"trickle\" needs a time limit".into());
                    }
                    (Traffic::Upload | Traffic::Download, ServerLimit::Time(_)) => {
                        return Err("upload and download traffic need a byte limit".into());
                    }
                    _ => {}
                }
                Action::ServerRekeys { traffic, limit, times: r.times.unwrap_or(1).max(1) }
            }
            "authenticate" => {
                let method = match r.method.clone().as_deref() {
                    Some("none") => AuthKind::None,
                    Some("password") => AuthKind::Password,
                    Some("publickey") => AuthKind::Publickey,
                    Some("publickey-hostbound") => AuthKind::PublickeyHostbound,
                    Some("hostbased") => AuthKind::Hostbased,
                    Some("keyboard-interactive") => AuthKind::KeyboardInteractive,
                    Some("login") => AuthKind::Login,
                    Some(m) => {
                        return Err(format!(
                            "unknown method {m:?}: use none, password, publickey, publickey-hostbound, hostbased, keyboard-interactive or login"
                        )
                        .into());
                    }
                    None => return Err("`do = \"authenticate\"` needs `method`".into()),
                };
                let outcome = match r.outcome.clone().as_deref() {
                    Some("success") => AuthOutcome::Success,
                    Some("failure") => AuthOutcome::Failure,
                    Some("partial") => AuthOutcome::Partial,
                    Some("advertised") if method == AuthKind::Publickey => AuthOutcome::Advertised,
                    Some("advertised") => return Err("outcome = \"advertised\" applies only to publickey".into()),
                    Some("refused") => AuthOutcome::Refused,
                    Some(o) => {
                        return Err(format!(
                            "unknown outcome {o:?}: use success, failure, partial, advertised or refused"
                        )
                        .into());
                    }
                    None if method == AuthKind::None => AuthOutcome::Failure,
                    None => AuthOutcome::Success,
                };
                let mut a = AuthStep::new(method, outcome);
                a.query = r.query.unwrap_or(false);
                a.password = r.password.clone();
                a.user = r.user.clone();
                if let Some(k) = &r.key {
                    a.key = crate::peer::KeyKind::parse(k)
                        .ok_or_else(|| format!("unknown key {k:?}: use {}", crate::peer::KeyKind::NAMES))?;
                }
                a.algorithm = r.algorithm.clone();
                a.unknown_key = r.unknown_key.unwrap_or(false);
                if let Some(h) = &r.client_host {
                    a.client_host = h.clone();
                }
                a.tamper = match r.tamper.as_deref() {
                    None => None,
                    Some("signature") => Some(Tamper::Signature),
                    Some("session-id") => Some(Tamper::SessionId),
                    Some("host-key") if method == AuthKind::PublickeyHostbound => Some(Tamper::HostKey),
                    Some("host-key") => return Err("tamper = \"host-key\" applies only to publickey-hostbound".into()),
                    Some(t) => {
                        return Err(format!("unknown tamper {t:?}: use signature, session-id or host-key").into());
                    }
                };
                a.change_requested = r.change_requested.unwrap_or(false);
                a.old_password = r.old_password.clone();
                a.responses = match r.responses.as_deref() {
                    None => None,
                    Some("one-more") => Some(ResponseCount::OneMore),
                    Some("one-fewer") => Some(ResponseCount::OneFewer),
                    Some(n) => return Err(format!("unknown responses {n:?}: use one-more or one-fewer").into()),
                };
                let publickey_only = [
                    ("key", r.key.is_some()),
                    ("algorithm", r.algorithm.is_some()),
                    ("unknown_key", r.unknown_key.is_some()),
                    ("tamper", r.tamper.is_some()),
                    ("query", r.query.is_some()),
                ];
                let publickey = matches!(method, AuthKind::Publickey | AuthKind::PublickeyHostbound);
                let signs = publickey || method == AuthKind::Hostbased;
                let hostbased_too = ["key", "algorithm", "tamper"];
                if let Some((k, _)) =
                    publickey_only.iter().find(|(k, set)| *set && !publickey && !(signs && hostbased_too.contains(k)))
                {
                    return Err(format!("`{k}` applies only to publickey methods").into());
                }
                if r.client_host.is_some() && method != AuthKind::Hostbased {
                    return Err("`client_host` applies only to method = \"hostbased\"".into());
                }
                if a.responses.is_some() && method != AuthKind::KeyboardInteractive {
                    return Err("`responses` applies only to method = \"keyboard-interactive\"".into());
                }
                if (a.change_requested || a.old_password.is_some())
                    && !matches!(method, AuthKind::Password | AuthKind::KeyboardInteractive)
                {
                    return Err("a password change applies only to password and keyboard-interactive".into());
                }
                Action::Authenticate(Box::new(a))
            }
            "open-session" => Action::OpenSession { window: r.window, max_packet: r.max_packet },
            "bulk" => {
                let size = parse_size(r.size.as_ref().ok_or("`do = \"bulk\"` needs `size`")?)?;
                let channels = r.channels.unwrap_or(1);
                if channels == 0 || channels > 64 {
                    return Err("`channels` is 1 to 64".into());
                }
                let program = match &r.program {
                    Some(p) => Program::parse(p)?,
                    None => Program::EchoStdin,
                };
                Action::Bulk { program, size, channels }
            }
            "exec" => {
                let stdin = match (r.stdin.clone(), r.stdin_size.clone()) {
                    (Some(_), Some(_)) => {
                        return Err("`stdin` and `stdin_size` exclude each other".into());
                    }
                    (Some(b), None) => Some(Input::Bytes(b)),
                    (None, Some(n)) => Some(Input::Generated(parse_size(&n)?)),
                    (None, None) => None,
                };
                let echo = r.echo.unwrap_or(false);
                if echo && stdin.is_none() {
                    return Err("`echo = true` needs `stdin` or `stdin_size`".into());
                }
                Action::Exec {
                    program: Program::parse(r.program.as_deref().ok_or("`do = \"exec\"` needs `program`")?)?,
                    stdin,
                    stdout: r.stdout.clone(),
                    stderr: r.stderr.clone(),
                    exit_status: r.exit_status,
                    echo,
                }
            }
            "prove-host-keys" => Action::ProveHostKeys {
                order: match r.order.as_deref() {
                    None | Some("reversed") => ProofOrder::Reversed,
                    Some("announced") => ProofOrder::Announced,
                    Some(o) => return Err(format!("unknown order {o:?}: use reversed or announced").into()),
                },
                stranger: r.unknown_key.unwrap_or(false),
            },
            "fill-window" => Action::FillWindow {
                limit: match &r.size {
                    Some(size) => parse_size(size)?,
                    None => FILL_WINDOW_LIMIT,
                },
            },
            "disconnect" => Action::Disconnect,
            "reconnect" => Action::Reconnect,
            other => {
                return Err(format!(
                    "unknown high-level step {other:?}: use version-exchange, key-exchange, rekey, server-rekeys, authenticate, open-session, exec, bulk, fill-window, prove-host-keys, disconnect or reconnect"
                )
                .into());
            }
        }
    } else if let Some(name) = &r.send {
        let with = r.with.clone().map(Spanned::into_inner).unwrap_or_default();
        message::with_check(name, &with).map_err(Located::With)?;
        Action::Send {
            message: name.clone(),
            with,
            trailing: r.trailing.clone().map(|b| b.0).unwrap_or_default(),
            framing,
        }
    } else if let Some(p) = &r.send_payload {
        Action::SendPayload { payload: p.0.clone(), framing }
    } else if let Some(b) = &r.send_bytes {
        Action::SendBytes(b.0.clone())
    } else if let Some(d) = &r.sleep {
        Action::Sleep(parse_duration(d)?)
    } else if let Some(e) = &r.expect {
        Action::Expect(vec![
            expectation(e, r.matches.clone().map(Spanned::into_inner).unwrap_or_default()).map_err(Located::Match)?,
        ])
    } else if let Some(alts) = &r.expect_any {
        if alts.is_empty() {
            return Err("expect_any needs at least one alternative".into());
        }
        let mut out = Vec::new();
        for a in alts {
            then.push(match a {
                RawAlternative::Full { then: Some(name), unsupported, .. } => {
                    if unsupported.is_some() {
                        return Err("an `unsupported` alternative ends the scenario (SKIP): it takes no `then`".into());
                    }
                    Some(Branch { name: name.clone(), start: usize::MAX })
                }
                _ => None,
            });
            out.push(match a {
                RawAlternative::Name(n) => expectation(n, toml::Table::new())?,
                RawAlternative::Full { expect, matches, unsupported: None, .. } => {
                    expectation(expect, matches.clone())?
                }
                RawAlternative::Full { expect, matches, unsupported: Some(reason), .. } => {
                    match expectation(expect, matches.clone())? {
                        Expectation::Message { name, matches } => {
                            Expectation::Unsupported { name, matches, reason: reason.clone() }
                        }
                        Expectation::Close => Expectation::CloseUnsupported { reason: reason.clone() },
                        Expectation::Banner { matches } => {
                            Expectation::BannerUnsupported { matches, reason: reason.clone() }
                        }
                        _ => {
                            return Err(
                                "`unsupported` applies to a message alternative, \"close\" or \"banner\" only".into()
                            );
                        }
                    }
                }
            });
        }
        Action::Expect(out)
    } else {
        return Err("a step needs an action".into());
    };

    let framing_ok = matches!(action, Action::Send { .. } | Action::SendPayload { .. });
    if framed && !framing_ok {
        return Err("padding, padding_length, packet_length and corrupt_mac apply only to send and send_payload".into());
    }
    let pass_over = r.pass_over.clone().unwrap_or_default();
    if let Some(bad) = pass_over.iter().find(|n| !sshspec_wire::Message::NAMES.contains(&n.as_str())) {
        return Err(format!("pass_over: unknown message {bad:?}").into());
    }
    // Each option belongs to some actions; a stray one is almost always a mistake.
    let kind = match (&r.do_, &r.send, &r.send_payload, &r.send_bytes, &r.expect, &r.sleep) {
        (Some(d), ..) => d.as_str(),
        (_, Some(_), ..) => "send",
        (_, _, Some(_), ..) => "send_payload",
        (_, _, _, Some(_), ..) => "send_bytes",
        (_, _, _, _, Some(_), _) => "expect",
        (.., Some(_)) => "sleep",
        _ => "expect_any",
    };
    if let Some((stray, ..)) = option_table(&r).iter().find(|(_, set, applies)| *set && !applies.contains(&kind)) {
        return Err(format!("`{stray}` does not apply to this step's action").into());
    }
    if then.iter().all(Option::is_none) {
        then.clear();
    }
    Ok(Step { line, action, timeout, strict, pass_over, judged: r.judged.unwrap_or(false), then, ends: false })
}

/// Each option of a step, whether it is set, and the actions it applies to.
fn option_table(r: &RawStep) -> [(&'static str, bool, &'static [&'static str]); 43] {
    const EXPECTS: &[&str] = &["expect", "expect_any"];
    const AUTH: &[&str] = &["authenticate"];
    [
        ("guess", r.guess.is_some(), &["key-exchange"]),
        ("traffic", r.traffic.is_some(), &["server-rekeys"]),
        ("limit", r.limit.is_some(), &["server-rekeys"]),
        ("times", r.times.is_some(), &["server-rekeys"]),
        ("with", r.with.is_some(), &["key-exchange", "send"]),
        ("match", r.matches.is_some(), &["expect"]),
        ("trailing", r.trailing.is_some(), &["send"]),
        ("banner", r.banner.is_some(), &["version-exchange"]),
        ("pre_banner", r.pre_banner.is_some(), &["version-exchange"]),
        ("kex", r.kex.is_some(), &["key-exchange"]),
        ("host_key", r.host_key.is_some(), &["key-exchange"]),
        ("cipher", r.cipher.is_some(), &["key-exchange"]),
        ("mac", r.mac.is_some(), &["key-exchange"]),
        ("compression", r.compression.is_some(), &["key-exchange"]),
        ("rekey_after", r.rekey_after.is_some(), &["key-exchange"]),
        ("method", r.method.is_some(), &["authenticate"]),
        ("outcome", r.outcome.is_some(), &["authenticate"]),
        ("query", r.query.is_some(), &["authenticate"]),
        ("password", r.password.is_some(), AUTH),
        ("user", r.user.is_some(), AUTH),
        ("key", r.key.is_some(), AUTH),
        ("algorithm", r.algorithm.is_some(), AUTH),
        ("unknown_key", r.unknown_key.is_some(), &["authenticate", "prove-host-keys"]),
        ("client_host", r.client_host.is_some(), &["authenticate"]),
        ("order", r.order.is_some(), &["prove-host-keys"]),
        ("tamper", r.tamper.is_some(), AUTH),
        ("change_requested", r.change_requested.is_some(), AUTH),
        ("old_password", r.old_password.is_some(), AUTH),
        ("responses", r.responses.is_some(), AUTH),
        ("window", r.window.is_some(), &["open-session"]),
        ("max_packet", r.max_packet.is_some(), &["open-session"]),
        ("size", r.size.is_some(), &["bulk", "fill-window"]),
        ("channels", r.channels.is_some(), &["bulk"]),
        ("program", r.program.is_some(), &["exec", "bulk"]),
        ("stdin", r.stdin.is_some(), &["exec"]),
        ("stdin_size", r.stdin_size.is_some(), &["exec"]),
        ("echo", r.echo.is_some(), &["exec"]),
        ("stdout", r.stdout.is_some(), &["exec"]),
        ("stderr", r.stderr.is_some(), &["exec"]),
        ("exit_status", r.exit_status.is_some(), &["exec"]),
        ("strict", r.strict.is_some(), EXPECTS),
        ("pass_over", r.pass_over.is_some(), EXPECTS),
        ("args", r.args.is_some(), &["include"]),
    ]
}

/// How much `fill-window` sends, at most, before it gives up on a target that keeps granting.
const FILL_WINDOW_LIMIT: u64 = 64 << 20;

fn expectation(name: &str, matches: toml::Table) -> Result<Expectation, String> {
    Ok(match name {
        "close" | "nothing" | "well-formed-kexinit" | "random-padding" if !matches.is_empty() => {
            return Err(format!("`expect = \"{name}\"` takes no `match`"));
        }
        "close" => Expectation::Close,
        "nothing" => Expectation::Nothing,
        "well-formed-kexinit" => Expectation::WellFormedKexinit,
        "random-padding" => Expectation::RandomPadding,
        "banner" => {
            message::check_banner_matchers(&matches)?;
            Expectation::Banner { matches }
        }
        _ => {
            message::match_check(name, &matches)?;
            Expectation::Message { name: name.to_owned(), matches }
        }
    })
}

/// A byte count: an integer, or "64KiB", "100MiB", "1GiB".
pub fn parse_size(v: &toml::Value) -> Result<u64, String> {
    let bad = || format!("bad size {v}: write a number of bytes or e.g. \"64KiB\", \"100MiB\", \"1GiB\"");
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| bad()),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let n: u64 = s[..split].parse().map_err(|_| bad())?;
            let unit = match s[split..].trim() {
                "" | "B" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                _ => return Err(bad()),
            };
            n.checked_mul(unit).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// "250ms", "2s", "1.5s", "1m".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?}: write e.g. \"500ms\", \"2s\" or \"1m\"");
    let (num, unit) = s.trim().split_at(s.trim().find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?);
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(0.0..=86400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

/// Loads one file, including fragments from `root/fragments/` and the built-in ones; its id is
/// its path relative to `root`, without `.toml` (and with `/CASE` for each case of its parameters).
pub fn load_file(root: &Path, path: &Path) -> Result<Vec<Scenario>, LoadError> {
    load_with(root, path, &Fragments::beside(root)?)
}

fn load_with(root: &Path, path: &Path, fragments: &Fragments) -> Result<Vec<Scenario>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_all(&scenario_id(root, path), path, &text, fragments)
}

pub fn scenario_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let s = rel.with_extension("").to_string_lossy().replace('\\', "/");
    s.trim_start_matches("./").to_owned()
}

/// Loads every `*.toml` under `root`, sorted by id. All errors are returned, not just the first.
pub fn load_dir(root: &Path) -> Result<Vec<Scenario>, Vec<LoadError>> {
    let mut files = Vec::new();
    collect(root, &mut files);
    // The clause registry lives beside the scenarios it is cited by, and is not a scenario.
    let registry = root.join("clauses");
    files.retain(|f| !f.starts_with(&registry));
    // So does the record of which deviations each scenario catches (`sshspec validate --record`).
    files.retain(|f| *f != root.join(crate::validate::RECORD_FILE));
    // And the fragments scenarios include.
    files.retain(|f| !f.starts_with(root.join(FRAGMENTS_DIR)));
    files.sort();
    let fragments = Fragments::beside(root).map_err(|e| vec![e])?;
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match load_with(root, &f, &fragments) {
            Ok(s) => ok.extend(s),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(ok) } else { Err(errs) }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
title = "t"
spec = "RFC 4253 §7.1"
clauses = ["4253-7.1-a"]
level = "must"
requirement = "quote"

[[step]]
do = "version-exchange"

[[step]]
send = "kexinit"
with = { kex_algorithms = ["none@sshspec.invalid"] }

[[step]]
expect_any = [{ expect = "disconnect", match = { reason = "KEY_EXCHANGE_FAILED" } }, "close"]
"#;

    fn p(text: &str) -> Result<Scenario, LoadError> {
        parse("x/y", Path::new("x/y.toml"), text)
    }

    #[test]
    fn a_good_file_loads() {
        let s = p(GOOD).unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[1].line, 11);
        assert!(matches!(&s.steps[2].action, Action::Expect(a) if a.len() == 2));
    }

    #[test]
    fn a_field_the_message_lacks_is_located() {
        let bad = GOOD.replace("kex_algorithms", "kex_algoritms");
        let e = p(&bad).unwrap_err();
        assert_eq!((e.line, e.column), (13, 8), "{e}");
        assert!(e.message.contains("kex_algoritms"), "{e}");
    }

    #[test]
    fn a_misspelt_requirement_or_pin_is_refused_where_it_is_written() {
        let bad = GOOD.replace(
            "requirement = \"quote\"",
            "requirement = \"quote\"\nrequires = { auth = [\"password\"], feature = [\"tcpip-fwd\"] }",
        );
        let e = p(&bad).unwrap_err();
        assert_eq!((e.line, e.column), (7, 47), "{e}");
        assert!(e.message.contains("unknown feature \"tcpip-fwd\""), "{e}");
        let bad = GOOD.replace("do = \"version-exchange\"", "do = \"key-exchange\"\ncipher = \"aes128-gcm\"");
        let e = p(&bad).unwrap_err();
        assert!(e.message.contains("did you mean \"aes128-gcm@openssh.com\""), "{e}");
        assert_eq!(e.line, 8, "{e}");
    }

    #[test]
    fn a_repeated_step_counts_as_that_many() {
        let s = p(&GOOD.replace("do = \"version-exchange\"", "do = \"version-exchange\"\nrepeat = 3")).unwrap();
        assert_eq!(s.steps.len(), 5);
        assert!(s.steps[..3].iter().all(|st| matches!(st.action, Action::VersionExchange { .. }) && st.line == 8));
        let e = p(&GOOD.replace("do = \"version-exchange\"", "do = \"version-exchange\"\nrepeat = 0")).unwrap_err();
        assert!(e.message.contains("1 to 1000"), "{e}");
    }

    #[test]
    fn a_toml_syntax_error_is_located() {
        let bad = GOOD.replace("level = \"must\"", "level = \"must");
        let e = p(&bad).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
    }

    #[test]
    fn bad_enum_names_and_stray_options_are_refused() {
        let bad = GOOD.replace("KEY_EXCHANGE_FAILED", "KEX_FAILED");
        assert!(p(&bad).unwrap_err().message.contains("KEX_FAILED"));
        let bad = GOOD.replace("do = \"version-exchange\"", "do = \"version-exchange\"\nprogram = \"succeed\"");
        assert!(p(&bad).unwrap_err().message.contains("program"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("2 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn expected_cost_counts_data_sleeps_and_waits() {
        let cheap = p(GOOD).expect("good");
        assert_eq!(cheap.expected_cost(), Duration::ZERO);
        let text = format!(
            "{GOOD}\n[[step]]\nsleep = \"150ms\"\n[[step]]\nexpect = \"nothing\"\ntimeout = \"3s\"\n\
             [[step]]\ndo = \"open-session\"\n[[step]]\ndo = \"exec\"\nprogram = \"echo-stdin\"\nstdin_size = \"128MiB\"\necho = true\n"
        );
        // 150 ms + 3 s + 256 MiB (echoed, so twice) at the nominal 256 MiB/s.
        assert_eq!(p(&text).expect("parses").expected_cost(), Duration::from_millis(4150));
    }

    const HEADER: &str =
        "title = \"t\"\nspec = \"RFC 4253 §7.1\"\nclauses = [\"4253-7.1-a\"]\nlevel = \"must\"\nrequirement = \"q\"\n";

    fn all(text: &str, fragments: &Fragments) -> Result<Vec<Scenario>, LoadError> {
        parse_all("x/y", Path::new("x/y.toml"), text, fragments)
    }

    #[test]
    fn an_included_fragment_runs_its_steps_at_the_including_line() {
        let s = p(&format!("{HEADER}\n[[step]]\ninclude = \"session\"\nrepeat = 2\n")).unwrap();
        assert_eq!(s.steps.len(), 8, "session = connect (2) + login (1) + open-session (1), twice");
        assert!(s.steps.iter().all(|st| st.line == 7));
        assert!(matches!(s.steps[2].action, Action::Authenticate(_)));
        assert!(matches!(s.steps[7].action, Action::OpenSession { .. }));
        assert_eq!(s.first_judged(), 7, "a fragment's setup steps stay setup");
    }

    #[test]
    fn judgement_starts_at_the_step_marked_judged() {
        let steps = "[[step]]\ndo = \"version-exchange\"\n[[step]]\nexpect = \"kexinit\"\n[[step]]\nsend = \"ignore\"\n\
                     [[step]]\nexpect = \"close\"\n";
        let unmarked = p(&format!("{HEADER}\n{steps}")).unwrap();
        assert_eq!(unmarked.first_judged(), 1, "a low-level expect is judged unless marked otherwise");
        let marked =
            p(&format!("{HEADER}\n{}", steps.replace("send = \"ignore\"", "send = \"ignore\"\njudged = true")))
                .unwrap();
        assert_eq!(marked.first_judged(), 2, "the steps before the marked one are setup");
    }

    #[test]
    fn a_bad_include_is_located_with_a_hint() {
        let e = p(&format!("{HEADER}\n[[step]]\ninclude = \"logn\"\n")).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("did you mean \"login\""), "{e}");
        let e = p(&format!("{HEADER}\n[[step]]\ninclude = \"login\"\nexpect = \"close\"\n")).unwrap_err();
        assert!(e.message.contains("not `expect`"), "{e}");
        let e =
            p(&format!("{HEADER}\n[[step]]\ninclude = \"login\"\nargs = {{ method = \"password\" }}\n")).unwrap_err();
        assert!(e.message.contains("takes no argument `method`"), "{e}");
    }

    #[test]
    fn fragment_arguments_fill_slots_and_defaults_stand_in() {
        let frag = "description = \"d\"\n[args]\nfields = {}\n[[step]]\nsend = \"${message}\"\nwith = \"${fields}\"\n";
        let own = Fragments { own: [("probe".to_owned(), (PathBuf::from("f/probe.toml"), frag.to_owned()))].into() };
        let text = format!("{HEADER}\n[[step]]\ninclude = \"probe\"\nargs = {{ message = \"ignore\" }}\n");
        let s = all(&text, &own).unwrap().remove(0);
        assert!(
            matches!(&s.steps[0].action, Action::Send { message, with, .. } if message == "ignore" && with.is_empty())
        );
        let text = format!(
            "{HEADER}\n[[step]]\ninclude = \"probe\"\nargs = {{ message = \"ignore\", fields = {{ data = 7 }} }}\n"
        );
        let e = all(&text, &own).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("in fragment \"probe\" (f/probe.toml:6:"), "{e}");
        let e = all(&format!("{HEADER}\n[[step]]\ninclude = \"probe\"\n"), &own).unwrap_err();
        assert!(e.message.contains("`${message}` has no value"), "{e}");
    }

    #[test]
    fn defaults_apply_to_expectations_that_set_nothing_of_their_own() {
        let text = format!(
            "{HEADER}[defaults]\npass_over = [\"ignore\"]\ntimeout = \"2s\"\n\n[[step]]\ninclude = \"connect\"\n\
             [[step]]\nexpect = \"close\"\n[[step]]\nexpect = \"close\"\npass_over = []\ntimeout = \"1s\"\n"
        );
        let s = p(&text).unwrap();
        assert_eq!(
            (s.steps[2].pass_over.clone(), s.steps[2].timeout),
            (vec!["ignore".to_owned()], Some(Duration::from_secs(2)))
        );
        assert_eq!((s.steps[3].pass_over.len(), s.steps[3].timeout), (0, Some(Duration::from_secs(1))));
        assert_eq!(s.steps[1].timeout, None, "not the key exchange's");
        let e = p(&text.replace("\"2s\"", "\"2 parsecs\"")).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn cases_expand_into_scenarios_with_their_own_ids_and_digests() {
        let text = format!(
            "{HEADER}\n[[step]]\nsend = \"${{message}}\"\n\n[[case]]\nid = \"a\"\nmessage = \"ignore\"\n\n\
             [[case]]\nid = \"b\"\nmessage = \"debug\"\n"
        );
        let s = all(&text, &Fragments::default()).unwrap();
        let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["x/y/a", "x/y/b"]);
        assert_ne!(s[0].digest, s[1].digest);
        assert!(matches!(&s[1].steps[0].action, Action::Send { message, .. } if message == "debug"));
        let e = all(&text.replace("\"debug\"", "\"debg\""), &Fragments::default()).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.ends_with("(case b)"), "{e}");
        assert!(p(&text).unwrap_err().message.contains("expands into 2 scenarios"));
        let e = all(&format!("{HEADER}\n[parameters]\nm = []\n[[step]]\nexpect = \"close\"\n"), &Fragments::default())
            .unwrap_err();
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn branches_follow_the_main_list_and_are_named_by_then() {
        let text = format!(
            "{HEADER}\n[[step]]\nsend = \"ignore\"\n\n[[step]]\nexpect_any = [\"close\", {{ expect = \"newkeys\", then = \"more\" }}]\n\n\
             [[branch.more]]\nsend = \"newkeys\"\n\n[[branch.more]]\nexpect = \"close\"\n"
        );
        let s = p(&text).unwrap();
        assert_eq!(s.steps.len(), 4);
        assert_eq!(s.steps[1].then, vec![None, Some(Branch { name: "more".into(), start: 2 })]);
        assert!(s.steps[1].ends && !s.steps[2].ends && s.steps[3].ends);
        let e = p(&text.replace("then = \"more\"", "then = \"moore\"")).unwrap_err();
        assert_eq!(e.line, 10, "{e}");
        assert!(e.message.contains("no branch \"moore\"; did you mean \"more\"?"), "{e}");
        let e = p(&text.replace(", { expect = \"newkeys\", then = \"more\" }", "")).unwrap_err();
        assert!(e.message.contains("never taken"), "{e}");
        let e = p(&text.replace("then = \"more\"", "then = \"more\", unsupported = \"x\"")).unwrap_err();
        assert!(e.message.contains("takes no `then`"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC*") {
            let _ = p(&s);
        }

        #[test]
        fn mutated_good_files_never_panic(cut in 0usize..GOOD.len(), junk in "[\\[\\]={}\",a-z0-9 \n]{0,12}") {
            let mut t = GOOD.to_owned();
            let mut cut = cut;
            while !t.is_char_boundary(cut) { cut -= 1; }
            t.insert_str(cut, &junk);
            let _ = p(&t);
        }
    }
}
