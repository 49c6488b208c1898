//! Targets: the servers scenarios run against. A target is described by a data file
//! (`containers/<name>/target.toml`: what it supports and its expected deviations) and started by a
//! backend: `builtin` (russh in-process), `fixture` (our own server, `crate::server`, in-process),
//! `process` (sshd or dropbear as a local process),
//! `container` (a target image under Docker, through testcontainers) or `remote` (a host and port
//! given by the user).

mod container;
mod process;

pub use container::BUILD_HINT;

use crate::peer::{Credentials, Evidence, FailureKind, KeyKind, Profile};
use crate::script::Scenario;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The user the process targets log in as (created by scripts/install-test-deps.sh).
pub const TEST_USER: &str = "sshspec";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Builtin,
    Fixture,
    Process,
    Container,
    Remote,
}

/// Algorithms a target supports, for matching scenarios' `requires`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Algorithms {
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher: Vec<String>,
    pub mac: Vec<String>,
    pub compression: Vec<String>,
}

/// A target's description.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    pub name: String,
    pub server: String,
    pub backend: BackendKind,
    pub description: String,
    pub auth: Vec<String>,
    pub max_jobs: usize,
    /// Container targets: the image (`sshspec/<folder>`), built from `containers/<folder>/Dockerfile`.
    #[serde(default)]
    pub image: Option<String>,
    /// The server's version, for people (`9.2p1`).
    #[serde(default)]
    pub version: Option<String>,
    /// What the server's identification string must contain (`OpenSSH_9.2p1`); a target whose
    /// banner does not fails to start, so a stale image cannot pass for another version.
    #[serde(default)]
    pub banner: Option<String>,
    /// Connect from this many loopback source addresses (127.0.0.2, ...), for servers that limit
    /// connections per source address; 0 means the default source.
    #[serde(default)]
    pub source_addresses: u8,
    #[serde(default)]
    pub algorithms: Algorithms,
    /// User key types the test user may log in with: for our own targets every key the run makes;
    /// for a remote target only the `--identity` key.
    #[serde(default = "all_user_keys")]
    pub user_keys: Vec<String>,
    /// What the server offers beyond what every server has: `subsystem:sftp`, `tcpip-forward`,
    /// `direct-tcpip`, `no-more-sessions@openssh.com`, `exit-signal`, `shell`, `pty`. Scenarios
    /// that `require` a feature SKIP, with the reason, on targets that do not list it.
    #[serde(default)]
    pub features: Vec<String>,
    /// Program capability → the command this server runs for it, where it differs from the POSIX
    /// default (`script::program::posix`); "" means it has none, and scenarios running it SKIP.
    #[serde(default)]
    pub programs: BTreeMap<String, String>,
    /// A configuration variant: lines added to the server's generated configuration (sshd_config
    /// for OpenSSH), so one installed server serves several targets.
    #[serde(default)]
    pub config: Vec<String>,
    /// Configuration variants by name: the same server started a second time with more
    /// configuration lines, for scenarios that `require` a variant (a small RekeyLimit, say).
    #[serde(default)]
    pub variants: BTreeMap<String, Variant>,
    /// Scenario id → the failure this target is expected to show in it, and why.
    #[serde(default, rename = "expected-failures")]
    pub expected_failures: BTreeMap<String, ExpectedFailure>,
    /// Scenario id → why its verdict against this target depends on timing: such scenarios SKIP
    /// with that reason rather than give a verdict that changes from run to run.
    #[serde(default)]
    pub unjudged: BTreeMap<String, String>,
    /// For remote targets: where it is.
    #[serde(skip)]
    pub address: Option<SocketAddr>,
    /// SHA256 fingerprints the target's host key must have; empty means not pinned.
    #[serde(skip)]
    pub pinned_host_keys: Vec<String>,
    /// Where the pinned keys came from (`--host-key`, a known_hosts file, an inventory, a
    /// directory). Set with no keys, the source had none for this host: nothing runs against it.
    #[serde(skip)]
    pub host_key_source: Option<String>,
    /// A remote target's own login (a fleet inventory's per-host user and key), instead of the run's.
    #[serde(skip)]
    pub credentials: Option<crate::peer::Credentials>,
    /// Least time between two connections we open to it (remote devices may rate-limit).
    #[serde(skip)]
    pub connect_interval: Duration,
    /// Whether destructive scenarios may run against it (always for our own local targets).
    #[serde(skip)]
    pub allow_destructive: bool,
    /// What the probe saw it offer, once it has run (see [`crate::peer::probe`]).
    #[serde(skip)]
    pub profile: Option<Profile>,
    /// A remote target's features were given (`--describe`), so they are facts, not unknowns.
    #[serde(skip)]
    pub described_features: bool,
}

