//! The fixture server: the scripted peer's transport in the server role, answering as a
//! conforming SSH server would, or breaking one named rule on request (`deviation.rs`).
//!
//! It exists to prove the catalogue: every scenario must PASS against the conforming server, and
//! each deviation must make some scenario citing the broken clause FAIL (`sshspec validate`). It
//! is deliberately small and in-process: what it does not speak, its description does not claim,
//! so the scenarios needing it SKIP with a reason rather than judge a fixture's gap.

mod conn;
pub mod deviation;
mod forward;

pub use deviation::{DEVIATIONS, Deviation};

use crate::peer::Credentials;
use crate::peer::userkey::{KeyKind, UserKeys};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The fixture's identification string (without CR LF).
pub const BANNER: &str = "SSH-2.0-sshspec_fixture_1";

/// How the fixture is configured: the target's `config` lines, one setting each.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Authentication methods offered, in the order `none` lists them.
    pub methods: Vec<String>,
    /// Methods that must all succeed, in turn, before login (empty: any one suffices).
    pub chain: Vec<String>,
    /// Failed attempts allowed; the next attempt ends the connection.
    pub max_auth_tries: u32,
    /// Time from connect to login before the connection is closed.
    pub login_grace: Duration,
    /// Payload bytes in one direction after which we start a key exchange.
    pub rekey_bytes: u64,
    /// Time after which we start a key exchange, if any.
    pub rekey_interval: Option<Duration>,
    /// The test user's password has expired: it must be changed during authentication.
    pub password_expired: bool,
    /// The test user needs no authentication (an empty password the policy allows): `none` logs
    /// in (RFC 4252 §5.2).
    pub empty_password: bool,
    /// The none cipher and the none MAC are offered, last (as a server built for them offers
    /// them); password authentication is then refused where no cipher protects it.
    pub offer_none: bool,
    /// Public key blobs accepted for the test user besides the credentials' own (for real clients
    /// with keys of their own, such as `ssh`).
    pub authorized_keys: Vec<Vec<u8>>,
    /// Users the policy refuses whatever their credentials (`*`: every user).
    pub denied_users: Vec<String>,
    /// SSH-1 compatibility mode (RFC 4253 §5.1): the identification announces 1.99 and ends in LF
    /// alone, and nothing follows it until the client's has come.
    pub ssh1_compat: bool,
    /// tcpip-forward requests are granted (RFC 4251 §9.5.2: an administrator may switch them off).
    pub tcp_forwarding: bool,
    /// Hostbased authentication (RFC 4252 §9) from this client host, whose host keys are the run's
    /// user keys, for the user of the same name.
    pub hostbased_host: Option<String>,
    /// Another trusted client host, with the same keys, that the client's address does not name:
    /// its requests are refused by RFC 4252 §9's address check (taken by the
    /// `hostbased-address-unchecked` deviation).
    pub hostbased_elsewhere: Option<String>,
    /// The rules this instance breaks.
    pub deviations: Vec<&'static Deviation>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            methods: ["publickey", "password", "keyboard-interactive"].map(String::from).to_vec(),
            chain: Vec::new(),
            max_auth_tries: 6,
            login_grace: Duration::from_secs(120),
            rekey_bytes: 1 << 30,
            rekey_interval: None,
            password_expired: false,
            empty_password: false,
            offer_none: false,
            ssh1_compat: false,
            authorized_keys: Vec::new(),
            denied_users: Vec::new(),
            tcp_forwarding: true,
            hostbased_host: None,
            hostbased_elsewhere: None,
            deviations: Vec::new(),
        }
    }
}

