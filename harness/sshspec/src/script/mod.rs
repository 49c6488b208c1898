//! The scenario language, version 1: one TOML file per scenario (see `scenarios/README.md`).
//!
//! A file is loaded in full and checked before anything runs: unknown keys, bad message names,
//! fields a message does not have and malformed values are all reported with file, line and column.

pub mod clauses;
mod expand;
mod load;
pub mod matcher;
pub mod message;
pub mod names;
pub mod program;

pub use load::{FRAGMENTS_DIR, Fragments, LoadError, load_dir, load_file, parse, parse_all};
pub use program::{Program, Programs};

use crate::transport::Framing;
use serde::{Deserialize, Serialize};
use sshspec_wire::Bytes;
use std::path::PathBuf;
use std::time::Duration;

/// The format version this build reads (`format = 1` in files; optional).
pub const FORMAT_VERSION: u32 = 1;

/// RFC 2119 requirement level of the clause a scenario checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Must,
    Should,
    May,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// Which runs include a scenario: `smoke` is a handful that finishes in seconds; `full` is all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Smoke,
    #[default]
    Full,
}

/// What a scenario needs from a target; a target that cannot provide it is skipped, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Requires {
    pub auth: Vec<String>,
    pub cipher: Vec<String>,
    pub mac: Vec<String>,
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub compression: Vec<String>,
    /// A configuration variant of the target (see `targets::VARIANTS`), e.g. "rekey-256k".
    pub variant: Option<String>,
    /// User key types the target must accept for the test user (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub user_key: Vec<String>,
    /// Channel request types, subsystems and global requests the target must offer (`subsystem:sftp`,
    /// `tcpip-forward`, `direct-tcpip`, `no-more-sessions@openssh.com`), beyond what every server has.
    pub feature: Vec<String>,
    /// Extensions the server must advertise in its EXT_INFO (RFC 8308), as the probe saw them:
    /// `ping@openssh.com`, `publickey-hostbound@openssh.com`.
    pub extension: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    /// Stable id: the file's path under the scenarios folder, without `.toml`.
    pub id: String,
    pub path: PathBuf,
    pub title: String,
    /// The document and section, e.g. "RFC 4253 §7.1".
    pub spec: String,
    /// Clause ids from the inventory (shared/CLAUSES.md), e.g. "4253-7.1-c".
    pub clauses: Vec<String>,
    pub level: Level,
    /// The requirement, quoted from the RFC.
    pub requirement: String,
    pub tier: Tier,
    pub requires: Requires,
    /// Floods, resource exhaustion and the like: never run against a remote target unless asked.
    pub destructive: bool,
    /// The whole scenario's deadline.
    pub timeout: Duration,
    pub steps: Vec<Step>,
    /// SHA-256 of the file's text (hex): two reports ran the same scenario exactly when it matches.
    pub digest: String,
}

/// The digest of a set of scenarios: SHA-256 over each scenario's id and digest, in id order.
/// Two reports whose set digests match judged the same scenario files.
pub fn set_digest(scenarios: &[Scenario]) -> String {
    use sha2::Digest;
    let mut lines: Vec<String> = scenarios.iter().map(|s| format!("{} {}\n", s.id, s.digest)).collect();
    lines.sort();
    hex::encode(sha2::Sha256::digest(lines.concat().as_bytes()))
}

impl Scenario {
    /// A scenario the harness makes for itself (the probes), of plain steps, citing no clause.
    pub fn internal(id: &str, timeout: Duration, actions: Vec<Action>) -> Scenario {
        let step = |action| Step::new(0, action);
        Scenario {
            id: format!("sshspec/{id}"),
            path: PathBuf::new(),
            title: id.replace('-', " "),
            spec: String::new(),
            clauses: Vec::new(),
            level: Level::May,
            requirement: String::new(),
            tier: Tier::Full,
            requires: Requires::default(),
            destructive: false,
            timeout,
            steps: actions.into_iter().map(step).collect(),
            digest: String::new(),
        }
    }

    /// The protocol area: the first folder of the id (`transport`, `auth`, `connection`, ...).
    pub fn area(&self) -> &str {
        self.id.split('/').next().unwrap_or(&self.id)
    }