/// A deviation a target is expected to show. In a description, a table names where and how:
/// `{ step = 6, kind = "timeout", reason = "..." }` (`kind`: `timeout`, `close` or `answer`; `step`
/// and `kind` may each be a list, for a deviation whose answers race); the scenario must fail at
/// that step and that way, or it is a FAIL, not an XFAIL. A reason alone (`"id" = "why"`) accepts
/// any failure: for `--describe` files written by hand before the failure was seen; every
/// description shipped here names step and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedFailure {
    pub reason: String,
    /// Empty: any step.
    pub step: Vec<usize>,
    /// Empty: any kind.
    pub kind: Vec<FailureKind>,
}

impl<'de> Deserialize<'de> for ExpectedFailure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany<T> {
            One(T),
            Many(Vec<T>),
        }
        fn list<T>(v: Option<OneOrMany<T>>) -> Vec<T> {
            match v {
                None => Vec::new(),
                Some(OneOrMany::One(x)) => vec![x],
                Some(OneOrMany::Many(x)) => x,
            }
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            reason: String,
            step: Option<OneOrMany<usize>>,
            kind: Option<OneOrMany<FailureKind>>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Reason(String),
            Full(Full),
        }
        Ok(match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "an expected failure is a reason string or { step = N (or a list), kind = \"timeout\"|\"close\"|\"answer\" (or a list), reason = \"...\" }",
            )
        })? {
            Raw::Reason(reason) => ExpectedFailure { reason, step: Vec::new(), kind: Vec::new() },
            Raw::Full(f) => ExpectedFailure { reason: f.reason, step: list(f.step), kind: list(f.kind) },
        })
    }
}

impl ExpectedFailure {
    /// Whether `e` is the failure this entry records; if not, how it differs.
    pub fn expects(&self, e: &Evidence) -> Result<(), String> {
        let step_ok = self.step.is_empty() || self.step.contains(&e.step);
        let kind_ok = self.kind.is_empty() || self.kind.contains(&e.kind);
        if step_ok && kind_ok {
            return Ok(());
        }
        let or = |v: Vec<String>, none: &str| if v.is_empty() { none.to_owned() } else { v.join(" or ") };
        Err(format!(
            "expected to fail at {} ({}) as recorded ({}), but failed at step {} ({}): a different failure",
            or(self.step.iter().map(|s| format!("step {s}")).collect(), "any step"),
            or(self.kind.iter().map(|k| k.name().to_owned()).collect(), "any way"),
            self.reason,
            e.step,
            e.kind.name()
        ))
    }
}

/// Every user key type a run makes (`peer::UserKeys`).
pub fn all_user_keys() -> Vec<String> {
    crate::peer::KeyKind::ALL.iter().map(|k| k.key_type().to_owned()).collect()
}

/// A configuration variant: its lines are added to the target's own `config` (sshd_config lines
/// for OpenSSH, `RekeyLimit`/`MaxAuthTries` lines for the russh target).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub description: String,
    pub config: Vec<String>,
}

/// The variants scenarios may ask for, and what each means; every target that offers one must
/// configure it to mean exactly this, since scenarios judge against these numbers.
pub const VARIANTS: &[(&str, &str)] = &[
    ("rekey-256k", "the server rekeys after 256 KiB (262144 bytes) in either direction"),
    ("rekey-2s", "the server rekeys after 2 seconds"),
    ("max-auth-tries-2", "the server allows 2 failed authentication attempts per connection"),
    ("login-grace-3s", "the server disconnects a client not authenticated within 3 seconds"),
    (
        "password-expired",
        "the test user's password has expired: the server must have it changed before login (RFC 4252 §8)",
    ),
    (
        "publickey-then-password",
        "the test user must pass publickey and then password (OpenSSH `AuthenticationMethods publickey,password`)",
    ),
    (
        "directory-keys",
        "the test user's authorized keys come from an LDAP directory (OpenLDAP slapd) through AuthorizedKeysCommand",
    ),
    (
        "cipher-none",
        "the server also offers the none cipher and the none MAC, as a server built for them does (Dropbear's DROPBEAR_NONE_CIPHER)",
    ),
    ("cbc-only", "the server offers only the aes128-cbc cipher, which clients no longer offer by default"),
    ("publickey-only", "the server allows publickey authentication only"),
    (
        "empty-password",
        "the test user has an empty password and the server lets such users in without authentication (OpenSSH `PermitEmptyPasswords yes`, Dropbear `-B`)",
    ),
    ("test-user-denied", "the server's policy denies the test user, whatever the credentials (OpenSSH `DenyUsers *`)"),
    ("no-tcp-forwarding", "TCP forwarding switched off both ways (OpenSSH `AllowTcpForwarding no`, Dropbear `-j -k`)"),
    (
        "hostbased",
        "hostbased authentication (RFC 4252 §9) from the client host sshspec-client.example, whose host keys are the run's user keys (OpenSSH `HostbasedAuthentication yes`, shosts.equiv and ssh_known_hosts)",
    ),
    (
        "hostbased-address",
        "hostbased authentication whose client host name is checked against the client's address (RFC 4252 §9): the address names sshspec-client.example, whose host keys are the run's ECDSA and RSA user keys; sshspec-elsewhere.example is trusted too, with the ed25519 user key, at another address (OpenSSH `HostbasedUsesNameFromPacketOnly no`, `UseDNS yes`, /etc/hosts)",
    ),
    (
        "ssh1-compat",
        "the server's SSH-1 compatibility mode is on: it announces protocol 1.99 (RFC 4253 §5.1); OpenSSH dropped SSH-1 in 7.6",
    ),
];