impl Settings {
    /// Parses `config` lines: `auth-methods a,b`, `auth-chain a,b`, `max-auth-tries N`,
    /// `login-grace SECONDS`, `rekey-limit BYTES [SECONDS]`, `password-expired`, `empty-password`, `offer-none`, `ssh1-compat`,
    /// `deny-user NAME`
    /// (`*`: all), `no-tcp-forwarding`, `hostbased-host NAME`, `hostbased-elsewhere NAME`, `deviate NAME`,
    /// `authorized-key TYPE BASE64 [COMMENT]` (a line of an authorized_keys file).
    pub fn parse(lines: &[String]) -> Result<Settings, String> {
        let mut s = Settings::default();
        for line in lines {
            let mut words = line.split_whitespace();
            let (Some(key), rest) = (words.next(), words.collect::<Vec<_>>()) else { continue };
            let one = || -> Result<&str, String> {
                match rest.as_slice() {
                    [v] => Ok(v),
                    _ => Err(format!("fixture setting {line:?}: {key} takes one value")),
                }
            };
            let number =
                |v: &str| v.parse::<u64>().map_err(|_| format!("fixture setting {line:?}: {v:?} is not a number"));
            match key {
                "auth-methods" => s.methods = one()?.split(',').map(String::from).collect(),
                "auth-chain" => s.chain = one()?.split(',').map(String::from).collect(),
                "max-auth-tries" => s.max_auth_tries = number(one()?)? as u32,
                "login-grace" => s.login_grace = Duration::from_secs(number(one()?)?),
                "rekey-limit" => match rest.as_slice() {
                    [b] => s.rekey_bytes = number(b)?,
                    [b, t] => {
                        s.rekey_bytes = number(b)?;
                        s.rekey_interval = Some(Duration::from_secs(number(t)?));
                    }
                    _ => return Err(format!("fixture setting {line:?}: rekey-limit BYTES [SECONDS]")),
                },
                "password-expired" if rest.is_empty() => s.password_expired = true,
                "empty-password" if rest.is_empty() => s.empty_password = true,
                "offer-none" if rest.is_empty() => s.offer_none = true,
                "ssh1-compat" if rest.is_empty() => s.ssh1_compat = true,
                "deny-user" => s.denied_users.push(one()?.to_owned()),
                "no-tcp-forwarding" if rest.is_empty() => s.tcp_forwarding = false,
                "hostbased-host" => {
                    s.hostbased_host = Some(one()?.to_owned());
                    s.methods.insert(0, "hostbased".into());
                }
                "hostbased-elsewhere" => s.hostbased_elsewhere = Some(one()?.to_owned()),
                "authorized-key" => {
                    use base64::Engine;
                    let blob = rest
                        .get(1)
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .ok_or_else(|| format!("fixture setting {line:?}: authorized-key TYPE BASE64 [COMMENT]"))?;
                    s.authorized_keys.push(blob);
                }
                "deviate" => {
                    let name = one()?;
                    let d = deviation::find(name).ok_or_else(|| {
                        format!("fixture setting {line:?}: no deviation {name:?} (see `sshspec validate --list`)")
                    })?;
                    s.deviations.push(d);
                }
                _ => return Err(format!("fixture setting {line:?}: unknown setting {key:?}")),
            }
        }
        Ok(s)
    }

    fn denies(&self, user: &[u8]) -> bool {
        self.denied_users.iter().any(|d| d == "*" || d.as_bytes() == user)
    }

    fn deviates(&self, name: &str) -> bool {
        self.deviations.iter().any(|d| d.name == name)
    }
}

/// What every connection of one fixture shares.
struct Shared {
    creds: Credentials,
    settings: Settings,
    host: &'static UserKeys,
}

/// The host keys of every fixture in this process: made once, since an RSA key costs seconds.
fn host_keys() -> &'static UserKeys {
    static KEYS: OnceLock<UserKeys> = OnceLock::new();
    KEYS.get_or_init(UserKeys::generate)
}

/// Host key algorithms we sign with, in our order of preference, with the key each uses.
const HOST_KEY_ALGORITHMS: &[(&str, KeyKind)] = &[
    ("ssh-ed25519", KeyKind::Ed25519),
    ("ecdsa-sha2-nistp256", KeyKind::EcdsaP256),
    ("rsa-sha2-512", KeyKind::Rsa),
    ("rsa-sha2-256", KeyKind::Rsa),
];

/// A running fixture; dropping it stops the listener and every connection.
pub struct Fixture {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a fixture on `bind` for the user in `creds` (password and public keys).
pub async fn start(bind: SocketAddr, creds: Credentials, settings: Settings) -> std::io::Result<Fixture> {
    let host = tokio::task::spawn_blocking(host_keys).await.map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { creds, settings, host });
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    connections.spawn(conn::serve(stream, shared.clone()));
                }
                // Reap finished connections so a long run does not keep their handles.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Fixture { addr, task })
}
