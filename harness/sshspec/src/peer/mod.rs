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
pub(crate) mod hostkeys;
mod kexinit;
pub mod probe;
mod rekey;
mod session;
pub(crate) mod userkey;

pub use probe::{Extra, Profile};
pub use userkey::{KeyKind, UserKeys};

use crate::script::{self, Action, AuthKind, Expectation, Pins, RekeyPolicy, Scenario, Step, message};
use crate::transcript::{Entry, Transcript, summarize};
use crate::transport::{self, Framing, Transport, TransportError, cipher, compress, hostkey, kex};
use channel::Channels;
use rand::RngCore;
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Cookie, DisconnectReason, Message, NameList};
use std::collections::{BTreeSet, VecDeque};
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
    /// The target did not do what the scenario requires, at a step under test.
    Fail(Evidence),
    /// A setup step failed (see [`Scenario::first_judged`]): the clause under test was never
    /// reached, so nothing is concluded about it. The setup step's own scenarios judge it.
    Inconclusive(Evidence),
    /// The target refused something the RFCs leave optional that the scenario needs (a pty, a
    /// subsystem, forwarding): not a deviation.
    Unsupported(String),
    /// The harness could not judge.
    Error(Evidence),
}

/// What was expected and what happened, at which step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// 1-based step number, 0 for the connection itself.
    pub step: usize,
    /// Line of the step in the scenario file.
    pub line: usize,
    pub expected: String,
    pub actual: String,
    /// The step failed because nothing came before its deadline: such a FAIL is run again alone
    /// before it is reported, since a saturated machine can miss a deadline the server kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// How the target failed the step; an expected failure names the kind it expects.
    pub kind: FailureKind,
}

/// How a target failed a step: what an expected-failure entry names, so a scenario that fails
/// another way than recorded is a FAIL, not an XFAIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// Nothing came before the deadline.
    Timeout,
    /// The connection was closed.
    Close,
    /// Something came, and it was not what the step wanted: another message, a wrong value, bytes
    /// that do not parse.
    #[default]
    Answer,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Close => "close",
            FailureKind::Answer => "answer",
        }
    }
}

impl Evidence {
    fn new(step: usize, line: usize, expected: String, actual: String, kind: FailureKind) -> Self {
        Evidence { step, line, expected, actual, timed_out: kind == FailureKind::Timeout, kind }
    }
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

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
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
    /// Added to every step's deadline (and each step's share of the scenario's): the target's own
    /// latency, from the probe's handshake, so a slow device is not judged on a fast one's clock.
    pub latency_allowance: Duration,
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
    /// Algorithms offered after our defaults, because the target's profile shows it needs them.
    pub extra: Extra,
    /// Which user key a publickey login uses (the one the target takes).
    pub login_key: KeyKind,
    /// The target's command for each program a scenario may run.
    pub programs: script::Programs,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            step_timeout: script::DEFAULT_STEP_TIMEOUT,
            scenario_timeout: None,
            latency_allowance: Duration::ZERO,
            echo: false,
            pinned_host_keys: Vec::new(),
            source: None,
            ssh_inner: None,
            login: AuthKind::Password,
            capture: None,
            extra: Extra::default(),
            login_key: KeyKind::default(),
            programs: script::program::posix(),
        }
    }
}

/// Why a step did not pass.
enum StepFailure {
    Target {
        expected: String,
        actual: String,
        kind: FailureKind,
    },
    /// The target showed it lacks something optional the scenario needs.
    Unsupported(String),
    Harness(String),
}

type StepResult = Result<(), StepFailure>;

fn fail(expected: impl Into<String>, actual: impl Into<String>) -> StepFailure {
    StepFailure::Target { expected: expected.into(), actual: actual.into(), kind: FailureKind::Answer }
}

impl StepFailure {
    fn from_transport(expected: &str, e: TransportError) -> Self {
        match e {
            TransportError::Ours(m) => StepFailure::Harness(m),
            e @ TransportError::Timeout { .. } => {
                StepFailure::Target { expected: expected.into(), actual: e.to_string(), kind: FailureKind::Timeout }
            }
            e @ TransportError::Closed { .. } => {
                StepFailure::Target { expected: expected.into(), actual: e.to_string(), kind: FailureKind::Close }
            }
            other => fail(expected, other.to_string()),
        }
    }

    /// One line for people: what was expected and what came, or what the harness could not do.
    fn describe(self) -> String {
        match self {
            StepFailure::Target { expected, actual, .. } => format!("expected {expected}; got {actual}"),
            StepFailure::Unsupported(m) | StepFailure::Harness(m) => m,
        }
    }
}

