//! The scripted peer: interprets a scenario's steps against a live target and judges each one.
//!
//! High-level steps (`key-exchange`, `authenticate`, `exec`, ...) are compositions of the same send
//! and receive primitives the low-level steps use, so both see the same transcript and rules.
//! A step fails when the target does something the scenario does not accept (FAIL), and errs when
//! the harness cannot go on (ERROR); the two are never mixed.

mod auth;
mod banner;
mod channel;
pub mod diagnose;
mod rekey;
mod session;
mod userkey;

pub use userkey::{KeyKind, UserKeys};

use crate::script::{self, Action, AuthKind, Expectation, Pins, RekeyPolicy, Scenario, Step, message};
use crate::transcript::{Entry, Transcript, summarize};
use crate::transport::{self, Framing, Transport, TransportError, cipher, compress, hostkey, kex};
use channel::Channels;
use rand::RngCore;
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Cookie, DisconnectReason, Message, NameList};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Our identification string (RFC 4253 §4.2).
pub const OUR_BANNER: &str = concat!("SSH-2.0-sshspec_", env!("CARGO_PKG_VERSION"));

/// What the peer logs in with.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub keys: UserKeys,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

impl Credentials {
    /// A fresh random password and user keys (ed25519, ECDSA P-256, RSA) for `user`, made for one run.
    pub fn generate(user: &str) -> Self {
        Credentials { user: user.to_owned(), password: random_password(), keys: UserKeys::generate() }
    }

    /// Every user key in `authorized_keys` form, one line each.
    pub fn authorized_keys(&self) -> String {
        self.keys.authorized_lines()
    }
}

/// A password no scenario could guess, in printable ASCII so every server's PAM takes it.
pub fn random_password() -> String {
    let mut pw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut pw);
    format!("sshspec-{}", hex::encode(pw))
}

/// How a scenario ended, before expected failures are taken into account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    /// The target did not do what the scenario requires.
    Fail(Evidence),
    /// The harness could not judge.
    Error(Evidence),
}

/// What was expected and what happened, at which step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Evidence {
    /// 1-based step number, 0 for the connection itself.
    pub step: usize,
    /// Line of the step in the scenario file.
    pub line: usize,
    pub expected: String,
    pub actual: String,
}

/// The outcome of one scenario run: its judgement and the transcript that supports it.
#[derive(Debug)]
pub struct Run {
    pub judgement: Judgement,
    pub transcript: Vec<Entry>,
    pub duration: Duration,
    /// The host key fingerprint, the negotiated algorithms and the server's banner, if seen.
    pub identity: Identity,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<transport::negotiate::Negotiated>,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub step_timeout: Duration,
    /// Replaces every scenario's own deadline.
    pub scenario_timeout: Option<Duration>,
    /// Echo the transcript to stderr as it happens.
    pub echo: bool,
    /// SHA256 fingerprints the host key must have; a different key stops the scenario before auth.
    pub pinned_host_keys: Vec<String>,
    /// The local address to connect from (default: the system's choice).
    pub source: Option<std::net::IpAddr>,
    /// The target's SSH service as the target itself reaches it (`$ssh_host`, `$ssh_port`);
    /// default: the address we connect to.
    pub ssh_inner: Option<SocketAddr>,
    /// What `method = "login"` uses: password or publickey, whichever the target offers.
    pub login: AuthKind,
    /// Write a pcap and key log of each connection into this folder (`--capture`).
    pub capture: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            step_timeout: script::DEFAULT_STEP_TIMEOUT,
            scenario_timeout: None,
            echo: false,
            pinned_host_keys: Vec::new(),
            source: None,
            ssh_inner: None,
            login: AuthKind::Password,
            capture: None,
        }
    }
}

/// Why a step did not pass.
enum StepFailure {
    Target { expected: String, actual: String },
    Harness(String),
}

type StepResult = Result<(), StepFailure>;

fn fail(expected: impl Into<String>, actual: impl Into<String>) -> StepFailure {
    StepFailure::Target { expected: expected.into(), actual: actual.into() }
}

