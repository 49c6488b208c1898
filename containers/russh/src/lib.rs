//! A russh-based SSH server used as a conformance target: in-process as sshspec's `builtin` target
//! (no Docker, nothing installed), or standalone as `sshspec-russh-server` for containers.
//!
//! It is a real russh server with its default algorithms. Its `exec` runs a tiny fixed command set
//! in-process (no shell is spawned): `echo ARGS` (`>&2` prints to stderr), `true`, `false`,
//! `exit N`, `kill -s SIGNAL $$` (ends with exit-signal), `cat` (echoes stdin until EOF),
//! `cat >/dev/null`, `head -c N /dev/zero`; anything else writes to stderr and exits 127. A `shell`
//! runs each line of its stdin as such a command until `exit N` or EOF. `pty-req` is granted (and
//! changes nothing); `env` and subsystems are refused.

use russh::keys::{Algorithm, EcdsaCurve, PrivateKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Who may log in, and how.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// `authorized_keys` lines: the keys allowed for `publickey` (any type russh reads).
    pub authorized_keys: Vec<String>,
}

/// A server listening on a loopback port, stopped when dropped.
pub struct RunningTarget {
    pub addr: SocketAddr,
    pub banner: String,
    handle: russh::server::RunningServerHandle,
    task: tokio::task::JoinHandle<()>,
}

impl RunningTarget {
    pub fn stop(&self) {
        self.handle.shutdown("target stopped".into());
        self.task.abort();
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The identification string the server sends.
pub fn banner() -> String {
    format!("SSH-2.0-russh_{}", russh_version())
}

/// The russh version this target is built with.
pub fn russh_version() -> &'static str {
    "0.65.1"
}

fn host_keys() -> Result<Vec<PrivateKey>, russh::keys::ssh_key::Error> {
    let mut rng = rand::rng();
    Ok(vec![
        PrivateKey::random(&mut rng, Algorithm::Ed25519)?,
        PrivateKey::random(&mut rng, Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 })?,
        PrivateKey::random(&mut rng, Algorithm::Rsa { hash: None })?,
    ])
}

/// Server settings a configuration variant may change, written as sshd_config-style lines so that
/// one variant description reads the same for OpenSSH and for this server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `RekeyLimit BYTES [SECONDS]`: rekey after this much data either way, or this long.
    pub rekey_bytes: Option<usize>,
    pub rekey_time: Option<std::time::Duration>,
    /// `MaxAuthTries N`.
    pub max_auth_tries: Option<usize>,
}

impl Settings {
    /// Parses `RekeyLimit 262144 [2]` and `MaxAuthTries 2` lines; anything else is an error, so a
    /// variant never silently runs with a setting this server does not have.
    pub fn parse(lines: &[String]) -> Result<Settings, String> {
        let mut s = Settings::default();
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let number = |w: &str| w.parse::<usize>().map_err(|_| format!("{line:?}: {w:?} is not a number"));
            match words.as_slice() {
                ["RekeyLimit", bytes, rest @ ..] if rest.len() <= 1 => {
                    let bytes = number(bytes)?;
                    if bytes > 1 << 30 {
                        return Err(format!("{line:?}: russh allows at most 1 GiB"));
                    }
                    s.rekey_bytes = Some(bytes);
                    if let [secs] = rest {
                        s.rekey_time = Some(std::time::Duration::from_secs(number(secs)? as u64));
                    }
                }
                ["MaxAuthTries", n] => s.max_auth_tries = Some(number(n)?),
                _ => {
                    return Err(format!(
                        "{line:?}: the russh target knows only `RekeyLimit BYTES [SECONDS]` and `MaxAuthTries N`"
                    ));
                }
            }
        }
        Ok(s)
    }
}

/// Starts the server on `bind` (use port 0 for a free port).
pub async fn start(bind: SocketAddr, creds: Credentials) -> std::io::Result<RunningTarget> {
    start_with(bind, creds, Settings::default()).await
}