    /// The index of the first step under test: the steps before it are setup, and a setup step
    /// that fails makes the scenario INCONCLUSIVE, never a FAIL of the clauses it cites. The last
    /// step is always judged (a scenario of setup steps only judges its last one). A step marked
    /// `judged` is where judgement starts, whatever precedes it: a low-level scenario that must
    /// first bring a key exchange to some point (a group exchange's group) charges a server that
    /// fails on the way there with INCONCLUSIVE, not with the clause it never reached.
    pub fn first_judged(&self) -> usize {
        let setup = match self.steps.iter().position(|s| s.judged) {
            Some(marked) => marked,
            None => self.steps.iter().take_while(|s| s.is_setup()).count(),
        };
        setup.min(self.steps.len().saturating_sub(1))
    }

    /// Whether some step accepts the connection's close as its answer.
    pub fn expects_close(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(&s.action, Action::Expect(alts) if alts.iter().any(|a| matches!(a, Expectation::Close | Expectation::CloseUnsupported { .. }))))
    }

    /// The program capabilities this scenario runs (`exec` and `bulk` steps, and `"$program ..."`
    /// values in messages), each once: a target without a command for one cannot run it.
    pub fn programs(&self) -> Vec<&'static str> {
        fn in_value(v: &toml::Value, out: &mut Vec<&'static str>) {
            match v {
                toml::Value::String(s) => {
                    if let Some(p) = s.strip_prefix(PROGRAM_VARIABLE).and_then(|p| Program::parse(p).ok()) {
                        out.extend(p.capability());
                    }
                }
                toml::Value::Table(t) => t.values().for_each(|v| in_value(v, out)),
                toml::Value::Array(a) => a.iter().for_each(|v| in_value(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for step in &self.steps {
            match &step.action {
                Action::Exec { program, .. } | Action::Bulk { program, .. } => out.extend(program.capability()),
                Action::Send { with, .. } => with.values().for_each(|v| in_value(v, &mut out)),
                _ => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How long this scenario may take beyond its round trips, read from its steps: the data it
    /// moves (at a nominal 256 MiB/s), its sleeps, the rekey limits it waits out, and the deadlines
    /// its authors set on expectations (a target that does not answer makes the scenario wait them
    /// out). The runner starts the costliest first, so a long scenario overlaps the short ones
    /// instead of trailing behind them; it is an ordering key, never a verdict.
    pub fn expected_cost(&self) -> Duration {
        const NOMINAL_BYTES_PER_SEC: f64 = 256.0 * 1024.0 * 1024.0;
        let bytes = |n: u64| Duration::from_secs_f64(n as f64 / NOMINAL_BYTES_PER_SEC);
        self.steps
            .iter()
            .map(|step| match &step.action {
                Action::Sleep(d) => *d,
                Action::Expect(any) if any.iter().any(|e| matches!(e, Expectation::Nothing)) => {
                    step.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT)
                }
                Action::Expect(_) => step.timeout.unwrap_or_default(),
                Action::ServerRekeys { limit: ServerLimit::Bytes(n), times, .. } => bytes(n * u64::from(*times)),
                Action::ServerRekeys { limit: ServerLimit::Time(d), times, .. } => *d * *times,
                // Echoed data crosses twice.
                Action::Bulk { size, channels, .. } => bytes(2 * size * u64::from(*channels)),
                Action::FillWindow { limit } => bytes(*limit),
                Action::Exec { stdin: Some(input), echo, .. } => bytes(input.len() * if *echo { 2 } else { 1 }),
                _ => Duration::ZERO,
            })
            .sum()
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based line of the `[[step]]` in the file, for evidence.
    pub line: usize,
    pub action: Action,
    /// Deadline for this step's expectations (default [`DEFAULT_STEP_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// Deliver IGNORE and DEBUG to the expectation instead of passing over them.
    pub strict: bool,
    /// Further messages (by name) the expectation passes over, e.g. a server's unsolicited
    /// `global_request` after login.
    pub pass_over: Vec<String>,
    /// `judged = true`: judgement starts at this step: it and every later step are judged
    /// (a pinned key exchange in a scenario about that cipher), every earlier one is setup.
    pub judged: bool,
    /// For an `expect_any`, per alternative: the branch the scenario goes on with when that
    /// alternative is what came (`then = "NAME"`), or `None` to go on with the next step.
    pub then: Vec<Option<Branch>>,
    /// The last step of the main list or of a branch: the scenario ends after it.
    pub ends: bool,
}

/// A named list of steps (`[[branch.NAME]]`) a scenario goes on with when an `expect_any`
/// alternative that names it is what the server sent; its steps follow the main list's in
/// `Scenario::steps`, so they are numbered after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    pub name: String,
    /// The index of its first step in `Scenario::steps`.
    pub start: usize,
}

impl Step {
    /// A step with no options set.
    pub fn new(line: usize, action: Action) -> Step {
        Step {
            line,
            action,
            timeout: None,
            strict: false,
            pass_over: Vec::new(),
            judged: false,
            then: Vec::new(),
            ends: false,
        }
    }

    /// For a setup step, what it sets up and the section that rules it: an INCONCLUSIVE names it,
    /// since the failure broke that rule and not the scenario's.
    pub fn setup_rule(&self) -> Option<&'static str> {
        Some(match self.action {
            Action::VersionExchange { .. } => "version exchange, RFC 4253 §4.2",
            Action::KeyExchange { .. } => "key exchange, RFC 4253 §7",
            Action::Authenticate(_) => "login, RFC 4252 §5",
            Action::OpenSession { .. } => "session channel, RFC 4254 §6.1",
            _ => return None,
        })
    }

    /// Whether this step expects the message `name` (as one of its alternatives).
    pub fn expects_message(&self, name: &str) -> bool {
        matches!(&self.action, Action::Expect(alts)
            if alts.iter().any(|a| matches!(a, Expectation::Message { name: n, .. } if n == name)))
    }

    /// Whether this step sends something of the scenario's own making (what a close must follow).
    pub fn is_stimulus(&self) -> bool {
        matches!(self.action, Action::Send { .. } | Action::SendPayload { .. } | Action::SendBytes(_))
    }

    /// Whether this step only brings the connection to where the scenario starts: an ordinary
    /// version exchange, key exchange (algorithms pinned, but no overridden KEXINIT and no guess),
    /// login with the target's own method, or a default session channel.
    pub fn is_setup(&self) -> bool {
        !self.judged
            && match &self.action {
                Action::VersionExchange { banner, pre_banner } => banner.is_none() && pre_banner.is_empty(),
                Action::KeyExchange { with, guess, .. } => with.is_empty() && !guess,
                Action::Authenticate(a) => a.method == AuthKind::Login && a.outcome == AuthOutcome::Success,
                Action::OpenSession { window, max_packet } => window.is_none() && max_packet.is_none(),
                Action::Reconnect => true,
                _ => false,
            }
    }
}

/// A message value `\"$program NAME [ARGUMENT]\"` stands for the target's command for that program.
pub const PROGRAM_VARIABLE: &str = "$program ";

/// A message value `"$earlier.MESSAGE.FIELD"` stands for that field of the server's last MESSAGE
/// (one of [`EARLIER_MESSAGES`]) on the connection before a `reconnect`.
pub const EARLIER: &str = "$earlier.";

/// `"$earlier_bits.MESSAGE.FIELD"` stands for the bit length of that field, a byte string read as
/// an unsigned number (a group exchange's `p`): what a later group is compared with.
pub const EARLIER_BITS: &str = "$earlier_bits.";

/// The server's messages a `reconnect` remembers: its KEXINIT and its key exchange replies.
pub const EARLIER_MESSAGES: &[&str] =
    &["kexinit", "kex_ecdh_reply", "kexdh_reply", "kex_dh_gex_group", "kex_dh_gex_reply"];

pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Algorithms a high-level key exchange pins, in both directions. (A list per direction, in any
/// order, is set through the step's `with` table, which overlays our KEXINIT.)
#[derive(Clone, Debug, Default)]
pub struct Pins {
    pub kex: Option<String>,
    pub host_key: Option<String>,
    pub cipher: Option<String>,
    pub mac: Option<String>,
    pub compression: Option<String>,
}

/// When the peer starts a rekey of its own (RFC 4253 §9): after this much traffic in either
/// direction, or this long, since the last key exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RekeyPolicy {
    pub bytes: Option<u64>,
    pub packets: Option<u64>,
    pub time: Option<Duration>,
}

/// The traffic during a `server-rekeys` step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// We send channel data (the command must read it).
    Upload,
    /// The command prints; we read.
    Download,
    /// Only an IGNORE from us every 250 ms.
    Trickle,
}

/// The limit the target is configured with, which its own rekeys are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLimit {
    Bytes(u64),
    Time(Duration),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    None,
    Password,
    Publickey,
    /// OpenSSH's publickey bound to the server's host key (PROTOCOL §3.1).
    PublickeyHostbound,
    /// RFC 4252 §9: the client host's key vouches for the user.
    Hostbased,
    KeyboardInteractive,
    /// The target's login method, for scenarios about what comes after login: password where the
    /// target offers it, else publickey.
    Login,
}

impl AuthKind {
    pub fn name(self) -> &'static str {
        match self {
            AuthKind::None => "none",
            AuthKind::Password => "password",
            AuthKind::Publickey => "publickey",
            AuthKind::PublickeyHostbound => "publickey-hostbound-v00@openssh.com",
            AuthKind::Hostbased => "hostbased",
            AuthKind::KeyboardInteractive => "keyboard-interactive",
            AuthKind::Login => "login",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Failure,
    /// USERAUTH_FAILURE with partial success TRUE: this method succeeded, another must follow.
    Partial,
    /// publickey: SUCCESS if the server lists the algorithm in `server-sig-algs` (RFC 8308 §3.1),
    /// FAILURE if it does not (or sends no EXT_INFO).
    Advertised,
    /// USERAUTH_FAILURE, or the connection ended: where a server may take the request as an
    /// attack, not a mistake (OpenSSH disconnects on a host-bound request naming another host key).
    Refused,
}

/// How a `publickey` attempt is spoiled on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// One bit of the signature flipped.
    Signature,
    /// Signed over a session identifier that is not this connection's.
    SessionId,
    /// publickey-hostbound: bound to a host key that is not the one of the key exchange.
    HostKey,
}

/// The order `prove-host-keys` asks for proofs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofOrder {
    /// As the server announced its keys.
    Announced,
    /// The reverse, so proofs sent in the server's own order instead of the request's show.
    Reversed,
}