impl StepFailure {
    fn from_transport(expected: &str, e: TransportError) -> Self {
        match e {
            TransportError::Ours(m) => StepFailure::Harness(m),
            other => fail(expected, other.to_string()),
        }
    }
}

/// Runs `scenario` against the server at `addr`.
pub async fn run(scenario: &Scenario, addr: SocketAddr, creds: &Credentials, opts: &Options) -> Run {
    let started = Instant::now();
    let mut log = Transcript::default();
    log.echo = opts.echo;
    log.note(format!("scenario {} against {addr}", scenario.id));
    let timeout = opts.scenario_timeout.unwrap_or(scenario.timeout);
    let deadline = started + timeout;
    let t = match Transport::connect(addr, opts.source, deadline, log).await {
        Ok(mut t) => {
            t.pinned_host_keys = opts.pinned_host_keys.clone();
            if let Some(dir) = &opts.capture {
                let stem = dir.join(scenario.id.replace('/', "__"));
                match t.start_capture(&stem) {
                    Ok(()) => t.log.note(format!("capturing to {}.pcap", stem.display())),
                    Err(e) => t.log.note(format!("cannot capture to {}: {e}", stem.display())),
                }
            }
            t
        }
        Err(e) => {
            let mut log = Transcript::default();
            log.note(e.to_string());
            return Run {
                judgement: Judgement::Error(Evidence {
                    step: 0,
                    line: 0,
                    expected: format!("a TCP connection to {addr}"),
                    actual: e.to_string(),
                }),
                transcript: log.into_entries(),
                duration: started.elapsed(),
                identity: Identity::default(),
            };
        }
    };
    let mut peer = Peer::new(t, creds, opts, addr);
    let run = tokio::time::timeout_at(deadline, peer.steps(&scenario.steps)).await;
    let judgement = match run {
        Ok(j) => j,
        Err(_) => Judgement::Fail(Evidence {
            step: 0,
            line: 0,
            expected: format!("the scenario to finish within {timeout:?}"),
            actual: format!("still running at the deadline; last bytes received: {}", hex::encode(peer.t.last_bytes())),
        }),
    };
    peer.t.shutdown().await;
    let identity = Identity {
        banner: peer.t.server.as_ref().map(|s| String::from_utf8_lossy(&s.line).trim_end().to_owned()),
        host_key: peer.t.kex.host_key.as_deref().map(hostkey::fingerprint),
        negotiated: peer.t.kex.negotiated().cloned(),
    };
    let mut log = std::mem::take(&mut peer.t.log);
    match &judgement {
        Judgement::Pass => log.note("PASS"),
        Judgement::Fail(e) => log.note(format!("FAIL at step {}: expected {}; got {}", e.step, e.expected, e.actual)),
        Judgement::Error(e) => log.note(format!("ERROR at step {}: {}", e.step, e.actual)),
    }
    Run { judgement, transcript: log.into_entries(), duration: started.elapsed(), identity }
}

impl<'a> Peer<'a> {
    fn new(t: Transport, creds: &'a Credentials, opts: &'a Options, addr: SocketAddr) -> Self {
        Peer {
            t,
            creds,
            opts,
            service_accepted: false,
            channels: Channels::default(),
            inner: opts.ssh_inner.unwrap_or(addr),
            bound_port: None,
            server_sig_algs: None,
            auth_methods: None,
            offer: (Pins::default(), toml::Table::new()),
            rekey: RekeyPolicy::default(),
            deferred: VecDeque::new(),
            data_buf: Vec::new(),
            sent_packets: 0,
            held: Vec::new(),
        }
    }
}