/// Starts the server with changed settings (a configuration variant).
pub async fn start_with(bind: SocketAddr, creds: Credentials, settings: Settings) -> std::io::Result<RunningTarget> {
    let keys = host_keys().map_err(std::io::Error::other)?;
    let defaults = russh::Limits::default();
    let limits = russh::Limits::new(
        settings.rekey_bytes.unwrap_or(defaults.rekey_write_limit),
        settings.rekey_bytes.unwrap_or(defaults.rekey_read_limit),
        settings.rekey_time.unwrap_or(defaults.rekey_time_limit),
    );
    let config = russh::server::Config {
        limits,
        max_auth_attempts: settings.max_auth_tries.unwrap_or(russh::server::Config::default().max_auth_attempts),
        server_id: russh::SshId::Standard(banner().into()),
        methods: MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey, MethodKind::KeyboardInteractive][..]),
        // The default one-second delay on rejection would make failure scenarios slow.
        auth_rejection_time: std::time::Duration::from_millis(0),
        auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
        keys,
        inactivity_timeout: Some(std::time::Duration::from_secs(120)),
        nodelay: true,
        ..Default::default()
    };
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut server = Server { creds: Arc::new(creds) };
        let running = server.run_on_socket(Arc::new(config), &listener);
        let _ = tx.send(running.handle());
        let _ = running.await;
    });
    let handle = rx.await.map_err(|_| std::io::Error::other("russh server task ended before it started"))?;
    Ok(RunningTarget { addr, banner: banner(), handle, task })
}

#[derive(Clone)]
struct Server {
    creds: Arc<Credentials>,
}

impl russh::server::Server for Server {
    type Handler = Handler;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Handler {
        Handler { creds: self.creds.clone(), cat: HashSet::new(), discard: HashSet::new(), shells: Default::default() }
    }
}

struct Handler {
    creds: Arc<Credentials>,
    /// Channels running `cat`: data is echoed until EOF.
    cat: HashSet<ChannelId>,
    /// Channels running `cat >/dev/null`: data is read and dropped until EOF.
    discard: HashSet<ChannelId>,
    /// Channels running a shell: the partial line read so far.
    shells: std::collections::HashMap<ChannelId, Vec<u8>>,
}

/// How a command ends.
enum End {
    Status(u32),
    Signal(String),
}

/// What one command of the fixed set does, for `exec` and for each line of a `shell`.
enum Run {
    Done { out: Vec<u8>, err: Vec<u8>, end: End },
    Cat,
    Discard,
}