/// Variants whose scenarios change the server's state (a password change): each such scenario
/// gets an instance of its own, so no scenario sees what another did.
pub const FRESH_VARIANTS: &[&str] = &["password-expired"];

/// `containers/<path>`, embedded so the binary knows its targets wherever it runs.
macro_rules! descriptions {
    ($($path:literal),* $(,)?) => {
        &[$((concat!("containers/", $path), include_str!(concat!("../../../../containers/", $path)))),*]
    };
}

const DESCRIPTIONS: &[(&str, &str)] = descriptions![
    "russh/target.toml",
    "fixture/target.toml",
    "openssh/target.toml",
    "openssh/legacy.toml",
    "dropbear/target.toml",
    "russh/container.toml",
    "openssh-8.4p1/target.toml",
    "openssh-9.2p1/target.toml",
    "openssh-10.0p2/target.toml",
    "dropbear-2020.81/target.toml",
    "dropbear-2022.83/target.toml",
    "dropbear-2025.89/target.toml",
    "tinysshd-20250501/target.toml",
    "paramiko-2.12.0/target.toml",
    "paramiko-3.5.1/target.toml",
    "asyncssh-2.10.1/target.toml",
    "asyncssh-2.20.0/target.toml",
    "erlang-otp-25.2.3/target.toml",
    "erlang-otp-27.3.4/target.toml",
    "libssh-0.10.6/target.toml",
    "libssh-0.11.5/target.toml",
    "go-x-crypto-0.4.0/target.toml",
    "go-x-crypto-0.25.0/target.toml",
];

/// Every known target, in a stable order.
pub fn catalog() -> Result<Vec<TargetInfo>, String> {
    let mut tables: Vec<(String, toml::Table)> = Vec::new();
    let mut out = Vec::new();
    for (path, text) in DESCRIPTIONS {
        // Parsing straight into TargetInfo first keeps line and column in the error.
        let table: toml::Table = toml::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        let table = match table.get("extends") {
            None => {
                toml::from_str::<TargetInfo>(text).map_err(|e| format!("{path}: {e}"))?;
                table
            }
            Some(base) => {
                let base = base.as_str().ok_or_else(|| format!("{path}: `extends` must name a target"))?;
                let (_, parent) = tables
                    .iter()
                    .find(|(n, _)| n == base)
                    .ok_or_else(|| format!("{path}: extends {base:?}, which is not described before it"))?;
                extend(parent, table)
            }
        };
        let t: TargetInfo = table.clone().try_into().map_err(|e| format!("{path}: {e}"))?;
        if let Some(v) = t.variants.keys().find(|v| !VARIANTS.iter().any(|(known, _)| known == v)) {
            return Err(format!("{path}: unknown variant {v:?}; known: {}", variant_names()));
        }
        check_programs(&t.programs).map_err(|e| format!("{path}: {e}"))?;
        check_features(&t.features).map_err(|e| format!("{path}: {e}"))?;
        tables.push((t.name.clone(), table));
        out.push(t);
    }
    Ok(out)
}

/// A description that `extends` another describes the same server software elsewhere (in a
/// container, say): same algorithms, configuration, variants and deviations. Its own keys replace
/// the parent's; its variants and expected failures are added to the parent's, and an expected
/// failure it sets to "" is one the parent has and it does not (another version of the server).
fn extend(parent: &toml::Table, mut child: toml::Table) -> toml::Table {
    child.remove("extends");
    let mut merged = parent.clone();
    for (key, value) in child {
        match (merged.get_mut(&key), value) {
            // "" is a fact here (the server has no such command), so it stays.
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) if key == "programs" => mine.extend(theirs),
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs))
                if key == "variants" || key == "expected-failures" || key == "unjudged" =>
            {
                mine.extend(theirs);
                mine.retain(|_, v| v.as_str() != Some(""));
            }
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
    merged
}

