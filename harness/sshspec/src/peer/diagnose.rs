//! `sshspec diagnose HOST[:PORT]`: why a connection fails, in plain words. It walks the stages a
//! client goes through (TCP, identification, algorithm negotiation, host key, authentication) and
//! stops at the first that fails, naming the stage, what each side offered and what to change.

use super::{Credentials, Options, Peer, StepFailure};
use crate::script::{AuthKind, AuthOutcome, AuthStep, Pins};
use crate::transport::{self, Transport, TransportError, hostkey};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Where a connection failed, with what a person needs to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Nothing listens there (TCP RST).
    Refused,
    /// No TCP answer at all: a firewall dropping packets, a wrong address, a full backlog.
    ConnectTimeout(Duration),
    /// Another TCP failure (unreachable network, ...).
    Connect(String),
    /// Connected, but no identification line came.
    NoBanner { waited: Duration },
    /// The server closed before identifying itself (a TCP wrapper, MaxStartups, a ban).
    ClosedBeforeBanner,
    /// The server speaks, but not SSH.
    NotSsh { line: String },
    /// An SSH server of a protocol version we cannot speak.
    Version { line: String },
    /// No algorithm in common in one category.
    NoCommon { category: String, ours: String, theirs: String },
    /// The key exchange failed after negotiation.
    KeyExchange(String),
    /// The host key is not the pinned one.
    HostKeyChanged { presented: String, pinned: Vec<String> },
    /// None of the methods offered is one the server allows.
    NoAllowedMethod { allowed: Vec<String>, offered: Vec<String> },
    /// Allowed methods were tried and refused.
    Rejected { tried: Vec<String>, allowed: Vec<String> },
}

impl Problem {
    /// The stage the problem belongs to, as the report's headings name them.
    pub fn stage(&self) -> &'static str {
        match self {
            Problem::Refused | Problem::ConnectTimeout(_) | Problem::Connect(_) => "tcp",
            Problem::NoBanner { .. }
            | Problem::ClosedBeforeBanner
            | Problem::NotSsh { .. }
            | Problem::Version { .. } => "identification",
            Problem::NoCommon { .. } | Problem::KeyExchange(_) => "algorithms",
            Problem::HostKeyChanged { .. } => "host key",
            Problem::NoAllowedMethod { .. } | Problem::Rejected { .. } => "authentication",
        }
    }

    /// The explanation a person reads.
    pub fn explain(&self, addr: &str) -> String {
        match self {
            Problem::Refused => format!(
                "connection refused: nothing listens on {addr}. Is the server running, and on this port?"
            ),
            Problem::ConnectTimeout(d) => format!(
                "no TCP answer from {addr} within {d:?}: a firewall drops the packets, the address is wrong, or the server's listen backlog is full"
            ),
            Problem::Connect(e) => format!("cannot connect to {addr}: {e}"),
            Problem::NoBanner { waited } => format!(
                "connected, but no SSH identification line came within {waited:?}: this port runs a service that waits for the client to speak first (not SSH), or the server is stalled"
            ),
            Problem::ClosedBeforeBanner => "connected, but the server closed the connection before identifying itself: a TCP wrapper, a connection limit (MaxStartups, Dropbear's per-address limit) or a ban on this address".into(),
            Problem::NotSsh { line } => format!("this is not an SSH server: its first line is {line}"),
            Problem::Version { line } => format!(
                "the server speaks SSH protocol version 1 only ({line}); SSH-2 clients cannot talk to it (RFC 4253 §5)"
            ),
            Problem::NoCommon { category, ours, theirs } => format!(
                "no common {category} algorithm.\n  we offered:         {ours}\n  the server offered: {theirs}\n  Enable one of the server's in the client (or one of ours on the server)."
            ),
            Problem::KeyExchange(e) => format!("the key exchange failed: {e}"),
            Problem::HostKeyChanged { presented, pinned } => format!(
                "HOST KEY CHANGED: the server presented {presented}, but the pinned key is {}. Either the server was reinstalled or re-keyed, or someone is in the middle. Check with the server's owner before trusting it.",
                pinned.join(" or ")
            ),
            Problem::NoAllowedMethod { allowed, offered } => format!(
                "no authentication method in common: the server allows {}; you offered {}",
                list(allowed),
                list(offered)
            ),
            Problem::Rejected { tried, allowed } => format!(
                "the server refused {} (it allows {}): wrong password or key, or the account is locked",
                list(tried),
                list(allowed)
            ),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "nothing".into() } else { v.join(", ") }
}