fn run(command: &str) -> Run {
    let mut words = command.split_whitespace();
    let done =
        |out: String, err: String, status| Run::Done { out: out.into(), err: err.into(), end: End::Status(status) };
    match words.next() {
        Some("echo") => {
            let args: Vec<&str> = words.collect();
            match args.split_last() {
                Some((&">&2", rest)) => done(String::new(), format!("{}\n", rest.join(" ")), 0),
                _ => done(format!("{}\n", args.join(" ")), String::new(), 0),
            }
        }
        Some("true") => done(String::new(), String::new(), 0),
        Some("false") => done(String::new(), String::new(), 1),
        Some("exit") => done(String::new(), String::new(), words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
        Some("kill") => match (words.next(), words.next(), words.next()) {
            (Some("-s"), Some(sig), Some("$$")) => {
                Run::Done { out: Vec::new(), err: Vec::new(), end: End::Signal(sig.trim_start_matches("SIG").into()) }
            }
            _ => done(String::new(), "kill: usage: kill -s SIGNAL $$\n".into(), 2),
        },
        Some("cat") if command.trim() == "cat >/dev/null" => Run::Discard,
        Some("cat") => Run::Cat,
        // `head -c N /dev/zero`, as scenarios write it for every target; russh queues the
        // data and sends it as our window allows.
        Some("head") if command.starts_with("head -c ") && command.ends_with(" /dev/zero") => {
            let n: usize = words.nth(1).and_then(|n| n.parse().ok()).unwrap_or(0).min(MAX_ZEROS);
            Run::Done { out: vec![0; n], err: Vec::new(), end: End::Status(0) }
        }
        _ => done(String::new(), format!("{command}: command not found\n"), 127),
    }
}

/// Sends a finished command's output; with `end`, its exit status or signal, EOF and CLOSE.
fn emit(
    channel: ChannelId,
    out: Vec<u8>,
    err: Vec<u8>,
    end: Option<End>,
    session: &mut Session,
) -> Result<(), russh::Error> {
    for chunk in out.chunks(32 * 1024) {
        session.data(channel, chunk.to_vec())?;
    }
    if !err.is_empty() {
        session.extended_data(channel, 1, err)?;
    }
    match end {
        Some(End::Status(s)) => finish(channel, s, session),
        Some(End::Signal(name)) => {
            session.exit_signal_request(channel, signal(&name), false, "", "")?;
            session.eof(channel)?;
            session.close(channel)
        }
        None => Ok(()),
    }
}

fn signal(name: &str) -> russh::Sig {
    match name {
        "TERM" => russh::Sig::TERM,
        "KILL" => russh::Sig::KILL,
        "INT" => russh::Sig::INT,
        "HUP" => russh::Sig::HUP,
        other => russh::Sig::Custom(other.into()),
    }
}

impl Handler {
    fn key_allowed(&self, key: &russh::keys::PublicKey) -> bool {
        self.creds
            .authorized_keys
            .iter()
            .filter_map(|line| russh::keys::PublicKey::from_openssh(line).ok())
            .any(|k| k.key_data() == key.key_data())
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(if user == self.creds.user && password == self.creds.password { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if user == self.creds.user && self.key_allowed(offer.public_key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if user == self.creds.user && self.key_allowed(key.public_key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: "".into(),
                instructions: "".into(),
                prompts: vec![("Password: ".into(), false)].into(),
            });
        };
        let answer = response.next();
        let ok = user == self.creds.user
            && answer.as_deref() == Some(self.creds.password.as_bytes())
            && response.next().is_none();
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        match run(&String::from_utf8_lossy(data)) {
            Run::Cat => {
                self.cat.insert(channel);
                Ok(())
            }
            Run::Discard => {
                self.discard.insert(channel);
                Ok(())
            }
            Run::Done { out, err, end } => emit(channel, out, err, Some(end), session),
        }
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.shells.insert(channel, Vec::new());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn data(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        if self.cat.contains(&channel) {
            session.data(channel, data.to_vec())?;
        }
        let Some(mut line) = self.shells.remove(&channel) else {
            return Ok(());
        };
        line.extend_from_slice(data);
        while let Some(nl) = line.iter().position(|&b| b == b'\n') {
            let command: Vec<u8> = line.drain(..=nl).collect();
            let command = String::from_utf8_lossy(&command).trim().to_owned();
            match run(&command) {
                // The shell ends: with `exit N`, or killed.
                Run::Done { out, err, end: End::Status(s) } if command.starts_with("exit") => {
                    return emit(channel, out, err, Some(End::Status(s)), session);
                }
                Run::Done { out, err, end: end @ End::Signal(_) } => {
                    return emit(channel, out, err, Some(end), session);
                }
                Run::Done { out, err, .. } => emit(channel, out, err, None, session)?,
                Run::Cat | Run::Discard => {}
            }
        }
        self.shells.insert(channel, line);
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        if self.cat.remove(&channel) || self.discard.remove(&channel) || self.shells.remove(&channel).is_some() {
            finish(channel, 0, session)?;
        }
        Ok(())
    }
}

/// The most `head -c N /dev/zero` produces, so a scenario cannot make the server queue gigabytes.
const MAX_ZEROS: usize = 256 << 20;

fn finish(channel: ChannelId, status: u32, session: &mut Session) -> Result<(), russh::Error> {
    session.exit_status_request(channel, status)?;
    session.eof(channel)?;
    session.close(channel)
}