fn variant_names() -> String {
    VARIANTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Checks a scenario's `requires.variant` against the known variants.
pub fn check_variant(name: &str) -> Result<(), String> {
    if VARIANTS.iter().any(|(n, _)| *n == name) {
        Ok(())
    } else {
        Err(format!("unknown variant {name:?}; known: {}", variant_names()))
    }
}

/// Looks a target up by name; `remote:HOST:PORT` names a remote target.
pub fn find(name: &str) -> Result<TargetInfo, String> {
    if let Some(addr) = name.strip_prefix("remote:") {
        let address: SocketAddr =
            addr.parse().map_err(|_| format!("remote target {addr:?} is not HOST:PORT with a numeric IP address"))?;
        return Ok(TargetInfo {
            name: format!("remote:{address}"),
            server: "unknown".into(),
            backend: BackendKind::Remote,
            description: format!("a remote server at {address}"),
            // What we can log in with: the CLI adds password and keyboard-interactive for a
            // password, publickey for an identity; the probe then keeps what the server lists.
            auth: vec!["none".into()],
            max_jobs: 2,
            image: None,
            version: None,
            banner: None,
            source_addresses: 0,
            algorithms: Algorithms::default(),
            // Only a key from `--identity` can be authorized there (the CLI adds it).
            user_keys: Vec::new(),
            features: Vec::new(),
            programs: BTreeMap::new(),
            config: Vec::new(),
            variants: BTreeMap::new(),
            expected_failures: BTreeMap::new(),
            unjudged: BTreeMap::new(),
            address: Some(address),
            pinned_host_keys: Vec::new(),
            host_key_source: None,
            credentials: None,
            connect_interval: Duration::from_millis(200),
            allow_destructive: false,
            profile: None,
            described_features: false,
        });
    }
    let all = catalog()?;
    let names: Vec<String> = all.iter().map(|t| t.name.clone()).collect();
    let mut t = all
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("unknown target {name:?}; known: {}, or remote:HOST:PORT", names.join(", ")))?;
    t.allow_destructive = true;
    Ok(t)
}