/// How many responses a keyboard-interactive answer carries, when not one per prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseCount {
    OneMore,
    OneFewer,
}

/// The client host a hostbased target trusts, with the run's user keys as its host keys (the
/// `hostbased` variants; `containers/common/sshspec-serve`).
pub const CLIENT_HOST: &str = "sshspec-client.example";

/// One authentication attempt (`do = "authenticate"`), with what may be changed about it.
#[derive(Clone, Debug)]
pub struct AuthStep {
    pub method: AuthKind,
    pub outcome: AuthOutcome,
    /// publickey: a query (PK_OK expected) before the signed request.
    pub query: bool,
    /// The password to send instead of the target's.
    pub password: Option<Bytes>,
    /// The user name to send instead of the target's.
    pub user: Option<String>,
    /// publickey: which of the run's keys.
    pub key: crate::peer::KeyKind,
    /// publickey: the algorithm name sent, instead of the key's default.
    pub algorithm: Option<String>,
    /// publickey: a fresh key the target was never given.
    pub unknown_key: bool,
    /// hostbased: the client host name sent (the key is that host's, by `key`).
    pub client_host: String,
    pub tamper: Option<Tamper>,
    /// The target must ask for a new password (PASSWD_CHANGEREQ, or a keyboard-interactive prompt
    /// for one); the peer answers with a fresh password.
    pub change_requested: bool,
    /// The answer where a password change asks for the old password (default: the right one).
    pub old_password: Option<Bytes>,
    /// keyboard-interactive: answer the first round with one response too many or too few.
    pub responses: Option<ResponseCount>,
}