/// What the user offers to authenticate with.
#[derive(Clone, Debug, Default)]
pub struct Offer {
    pub password: bool,
    pub publickey: bool,
    /// The kind of the identity offered for publickey.
    pub key: super::KeyKind,
}

impl Offer {
    fn names(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.publickey {
            v.push("publickey".to_string());
        }
        if self.password {
            v.push("password".to_string());
        }
        v
    }
}

/// One stage that went well, for the report.
#[derive(Clone, Debug)]
pub struct Passed {
    pub stage: &'static str,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    pub passed: Vec<Passed>,
    pub problem: Option<Problem>,
}

impl Diagnosis {
    fn ok(&mut self, stage: &'static str, text: String) {
        self.passed.push(Passed { stage, text });
    }

    pub fn render(&self, addr: &str) -> String {
        let mut o = String::new();
        for p in &self.passed {
            o.push_str(&format!("ok    {:<15} {}\n", p.stage, p.text));
        }
        match &self.problem {
            Some(p) => o.push_str(&format!("FAIL  {:<15} {}\n", p.stage(), p.explain(addr))),
            None => o.push_str("the connection works: every stage passed\n"),
        }
        o
    }
}

/// Walks the stages against `addr`. `pinned`: SHA256 fingerprints the host key must have.
pub async fn diagnose(
    addr: SocketAddr,
    creds: &Credentials,
    offer: &Offer,
    pinned: &[String],
    timeout: Duration,
) -> Diagnosis {
    let mut d = Diagnosis::default();
    let started = Instant::now();
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => {
            d.problem = Some(Problem::ConnectTimeout(timeout));
            return d;
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            d.problem = Some(Problem::Refused);
            return d;
        }
        Ok(Err(e)) => {
            d.problem = Some(Problem::Connect(e.to_string()));
            return d;
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    d.ok("tcp", format!("connected to {addr} in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0));
    let opts = Options { step_timeout: timeout, ..Options::default() };
    let mut peer = Peer::new(Transport::from_stream(stream, Default::default()), creds, &opts, addr);
    let problem = stages(&mut peer, &mut d, offer, pinned, timeout).await.err();
    peer.t.shutdown().await;
    d.problem = problem;
    d
}

async fn stages(
    peer: &mut Peer<'_>,
    d: &mut Diagnosis,
    offer: &Offer,
    pinned: &[String],
    timeout: Duration,
) -> Result<(), Problem> {
    // Identification: we send ours at once (a server may wait for it) and read theirs.
    let _ = peer.t.send_version(super::OUR_BANNER, &[]).await;
    let v = match peer.t.read_version(Instant::now() + timeout).await {
        Ok(v) => v,
        Err(TransportError::Timeout { waited, last, .. }) if last.bytes.is_empty() => {
            return Err(Problem::NoBanner { waited });
        }
        Err(TransportError::Closed { last }) if last.bytes.is_empty() => return Err(Problem::ClosedBeforeBanner),
        Err(TransportError::Closed { .. }) | Err(TransportError::Timeout { .. }) => {
            let first = peer.t.first_bytes();
            let end = first.iter().position(|b| *b == b'\n').map_or(first.len(), |n| n + 1);
            return Err(Problem::NotSsh { line: shown(&first[..end]) });
        }
        Err(e) => return Err(Problem::NotSsh { line: e.to_string() }),
    };
    let line = shown(&v.line);
    if v.line.starts_with(b"SSH-1.") && !v.line.starts_with(b"SSH-1.99-") {
        return Err(Problem::Version { line });
    }
    if !(v.line.starts_with(b"SSH-2.0-") || v.line.starts_with(b"SSH-1.99-")) {
        return Err(Problem::NotSsh { line });
    }
    d.ok("identification", format!("{line}{}", if v.pre_banner.is_empty() { "" } else { " (after other lines)" }));

    // Algorithms: our usual offer against theirs.
    peer.offer = (Pins::default(), toml::Table::new());
    let deadline = Instant::now() + timeout;
    let kex = peer.key_exchange(deadline).await;
    if let Some(Err(nc)) = &peer.t.kex.negotiated {
        return Err(Problem::NoCommon {
            category: nc.category.to_string(),
            ours: nc.ours.to_string(),
            theirs: nc.theirs.to_string(),
        });
    }
    let fingerprint = peer.t.kex.host_key.as_deref().map(hostkey::fingerprint);
    if let Err(e) = kex {
        return Err(Problem::KeyExchange(failure_text(e)));
    }
    if let Some(Ok(n)) = &peer.t.kex.negotiated {
        d.ok(
            "algorithms",
            format!(
                "kex {}, host key {}, cipher {}, MAC {}{}",
                n.kex,
                n.host_key,
                n.cipher_c2s,
                n.mac_c2s.as_deref().unwrap_or("(implicit)"),
                if n.strict { ", strict kex" } else { "" }
            ),
        );
    }

    // Host key.
    let presented = fingerprint.unwrap_or_default();
    if !pinned.is_empty() && !pinned.contains(&presented) {
        return Err(Problem::HostKeyChanged { presented, pinned: pinned.to_vec() });
    }
    d.ok(
        "host key",
        format!(
            "{presented}{}",
            if pinned.is_empty() {
                " (not pinned: compare it with the server's own)"
            } else {
                " matches the pinned key"
            }
        ),
    );

    // Authentication: which methods the server allows (a `none` request), then ours.
    let deadline = Instant::now() + timeout;
    let none = AuthStep::new(AuthKind::None, AuthOutcome::Failure);
    if peer.authenticate(&none, deadline).await.is_ok() && peer.auth_methods.is_none() {
        d.ok("authentication", "the server let us in with no authentication at all".into());
        return Ok(());
    }
    let allowed = peer.auth_methods.clone().unwrap_or_default();
    let offered = offer.names();
    let usable: Vec<String> = offered.iter().filter(|m| allowed.contains(m)).cloned().collect();
    if offered.is_empty() {
        d.ok(
            "authentication",
            format!("the server allows {} (give --password-env or --identity to try them)", list(&allowed)),
        );
        return Ok(());
    }
    if usable.is_empty() {
        return Err(Problem::NoAllowedMethod { allowed, offered });
    }
    let mut tried = Vec::new();
    for m in &usable {
        let kind = if m == "password" { AuthKind::Password } else { AuthKind::Publickey };
        let step = AuthStep { key: offer.key, ..AuthStep::new(kind, AuthOutcome::Success) };
        tried.push(m.clone());
        match peer.authenticate(&step, Instant::now() + timeout).await {
            Ok(()) => {
                d.ok("authentication", format!("the server allows {}; {m} was accepted", list(&allowed)));
                return Ok(());
            }
            Err(StepFailure::Target { .. } | StepFailure::Unsupported(_)) => {}
            Err(StepFailure::Harness(e)) => return Err(Problem::KeyExchange(e)),
        }
    }
    Err(Problem::Rejected { tried, allowed })
}

/// A received line as a person reads it: plain when it is printable text, escaped otherwise.
fn shown(line: &[u8]) -> String {
    let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    match std::str::from_utf8(trimmed) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => transport::printable(line),
    }
}

fn failure_text(e: StepFailure) -> String {
    e.describe()
}