/// Expands the `-t` arguments into target names: `all` is every described server, a pattern with
/// `*`, `?` or `[` picks the described targets it matches (`'libssh-*'`), anything else stays as
/// given. A pattern that matches nothing is an error, so a typo cannot quietly run nothing. The
/// fixture is named only on its own: it is our yardstick, not a server in the interop matrix.
pub fn expand(args: &[String]) -> Result<Vec<String>, String> {
    let names: Vec<String> =
        catalog()?.into_iter().filter(|t| t.backend != BackendKind::Fixture).map(|t| t.name).collect();
    let mut out: Vec<String> = Vec::new();
    for a in args {
        let picked: Vec<String> = if a == "all" {
            names.clone()
        } else if !a.starts_with("remote:") && a.contains(['*', '?', '[']) {
            let p = glob::Pattern::new(a).map_err(|e| format!("target pattern {a:?}: {e}"))?;
            let m: Vec<String> = names.iter().filter(|n| p.matches(n)).cloned().collect();
            if m.is_empty() {
                return Err(format!("target pattern {a:?} matches no target; known: {}", names.join(", ")));
            }
            m
        } else {
            vec![a.clone()]
        };
        for n in picked {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Checks a `[programs]` table's keys against the known capabilities.
fn check_programs(programs: &BTreeMap<String, String>) -> Result<(), String> {
    use crate::script::program::CAPABILITIES;
    match programs.keys().find(|k| !CAPABILITIES.iter().any(|c| c.0 == k.as_str())) {
        Some(k) => Err(format!(
            "[programs]: unknown program {k:?}; known: {}",
            CAPABILITIES.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

/// What a user may say about a remote target (`--describe FILE`), in the target description
/// format: the facts a probe cannot find (features, which user keys are authorized, the server's
/// name and version) and the deviations already known. Every field is optional; algorithms and
/// auth methods come from the probe and the credentials, not from here.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteDescription {
    pub server: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub banner: Option<String>,
    pub max_jobs: Option<usize>,
    pub features: Option<Vec<String>>,
    #[serde(default, rename = "expected-failures")]
    pub expected_failures: BTreeMap<String, ExpectedFailure>,
    #[serde(default)]
    pub unjudged: BTreeMap<String, String>,
    /// The server's command for each program where it is not a POSIX shell's ("" for none).
    #[serde(default)]
    pub programs: BTreeMap<String, String>,
}

/// What a full target description (`containers/<target>/target.toml`) says that a `--describe`
/// file does not: how our own copy is started, and what the probe and the run's credentials decide
/// for a remote target. Such a file describes the same server software reached over the network.
const NOT_FOR_REMOTE: &[&str] =
    &["name", "backend", "image", "auth", "user_keys", "source_addresses", "algorithms", "config", "variants"];

/// Reads a `--describe` file, or a full target description used as one; errors name the file,
/// line and column.
pub fn load_description(path: &std::path::Path) -> Result<RemoteDescription, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(mut table) = toml::from_str::<toml::Table>(&text)
        && table.contains_key("backend")
    {
        if table.contains_key("extends") {
            return Err(format!(
                "{}: a description that `extends` another cannot be used with --describe; use the one it extends",
                path.display()
            ));
        }
        table.retain(|k, _| !NOT_FOR_REMOTE.contains(&k));
        let d: RemoteDescription = table.try_into().map_err(|e| format!("{}: {e}", path.display()))?;
        check_programs(&d.programs).map_err(|e| format!("{}: {e}", path.display()))?;
        check_features(d.features.as_deref().unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(d);
    }
    let d: RemoteDescription = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map_or((0, 0), |s| {
            let before = &text[..s.start];
            (before.lines().count().max(1), before.rsplit('\n').next().map_or(0, str::len) + 1)
        });
        format!("{}:{line}:{col}: {}", path.display(), e.message())
    })?;
    check_programs(&d.programs).map_err(|e| format!("{}: {e}", path.display()))?;
    check_features(d.features.as_deref().unwrap_or_default()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(d)
}

/// A misspelt feature would make every scenario needing it SKIP as "not offered".
fn check_features(features: &[String]) -> Result<(), String> {
    features.iter().try_for_each(|f| crate::script::names::check_feature(f).map_err(|m| format!("features: {m}")))
}

impl TargetInfo {
    /// A remote target with a user's description laid over it. Features given here are facts: a
    /// scenario needing one not listed SKIPs (without a description, unknown features are tried).
    pub fn describe(&mut self, d: RemoteDescription) {
        if let Some(v) = d.server {
            self.server = v;
        }
        self.version = d.version.or(self.version.take());
        if let Some(v) = d.description {
            self.description = v;
        }
        self.banner = d.banner.or(self.banner.take());
        if let Some(v) = d.max_jobs {
            self.max_jobs = v.max(1);
        }
        self.described_features = d.features.is_some();
        if let Some(v) = d.features {
            self.features = v;
        }
        self.expected_failures.extend(d.expected_failures);
        self.unjudged.extend(d.unjudged);
        self.programs.extend(d.programs);
    }

    /// The command for each program this target can run: a POSIX shell's, unless the probe saw
    /// `exec` run something else, then the description's `[programs]` over that.
    pub fn programs(&self) -> crate::script::Programs {
        let shell = self.profile.as_ref().and_then(|p| p.posix_shell) != Some(false);
        let mut have = if shell { crate::script::program::posix() } else { Default::default() };
        for (name, command) in &self.programs {
            if command.is_empty() {
                have.remove(name);
            } else {
                have.insert(name.clone(), command.clone());
            }
        }
        have
    }

    /// The source address for the `n`th connection to a loopback target.
    pub fn source_address(&self, n: usize, target: SocketAddr) -> Option<std::net::IpAddr> {
        if self.source_addresses == 0 || !target.ip().is_loopback() || !target.is_ipv4() {
            return None;
        }
        let last = 2 + (n % usize::from(self.source_addresses)) as u8;
        Some(std::net::IpAddr::from([127, 0, 0, last]))
    }

    /// This target with a variant's configuration added; `None` for the target itself.
    pub fn with_variant(&self, variant: Option<&str>) -> Result<TargetInfo, String> {
        let Some(name) = variant else {
            return Ok(self.clone());
        };
        let v = self.variants.get(name).ok_or_else(|| format!("{} has no variant {name:?}", self.name))?;
        let mut t = self.clone();
        t.config.extend(v.config.iter().cloned());
        Ok(t)
    }

    /// Whether we can log in with `method`: the description (for a remote target, the credentials
    /// given) allows it, and the server listed it when probed.
    pub fn offers_auth(&self, method: &str) -> bool {
        let probed = self.profile.as_ref().and_then(|p| p.auth_methods.as_ref());
        self.auth.iter().any(|m| m == method) && probed.is_none_or(|p| p.iter().any(|m| m == method))
    }

    /// What `method = "login"` uses against this target: password where it can be used, else
    /// publickey with a key the target takes, else keyboard-interactive.
    pub fn login_method(&self) -> crate::script::AuthKind {
        use crate::script::AuthKind;
        if self.offers_auth("password") {
            AuthKind::Password
        } else if self.offers_auth("publickey") && !self.user_keys.is_empty() {
            AuthKind::Publickey
        } else if self.offers_auth("keyboard-interactive") {
            AuthKind::KeyboardInteractive
        } else {
            AuthKind::Publickey
        }
    }

    /// The user key a publickey login uses: the first kind the target takes for the test user.
    pub fn login_key(&self) -> KeyKind {
        KeyKind::ALL.into_iter().find(|k| self.user_keys.iter().any(|u| u == k.key_type())).unwrap_or_default()
    }

    /// The instance a scenario runs against: none for the target itself, else its variant's name,
    /// or, for variants whose scenarios change the server (`FRESH_VARIANTS`), one per scenario.
    pub fn instance_key(s: &Scenario) -> Option<String> {
        s.requires.variant.as_ref().map(|v| match FRESH_VARIANTS.contains(&v.as_str()) {
            true => format!("{v}#{}", s.id),
            false => v.clone(),
        })
    }

    /// Why this target cannot run `s`, if it cannot.
    pub fn unmet(&self, s: &Scenario) -> Option<String> {
        if let Some(why) = self.unjudged.get(&s.id) {
            return Some(format!("not judged against {}: {why}", self.name));
        }
        let r = &s.requires;
        if s.destructive && !self.allow_destructive {
            return Some(format!(
                "destructive scenario: not run against {} unless --allow-destructive is given",
                self.name
            ));
        }
        if let Some(m) = r.auth.iter().find(|m| !self.offers_auth(m)) {
            let probed = self.profile.as_ref().and_then(|p| p.auth_methods.as_ref());
            return Some(match probed {
                Some(listed) if !listed.contains(m) => format!(
                    "probed: {} does not list the {m} authentication method (it lists {})",
                    self.name,
                    listed.join(",")
                ),
                _ if self.backend == BackendKind::Remote => {
                    format!("no credentials for the {m} authentication method were given for {}", self.name)
                }
                _ => format!("declared: {} does not offer the {m} authentication method", self.name),
            });
        }
        let have = self.programs();
        if let Some(name) = s.programs().into_iter().find(|n| !have.contains_key(*n)) {
            return Some(match self.profile.as_ref().filter(|p| p.posix_shell == Some(false)) {
                Some(p) if !self.programs.contains_key(name) => format!(
                    "probed: {} does not run POSIX shell command lines ({}), and its description names no command for the program {name}",
                    self.name,
                    p.shell_note.as_deref().unwrap_or("the shell probe failed")
                ),
                _ => format!("declared: {} has no command for the program {name}", self.name),
            });
        }
        if let Some(v) = &r.variant
            && !self.variants.contains_key(v)
        {
            let meaning = VARIANTS.iter().find(|(n, _)| n == v).map_or("", |(_, m)| m);
            return Some(format!("{} has no configuration variant {v:?} ({meaning})", self.name));
        }
        if let Some(k) = r.user_key.iter().find(|k| !self.user_keys.contains(k)) {
            return Some(format!("{} has no {k} user key for the test user", self.name));
        }
        // A remote server's optional features are not known beforehand: the scenario runs, and a
        // refusal of what RFC 4254 leaves optional is a SKIP at run time (`peer::Refusal`).
        if (self.backend != BackendKind::Remote || self.described_features)
            && let Some(f) = r.feature.iter().find(|f| !self.features.contains(f))
        {
            return Some(format!("declared: {} does not offer {f}", self.name));
        }
        if let Some(x) = r.extension.first() {
            // Only the server's own EXT_INFO tells; a description cannot vouch for it.
            match self.profile.as_ref().filter(|p| p.has_lists()) {
                Some(p) => {
                    if let Some(x) = r.extension.iter().find(|x| !p.extensions.contains(x)) {
                        return Some(format!("probed: {} does not advertise the extension {x} in EXT_INFO", self.name));
                    }
                }
                None => {
                    return Some(format!(
                        "not probed: whether {} advertises the extension {x} in EXT_INFO is unknown",
                        self.name
                    ));
                }
            }
        }
        let lists = [
            ("kex", "key exchange", &r.kex, &self.algorithms.kex),
            ("host_key", "host key algorithm", &r.host_key, &self.algorithms.host_key),
            ("cipher", "cipher", &r.cipher, &self.algorithms.cipher),
            ("mac", "MAC", &r.mac, &self.algorithms.mac),
            ("compression", "compression", &r.compression, &self.algorithms.compression),
        ];
        for (category, what, needs, declared) in lists {
            // `!name`: the scenario's premise is a server that leaves the algorithm out.
            let unmet = |offers: &dyn Fn(&str) -> bool| {
                needs.iter().find(|a| match a.strip_prefix('!') {
                    Some(absent) => offers(absent),
                    None => !offers(a),
                })
            };
            let missing = match self.profile.as_ref().filter(|p| p.has_lists()) {
                // The server's own KEXINIT is the fact; a description cannot add to it.
                Some(p) => unmet(&|a| p.offers(category, a)).map(|a| ("probed", a)),
                None if self.backend == BackendKind::Remote => needs.first().map(|a| ("not probed", a)),
                None => unmet(&|a| declared.iter().any(|d| d == a)).map(|a| ("declared", a)),
            };
            if let Some((how, a)) = missing {
                let name = a.trim_start_matches('!');
                return Some(match how {
                    "not probed" => format!(
                        "not probed: the probe did not read {}'s KEXINIT, so whether it offers the {what} {name} is unknown",
                        self.name
                    ),
                    _ if a.starts_with('!') => {
                        format!("{how}: {} offers the {what} {name}, which this scenario needs left out", self.name)
                    }
                    _ => format!("{how}: {} does not offer the {what} {name}", self.name),
                });
            }
        }
        None
    }
}

/// Server log lines, stamped so each scenario can take the lines of its own time window.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<(Instant, String)>>>);

const MAX_LOG_LINES: usize = 20_000;

impl Logs {
    pub fn push(&self, line: String) {
        if let Ok(mut v) = self.0.lock()
            && v.len() < MAX_LOG_LINES
        {
            v.push((Instant::now(), line));
        }
    }

    pub fn between(&self, from: Instant, to: Instant) -> Vec<String> {
        match self.0.lock() {
            Ok(v) => v.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, l)| l.clone()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn tail(&self, n: usize) -> Vec<String> {
        match self.0.lock() {
            Ok(v) => v.iter().rev().take(n).rev().map(|(_, l)| l.clone()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A started target.
pub struct Running {
    pub addr: SocketAddr,
    /// Where the SSH service is as the target itself reaches it, when that differs from `addr`
    /// (127.0.0.1:22 inside a container).
    pub inner: Option<SocketAddr>,
    /// The identification line, without CR LF.
    pub banner: String,
    pub creds: Credentials,
    pub logs: Logs,
    guard: Guard,
}

enum Guard {
    Builtin(#[allow(dead_code)] sshspec_russh_target::RunningTarget),
    /// Dropping it stops the fixture server.
    Fixture(#[allow(dead_code)] crate::server::Fixture),
    Process(process::Child),
    Container(Box<container::Container>),
    None,
}

impl Running {
    /// The container's id, for a container target (`docker exec` in tests).
    pub fn container_id(&self) -> Option<&str> {
        match &self.guard {
            Guard::Container(c) => Some(c.id()),
            _ => None,
        }
    }

    /// The server's process id, for a process target (tests stop and resume it).
    pub fn pid(&self) -> Option<u32> {
        match &self.guard {
            Guard::Process(c) => c.pid(),
            _ => None,
        }
    }

    /// The software version as the banner states it (`OpenSSH_9.2p1 Debian-2+deb12u10`).
    pub fn version(&self) -> String {
        self.banner.strip_prefix("SSH-2.0-").unwrap_or(&self.banner).to_owned()
    }

    /// Stops the server and removes what it left behind.
    pub async fn stop(self) {
        match self.guard {
            Guard::Process(c) => c.stop().await,
            Guard::Container(c) => c.stop().await,
            Guard::Builtin(_) | Guard::Fixture(_) | Guard::None => {}
        }
    }
}

/// Why a target did not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    /// The server software is not installed here: a visible SKIP outside CI, an ERROR in CI.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Failed(String),
}

/// Starts a target. `creds` replaces the freshly generated credentials (for remote targets, the
/// user's; in tests, known ones).
pub async fn start(t: &TargetInfo, creds: Option<Credentials>) -> Result<Running, StartError> {
    let running = start_backend(t, creds).await?;
    if let Some(v) = &t.banner
        && !running.banner.contains(v.as_str())
    {
        let banner = running.banner.clone();
        running.stop().await;
        return Err(StartError::Failed(format!(
            "{}: the server identifies as {banner:?}, not as {v}; is its image stale? {BUILD_HINT}",
            t.name
        )));
    }
    Ok(running)
}

async fn start_backend(t: &TargetInfo, creds: Option<Credentials>) -> Result<Running, StartError> {
    let generated = || Credentials::generate(TEST_USER);
    match t.backend {
        BackendKind::Builtin => {
            let creds = creds.unwrap_or_else(generated);
            let c = sshspec_russh_target::Credentials {
                user: creds.user.clone(),
                password: creds.password.clone(),
                authorized_keys: creds.authorized_keys().lines().map(str::to_owned).collect(),
            };
            let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
            let settings = sshspec_russh_target::Settings::parse(&t.config)
                .map_err(|e| StartError::Failed(format!("{}: {e}", t.name)))?;
            let running = sshspec_russh_target::start_with(bind, c, settings)
                .await
                .map_err(|e| StartError::Failed(format!("the russh server did not start: {e}")))?;
            Ok(Running {
                addr: running.addr,
                inner: None,
                banner: running.banner.clone(),
                creds,
                logs: Logs::default(),
                guard: Guard::Builtin(running),
            })
        }
        BackendKind::Fixture => {
            let creds = creds.unwrap_or_else(generated);
            let settings = crate::server::Settings::parse(&t.config)
                .map_err(|e| StartError::Failed(format!("{}: {e}", t.name)))?;
            let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
            let fixture = crate::server::start(bind, creds.clone(), settings)
                .await
                .map_err(|e| StartError::Failed(format!("the fixture server did not start: {e}")))?;
            Ok(Running {
                addr: fixture.addr,
                inner: None,
                banner: crate::server::BANNER.into(),
                creds,
                logs: Logs::default(),
                guard: Guard::Fixture(fixture),
            })
        }
        BackendKind::Process => {
            let creds = creds.unwrap_or_else(generated);
            let (child, addr, banner) = process::start(&t.server, &t.config, &creds).await?;
            Ok(Running { addr, inner: None, banner, creds, logs: child.logs.clone(), guard: Guard::Process(child) })
        }
        BackendKind::Container => {
            let creds = creds.unwrap_or_else(generated);
            let (c, addr, banner, logs) = container::start(t, &creds).await?;
            // Inside its container the server listens on port 22 of every address.
            let inner = Some(SocketAddr::from(([127, 0, 0, 1], 22)));
            Ok(Running { addr, inner, banner, creds, logs, guard: Guard::Container(Box::new(c)) })
        }
        BackendKind::Remote => {
            let addr = t.address.ok_or_else(|| StartError::Failed("remote target without an address".into()))?;
            // Unreachable is the environment's problem (ERROR); a reachable server that sends no
            // proper banner is the server's, which the scenarios judge one by one (FAIL).
            tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| StartError::Failed(format!("{addr}: no TCP connection within 10 s")))?
                .map_err(|e| StartError::Failed(format!("{addr}: {e}")))?;
            let banner = process::read_banner(addr, Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| format!("(no identification string: {e})"));
            let creds = creds.unwrap_or_else(generated);
            Ok(Running { addr, inner: None, banner, creds, logs: Logs::default(), guard: Guard::None })
        }
    }
}

/// Whether the target can start on this machine, in words (for `sshspec targets`).
pub fn availability(t: &TargetInfo) -> String {
    match t.backend {
        BackendKind::Builtin | BackendKind::Fixture => "ready (in-process)".into(),
        BackendKind::Remote => "remote".into(),
        BackendKind::Process => process::availability(&t.server),
        BackendKind::Container => container::availability(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(step: usize, kind: FailureKind) -> Evidence {
        Evidence { step, line: 1, expected: "x".into(), actual: "y".into(), timed_out: false, kind }
    }

    #[test]
    fn an_expected_failure_holds_only_for_its_step_and_kind() {
        let x: BTreeMap<String, ExpectedFailure> =
            toml::from_str("a = { step = 6, kind = \"timeout\", reason = \"r\" }\nb = { step = 3, kind = [\"close\", \"answer\"], reason = \"r\" }\nc = \"any\"").unwrap();
        assert!(x["a"].expects(&evidence(6, FailureKind::Timeout)).is_ok());
        let e = x["a"].expects(&evidence(6, FailureKind::Close)).unwrap_err();
        assert!(e.contains("step 6 (timeout)") && e.contains("step 6 (close)"), "{e}");
        assert!(x["a"].expects(&evidence(5, FailureKind::Timeout)).is_err());
        assert!(x["b"].expects(&evidence(3, FailureKind::Answer)).is_ok());
        assert!(x["b"].expects(&evidence(3, FailureKind::Timeout)).is_err());
        assert!(x["c"].expects(&evidence(9, FailureKind::Timeout)).is_ok());
        assert!(
            toml::from_str::<BTreeMap<String, ExpectedFailure>>("a = { step = 1, kind = \"late\", reason = \"r\" }")
                .is_err()
        );
    }

    /// What ships with sshspec says where and how each deviation shows, so a target failing a
    /// listed scenario another way is caught as a FAIL.
    #[test]
    fn every_shipped_expected_failure_names_its_step_and_kind() {
        let mut all: Vec<(String, String, ExpectedFailure)> = catalog()
            .unwrap()
            .into_iter()
            .flat_map(|t| t.expected_failures.into_iter().map(move |(id, x)| (t.name.clone(), id, x)))
            .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../containers/thirdparty");
        for f in std::fs::read_dir(&dir).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let d = load_description(&path).unwrap();
                all.extend(d.expected_failures.into_iter().map(|(id, x)| (path.display().to_string(), id, x)));
            }
        }
        assert!(all.len() > 100, "{} entries", all.len());
        let vague: Vec<String> = all
            .iter()
            .filter(|(_, _, x)| x.step.is_empty() || x.kind.is_empty())
            .map(|(t, id, _)| format!("{t}: {id}"))
            .collect();
        assert!(vague.is_empty(), "expected failures without step or kind:\n{}", vague.join("\n"));
    }
}