impl AuthStep {
    pub fn new(method: AuthKind, outcome: AuthOutcome) -> Self {
        AuthStep {
            method,
            outcome,
            query: false,
            password: None,
            user: None,
            key: crate::peer::KeyKind::default(),
            algorithm: None,
            unknown_key: false,
            client_host: CLIENT_HOST.into(),
            tamper: None,
            change_requested: false,
            old_password: None,
            responses: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Action {
    /// Send our identification (after optional pre-banner lines) and read the server's.
    VersionExchange { banner: Option<String>, pre_banner: Vec<String> },
    /// A complete key exchange: KEXINIT both ways, the method's messages, NEWKEYS both ways.
    /// After the first, the same step is a rekey with new offers; `rekey` sets the peer's own
    /// rekey thresholds from then on.
    /// With `guess`, the peer reads the server's KEXINIT first, puts the server's first kex and
    /// host key algorithms first in its own lists, and sends its first kex packet right behind its
    /// KEXINIT (`first_kex_packet_follows`, a right guess: RFC 4253 §7).
    KeyExchange { pins: Pins, with: toml::Table, rekey: Option<RekeyPolicy>, guess: bool },
    /// A rekey we start, offering what the last key exchange offered; data in flight is kept.
    Rekey,
    /// The server must start `times` rekeys of its own, each within `limit` of the last one.
    ServerRekeys { traffic: Traffic, limit: ServerLimit, times: u32 },
    /// Service request (once) and one authentication attempt with the target's credentials.
    Authenticate(Box<AuthStep>),
    /// Open a session channel, offering this window and maximum packet size; it becomes the current channel.
    OpenSession { window: Option<u32>, max_packet: Option<u32> },
    /// Several session channels at once, each running `program` (which must echo its stdin), each
    /// sent `size` bytes at the same time; every echo is checked.
    Bulk { program: Program, size: u64, channels: u32 },
    /// Send data on the current channel until the target's window is spent (at most `limit` bytes).
    FillWindow { limit: u64 },
    /// Run a program on the current channel and check what it printed and its exit status.
    Exec {
        program: Program,
        stdin: Option<Input>,
        stdout: Option<Bytes>,
        stderr: Option<Bytes>,
        exit_status: Option<u32>,
        /// stdout must equal stdin byte for byte (checked by length and SHA-256, so any size works).
        echo: bool,
    },
    /// OpenSSH PROTOCOL §2.5: judge the server's `hostkeys-00@openssh.com` announcement and ask
    /// it to prove it holds the keys (`stranger`: a key it does not hold, which it must refuse).
    ProveHostKeys { order: ProofOrder, stranger: bool },
    /// Send DISCONNECT (BY_APPLICATION) and close.
    Disconnect,
    /// Close the connection and open a new one to the same target: later steps start over from the
    /// version exchange, and `$earlier.MESSAGE.FIELD` gives fields of the server's key exchange
    /// messages on the connection before.
    Reconnect,
    /// Send one message, built from defaults for the conversation so far, with fields overridden.
    Send { message: String, with: toml::Table, trailing: Vec<u8>, framing: Framing },
    /// Send arbitrary bytes as one packet's payload.
    SendPayload { payload: Vec<u8>, framing: Framing },
    /// Write bytes to the socket outside any packet.
    SendBytes(Vec<u8>),
    /// Wait for one of these (a single expectation is a list of one).
    Expect(Vec<Expectation>),
    /// Do nothing for this long (bytes sent before and after go in separate TCP segments).
    Sleep(Duration),
}

/// What `exec` writes to the command's stdin.
#[derive(Clone, Debug)]
pub enum Input {
    Bytes(Bytes),
    /// This many bytes of a fixed pseudo-random pattern (bulk transfer).
    Generated(u64),
}

impl Input {
    pub fn len(&self) -> u64 {
        match self {
            Input::Bytes(b) => b.len() as u64,
            Input::Generated(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug)]
pub enum Expectation {
    /// A message by name whose fields match (a partial table; unnamed fields are free).
    Message { name: String, matches: toml::Table },
    /// The server's identification line, checked against RFC 4253 §4.2; fields can be matched.
    Banner { matches: toml::Table },
    /// The target closes the connection (a DISCONNECT before the close is allowed).
    Close,
    /// No message (IGNORE and DEBUG aside) for the whole step timeout.
    Nothing,
    /// The server's KEXINIT, held to the form RFC 4251 §5-§6 and RFC 4253 §7.1 give it.
    WellFormedKexinit,
    /// The padding of the server's packets so far under keys: not one byte repeated (RFC 4253 §6).
    /// Reads nothing.
    RandomPadding,
    /// A message that shows the target lacks something optional the scenario needs (exit-status
    /// where exit-signal was asked for): the scenario SKIPs with `reason`, it does not FAIL.
    Unsupported { name: String, matches: toml::Table, reason: String },
    /// The target closes the connection, which shows it lacks something optional (a message it
    /// has dropped): the scenario SKIPs with the reason.
    CloseUnsupported { reason: String },
    /// An identification line whose fields match (its form aside) shows the scenario does not
    /// apply (a 2.0 server, where a scenario judges SSH-1 compatibility mode): SKIP.
    BannerUnsupported { matches: toml::Table, reason: String },
}

impl Expectation {
    pub fn describe(&self) -> String {
        match self {
            Expectation::Message { name, matches } if matches.is_empty() => name.clone(),
            Expectation::Message { name, matches } => format!("{name} {}", inline(matches)),
            Expectation::Banner { matches } if matches.is_empty() => "a conforming identification line".into(),
            Expectation::Banner { matches } => {
                format!("an identification line with {}", inline(matches))
            }
            Expectation::Unsupported { name, .. } => format!("{name} (optional feature absent)"),
            Expectation::WellFormedKexinit => "a well-formed server KEXINIT".into(),
            Expectation::RandomPadding => "padding that is not one byte repeated".into(),
            Expectation::Close => "the connection closed".into(),
            Expectation::CloseUnsupported { .. } => "the connection closed (optional feature absent)".into(),
            Expectation::BannerUnsupported { .. } => "an identification line the scenario does not apply to".into(),
            Expectation::Nothing => "no message".into(),
        }
    }
}

/// A table as one line of text.
pub fn inline(t: &toml::Table) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

/// Picks scenarios by id globs (`transport/*`), id prefixes (`transport/kex`) or file paths, and tier.
pub fn select(all: Vec<Scenario>, patterns: &[String], smoke_only: bool) -> Result<Vec<Scenario>, String> {
    let mut pats = Vec::new();
    for p in patterns {
        let path = std::path::Path::new(p);
        let canon = path.canonicalize().ok();
        let g = glob::Pattern::new(p.trim_end_matches(".toml")).map_err(|e| format!("bad pattern {p:?}: {e}"))?;
        pats.push((p.trim_end_matches('/').trim_end_matches(".toml").to_owned(), g, canon));
    }
    let mut out = Vec::new();
    let mut used = vec![false; pats.len()];
    for s in all {
        if smoke_only && s.tier != Tier::Smoke {
            continue;
        }
        let file = s.path.canonicalize().ok();
        let hit = pats.iter().position(|(prefix, g, canon)| {
            g.matches(&s.id)
                || s.id == *prefix
                || s.id.starts_with(&format!("{prefix}/"))
                || matches!((canon, &file), (Some(c), Some(f)) if f.starts_with(c))
        });
        if pats.is_empty() || hit.is_some() {
            if let Some(i) = hit {
                used[i] = true;
            }
            out.push(s);
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!("no scenario matches {:?}", patterns[i]));
    }
    Ok(out)
}

/// Parses a duration given on the command line ("5s", "500ms").
pub fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    load::parse_duration(s)
}

/// The catalogue as Markdown: every scenario with its clause, level and requirement.
pub fn catalogue_markdown(scenarios: &[Scenario]) -> String {
    let mut out =
        String::from("# Scenario catalogue\n\nGenerated by `sshspec list --format markdown`; do not edit by hand.\n\n");
    let mut area = "";
    for s in scenarios {
        if s.area() != area {
            area = s.area();
            out.push_str(&format!(
                "\n## {area}\n\n| id | spec | clauses | level | requirement |\n|---|---|---|---|---|\n"
            ));
        }
        let req = s.requirement.replace('|', "\\|").replace('\n', " ");
        out.push_str(&format!("| `{}` | {} | {} | {} | {} |\n", s.id, s.spec, s.clauses.join(", "), s.level, req));
    }
    out.push_str(&format!("\n{} scenarios.\n", scenarios.len()));
    out
}