struct Peer<'a> {
    t: Transport,
    creds: &'a Credentials,
    opts: &'a Options,
    service_accepted: bool,
    channels: Channels,
    /// `$ssh_host` and `$ssh_port`.
    inner: SocketAddr,
    /// `$bound_port`: the port in the last REQUEST_SUCCESS that carried one.
    bound_port: Option<u32>,
    /// The `server-sig-algs` extension of the server's EXT_INFO (RFC 8308 §3.1), once seen.
    server_sig_algs: Option<Vec<String>>,
    /// The methods that can continue, from the last USERAUTH_FAILURE.
    auth_methods: Option<Vec<String>>,
    /// What the last `key-exchange` step offered; rekeys offer the same.
    offer: (Pins, toml::Table),
    /// When the peer starts a rekey of its own accord.
    rekey: RekeyPolicy,
    /// Connection-layer messages that arrived while a rekey held our sends back, for the next
    /// high-level receive.
    deferred: VecDeque<Message>,
    /// The buffer channel data is sent from, reused: bulk sends would allocate one per packet.
    data_buf: Vec<u8>,
    /// Channel data packets sent, to look for window adjusts every few.
    sent_packets: u32,
    /// Our answers (window adjusts, request failures) waiting for a key exchange to finish.
    held: Vec<Message>,
}