/// Requests we sent that want an answer, in the order the answers must come (RFC 4254 §4 for
/// global requests, §5.4 for channel requests; channel opens are answered by channel id). Each
/// entry holds the optional feature it asks for, if it asks for one.
#[derive(Debug, Default)]
struct Pending {
    /// Global requests in the order sent (their replies come in that order, RFC 4254 §4).
    global: VecDeque<GlobalReply>,
    channel: VecDeque<Option<Optional>>,
    opens: Vec<(u32, Option<Optional>)>,
}

impl Pending {
    /// Called for every message we send, bulk data included: anything but a request returns at
    /// the first match, and open channels are counted only for a CHANNEL_OPEN.
    fn sent(&mut self, msg: &Message, channels: &Channels) {
        match msg {
            Message::GlobalRequest(g) if g.want_reply.is_true() => {
                self.global.push_back(GlobalReply::Scenario(Optional::of(msg, 0)))
            }
            Message::ChannelRequest(r) if r.want_reply.is_true() => self.channel.push_back(Optional::of(msg, 0)),
            Message::ChannelOpen(o) => {
                self.opens.push((o.sender_channel, Optional::of(msg, channels.open_count())));
            }
            _ => {}
        }
    }

    /// The global request just sent, with sequence number `seq`, is barrier `id` of ours.
    fn barrier_sent(&mut self, id: u64, seq: u32) {
        if let Some(last) = self.global.back_mut() {
            *last = GlobalReply::Barrier { id, seq };
        }
    }