impl Peer<'_> {
    async fn steps(&mut self, steps: &[Step]) -> Judgement {
        for (i, step) in steps.iter().enumerate() {
            let timeout = step.timeout.unwrap_or(self.opts.step_timeout);
            let deadline = Instant::now() + timeout;
            let evidence =
                |expected: String, actual: String| Evidence { step: i + 1, line: step.line, expected, actual };
            match self.step(step, deadline, timeout).await {
                Ok(()) => {}
                Err(StepFailure::Target { expected, actual }) => {
                    return Judgement::Fail(evidence(expected, actual));
                }
                Err(StepFailure::Harness(m)) => {
                    return Judgement::Error(evidence("the harness to carry out the step".into(), m));
                }
            }
        }
        Judgement::Pass
    }

    async fn step(&mut self, step: &Step, deadline: Instant, timeout: Duration) -> StepResult {
        match &step.action {
            Action::VersionExchange { banner, pre_banner } => {
                self.version_exchange(banner.as_deref(), pre_banner, deadline).await
            }
            Action::KeyExchange { pins, with, rekey, guess } => {
                self.offer = (pins.clone(), with.clone());
                if let Some(r) = rekey {
                    self.rekey = r.clone();
                }
                if *guess {
                    return self.guessed_key_exchange(deadline).await;
                }
                self.key_exchange(deadline).await
            }
            Action::Rekey => {
                if self.t.kex.completed == 0 {
                    return Err(StepFailure::Harness("`rekey` needs a completed `key-exchange` first".into()));
                }
                self.key_exchange(deadline).await
            }
            Action::ServerRekeys { traffic, limit, times } => {
                self.server_rekeys(*traffic, *limit, *times, deadline).await
            }
            Action::Authenticate(a) => self.authenticate(a, deadline).await,
            Action::OpenSession { window, max_packet } => self.open_session(*window, *max_packet, deadline).await,
            Action::Bulk { command, size, channels } => self.bulk(command, *size, *channels, deadline).await,
            Action::Exec { command, stdin, stdout, stderr, exit_status, echo } => {
                self.exec(command, stdin.as_ref(), stdout.as_ref(), stderr.as_ref(), *exit_status, *echo, deadline)
                    .await
            }
            Action::Disconnect => {
                let m = Message::Disconnect(Disconnect {
                    reason: DisconnectReason::BY_APPLICATION,
                    description: "sshspec: scenario complete".into(),
                    language: "".into(),
                });
                self.send(&m).await?;
                self.t.shutdown().await;
                Ok(())
            }
            Action::Send { message, with, trailing, framing } => {
                let base = self.default_message(message);
                let with = message::bind(with, &|v| self.variable(v)).map_err(StepFailure::Harness)?;
                let msg = message::build(message, base.as_ref(), &with).map_err(StepFailure::Harness)?;
                self.send_framed(&msg, trailing, framing).await
            }
            Action::SendPayload { payload, framing } => {
                self.t.send_payload(payload, framing).await.or_else(|e| self.tolerate_closed(e))
            }
            Action::SendBytes(b) => self.t.send_bytes(b).await.or_else(|e| self.tolerate_closed(e)),
            Action::Expect(alts) => self.expect(alts, step, deadline, timeout).await,
            Action::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
        }
    }

    /// The value of a `$variable` in a `with` or `match` table (`script::message::VARIABLES`).
    fn variable(&self, name: &str) -> Option<toml::Value> {
        use toml::Value;
        Some(match name {
            "$sent_seq" => Value::Integer(i64::from(self.t.tx.seq.wrapping_sub(1))),
            "$user" => Value::String(self.creds.user.clone()),
            "$password" => Value::String(self.creds.password.clone()),
            "$ssh_host" => Value::String(self.inner.ip().to_string()),
            "$ssh_port" => Value::Integer(i64::from(self.inner.port())),
            "$bound_port" => Value::Integer(i64::from(self.bound_port.unwrap_or(0))),
            _ => return None,
        })
    }

    /// A write that finds the connection closed is not itself a verdict: the next expectation
    /// decides whether a close was acceptable.
    fn tolerate_closed(&mut self, e: TransportError) -> StepResult {
        match e {
            TransportError::Closed { .. } => {
                self.t.log.note("write failed: the target had closed the connection");
                Ok(())
            }
            other => Err(StepFailure::from_transport("to send", other)),
        }
    }

    /// Sends as a high-level step does: a connection-layer message waits for a key exchange in
    /// progress to finish (RFC 4253 §7.1), and may first start a rekey the policy calls for.
    async fn send(&mut self, msg: &Message) -> StepResult {
        if !msg.msg_type().is_transport() {
            self.rekey_if_due().await?;
            if self.t.kex.in_progress() {
                let deadline = Instant::now() + self.opts.step_timeout;
                let before = self.t.kex.completed;
                self.finish_kex(before, deadline).await?;
            }
        }
        self.send_framed(msg, &[], &Framing::default()).await
    }

    /// Starts a rekey when the policy's threshold is passed and no exchange is under way.
    async fn rekey_if_due(&mut self) -> StepResult {
        if self.t.kex.completed > 0 && self.t.kex.idle() && self.rekey_due() {
            self.t.log.note("rekey threshold reached: starting a key exchange");
            self.send_kexinit().await?;
        }
        Ok(())
    }

    fn rekey_due(&self) -> bool {
        let r = &self.rekey;
        let (tx, rx) = (&self.t.tx, &self.t.rx);
        r.bytes.is_some_and(|b| tx.bytes >= b || rx.bytes >= b)
            || r.packets.is_some_and(|p| tx.packets >= p || rx.packets >= p)
            || r.time.zip(self.t.kex.completed_at).is_some_and(|(t, at)| at.elapsed() >= t)
    }

    async fn send_framed(&mut self, msg: &Message, trailing: &[u8], framing: &Framing) -> StepResult {
        self.t.send_with(msg, trailing, framing).await.or_else(|e| self.tolerate_closed(e))?;
        self.channels.on_sent(msg);
        Ok(())
    }

    /// Receives one message and does its bookkeeping: channel windows and output, our window
    /// top-ups, and REQUEST_FAILURE for global requests that want a reply (RFC 4254 §4).
    async fn recv_any(&mut self, deadline: Instant, expecting: &str) -> Result<Message, StepFailure> {
        if let Some(m) = self.deferred.pop_front() {
            return Ok(m);
        }
        let msg = self.t.recv(deadline).await.map_err(|e| StepFailure::from_transport(expecting, e))?;
        self.after_recv(&msg).await?;
        Ok(msg)
    }

    async fn after_recv(&mut self, msg: &Message) -> StepResult {
        self.observe(msg);
        self.channels_bookkeeping(msg).await?;
        self.kex_react(msg).await?;
        self.rekey_if_due().await
    }

    /// Records what later steps read from a received message, whichever step received it: the
    /// server's `server-sig-algs` (EXT_INFO) and `$bound_port` (a REQUEST_SUCCESS with a port).
    fn observe(&mut self, msg: &Message) {
        match msg {
            Message::ExtInfo(e) => {
                if let Some(v) = e.get("server-sig-algs") {
                    self.server_sig_algs =
                        Some(String::from_utf8_lossy(v.as_slice()).split(',').map(str::to_owned).collect());
                }
            }
            Message::UserauthFailure(f) => self.auth_methods = Some(f.methods.0.clone()),
            Message::RequestSuccess(r) => {
                if let [a, b, c, d] = r.data.0.as_slice() {
                    self.bound_port = Some(u32::from_be_bytes([*a, *b, *c, *d]));
                }
            }
            _ => {}
        }
    }

    /// Channel windows and output, our window top-ups, and REQUEST_FAILURE for global requests.
    async fn channels_bookkeeping(&mut self, msg: &Message) -> StepResult {
        if let Some(adjust) = self.channels.on_received(msg, true, &mut self.t.log) {
            self.send_or_hold(adjust).await?;
        }
        if let Message::GlobalRequest(g) = msg
            && g.want_reply.is_true()
        {
            self.send_or_hold(Message::RequestFailure(RequestFailure {})).await?;
        }
        Ok(())
    }

    /// Sends a connection-layer answer now, or after the key exchange in progress.
    async fn send_or_hold(&mut self, m: Message) -> StepResult {
        if self.t.kex.in_progress() {
            self.held.push(m);
            Ok(())
        } else {
            self.send_framed(&m, &[], &Framing::default()).await
        }
    }

    async fn flush_held(&mut self) -> StepResult {
        if self.t.kex.in_progress() {
            return Ok(());
        }
        for m in std::mem::take(&mut self.held) {
            self.send_framed(&m, &[], &Framing::default()).await?;
        }
        Ok(())
    }

    /// Receives the next message that matters to a high-level step: IGNORE, DEBUG, EXT_INFO,
    /// banners, window adjusts and global requests are handled by [`Self::recv_any`] and passed over.
    async fn next(&mut self, deadline: Instant, expecting: &str) -> Result<Message, StepFailure> {
        loop {
            match self.recv_any(deadline, expecting).await? {
                // A rekey the server started is answered by `kex_react` and passed over here.
                m @ (Message::KexInit(_)
                | Message::KexDhGexGroup(_)
                | Message::KexEcdhReply(_)
                | Message::KexdhReply(_)
                | Message::KexDhGexReply(_)
                | Message::NewKeys(_))
                    if self.t.kex.completed > 0 || !matches!(m, Message::KexInit(_)) => {}
                Message::Ignore(_)
                | Message::Debug(_)
                | Message::ExtInfo(_)
                | Message::UserauthBanner(_)
                | Message::ChannelWindowAdjust(_)
                | Message::GlobalRequest(_) => continue,
                msg => return Ok(msg),
            }
        }
    }

    async fn version_exchange(&mut self, banner: Option<&str>, pre_banner: &[String], deadline: Instant) -> StepResult {
        self.t.send_version(banner.unwrap_or(OUR_BANNER), pre_banner).await.or_else(|e| self.tolerate_closed(e))?;
        let v = self
            .t
            .read_version(deadline)
            .await
            .map_err(|e| StepFailure::from_transport("the server's identification string", e))?;
        if !(v.line.starts_with(b"SSH-2.0-") || v.line.starts_with(b"SSH-1.99-")) {
            return Err(fail(
                "protocol version 2.0 (or 1.99)",
                format!("identification {}", transport::printable(&v.line)),
            ));
        }
        Ok(())
    }

    fn default_kexinit(&self, pins: &Pins) -> KexInit {
        let mut cookie = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut cookie);
        let list = |pin: &Option<String>, all: &[&str]| match pin {
            Some(p) => NameList::new([p.as_str()]),
            None => NameList::new(all.iter().copied()),
        };
        let kex_all: Vec<&str> = kex::algorithms().collect();
        let mut kex_algorithms = list(&pins.kex, &kex_all);
        // The extension markers are announced only in the first key exchange (RFC 8308 §2.1, PROTOCOL §1.10).
        if self.t.kex.completed == 0 {
            kex_algorithms.0.push(kex::EXT_INFO_C.into());
            kex_algorithms.0.push(kex::KEX_STRICT_C.into());
        }
        let ciphers = list(&pins.cipher, cipher::CIPHERS);
        let macs = list(&pins.mac, cipher::MACS);
        KexInit {
            cookie: Cookie(cookie),
            kex_algorithms,
            server_host_key_algorithms: list(&pins.host_key, hostkey::HOST_KEY_ALGORITHMS),
            encryption_algorithms_client_to_server: ciphers.clone(),
            encryption_algorithms_server_to_client: ciphers,
            mac_algorithms_client_to_server: macs.clone(),
            mac_algorithms_server_to_client: macs,
            compression_algorithms_client_to_server: list(&pins.compression, &[compress::NONE]),
            compression_algorithms_server_to_client: list(&pins.compression, &[compress::NONE]),
            languages_client_to_server: NameList::default(),
            languages_server_to_client: NameList::default(),
            first_kex_packet_follows: Bool::FALSE,
            reserved: 0,
        }
    }

    /// The message a bare `send = "NAME"` sends: sensible values for this point of the conversation.
    fn default_message(&mut self, name: &str) -> Option<Message> {
        let current = self.channels.current_remote();
        Some(match name {
            "kexinit" => Message::KexInit(self.default_kexinit(&Pins::default())),
            "kex_ecdh_init" => Message::KexEcdhInit(KexEcdhInit { q_c: Bytes(self.t.new_kex_secret().ok()?) }),
            "kexdh_init" => Message::KexdhInit(KexdhInit { e: Bytes(self.t.new_kex_secret().ok()?) }),
            "kex_dh_gex_init" => Message::KexDhGexInit(KexDhGexInit { e: Bytes(self.t.new_kex_secret().ok()?) }),
            "kex_dh_gex_request" => {
                let r = kex::GexRequest::DEFAULT;
                Message::KexDhGexRequest(KexDhGexRequest {
                    min: r.min.unwrap_or(2048),
                    n: r.n,
                    max: r.max.unwrap_or(8192),
                })
            }
            "newkeys" => Message::NewKeys(NewKeys {}),
            "service_request" => Message::ServiceRequest(ServiceRequest { service: "ssh-userauth".into() }),
            "userauth_request" => Message::UserauthRequest(UserauthRequest {
                user: self.creds.user.as_str().into(),
                service: "ssh-connection".into(),
                method: AuthMethod::None {},
            }),
            "channel_open" => Message::ChannelOpen(self.channels.open_request()),
            "disconnect" => Message::Disconnect(Disconnect {
                reason: DisconnectReason::BY_APPLICATION,
                description: "sshspec".into(),
                language: "".into(),
            }),
            "channel_data" => Message::ChannelData(ChannelData { recipient_channel: current?, data: Bytes::default() }),
            "channel_eof" => Message::ChannelEof(ChannelEof { recipient_channel: current? }),
            "channel_close" => Message::ChannelClose(ChannelClose { recipient_channel: current? }),
            "channel_request" => Message::ChannelRequest(ChannelRequest {
                recipient_channel: current?,
                want_reply: Bool::TRUE,
                request: ChannelRequestKind::Shell {},
            }),
            "channel_window_adjust" => {
                Message::ChannelWindowAdjust(ChannelWindowAdjust { recipient_channel: current?, bytes_to_add: 0 })
            }
            _ => return None,
        })
    }

    /// A complete key exchange with what `self.offer` says: the first one, or a rekey with data
    /// still flowing (connection messages before the server's KEXINIT are kept for later steps).
    async fn key_exchange(&mut self, deadline: Instant) -> StepResult {
        let before = self.t.kex.completed;
        if self.t.kex.ours.is_none() {
            self.send_kexinit().await?;
        }
        self.finish_kex(before, deadline).await
    }

    /// A first key exchange with a right guess (RFC 4253 §7): the server's KEXINIT is read first,
    /// our lists put its first kex and host key algorithms first, and our first kex packet follows
    /// our KEXINIT at once. A server that ignores the guessed packet never replies to it.
    async fn guessed_key_exchange(&mut self, deadline: Instant) -> StepResult {
        if self.t.kex.completed > 0 || self.t.kex.ours.is_some() {
            return Err(StepFailure::Harness("`guess = true` applies to the first key exchange only".into()));
        }
        while self.t.kex.theirs.is_none() {
            match self.t.recv(deadline).await.map_err(|e| StepFailure::from_transport("the server's KEXINIT", e))? {
                Message::KexInit(_) | Message::Ignore(_) | Message::Debug(_) => {}
                other => return Err(fail("the server's KEXINIT", summarize(&other))),
            }
        }
        let Some((theirs, _)) = &self.t.kex.theirs else {
            return Err(StepFailure::Harness("no server KEXINIT".into()));
        };
        let first = |l: &sshspec_wire::NameList| l.iter().next().map(str::to_owned);
        let (Some(kex), Some(host_key)) = (first(&theirs.kex_algorithms), first(&theirs.server_host_key_algorithms))
        else {
            return Err(fail("a server KEXINIT with kex and host key algorithms", "an empty list"));
        };
        if kex::method(&kex).is_none() {
            return Err(StepFailure::Harness(format!(
                "the server's first kex algorithm is {kex}, which the scripted peer does not speak, so it cannot guess it"
            )));
        }
        let mut ours = self.default_kexinit(&self.offer.0);
        let front = |list: &sshspec_wire::NameList, name: &str| {
            NameList::new(std::iter::once(name).chain(list.iter().filter(|n| *n != name)))
        };
        ours.kex_algorithms = front(&ours.kex_algorithms, &kex);
        ours.server_host_key_algorithms = front(&ours.server_host_key_algorithms, &host_key);
        ours.first_kex_packet_follows = sshspec_wire::Bool::TRUE;
        let ours =
            message::build("kexinit", Some(&Message::KexInit(ours)), &self.offer.1).map_err(StepFailure::Harness)?;
        self.t.log.note(format!("guessing {kex} with {host_key}, the server's first choices"));
        self.send_framed(&ours, &[], &Framing::default()).await?;
        self.send_kex_init_if_ready().await?;
        self.finish_kex(0, deadline).await
    }

    async fn send_kexinit(&mut self) -> StepResult {
        let ours = Message::KexInit(self.default_kexinit(&self.offer.0));
        let ours = message::build("kexinit", Some(&ours), &self.offer.1).map_err(StepFailure::Harness)?;
        self.send_framed(&ours, &[], &Framing::default()).await?;
        self.send_kex_init_if_ready().await
    }

    /// Receives until the exchange that started after `before` completed ones is done; `kex_react`
    /// answers each step of it.
    async fn finish_kex(&mut self, before: u32, deadline: Instant) -> StepResult {
        let initial = before == 0;
        while self.t.kex.completed == before {
            let msg = self
                .t
                .recv(deadline)
                .await
                .map_err(|e| StepFailure::from_transport("the key exchange to complete", e))?;
            // The exchange under way keeps a new one from starting, so this adds no rekey.
            self.after_recv(&msg).await?;
            match &msg {
                // RFC 4253 §9: a KEXINIT is answered with a KEXINIT, whenever it comes.
                Message::Unimplemented(_) => {
                    return Err(fail(
                        "the key exchange to go on (RFC 4253 §9: KEXINIT answered with KEXINIT)",
                        summarize(&msg),
                    ));
                }
                m if m.msg_type().is_transport() && !matches!(m, Message::Disconnect(_)) => {}
                // RFC 4253 §7.1: after its KEXINIT the server may send only transport messages until its NEWKEYS.
                other if initial || self.t.kex.theirs.is_some() => {
                    return Err(fail(
                        "only transport-layer messages until the key exchange completes (RFC 4253 §7.1)",
                        summarize(other),
                    ));
                }
                other => self.deferred.push_back(other.clone()),
            }
        }
        Ok(())
    }

    /// Answers the key exchange step by step, whoever started it: our KEXINIT to theirs, our
    /// public value once both are known (after the group, for group exchange), NEWKEYS to the reply.
    async fn kex_react(&mut self, msg: &Message) -> StepResult {
        match msg {
            Message::KexInit(_) if self.t.kex.ours.is_none() => {
                self.t.log.note("the server started a key exchange: answering it");
                self.send_kexinit().await
            }
            Message::KexInit(_) => self.send_kex_init_if_ready().await,
            Message::KexDhGexGroup(_) => {
                let init = self
                    .default_message("kex_dh_gex_init")
                    .ok_or_else(|| StepFailure::Harness("no group exchange init".into()))?;
                self.send_framed(&init, &[], &Framing::default()).await
            }
            Message::KexEcdhReply(_) | Message::KexdhReply(_) | Message::KexDhGexReply(_)
                if !self.t.kex.newkeys_sent =>
            {
                self.send_framed(&Message::NewKeys(NewKeys {}), &[], &Framing::default()).await?;
                self.flush_held().await
            }
            _ => Ok(()),
        }
    }

    /// With both KEXINITs known, sends our first key exchange message for the negotiated method.
    async fn send_kex_init_if_ready(&mut self) -> StepResult {
        if self.t.kex.theirs.is_none() || self.t.kex.secret.is_some() || self.t.kex.gex_request.is_some() {
            return Ok(());
        }
        let family = match &self.t.kex.negotiated {
            Some(Err(e)) => {
                return Err(fail("a common algorithm in every category", e.to_string()));
            }
            Some(Ok(n)) => match kex::method(&n.kex) {
                Some(m) => m.family,
                None => {
                    return Err(StepFailure::Harness(format!(
                        "negotiated kex {}, which the scripted peer does not speak",
                        n.kex
                    )));
                }
            },
            None => {
                return Err(StepFailure::Harness("no negotiation after both KEXINITs".into()));
            }
        };
        let name = match family {
            kex::Family::Ecdh(_) | kex::Family::Hybrid(_) => "kex_ecdh_init",
            kex::Family::Dh(_) => "kexdh_init",
            kex::Family::Gex => "kex_dh_gex_request",
        };
        let init = self.default_message(name).ok_or_else(|| StepFailure::Harness(format!("cannot build {name}")))?;
        self.send_framed(&init, &[], &Framing::default()).await
    }

    async fn expect(&mut self, alts: &[Expectation], step: &Step, deadline: Instant, timeout: Duration) -> StepResult {
        let expected = alts.iter().map(Expectation::describe).collect::<Vec<_>>().join(" or ");
        if let Some(Expectation::Banner { matches }) = alts.iter().find(|a| matches!(a, Expectation::Banner { .. })) {
            if self.t.server.is_none() {
                self.t.read_version(deadline).await.map_err(|e| StepFailure::from_transport(&expected, e))?;
            }
            let v = self.t.server.clone().unwrap_or_default();
            return banner::judge(&v, matches).map_err(|actual| fail(expected, actual));
        }
        let wants = |f: fn(&Expectation) -> bool| alts.iter().any(f);
        let close_ok = wants(|a| matches!(a, Expectation::Close));
        let nothing_ok = wants(|a| matches!(a, Expectation::Nothing));
        loop {
            match self.t.recv(deadline).await {
                Ok(msg) => {
                    self.observe(&msg);
                    self.channels.on_received(&msg, false, &mut self.t.log);
                    if !step.strict && matches!(msg, Message::Ignore(_) | Message::Debug(_)) {
                        continue;
                    }
                    if step.pass_over.iter().any(|n| n == msg.name()) {
                        continue;
                    }
                    for alt in alts {
                        if let Expectation::Message { name, matches } = alt {
                            let matches =
                                message::bind(matches, &|v| self.variable(v)).map_err(StepFailure::Harness)?;
                            if message::matches(&msg, name, &matches).map_err(StepFailure::Harness)? {
                                return Ok(());
                            }
                        }
                    }
                    if close_ok && matches!(msg, Message::Disconnect(_)) {
                        continue;
                    }
                    return Err(fail(expected, summarize(&msg)));
                }
                Err(TransportError::Closed { .. }) if close_ok => return Ok(()),
                Err(TransportError::Timeout { .. }) if nothing_ok => return Ok(()),
                Err(TransportError::Timeout { buffered, last_bytes, .. }) => {
                    return Err(fail(
                        expected,
                        format!(
                            "nothing within {timeout:?} ({buffered} byte(s) of an incomplete packet buffered; last bytes received: {})",
                            hex::encode(last_bytes)
                        ),
                    ));
                }
                Err(e) => return Err(StepFailure::from_transport(&expected, e)),
            }
        }
    }
}