    /// The barrier `msg` answers, if it answers one (and takes it): a reply in its turn, or an
    /// UNIMPLEMENTED naming its packet (a server that knows no global requests).
    fn barrier_answered(&mut self, msg: &Message) -> Option<u64> {
        match (msg, self.global.front()) {
            (Message::RequestSuccess(_) | Message::RequestFailure(_), Some(&GlobalReply::Barrier { id, .. })) => {
                self.global.pop_front();
                Some(id)
            }
            (Message::Unimplemented(u), _) => {
                let i = self
                    .global
                    .iter()
                    .position(|r| matches!(r, GlobalReply::Barrier { seq, .. } if *seq == u.sequence_number))?;
                match self.global.remove(i) {
                    Some(GlobalReply::Barrier { id, .. }) => Some(id),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Takes the request `msg` answers; returns its optional feature, if it was one.
    fn answered(&mut self, msg: &Message) -> Option<Optional> {
        match msg {
            Message::RequestSuccess(_) | Message::RequestFailure(_) => match self.global.pop_front() {
                Some(GlobalReply::Scenario(o)) => o,
                _ => None,
            },
            Message::ChannelSuccess(_) | Message::ChannelFailure(_) => self.channel.pop_front().flatten(),
            Message::ChannelOpenConfirmation(ChannelOpenConfirmation { recipient_channel: id, .. })
            | Message::ChannelOpenFailure(ChannelOpenFailure { recipient_channel: id, .. }) => {
                let i = self.opens.iter().position(|(ch, _)| ch == id)?;
                self.opens.remove(i).1
            }
            _ => None,
        }
    }
}

/// What a global request we sent waits for.
#[derive(Debug)]
enum GlobalReply {
    /// The scenario's request, and the optional feature it asks for, if any.
    Scenario(Option<Optional>),
    /// A barrier of ours (`Peer::send_barrier`): its answer is kept from the steps.
    Barrier { id: u64, seq: u32 },
}

/// Something the RFCs leave optional that we asked for and the server has not yet answered.
#[derive(Clone, Debug)]
struct Optional {
    what: String,
    clause: &'static str,
}

impl Optional {
    /// The optional request `msg` makes, if it is one whose refusal is permitted.
    fn of(msg: &Message, open_channels: usize) -> Option<Self> {
        let (what, clause) = match msg {
            Message::ChannelRequest(r) if r.want_reply.is_true() => {
                let name = String::from_utf8_lossy(r.request.wire_name()).into_owned();
                let clause = match name.as_str() {
                    "pty-req" => "RFC 4254 §6.2",
                    "x11-req" => "RFC 4254 §6.3.1",
                    "env" => "RFC 4254 §6.4",
                    "shell" | "exec" | "subsystem" => "RFC 4254 §6.5",
                    _ => return None,
                };
                let what = match &r.request {
                    ChannelRequestKind::Subsystem { name } => {
                        format!("the {} subsystem", String::from_utf8_lossy(name.as_slice()))
                    }
                    _ => format!("the {name} channel request"),
                };
                (what, clause)
            }
            Message::GlobalRequest(g) if g.want_reply.is_true() => {
                let name = String::from_utf8_lossy(g.request.wire_name()).into_owned();
                // Not cancel-tcpip-forward: cancelling a forwarding the server granted is no
                // longer optional, and refusing it is judged (Dropbear's known deviation).
                let clause = match name.as_str() {
                    "tcpip-forward" => "RFC 4254 §7.1",
                    "no-more-sessions@openssh.com" => "OpenSSH PROTOCOL §2.2",
                    "streamlocal-forward@openssh.com" => "OpenSSH PROTOCOL §2.4",
                    _ => return None,
                };
                (format!("the {name} global request"), clause)
            }
            Message::ChannelOpen(o) => match &o.channel_type {
                ChannelType::DirectTcpip { .. } => ("a direct-tcpip channel".to_owned(), "RFC 4254 §7.2"),
                ChannelType::DirectStreamlocal { .. } => {
                    ("a direct-streamlocal@openssh.com channel".to_owned(), "OpenSSH PROTOCOL §2.4")
                }
                ChannelType::Session {} if open_channels > 0 => {
                    (format!("a session channel beside {open_channels} open one(s)"), "RFC 4254 §5.1")
                }
                _ => return None,
            },
            _ => return None,
        };
        Some(Optional { what, clause })
    }
}

/// Runs `scenario` against the server at `addr`.
pub async fn run(scenario: &Scenario, addr: SocketAddr, creds: &Credentials, opts: &Options) -> Run {
    let started = Instant::now();
    let mut log = Transcript::default();
    log.echo = opts.echo;
    log.note(format!("scenario {} against {addr}", scenario.id));
    let timeout =
        opts.scenario_timeout.unwrap_or(scenario.timeout) + opts.latency_allowance * scenario.steps.len() as u32;
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
                judgement: Judgement::Error(Evidence::new(
                    0,
                    0,
                    format!("a TCP connection to {addr}"),
                    e.to_string(),
                    FailureKind::Answer,
                )),
                transcript: log.into_entries(),
                duration: started.elapsed(),
                identity: Identity::default(),
            };
        }
    };
    let mut peer = Peer::new(t, creds, opts, addr);
    let run = tokio::time::timeout_at(deadline, peer.steps(scenario)).await;
    let judgement = match run {
        Ok(j) => j,
        Err(_) => {
            let evidence = Evidence::new(
                peer.step_index + 1,
                scenario.steps.get(peer.step_index).map_or(0, |s| s.line),
                format!("the scenario to finish within {timeout:?}"),
                format!("still running at the deadline, in step {}{}", peer.step_index + 1, peer.t.last()),
                FailureKind::Timeout,
            );
            match peer.step_index < scenario.first_judged() {
                true => Judgement::Inconclusive(evidence),
                false => Judgement::Fail(evidence),
            }
        }
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
        Judgement::Inconclusive(e) => {
            log.note(format!("INCONCLUSIVE: setup step {} failed: expected {}; got {}", e.step, e.expected, e.actual))
        }
        Judgement::Unsupported(why) => log.note(format!("SKIP: {why}")),
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
            server_extensions: Vec::new(),
            auth_methods: None,
            offer: (Pins::default(), toml::Table::new()),
            rekey: RekeyPolicy::default(),
            deferred: VecDeque::new(),
            data_buf: Vec::new(),
            sent_packets: 0,
            held: Vec::new(),
            extra: opts.extra.clone(),
            pending: Pending::default(),
            refused: None,
            granted: BTreeSet::new(),
            barriers_sent: 0,
            barrier_answered: None,
            swallow: false,
            server_in_kex: false,
            step_index: 0,
            matched: None,
            hostkeys: None,
            addr,
            earlier: Vec::new(),
            socket_path: format!("/tmp/sshspec-{:016x}.sock", rand::random::<u64>()),
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
    /// The names of every extension the server's EXT_INFO messages carried, in order, once each.
    server_extensions: Vec<String>,
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
    /// Algorithms offered after our defaults (see [`Profile::extra_offers`]).
    extra: Extra,
    /// Our requests that await an answer, so a refusal is matched to the request it answers.
    pending: Pending,
    /// An optional request the server refused during the current step.
    refused: Option<Optional>,
    /// Optional requests the server granted earlier in this connection: it supports them, so a
    /// later refusal of one of them is judged, not taken for lack of support.
    granted: BTreeSet<String>,
    /// Barriers sent so far; each has its number ([`Self::send_barrier`]).
    barriers_sent: u64,
    /// The last barrier the server answered, and when.
    barrier_answered: Option<(u64, Instant)>,
    /// The message just received answered a barrier: no step sees it.
    swallow: bool,
    /// The server has sent a KEXINIT and not yet its NEWKEYS.
    server_in_kex: bool,
    /// The step being run (0-based), for evidence when the scenario's deadline cuts it short.
    step_index: usize,
    /// Which alternative of the current `expect` step came (its index), for `then`.
    matched: Option<usize>,
    /// The server's last `hostkeys-00@openssh.com` announcement (PROTOCOL §2.5).
    hostkeys: Option<hostkeys::Announcement>,
    /// The target's address, for `reconnect`.
    addr: SocketAddr,
    /// The server's last key exchange messages of each kind on the connection before a `reconnect`.
    earlier: Vec<Message>,
    /// `$socket_path`: a Unix-domain socket path of this run's own on the target.
    socket_path: String,
}

impl Peer<'_> {
    async fn steps(&mut self, scenario: &Scenario) -> Judgement {
        let first_judged = scenario.first_judged();
        let mut next = 0;
        while let Some(step) = scenario.steps.get(next) {
            let i = next;
            self.step_index = i;
            let timeout = step.timeout.unwrap_or(self.opts.step_timeout) + self.opts.latency_allowance;
            let deadline = Instant::now() + timeout;
            let evidence = |expected: String, actual: String, kind: FailureKind| {
                Evidence::new(i + 1, step.line, expected, actual, kind)
            };
            // A close is evidence only if it follows the stimulus: the connection must still be
            // open when the first judged message goes out (tlsfuzzer's sanity check, in-line).
            if i == first_judged && i > 0 && step.is_stimulus() && scenario.expects_close() && self.t.closed_already() {
                return Judgement::Inconclusive(evidence(
                    "the connection still open when the stimulus is sent, so a close can follow from it".into(),
                    "the target had already closed the connection (see the transcript for its DISCONNECT, if any)"
                        .into(),
                    FailureKind::Close,
                ));
            }
            self.matched = None;
            match self.step(step, deadline, timeout).await {
                // A refusal the scenario accepted (or judged) says nothing about later steps.
                Ok(()) => {
                    self.refused = None;
                    let branch = self.matched.and_then(|alt| step.then.get(alt)).and_then(Option::as_ref);
                    next = match branch {
                        Some(b) => {
                            self.t.log.note(format!("step {}: going on with branch {:?}", i + 1, b.name));
                            b.start
                        }
                        None if step.ends => break,
                        None => i + 1,
                    };
                }
                Err(StepFailure::Target { expected, actual, kind }) if i < first_judged => {
                    return Judgement::Inconclusive(evidence(expected, actual, kind));
                }
                Err(StepFailure::Target { expected, actual, kind }) => {
                    // A step that expects the refusal judges its form (a reason code): a refusal
                    // that fails it is the target's fault, not a missing option.
                    let judges_refusal = ["channel_open_failure", "request_failure", "channel_failure"]
                        .iter()
                        .any(|name| step.expects_message(name));
                    if let Some(r) = self.refused.as_ref().filter(|_| !judges_refusal) {
                        return Judgement::Unsupported(format!(
                            "the server refused {}: optional ({}); the scenario needs it",
                            r.what, r.clause
                        ));
                    }
                    return Judgement::Fail(evidence(expected, actual, kind));
                }
                Err(StepFailure::Unsupported(why)) => return Judgement::Unsupported(why),
                Err(StepFailure::Harness(m)) => {
                    return Judgement::Error(evidence(
                        "the harness to carry out the step".into(),
                        m,
                        FailureKind::Answer,
                    ));
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
            Action::Bulk { program, size, channels } => {
                let command = program.command(&self.opts.programs).map_err(StepFailure::Harness)?;
                self.bulk(&command, *size, *channels, deadline).await
            }
            Action::Exec { program, stdin, stdout, stderr, exit_status, echo } => {
                let command = program.command(&self.opts.programs).map_err(StepFailure::Harness)?;
                self.exec(&command, stdin.as_ref(), stdout.as_ref(), stderr.as_ref(), *exit_status, *echo, deadline)
                    .await
            }
            Action::FillWindow { limit } => self.fill_window(*limit, deadline).await,
            Action::ProveHostKeys { order, stranger } => self.prove_host_keys(*order, *stranger, deadline).await,
            Action::Reconnect => self.reconnect(deadline).await,
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
            "$user_other_case" => {
                let swapped: String = self
                    .creds
                    .user
                    .chars()
                    .map(|c| if c.is_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                    .collect();
                // A name without letters has no other case: the variable does not bind (our error).
                (swapped != self.creds.user).then_some(Value::String(swapped))?
            }
            "$password" => Value::String(self.creds.password.clone()),
            "$ssh_host" => Value::String(self.inner.ip().to_string()),
            "$ssh_port" => Value::Integer(i64::from(self.inner.port())),
            "$bound_port" => Value::Integer(i64::from(self.bound_port.unwrap_or(0))),
            "$socket_path" => Value::String(self.socket_path.clone()),
            "$absent_socket_path" => Value::String(format!("{}-absent", self.socket_path)),
            n if n.starts_with(script::EARLIER) => {
                let (message, field) = n[script::EARLIER.len()..].split_once('.')?;
                let m = self.earlier.iter().find(|m| m.name() == message)?;
                script::message::to_table(m).ok()?.get(field)?.clone()
            }
            n if n.starts_with(script::EARLIER_BITS) => {
                let earlier = format!("{}{}", script::EARLIER, &n[script::EARLIER_BITS.len()..]);
                Value::Integer(script::matcher::bit_length(&self.variable(&earlier)?)?)
            }
            n => {
                let program = script::Program::parse(n.strip_prefix(script::PROGRAM_VARIABLE)?).ok()?;
                Value::String(program.command(&self.opts.programs).ok()?)
            }
        })
    }

    /// A new connection to the same target in place of this one, which is closed: the peer starts
    /// over, remembering only the server's key exchange messages (`$earlier.MESSAGE.FIELD`) and
    /// the step.
    async fn reconnect(&mut self, deadline: Instant) -> StepResult {
        let earlier = std::mem::take(&mut self.t.last_kex);
        self.t.shutdown().await;
        let mut log = std::mem::take(&mut self.t.log);
        log.note(format!("a new connection to {}; the steps that follow start over on it", self.addr));
        let mut t = Transport::connect(self.addr, self.opts.source, deadline, log)
            .await
            .map_err(|e| StepFailure::from_transport("a new TCP connection to the target", e))?;
        t.pinned_host_keys = self.opts.pinned_host_keys.clone();
        let step_index = self.step_index;
        *self = Peer::new(t, self.creds, self.opts, self.addr);
        self.step_index = step_index;
        self.earlier = earlier;
        Ok(())
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
        self.pending.sent(msg, &self.channels);
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
        loop {
            let msg = self.t.recv(deadline).await.map_err(|e| StepFailure::from_transport(expecting, e))?;
            self.after_recv(&msg).await?;
            if !std::mem::take(&mut self.swallow) {
                return Ok(msg);
            }
        }
    }

    /// Sends a barrier: a global request the server must answer (RFC 4254 §4: "the receiver MUST
    /// respond appropriately") and that asks for nothing. Replies come in request order, so its
    /// answer proves the server has read everything we sent before it; `barrier_answered` records
    /// when. No step sees the answer. A server that never answers leaves the step to its deadline,
    /// as without a barrier.
    async fn send_barrier(&mut self) -> Result<u64, StepFailure> {
        let request = GlobalRequestKind::Other {
            name: Bytes(b"keepalive@openssh.com".to_vec()),
            data: sshspec_wire::Rest::default(),
        };
        let m = Message::GlobalRequest(GlobalRequest { want_reply: Bool(1), request });
        self.send_framed(&m, &[], &Framing::default()).await?;
        self.barriers_sent += 1;
        self.pending.barrier_sent(self.barriers_sent, self.t.tx.seq.wrapping_sub(1));
        Ok(self.barriers_sent)
    }

    async fn after_recv(&mut self, msg: &Message) -> StepResult {
        self.swallow = false;
        // RFC 4253 §7.1: from its KEXINIT to its NEWKEYS a party sends only transport messages;
        // this holds for rekeys the server starts mid-transfer as well as for ours.
        if self.server_in_kex && !msg.msg_type().is_transport() {
            return Err(fail(
                "only transport-layer messages between the server's KEXINIT and its NEWKEYS (RFC 4253 §7.1)",
                summarize(msg),
            ));
        }
        self.observe(msg);
        self.channels_bookkeeping(msg).await?;
        self.kex_react(msg).await?;
        self.rekey_if_due().await
    }

    /// Records what later steps read from a received message, whichever step received it: the
    /// server's `server-sig-algs` (EXT_INFO) and `$bound_port` (a REQUEST_SUCCESS with a port).
    fn observe(&mut self, msg: &Message) {
        if let Some(id) = self.pending.barrier_answered(msg) {
            self.barrier_answered = Some((id, Instant::now()));
            self.swallow = true;
            return;
        }
        match msg {
            Message::KexInit(_) => self.server_in_kex = true,
            Message::NewKeys(_) => self.server_in_kex = false,
            Message::ExtInfo(e) => {
                for x in &e.extensions {
                    let name = String::from_utf8_lossy(x.name.as_slice()).into_owned();
                    if !self.server_extensions.contains(&name) {
                        self.server_extensions.push(name);
                    }
                }
                if let Some(v) = e.get("server-sig-algs") {
                    self.server_sig_algs =
                        Some(String::from_utf8_lossy(v.as_slice()).split(',').map(str::to_owned).collect());
                }
            }
            Message::UserauthFailure(f) => self.auth_methods = Some(f.methods.0.clone()),
            Message::GlobalRequest(g) => {
                if let Some(a) = hostkeys::Announcement::of(g, self.t.kex.authenticated) {
                    self.hostkeys = Some(a);
                }
            }
            // Whichever step read it, an `authenticate` step after it must not ask again.
            Message::ServiceAccept(s) if s.service.as_slice() == b"ssh-userauth" => self.service_accepted = true,
            Message::ChannelFailure(_) | Message::RequestFailure(_) | Message::ChannelOpenFailure(_) => {
                if let Some(o) = self.pending.answered(msg) {
                    if self.granted.contains(&o.what) {
                        self.t
                            .log
                            .note(format!("{} was granted earlier in this connection: its refusal is judged", o.what));
                    } else {
                        self.refused = Some(o);
                    }
                }
            }
            Message::ChannelSuccess(_) | Message::ChannelOpenConfirmation(_) => {
                if let Some(o) = self.pending.answered(msg) {
                    self.granted.insert(o.what);
                }
            }
            Message::RequestSuccess(r) => {
                if let Some(o) = self.pending.answered(msg) {
                    self.granted.insert(o.what);
                }
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

    /// Sends our identification and reads the server's, unless an `expect = "banner"` step has
    /// read it already (a scenario that holds ours back until it has judged theirs).
    async fn version_exchange(&mut self, banner: Option<&str>, pre_banner: &[String], deadline: Instant) -> StepResult {
        self.t.send_version(banner.unwrap_or(OUR_BANNER), pre_banner).await.or_else(|e| self.tolerate_closed(e))?;
        let v = match self.t.server.clone() {
            Some(v) => v,
            None => self
                .t
                .read_version(deadline)
                .await
                .map_err(|e| StepFailure::from_transport("the server's identification string", e))?,
        };
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
        let list = |pin: &Option<String>, all: &[&str], extra: &[String]| match pin {
            Some(p) => NameList::new([p.as_str()]),
            None => {
                NameList::new(all.iter().copied().chain(extra.iter().map(String::as_str).filter(|e| !all.contains(e))))
            }
        };
        let kex_all: Vec<&str> = kex::algorithms().collect();
        let mut kex_algorithms = list(&pins.kex, &kex_all, &[]);
        // The extension markers are announced only in the first key exchange (RFC 8308 §2.1, PROTOCOL §1.10).
        if self.t.kex.completed == 0 {
            kex_algorithms.0.push(kex::EXT_INFO_C.into());
            kex_algorithms.0.push(kex::KEX_STRICT_C.into());
        }
        let ciphers = list(&pins.cipher, cipher::CIPHERS, &self.extra.cipher);
        let macs = list(&pins.mac, cipher::MACS, &[]);
        KexInit {
            cookie: Cookie(cookie),
            kex_algorithms,
            server_host_key_algorithms: list(&pins.host_key, hostkey::HOST_KEY_ALGORITHMS, &self.extra.host_key),
            encryption_algorithms_client_to_server: ciphers.clone(),
            encryption_algorithms_server_to_client: ciphers,
            mac_algorithms_client_to_server: macs.clone(),
            mac_algorithms_server_to_client: macs,
            compression_algorithms_client_to_server: list(
                &pins.compression,
                &[compress::NONE],
                &self.extra.compression,
            ),
            compression_algorithms_server_to_client: list(
                &pins.compression,
                &[compress::NONE],
                &self.extra.compression,
            ),
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
        } else {
            // Both KEXINITs may have passed through low-level steps, which answer nothing.
            self.send_kex_init_if_ready().await?;
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
            if std::mem::take(&mut self.swallow) {
                continue;
            }
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

    /// Receives the server's KEXINIT (IGNORE and DEBUG aside) and holds its form to the RFCs.
    async fn judge_server_kexinit(&mut self, deadline: Instant, expected: &str) -> StepResult {
        let k = loop {
            match self.t.recv(deadline).await.map_err(|e| StepFailure::from_transport(expected, e))? {
                Message::KexInit(k) => break k,
                Message::Ignore(_) | Message::Debug(_) => {}
                other => return Err(fail(expected, summarize(&other))),
            }
        };
        match kexinit::problems(&k)[..] {
            [] => Ok(()),
            ref problems => Err(fail(expected, problems.join("; "))),
        }
    }

    /// Holds the padding the server has sent under keys to RFC 4253 §6's "random bytes".
    /// Randomness cannot be shown, but a constant fill can: 16 or more bytes all alike happen by
    /// chance with odds of 2^-120. Padding sent in the clear is only noted: random bytes protect
    /// nothing there, and OpenSSH (packet.c, "clear padding") and russh zero it on purpose.
    fn judge_padding(&mut self, expected: &str) -> StepResult {
        const ENOUGH: usize = 16;
        let seen = self.t.padding_seen.clone();
        self.t.log.note(format!(
            "{} padding bytes before its first NEWKEYS (not judged): {}",
            seen.in_clear.len(),
            hex::encode(&seen.in_clear)
        ));
        let bytes = &seen.under_keys;
        let Some(&first) = bytes.first().filter(|_| bytes.len() >= ENOUGH) else {
            return Err(StepFailure::Harness(format!(
                "only {} padding bytes under keys, too few to judge: the scenario must make the server send more",
                bytes.len()
            )));
        };
        if bytes.iter().all(|b| *b == first) {
            return Err(fail(
                expected,
                format!("the first {} padding bytes it sent under keys are all {first:#04x}", bytes.len()),
            ));
        }
        self.t.log.note(format!("{} padding bytes under keys: {}", bytes.len(), hex::encode(bytes)));
        Ok(())
    }

    async fn expect(&mut self, alts: &[Expectation], step: &Step, deadline: Instant, timeout: Duration) -> StepResult {
        // Evidence shows values, not variables: `sequence_number = 7`, not `"$sent_seq"`.
        let resolved = |a: &Expectation| match a {
            Expectation::Message { name, matches } => match message::bind(matches, &|v| self.variable(v)) {
                Ok(matches) => Expectation::Message { name: name.clone(), matches }.describe(),
                Err(_) => a.describe(),
            },
            other => other.describe(),
        };
        let expected = alts.iter().map(resolved).collect::<Vec<_>>().join(" or ");
        if alts.iter().any(|a| matches!(a, Expectation::Banner { .. } | Expectation::BannerUnsupported { .. })) {
            if self.t.server.is_none() {
                self.t.read_version(deadline).await.map_err(|e| StepFailure::from_transport(&expected, e))?;
            }
            let v = self.t.server.clone().unwrap_or_default();
            // The first alternative the line satisfies decides; the first one's complaint is the evidence.
            let mut first = None;
            for (index, alt) in alts.iter().enumerate() {
                let verdict = match alt {
                    Expectation::Banner { matches } => banner::judge(&v, matches).map(|()| None),
                    Expectation::BannerUnsupported { matches, reason } => {
                        banner::fields_match(&v, matches).map(|()| Some(reason.clone()))
                    }
                    _ => continue,
                };
                match verdict {
                    Ok(skip) => {
                        self.matched = Some(index);
                        return skip.map_or(Ok(()), |reason| Err(StepFailure::Unsupported(reason)));
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            return Err(fail(expected, first.unwrap_or_default()));
        }
        if alts.iter().any(|a| matches!(a, Expectation::WellFormedKexinit)) {
            return self.judge_server_kexinit(deadline, &expected).await;
        }
        if alts.iter().any(|a| matches!(a, Expectation::RandomPadding)) {
            return self.judge_padding(&expected);
        }
        let wants = |f: fn(&Expectation) -> bool| alts.iter().any(f);
        let close_ok = wants(|a| matches!(a, Expectation::Close | Expectation::CloseUnsupported { .. }));
        let nothing_ok = wants(|a| matches!(a, Expectation::Nothing));
        loop {
            match self.t.recv(deadline).await {
                Ok(msg) => {
                    self.swallow = false;
                    self.observe(&msg);
                    if std::mem::take(&mut self.swallow) {
                        continue;
                    }
                    let before = self.channels.violation_count();
                    self.channels.on_received(&msg, false, &mut self.t.log);
                    // A target that overruns our window or maximum packet breaks RFC 4254 §5.2
                    // whatever the step was waiting for.
                    if self.channels.violation_count() > before {
                        let v = self.channels.last_violation().unwrap_or_default().to_owned();
                        return Err(fail("flow control within our window and maximum packet size (RFC 4254 §5.2)", v));
                    }
                    if !step.strict && matches!(msg, Message::Ignore(_) | Message::Debug(_)) {
                        continue;
                    }
                    if step.pass_over.iter().any(|n| n == msg.name()) {
                        continue;
                    }
                    for (index, alt) in alts.iter().enumerate() {
                        let (Expectation::Message { name, matches } | Expectation::Unsupported { name, matches, .. }) =
                            alt
                        else {
                            continue;
                        };
                        let bound = message::bind(matches, &|v| self.variable(v)).map_err(StepFailure::Harness)?;
                        if message::matches(&msg, name, &bound).map_err(StepFailure::Harness)? {
                            self.matched = Some(index);
                            return match alt {
                                Expectation::Unsupported { reason, .. } => {
                                    Err(StepFailure::Unsupported(reason.clone()))
                                }
                                _ => Ok(()),
                            };
                        }
                    }
                    if close_ok && matches!(msg, Message::Disconnect(_)) {
                        continue;
                    }
                    return Err(fail(expected, summarize(&msg)));
                }
                Err(TransportError::Closed { .. }) if close_ok => {
                    let index = alts
                        .iter()
                        .position(|a| matches!(a, Expectation::Close | Expectation::CloseUnsupported { .. }));
                    self.matched = index;
                    return match index.map(|i| &alts[i]) {
                        Some(Expectation::CloseUnsupported { reason }) => Err(StepFailure::Unsupported(reason.clone())),
                        _ => Ok(()),
                    };
                }
                Err(TransportError::Timeout { .. }) if nothing_ok => {
                    self.matched = alts.iter().position(|a| matches!(a, Expectation::Nothing));
                    return Ok(());
                }
                Err(TransportError::Timeout { buffered, last, .. }) => {
                    return Err(StepFailure::Target {
                        expected,
                        actual: format!(
                            "nothing within {timeout:?} ({buffered} byte(s) of an incomplete packet buffered){last}"
                        ),
                        kind: FailureKind::Timeout,
                    });
                }
                Err(e) => return Err(StepFailure::from_transport(&expected, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(name: &str) -> Message {
        let request = match name {
            "tcpip-forward" => GlobalRequestKind::TcpipForward { address: Bytes(b"127.0.0.1".to_vec()), port: 0 },
            _ => GlobalRequestKind::Other { name: Bytes(name.as_bytes().to_vec()), data: Default::default() },
        };
        Message::GlobalRequest(GlobalRequest { want_reply: Bool(1), request })
    }

    /// Replies come in request order: a barrier's answer is the one after the scenario's own
    /// requests sent before it, and only that one is kept from the steps.
    #[test]
    fn a_barrier_takes_the_reply_in_its_turn() {
        let (mut p, channels) = (Pending::default(), Channels::default());
        let failure = Message::RequestFailure(RequestFailure {});
        p.sent(&global("tcpip-forward"), &channels);
        p.sent(&global("keepalive@openssh.com"), &channels);
        p.barrier_sent(1, 7);
        p.sent(&global("x-unknown@sshspec.invalid"), &channels);
        assert_eq!(p.barrier_answered(&failure), None, "the first reply answers the forward");
        assert_eq!(p.answered(&failure).map(|o| o.what), Some("the tcpip-forward global request".to_owned()));
        assert_eq!(p.barrier_answered(&failure), Some(1), "the second reply answers the barrier");
        assert_eq!(p.barrier_answered(&failure), None, "the third answers the scenario's request");
        assert!(p.answered(&failure).is_none());
        assert!(p.global.is_empty());
        // A server that knows no global requests answers UNIMPLEMENTED with the barrier's number.
        p.sent(&global("keepalive@openssh.com"), &channels);
        p.barrier_sent(2, 9);
        let other = Message::Unimplemented(Unimplemented { sequence_number: 8 });
        assert_eq!(p.barrier_answered(&other), None);
        let unimplemented = Message::Unimplemented(Unimplemented { sequence_number: 9 });
        assert_eq!(p.barrier_answered(&unimplemented), Some(2));
        assert!(p.global.is_empty());
    }
}
