//! One connection to the fixture server: version exchange, key exchanges (ours and the
//! client's), authentication and session channels running the catalogue's programs, all on one
//! task. Every departure from the RFCs is a named deviation, checked where the rule applies.

use super::forward::{self, Forwards};
use super::{BANNER, HOST_KEY_ALGORITHMS, Shared};
use crate::peer::hostkeys;
use crate::peer::userkey::{KeyKind, SignedMethod, parsed_verify, signed_request};
use crate::script::Program;
use crate::transcript::Transcript;
use crate::transport::{Transport, TransportError, cipher, compress, hostkey, kex, negotiate};
use rand::seq::SliceRandom;
use sshspec_wire::codec::put_string;
use sshspec_wire::enums::{ChannelOpenFailureReason, DisconnectReason, ExtendedDataType};
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Cookie, Message, NameList, Rest};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Our receive window per channel, and the largest data packet we accept.
const WINDOW: u32 = 2 * 1024 * 1024;
const MAX_PACKET: u32 = 32 * 1024;
/// Our `no-flow-control` value (RFC 8308 §3.3): supported, not preferred, so it takes effect only
/// for a client that sends "p".
const NO_FLOW_CONTROL: &str = "s";
/// How long we wait for the client's identification.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection is over: we disconnected (or could not), or the client went away.
struct Closed;

impl From<TransportError> for Closed {
    fn from(_: TransportError) -> Closed {
        Closed
    }
}

type Step = Result<(), Closed>;

/// SSH2_MSG_PING and SSH2_MSG_PONG (OpenSSH PROTOCOL §1.9).
const PING: u8 = 192;
const PONG: u8 = 193;

pub(super) async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut t = Transport::accepted(stream, Transcript::default());
    t.quirks.keep_sequence_numbers = shared.settings.deviates("strict-kex-no-sequence-reset");
    t.quirks.session_id_follows_rekey = shared.settings.deviates("session-id-follows-rekey");
    t.quirks.reset_sequence_numbers_once = shared.settings.deviates("strict-kex-rekey-no-reset");
    t.quirks.strict_follows_rekey_markers = shared.settings.deviates("strict-kex-marker-in-rekey");
    t.quirks.repeat_short_keys = shared.settings.deviates("key-not-extended");
    t.quirks.exchange_hash_sha256 = shared.settings.deviates("exchange-hash-always-sha256");
    t.quirks.gex_hash_without_bounds = shared.settings.deviates("gex-hash-without-bounds");
    t.quirks.gex_old_hash_with_bounds = shared.settings.deviates("gex-old-hash-with-bounds");
    t.quirks.curve25519_k_as_string = shared.settings.deviates("curve25519-k-as-string");
    t.quirks.mac_before_keys = shared.settings.deviates("mac-before-newkeys");
    t.quirks.zero_padding = shared.settings.deviates("zero-padding");
    t.quirks.refuse_long_packets = shared.settings.deviates("long-packets-refused");
    t.quirks.ecdh_key_reused = shared.settings.deviates("ephemeral-key-reused");
    t.quirks.mpint_not_minimal = shared.settings.deviates("mpint-not-minimal");
    t.quirks.ecdh_point_compressed = shared.settings.deviates("ecdh-point-compressed");
    t.quirks.etm_over_plaintext = shared.settings.deviates("etm-mac-over-plaintext");
    t.quirks.cbc_restarts = shared.settings.deviates("cbc-chain-restarts");
    t.quirks.aead_needs_mac = shared.settings.deviates("aead-needs-common-mac");
    let mut c = Conn::new(t, shared);
    let _ = c.run().await;
    c.t.shutdown().await;
}

/// What a running program, or a relayed socket, still has to do.
struct Job {
    /// One of the catalogue's programs; none for a forwarded connection's socket.
    program: Option<Program>,
    /// Output waiting for window: stdout, stderr, and zeros still to print.
    stdout: VecDeque<u8>,
    stderr: VecDeque<u8>,
    zeros: u64,
    /// The program needs its stdin to end before it exits (echo-stdin, discard-stdin).
    reads_stdin: bool,
    /// More output may come: a relayed socket not yet at its end.
    open: bool,
    /// Output that comes once stdin has ended (read-stdin-after's `eof`).
    after_eof: Vec<u8>,
}

struct Channel {
    /// The client's channel number.
    peer: u32,
    /// The client's window and maximum packet (u64: a window of 2^32-1 plus an adjust must not wrap).
    window: u64,
    max_packet: u32,
    /// Bytes received since we last granted window.
    consumed: u32,
    /// The window the client has left for its data to us.
    client_window: u64,
    job: Option<Job>,
    stdin_eof: bool,
    sent_eof: bool,
    sent_close: bool,
}

struct Conn {
    t: Transport,
    shared: Arc<Shared>,
    /// The client's KEXINIT arrived and its NEWKEYS has not.
    in_kex: bool,
    /// We answered the client's key exchange init message in this exchange.
    replied: bool,
    /// The next key exchange packet is a wrong guess, to be ignored.
    skip_guess: bool,
    /// The first key exchange has completed.
    first_kex_done: bool,
    /// The client's first packet was something other than KEXINIT.
    first_not_kexinit: bool,
    packets_received: u64,
    /// Messages held back while our own KEXINIT is out (RFC 4253 §7.1).
    held: Vec<Message>,
    service: bool,
    authed: bool,
    /// Methods of the chain passed so far, for whom.
    passed: Vec<String>,
    passed_user: Option<Vec<u8>>,
    failures: u32,
    /// A keyboard-interactive round is waiting for its answer, for this user.
    prompting: Option<Vec<u8>>,
    password_changed: bool,
    /// When login succeeded.
    authed_at: Option<Instant>,
    channels: BTreeMap<u32, Channel>,
    next_channel: u32,
    /// A channel request's reply kept back to be sent after the next one (a deviation).
    held_reply: Option<Message>,
    /// A global request's reply kept back likewise.
    held_global: Option<Message>,
    /// A PONG kept back to be sent after the next one (a deviation).
    held_pong: Option<Message>,
    forwards: Forwards,
    connected_at: Instant,
    /// A USERAUTH_REQUEST that came in the clear during the first key exchange, kept to be acted on
    /// under the new keys (a deviation: the rogue session attack).
    rogue: Option<UserauthRequest>,
    /// The `no-flow-control` value of the client's EXT_INFO (RFC 8308 §3.3), if it sent one.
    client_no_flow_control: Option<Vec<u8>>,
}

impl Conn {
    fn new(t: Transport, shared: Arc<Shared>) -> Self {
        Conn {
            t,
            shared,
            in_kex: false,
            replied: false,
            skip_guess: false,
            first_kex_done: false,
            first_not_kexinit: false,
            packets_received: 0,
            held: Vec::new(),
            service: false,
            authed: false,
            passed: Vec::new(),
            passed_user: None,
            failures: 0,
            prompting: None,
            password_changed: false,
            authed_at: None,
            channels: BTreeMap::new(),
            next_channel: 0,
            held_reply: None,
            held_global: None,
            held_pong: None,
            forwards: Forwards::default(),
            connected_at: Instant::now(),
            client_no_flow_control: None,
            rogue: None,
        }
    }

    fn dev(&self, name: &str) -> bool {
        self.shared.settings.deviates(name)
    }

    async fn run(&mut self) -> Step {
        if self.dev("identification-with-minus") {
            self.t.send_version("SSH-2.0-sshspec-fixture-1", &[]).await?;
        } else if self.dev("no-identification-crlf") {
            self.send_identification(BANNER, "\n").await?;
        } else if self.dev("nul-in-identification") {
            self.send_identification(&format!("{BANNER} nul\0here"), "\r\n").await?;
        } else if self.dev("identification-over-255") {
            self.send_identification(&format!("{BANNER} {}", "x".repeat(300)), "\r\n").await?;
        } else if self.dev("pre-banner-ssh-line") {
            self.t.send_version(BANNER, &["SSH-fixture greeting".to_owned()]).await?;
        } else if self.dev("pre-banner-bare-lf") {
            self.t.send_version(BANNER, &["sshspec fixture, before its identification\n".to_owned()]).await?;
        } else if self.shared.settings.ssh1_compat {
            return self.run_compat().await;
        } else {
            self.t.send_version(BANNER, &[]).await?;
        }
        self.send_kexinit().await?;
        self.read_client_version().await?;
        self.serve().await
    }

    /// SSH-1 compatibility mode (RFC 4253 §5.1): 1.99, LF alone, and nothing more until the
    /// client's identification has shown which protocol it speaks (always 2.0 here).
    async fn run_compat(&mut self) -> Step {
        if self.dev("compat-pre-banner-line") {
            self.t.send_bytes(b"sshspec fixture, in compatibility mode\r\n").await?;
        }
        let line = match self.dev("compat-announces-2.0") {
            true => BANNER.to_owned(),
            false => BANNER.replacen("SSH-2.0-", "SSH-1.99-", 1),
        };
        let end = if self.dev("compat-banner-cr") { "\r\n" } else { "\n" };
        self.send_identification(&line, end).await?;
        if self.dev("compat-eager-kexinit") {
            self.send_kexinit().await?;
            self.read_client_version().await?;
        } else {
            self.read_client_version().await?;
            self.send_kexinit().await?;
        }
        self.serve().await
    }

    /// Serves the connection from the key exchange on.
    async fn serve(&mut self) -> Step {
        loop {
            self.pump().await?;
            self.maybe_rekey().await?;
            // Never a deadline already past: a receive that times out at once, again and again,
            // would hold a runtime thread without ever yielding.
            let deadline = self.deadline().max(Instant::now() + Duration::from_millis(10));
            let before = self.t.rx.payload;
            let received = tokio::select! {
                r = self.t.recv(deadline) => r,
                e = self.forwards.next() => {
                    self.on_forward(e).await?;
                    continue;
                }
            };
            let msg = match received {
                Ok(m) => m,
                Err(TransportError::Timeout { .. }) if !self.authed && !self.dev("no-login-grace") => {
                    return self.disconnect(DisconnectReason::BY_APPLICATION, "login grace time exceeded").await;
                }
                Err(TransportError::Timeout { .. }) => continue,
                Err(TransportError::Target(e)) => {
                    if self.tolerates(&e) {
                        continue;
                    }
                    if e.contains("announced a packet length") && self.dev("huge-length-awaited") {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return Err(Closed);
                    }
                    let reason =
                        if e.contains("MAC") { DisconnectReason::MAC_ERROR } else { DisconnectReason::PROTOCOL_ERROR };
                    return self.disconnect(reason, &e).await;
                }
                Err(_) => return Err(Closed),
            };
            self.packets_received += 1;
            if self.dev("large-packet-refused") && self.t.rx.payload.saturating_sub(before) > 16 * 1024 {
                return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "packet too large").await;
            }
            self.handle(msg).await?;
        }
    }

    /// An identification line written as is, for the deviations that get it wrong.
    async fn send_identification(&mut self, line: &str, end: &str) -> Step {
        self.t.send_bytes(format!("{line}{end}").as_bytes()).await?;
        self.t.v_c = line.as_bytes().to_vec();
        Ok(())
    }

    /// A packet-level error a deviation lets pass.
    fn tolerates(&self, e: &str) -> bool {
        (e.contains("MAC or authentication tag") && self.dev("bad-mac-ignored"))
            || (e.contains("not a multiple of the cipher block size") && self.dev("misaligned-packet-accepted"))
    }

    /// Until login, the grace time; after it, the next time-based rekey, or a long while.
    fn deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        if !self.authed && !self.dev("no-login-grace") {
            return self.connected_at + self.shared.settings.login_grace;
        }
        // Only an idle transport waits for the rekey timer: once a key exchange is under way,
        // a deadline already past would make every receive time out at once.
        match (self.shared.settings.rekey_interval, self.t.kex.completed_at) {
            (Some(i), Some(at)) if self.t.kex.idle() && !self.in_kex && !self.dev("never-rekeys") => (at + i).min(far),
            _ => far,
        }
    }

    async fn read_client_version(&mut self) -> Step {
        let deadline = Instant::now() + VERSION_TIMEOUT;
        let line = self.t.read_line(deadline).await?;
        let text = String::from_utf8_lossy(&line).to_string();
        // Clients send no lines before their identification (RFC 4253 §4.2 allows them only to
        // servers), and only protocol 2.0 (or 1.99, which means 2.0 too) is spoken.
        let supported = text.starts_with("SSH-2.0-") || text.starts_with("SSH-1.99-");
        let comment_refused = self.dev("client-comment-refused") && text.trim_end().contains(' ');
        if !text.starts_with("SSH-") || (!supported && !self.dev("ssh1-client-accepted")) || comment_refused {
            self.t.log.note(format!("client identification refused: {}", text.trim_end()));
            return self.disconnect(DisconnectReason::PROTOCOL_VERSION_NOT_SUPPORTED, "protocol 2.0 only").await;
        }
        self.t.server = Some(crate::transport::ServerVersion { line, pre_banner: Vec::new() });
        Ok(())
    }

    fn kexinit(&self) -> KexInit {
        let l = |v: &[&str]| NameList::new(v.iter().copied());
        let mut kex: Vec<&str> = vec![
            "mlkem768x25519-sha256",
            "sntrup761x25519-sha512",
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384",
            "ecdh-sha2-nistp521",
            "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group14-sha256",
            "diffie-hellman-group-exchange-sha256",
            "ext-info-s",
            kex::KEX_STRICT_S,
        ];
        // draft-ietf-sshm-strict-kex-02 §5.1: both names. The deviation that mixes them needs the
        // pre-standard one alone, as the scenario judging it does.
        if !self.dev("strict-kex-pre-standard-name-only") && !self.dev("strict-kex-names-mixed") {
            kex.push(kex::KEX_STRICT_S_STANDARD);
        }
        if self.dev("ext-info-c-as-own") {
            kex = kex.into_iter().map(|k| if k == "ext-info-s" { "ext-info-c" } else { k }).collect();
        }
        // RFC 9142's method guidance, broken one way each; the names are listed, not implemented.
        let dropped: Vec<&str> = [
            ("no-curve25519", &["curve25519-sha256"][..]),
            ("no-group14-sha256", &["diffie-hellman-group14-sha256"]),
            ("no-group16-sha512", &["diffie-hellman-group16-sha512"]),
            ("nist-curves-partial", &["ecdh-sha2-nistp384", "ecdh-sha2-nistp521"]),
            ("no-nist-curves", &["ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"]),
        ]
        .into_iter()
        .filter(|(deviation, _)| self.dev(deviation))
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
        kex.retain(|k| !dropped.contains(k));
        let real = kex.iter().position(|k| *k == "ext-info-s").unwrap_or(kex.len());
        if self.dev("gss-sha1-offered") {
            kex.insert(real, "gss-group14-sha1-toWM5Slw5Ew8Mqkay+al2g==");
        }
        if self.dev("weak-kex-offered") {
            kex.splice(
                real..real,
                ["diffie-hellman-group1-sha1", "diffie-hellman-group-exchange-sha1", "rsa1024-sha1"],
            );
        }
        if self.dev("small-curve-offered") {
            kex.insert(real, "ecdh-sha2-1.3.132.0.6");
        }
        if self.dev("group14-sha1-first") {
            kex.insert(0, "diffie-hellman-group14-sha1");
        }
        if self.dev("preferences-reshuffled") {
            kex.shuffle(&mut rand::thread_rng());
        }
        let long = format!("{}@sshspec.example", "x".repeat(60));
        let mut host: Vec<&str> = HOST_KEY_ALGORITHMS.iter().map(|(a, _)| *a).collect();
        if self.dev("long-algorithm-name") {
            host.push(&long);
        }
        if self.dev("non-ascii-name") {
            host.push("caf\u{e9}@sshspec.example");
        }
        if self.dev("double-at-name") {
            host.push("x@y@sshspec.example");
        }
        if self.dev("name-with-space") {
            host.push("ssh ed25519");
        }
        if self.dev("nul-in-name-list") {
            host.push("ssh-ed25519\0");
        }
        let mut compression = vec![compress::NONE, compress::ZLIB_OPENSSH];
        if self.dev("empty-name-in-list") {
            compression.insert(1, "");
        }
        if self.dev("no-none-compression") {
            compression.retain(|c| *c != compress::NONE);
        }
        if self.dev("no-rsa-sha2-256-host-key") {
            host.retain(|h| *h != "rsa-sha2-256");
        }
        if self.dev("no-ecdsa-key-format") {
            host.retain(|h| !h.starts_with("ecdsa-sha2-"));
        }
        let mut ciphers = cipher::CIPHERS.to_vec();
        if self.dev("no-aes128-ctr") {
            ciphers.retain(|c| *c != "aes128-ctr");
        }
        let mut macs = cipher::MACS.to_vec();
        if self.dev("no-hmac-sha2-256") {
            macs.retain(|m| !m.starts_with("hmac-sha2-256"));
        }
        if self.dev("no-hmac-sha1") {
            macs.retain(|m| !m.starts_with("hmac-sha1"));
        }
        // CBC last, as OpenSSH lists it when configured to: a client that asks for it gets it.
        ciphers.extend([cipher::AES128_CBC, cipher::AES256_CBC]);
        if self.dev("3des-offered") {
            ciphers.push("3des-cbc");
        }
        if self.dev("none-cipher-offered") || self.shared.settings.offer_none {
            ciphers.push("none");
            macs.push("none");
        }
        let languages: &[&str] = if self.dev("language-tags") { &["en-US"] } else { &[] };
        KexInit {
            cookie: Cookie(if self.dev("zero-cookie") { [0; 16] } else { rand::random() }),
            kex_algorithms: l(&kex),
            server_host_key_algorithms: l(&host),
            encryption_algorithms_client_to_server: l(&ciphers),
            encryption_algorithms_server_to_client: l(&ciphers),
            mac_algorithms_client_to_server: if self.dev("empty-mac-list") { l(&[]) } else { l(&macs) },
            mac_algorithms_server_to_client: l(&macs),
            compression_algorithms_client_to_server: l(&[compress::NONE, compress::ZLIB_OPENSSH]),
            compression_algorithms_server_to_client: l(&compression),
            languages_client_to_server: l(languages),
            languages_server_to_client: l(languages),
            first_kex_packet_follows: Bool(u8::from(self.dev("guess-flag-without-guess"))),
            reserved: 0,
        }
    }

    async fn send_kexinit(&mut self) -> Step {
        let k = self.kexinit();
        self.t.send(&Message::KexInit(k)).await?;
        if self.dev("guess-without-flag") && !self.first_kex_done {
            // Message 30 with a curve25519 value, as if guessing: the flag above says no guess.
            self.t.send(&Message::KexEcdhInit(KexEcdhInit { q_c: Bytes(vec![9; 32]) })).await?;
        }
        Ok(())
    }

    /// Sends now, or holds a connection-layer message while our KEXINIT is out.
    async fn send(&mut self, msg: Message) -> Step {
        let transport_layer = msg.msg_type().0 < 50;
        // Erlang answered the early channel at once, in the clear.
        let early = !self.first_kex_done && self.dev("early-channel-run");
        if !transport_layer && self.t.kex.in_progress() && !self.dev("data-during-own-rekey") && !early {
            self.held.push(msg);
            return Ok(());
        }
        self.t.send(&msg).await?;
        Ok(())
    }

    async fn disconnect(&mut self, reason: DisconnectReason, why: &str) -> Step {
        let m = Disconnect { reason, description: Bytes(why.as_bytes().to_vec()), language: Bytes::default() };
        let _ = self.t.send(&Message::Disconnect(m)).await;
        Err(Closed)
    }

    async fn unimplemented(&mut self) -> Step {
        if self.dev("no-unimplemented") {
            return Ok(());
        }
        let mut seq = self.t.rx.seq.wrapping_sub(1);
        if self.dev("unimplemented-wrong-sequence") {
            seq = seq.wrapping_add(1);
        }
        self.t.send(&Message::Unimplemented(Unimplemented { sequence_number: seq })).await?;
        if self.dev("unimplemented-then-disconnect") {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "unknown message").await;
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Message) -> Step {
        let first = self.packets_received == 1;
        if first && !matches!(msg, Message::KexInit(_)) {
            self.first_not_kexinit = true;
        }
        // Strict kex: during the initial exchange, only its own messages, each in its turn.
        let strict_initial = self.t.kex.strict && !self.first_kex_done && !self.dev("strict-kex-lenient");
        let kex_message = matches!(
            msg,
            Message::KexInit(_)
                | Message::KexEcdhInit(_)
                | Message::KexdhInit(_)
                | Message::KexDhGexRequest(_)
                | Message::KexDhGexRequestOld(_)
                | Message::KexDhGexInit(_)
                | Message::NewKeys(_)
        );
        if strict_initial && !kex_message {
            return self
                .disconnect(
                    DisconnectReason::PROTOCOL_ERROR,
                    "strict kex: unexpected message during the initial key exchange",
                )
                .await;
        }
        // What the CCS 2025 state-learning study found in several servers: a strict initial key
        // exchange that lets other messages through instead of ending the connection.
        if self.t.kex.strict && !self.first_kex_done && !kex_message && self.dev("strict-kex-lenient") {
            self.t.log.note(format!("let through: {} during the strict initial key exchange", msg.name()));
            return Ok(());
        }
        let number = msg.msg_type().0;
        if number >= 80 && self.t.kex.in_progress() && !self.in_kex && self.dev("client-data-during-own-kexinit-fatal")
        {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "a message during our key exchange").await;
        }
        let just_logged_in = self.authed_at.is_some_and(|at| at.elapsed() < Duration::from_millis(500));
        if number >= 80 && just_logged_in && self.dev("messages-after-login-dropped") {
            self.t.log.note("dropped: a connection message that arrived with the login");
            return Ok(());
        }
        // What Erlang/OTP did before 27.3.3 (CVE-2025-32433): connection messages that arrive in the
        // clear, in the first key exchange, go to the connection layer as if a user had logged in.
        let early = number >= 80 && !self.first_kex_done && !self.authed && self.dev("early-channel-run");
        // What AsyncSSH did before 2.14.1 (CVE-2023-46446): a USERAUTH_REQUEST in the clear, inside
        // the first key exchange, is acted on once the exchange completes, as if it had been sent
        // under the new keys after SERVICE_ACCEPT.
        if let Message::UserauthRequest(r) = &msg
            && self.in_kex
            && !self.first_kex_done
            && self.dev("rogue-session")
        {
            self.t.log.note("kept: a USERAUTH_REQUEST sent during the first key exchange");
            self.rogue = Some(r.clone());
            return Ok(());
        }
        // RFC 4253 §7.1: the generic messages (1 to 19, SERVICE_REQUEST and SERVICE_ACCEPT aside) keep
        // their place in a key exchange; an unassigned one among them gets UNIMPLEMENTED (§11.4).
        let generic = matches!(number, 1..=4 | 9..=19) && !self.dev("unassigned-during-kex-fatal");
        if self.in_kex && !kex_message && !generic && !early {
            return self
                .disconnect(DisconnectReason::PROTOCOL_ERROR, "only transport messages during a key exchange")
                .await;
        }
        match msg {
            Message::KexInit(k) => self.on_kexinit(k).await,
            Message::KexEcdhInit(_) | Message::KexdhInit(_) | Message::KexDhGexInit(_) => {
                self.on_kex_init_message().await
            }
            Message::KexDhGexRequest(_) | Message::KexDhGexRequestOld(_) => self.on_gex_request().await,
            Message::NewKeys(_) => self.on_newkeys().await,
            Message::Ignore(_) if self.first_kex_done && self.dev("ignore-is-fatal") => {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "IGNORE").await
            }
            Message::Debug(_) if self.dev("debug-is-fatal") => {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "DEBUG").await
            }
            Message::ExtInfo(e)
                if self.dev("unknown-extension-fatal") && e.extensions.iter().any(|x| !known_extension(&x.name.0)) =>
            {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "unknown extension").await
            }
            Message::ExtInfo(e)
                if self.dev("ext-info-order-sensitive")
                    && e.extensions.first().is_some_and(|x| !known_extension(&x.name.0)) =>
            {
                // A parser that reads the extensions it knows in a fixed order and stops at the first other.
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "unexpected extension").await
            }
            Message::ExtInfo(e)
                if self.dev("ext-info-size-limited")
                    && e.extensions.iter().map(|x| x.value.0.len()).sum::<usize>() > 4096 =>
            {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "EXT_INFO over 4 KiB").await
            }
            Message::ExtInfo(e) => {
                if let Some(v) = e.get("no-flow-control") {
                    self.client_no_flow_control = Some(v.0.clone());
                }
                Ok(())
            }
            Message::Ignore(_) | Message::Debug(_) | Message::Unimplemented(_) => Ok(()),
            Message::Disconnect(_) if self.dev("disconnect-ignored") => Ok(()),
            Message::Disconnect(_) => Err(Closed),
            Message::ServiceRequest(r) => self.on_service_request(r).await,
            Message::UserauthRequest(r) => self.on_userauth(r).await,
            Message::UserauthInfoResponse(r) if self.prompting.is_some() => self.on_info_response(r).await,
            // With no keyboard-interactive request, message 61 decodes as an unknown message.
            m if m.msg_type().0 == 61 && self.service && self.dev("unsolicited-response-accepted") => {
                let user = self.shared.creds.user.clone().into_bytes();
                self.passed(&user, "keyboard-interactive").await
            }
            Message::UserauthSuccess(_) if self.dev("client-success-trusted") => {
                self.authed = true;
                Ok(())
            }
            Message::Unknown(ping) if ping.msg_type == PING && self.first_kex_done => self.on_ping(ping).await,
            m if m.msg_type().0 >= 80 && !self.authed && !self.dev("connection-before-login") && !early => {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "connection protocol message before authentication")
                    .await
            }
            Message::GlobalRequest(g) => self.on_global_request(g).await,
            Message::ChannelOpen(o) => self.on_channel_open(o).await,
            Message::ChannelRequest(r) => self.on_channel_request(r).await,
            Message::ChannelData(d) => self.on_data(d.recipient_channel, d.data.0.len(), Some(d.data.0)).await,
            Message::ChannelExtendedData(d) => self.on_data(d.recipient_channel, d.data.0.len(), None).await,
            Message::ChannelWindowAdjust(a) => {
                let signed = self.dev("window-signed-32-bit");
                if let Some(ch) = self.channels.get_mut(&a.recipient_channel) {
                    ch.window = if signed {
                        ((ch.window as u32).wrapping_add(a.bytes_to_add) as i32).max(0) as u64
                    } else {
                        ch.window + u64::from(a.bytes_to_add)
                    };
                }
                Ok(())
            }
            Message::ChannelEof(e) => {
                let needs_window = self.dev("eof-needs-window");
                if let Some(ch) = self.channels.get_mut(&e.recipient_channel) {
                    if needs_window && ch.client_window == 0 {
                        self.t.log.note("an EOF with no window left is dropped, as if it needed window");
                        return Ok(());
                    }
                    ch.stdin_eof = true;
                    if let Some(job) = &mut ch.job {
                        job.stdout.extend(std::mem::take(&mut job.after_eof));
                    }
                    self.forwards.eof(e.recipient_channel);
                }
                Ok(())
            }
            Message::ChannelClose(c) => self.on_channel_close(c.recipient_channel).await,
            Message::ChannelOpenConfirmation(c) if self.forwards.is_pending(c.recipient_channel) => {
                self.start_relay(c.recipient_channel, c.sender_channel, c.initial_window_size, c.maximum_packet_size);
                Ok(())
            }
            Message::ChannelOpenFailure(f) if self.forwards.is_pending(f.recipient_channel) => {
                self.forwards.refused(f.recipient_channel);
                Ok(())
            }
            Message::ChannelSuccess(_)
            | Message::ChannelFailure(_)
            | Message::RequestSuccess(_)
            | Message::RequestFailure(_) => Ok(()),
            _ => self.unimplemented().await,
        }
    }

    /// OpenSSH PROTOCOL §1.9: a PONG copying the PING's data, in order, held during our rekeys
    /// like every message of 50 and up.
    async fn on_ping(&mut self, ping: sshspec_wire::msg::Unknown) -> Step {
        let mut body = ping.body;
        if self.dev("pong-data-altered") {
            body = Rest(Bytes(vec![0, 0, 0, 0]));
        }
        let pong = Message::Unknown(sshspec_wire::msg::Unknown { msg_type: PONG, body });
        if self.dev("pongs-reordered") && self.held_pong.is_none() {
            self.held_pong = Some(pong);
            return Ok(());
        }
        self.send(pong).await?;
        if let Some(first) = self.held_pong.take() {
            self.send(first).await?;
        }
        Ok(())
    }

    // ---- key exchange ----

    async fn on_kexinit(&mut self, k: KexInit) -> Step {
        if self.in_kex && !self.dev("strict-kex-lenient") {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "a second KEXINIT during a key exchange").await;
        }
        if self.first_kex_done && self.dev("rekey-refused") {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "no key re-exchange").await;
        }
        self.in_kex = true;
        self.replied = false;
        if self.t.kex.ours.is_none() {
            self.send_kexinit().await?;
        }
        if !self.first_kex_done
            && self.t.kex.strict
            && self.first_not_kexinit
            && !self.dev("strict-kex-late-kexinit-accepted")
        {
            return self
                .disconnect(DisconnectReason::PROTOCOL_ERROR, "strict kex: KEXINIT was not the first message")
                .await;
        }
        self.deviate_negotiation(&k);
        match &self.t.kex.negotiated {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let e = e.to_string();
                if self.dev("no-common-algorithm-kept-open") {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return Err(Closed);
                }
                return self.disconnect(DisconnectReason::KEY_EXCHANGE_FAILED, &e).await;
            }
            None => return Err(Closed),
        }
        if k.first_kex_packet_follows.0 != 0 {
            // RFC 4253 §7: the guess is right when the client's first kex method and host key
            // algorithm are also ours.
            let first = |l: &NameList| l.iter().next().map(str::to_owned);
            let ours = self.t.kex.ours.as_ref().map(|(o, _)| o.clone()).unwrap_or_default();
            let right = first(&k.kex_algorithms) == first(&ours.kex_algorithms)
                && first(&k.server_host_key_algorithms) == first(&ours.server_host_key_algorithms);
            self.skip_guess = if self.dev("wrong-guess-used") {
                false
            } else if self.dev("right-guess-ignored") {
                true
            } else {
                !right
            };
        }
        Ok(())
    }

    /// Deviations that change what the two KEXINITs agree on.
    fn deviate_negotiation(&mut self, theirs: &KexInit) {
        let Some((ours, _)) = self.t.kex.ours.clone() else { return };
        if self.dev("strict-kex-names-mixed")
            && !self.first_kex_done
            && theirs.kex_algorithms.contains(kex::KEX_STRICT_C_STANDARD)
        {
            self.t.kex.strict = true;
        }
        let server_first = |pick: &mut String, client: &NameList, server: &NameList| {
            if let Some(s) = server.iter().find(|s| client.contains(s)) {
                *pick = s.to_owned();
            }
        };
        if self.dev("names-case-insensitive") && matches!(self.t.kex.negotiated, Some(Err(_))) {
            let lower = |l: &NameList| NameList::new(l.iter().map(|n| n.to_ascii_lowercase()));
            let mut c = theirs.clone();
            c.kex_algorithms = lower(&c.kex_algorithms);
            c.server_host_key_algorithms = lower(&c.server_host_key_algorithms);
            c.encryption_algorithms_client_to_server = lower(&c.encryption_algorithms_client_to_server);
            c.encryption_algorithms_server_to_client = lower(&c.encryption_algorithms_server_to_client);
            c.mac_algorithms_client_to_server = lower(&c.mac_algorithms_client_to_server);
            c.mac_algorithms_server_to_client = lower(&c.mac_algorithms_server_to_client);
            self.t.kex.negotiated = Some(negotiate::negotiate(&c, &ours));
        }
        if self.dev("ext-info-marker-negotiated")
            && theirs.kex_algorithms.contains("ext-info-s")
            && let Some(Err(_)) = &self.t.kex.negotiated
        {
            let mut c = theirs.clone();
            c.kex_algorithms = NameList::new(["curve25519-sha256"]);
            if let Ok(mut n) = negotiate::negotiate(&c, &ours) {
                n.kex = "ext-info-s".into();
                self.t.kex.negotiated = Some(Ok(n));
            }
        }
        let Some(Ok(n)) = &mut self.t.kex.negotiated else { return };
        let dev = |name: &str| self.shared.settings.deviates(name);
        if dev("server-kex-preference") {
            let methods = |l: &NameList| NameList::new(l.iter().filter(|x| !negotiate::is_marker(x)));
            server_first(&mut n.kex, &methods(&theirs.kex_algorithms), &methods(&ours.kex_algorithms));
        }
        if dev("server-host-key-preference") {
            server_first(&mut n.host_key, &theirs.server_host_key_algorithms, &ours.server_host_key_algorithms);
        }
        if dev("server-cipher-preference") {
            server_first(
                &mut n.cipher_c2s,
                &theirs.encryption_algorithms_client_to_server,
                &ours.encryption_algorithms_client_to_server,
            );
            server_first(
                &mut n.cipher_s2c,
                &theirs.encryption_algorithms_server_to_client,
                &ours.encryption_algorithms_server_to_client,
            );
        }
        if dev("server-compression-preference") {
            server_first(
                &mut n.compression_c2s,
                &theirs.compression_algorithms_client_to_server,
                &ours.compression_algorithms_client_to_server,
            );
            server_first(
                &mut n.compression_s2c,
                &theirs.compression_algorithms_server_to_client,
                &ours.compression_algorithms_server_to_client,
            );
        }
        if dev("one-cipher-both-ways") {
            n.cipher_s2c = n.cipher_c2s.clone();
        }
        if dev("one-mac-both-ways") {
            n.mac_s2c = n.mac_c2s.clone();
        }
        if dev("server-mac-preference") {
            if let Some(m) = &mut n.mac_c2s {
                server_first(m, &theirs.mac_algorithms_client_to_server, &ours.mac_algorithms_client_to_server);
            }
            if let Some(m) = &mut n.mac_s2c {
                server_first(m, &theirs.mac_algorithms_server_to_client, &ours.mac_algorithms_server_to_client);
            }
        }
    }

    async fn on_kex_init_message(&mut self) -> Step {
        if std::mem::take(&mut self.skip_guess) {
            self.t.log.note("the client's guess was wrong: its first key exchange packet is ignored");
            self.t.kex.client_value = None;
            return Ok(());
        }
        if !self.in_kex || (self.replied && !self.dev("strict-kex-second-init-answered")) {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "an unexpected key exchange init message").await;
        }
        let Some(n) = self.t.kex.negotiated().cloned() else { return Err(Closed) };
        let kind =
            HOST_KEY_ALGORITHMS.iter().find(|(a, _)| *a == n.host_key).map(|(_, k)| *k).unwrap_or(KeyKind::Ed25519);
        let host = self.shared.host;
        let foreign = kind != KeyKind::Ed25519 && self.dev("host-key-of-another-type");
        let blob = host.blob(if foreign { KeyKind::Ed25519 } else { kind });
        // The host key of the initial exchange, which host-bound publickey requests must name.
        if !self.first_kex_done {
            self.t.kex.host_key = Some(blob.clone());
        }
        let (wrong_data, sha1_rsa, own_name) = (
            self.dev("signature-over-wrong-data"),
            self.dev("rsa-sha2-signed-with-sha1"),
            self.dev("signature-named-apart-from-key"),
        );
        let sign = |alg: &str, h: &[u8]| {
            let mut data = h.to_vec();
            if wrong_data {
                data[0] ^= 1;
            }
            let alg = match alg {
                "rsa-sha2-256" | "rsa-sha2-512" if sha1_rsa => "ssh-rsa",
                "ssh-ed25519" if own_name => "ed25519",
                other => other,
            };
            host.sign(kind, alg, &data)
        };
        let reply = match self.t.server_kex_reply(&blob, sign) {
            Ok(r) => r,
            Err(e) if self.dev("dh-e-unchecked") || self.dev("ecdh-point-unchecked") => {
                self.t.log.note(format!("answering anyway: {e}"));
                let (k_s, junk) = (Bytes(blob), Bytes(vec![0x42; 32]));
                match n.kex.as_str() {
                    k if k.starts_with("diffie-hellman-group-exchange") => {
                        Message::KexDhGexReply(KexDhGexReply { k_s, f: Bytes(vec![2]), signature: junk })
                    }
                    k if k.starts_with("diffie-hellman") => {
                        Message::KexdhReply(KexdhReply { k_s, f: Bytes(vec![2]), signature: junk })
                    }
                    _ => Message::KexEcdhReply(KexEcdhReply { k_s, q_s: Bytes(vec![9; 32]), signature: junk }),
                }
            }
            Err(e) => {
                let reason = if self.dev("kex-abort-protocol-error") {
                    DisconnectReason::PROTOCOL_ERROR
                } else {
                    DisconnectReason::KEY_EXCHANGE_FAILED
                };
                return self.disconnect(reason, &e.to_string()).await;
            }
        };
        self.replied = true;
        self.t.send(&reply).await?;
        self.t.send(&Message::NewKeys(NewKeys {})).await?;
        if self.dev("short-padding-sent") {
            let (ignore, framing) = self.t.short_padded_ignore();
            self.t.send_with(&ignore, &[], &framing).await?;
        }
        let wants_ext_info = n.ext_info_c || self.dev("ext-info-unasked");
        if !self.first_kex_done && wants_ext_info && !self.dev("no-ext-info") {
            let algs = match (self.dev("server-sig-algs-incomplete"), self.dev("no-ecdsa-key-format")) {
                (true, _) => "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512",
                (_, true) => "ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
                _ => "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
            };
            let ext = |name: &str, value: &str| Extension {
                name: Bytes(name.as_bytes().to_vec()),
                value: Bytes(value.as_bytes().to_vec()),
            };
            let hostbound = if self.dev("hostbound-version-1") { "1" } else { "0" };
            let no_flow_control = if self.dev("no-flow-control-bad-value") { "yes" } else { NO_FLOW_CONTROL };
            let extensions = vec![
                ext("server-sig-algs", algs),
                ext("ping@openssh.com", "0"),
                ext("publickey-hostbound@openssh.com", hostbound),
                ext("no-flow-control", no_flow_control),
            ];
            self.t.send(&Message::ExtInfo(ExtInfo { extensions })).await?;
        }
        if !self.first_kex_done && self.dev("hostkeys-before-login") {
            self.announce_host_keys().await?;
        }
        for m in std::mem::take(&mut self.held) {
            self.t.send(&m).await?;
        }
        Ok(())
    }

    /// RFC 4419 §3: the group for a group exchange, before the client's e.
    async fn on_gex_request(&mut self) -> Step {
        let gex = self.t.kex.negotiated().is_some_and(|n| n.kex.starts_with("diffie-hellman-group-exchange"));
        if !self.in_kex || self.replied || !gex {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "an unexpected group exchange request").await;
        }
        let request = self.t.kex.gex_request;
        let group = if self.dev("gex-group-ignores-bounds") {
            Transport::gex_group(kex::modp::GROUP14)
        } else if self.dev("gex-groups-to-4096")
            && request.is_some_and(|r| ![2048, 3072, 4096].iter().any(|b| r.allows(*b)))
        {
            Err(TransportError::Target("no group of the size asked for (ours go up to 4096 bits)".into()))
        } else if self.dev("gex-largest-not-returned") && request.is_some_and(|r| r.n > 4096) {
            Err(TransportError::Target("no group of the preferred size (ours go up to 4096 bits)".into()))
        } else if self.dev("small-gex-group") && request.is_some_and(|r| r.allows(1024) && r.n <= 1024) {
            Transport::gex_group(kex::modp::GROUP1)
        } else {
            self.t.server_gex_group(self.dev("gex-largest-allowed"))
        };
        let group = match group {
            Ok(Message::KexDhGexGroup(mut g)) if self.dev("gex-group-not-safe") => {
                // The MODP primes end in 64 one bits: p - 2 is odd, and (almost surely) not prime.
                if let Some(last) = g.p.0.last_mut() {
                    *last -= 2;
                }
                Ok(Message::KexDhGexGroup(g))
            }
            other => other,
        };
        match group {
            Ok(group) => {
                self.t.send(&group).await?;
                Ok(())
            }
            Err(e) => self.disconnect(DisconnectReason::KEY_EXCHANGE_FAILED, &e.to_string()).await,
        }
    }

    async fn on_newkeys(&mut self) -> Step {
        if !self.in_kex || !self.replied {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "NEWKEYS before the key exchange reply").await;
        }
        self.in_kex = false;
        self.first_kex_done = true;
        if let Some(r) = self.rogue.take() {
            self.service = true;
            return self.on_userauth(r).await;
        }
        Ok(())
    }

    /// Starts a key exchange of ours when a limit is reached (RFC 4253 §9).
    async fn maybe_rekey(&mut self) -> Step {
        if !self.first_kex_done || !self.t.kex.idle() || self.in_kex || self.dev("never-rekeys") {
            return Ok(());
        }
        // RFC 8308 §3.2.1: no key re-exchange of ours before the user is authenticated.
        if !self.authed && !self.dev("rekeys-before-login") {
            return Ok(());
        }
        let s = &self.shared.settings;
        let data = self.t.tx.payload.max(self.t.rx.payload) >= s.rekey_bytes;
        let time = match (s.rekey_interval, self.t.kex.completed_at) {
            (Some(i), Some(at)) => at.elapsed() >= i,
            _ => false,
        };
        if data || time {
            self.send_kexinit().await?;
        }
        Ok(())
    }

    // ---- authentication ----

    async fn on_service_request(&mut self, r: ServiceRequest) -> Step {
        if r.service.0 == b"ssh-userauth" || self.dev("unknown-service-accepted") {
            self.service = true;
            let name = if self.dev("service-accept-wrong-name") { b"ssh-connection".to_vec() } else { r.service.0 };
            return self.send(Message::ServiceAccept(ServiceAccept { service: Bytes(name) })).await;
        }
        self.disconnect(DisconnectReason::SERVICE_NOT_AVAILABLE, "no such service").await
    }

    fn methods_left(&self) -> NameList {
        let s = &self.shared.settings;
        let left: Vec<&String> = if s.chain.is_empty() || self.dev("completed-method-listed") {
            s.methods.iter().collect()
        } else {
            s.chain.iter().filter(|m| !self.passed.contains(m)).collect()
        };
        let mut names: Vec<&str> = left.iter().map(|m| m.as_str()).collect();
        if self.dev("none-lists-none") {
            names.push("none");
        }
        if self.dev("publickey-unlisted") {
            names.retain(|m| *m != "publickey");
        }
        if self.dev("useless-method-listed") && !names.contains(&"password") {
            names.push("password");
        }
        NameList::new(names)
    }

    async fn failure(&mut self, counted: bool) -> Step {
        if counted {
            self.failures += 1;
        }
        if self.dev("pipelined-failures-dropped") {
            // A slow backend (PAM, say) that answers only the last of the requests queued behind it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.t.packet_ready() {
                self.t.log.note("no FAILURE: another message is already waiting");
                return Ok(());
            }
        }
        if self.dev("debug-chatter") {
            let m = Debug {
                always_display: Bool(0),
                message: Bytes(b"sshspec fixture: no authorized key for this user in /home/sshspec/.ssh".to_vec()),
                language: Bytes::default(),
            };
            self.send(Message::Debug(m)).await?;
        }
        if self.dev("ext-info-during-auth") {
            // What OpenSSH PROTOCOL §1.11 allows only to a client that sent ext-info-in-auth@openssh.com.
            let extensions = vec![Extension {
                name: Bytes(b"server-sig-algs".to_vec()),
                value: Bytes(b"ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256".to_vec()),
            }];
            self.send(Message::ExtInfo(ExtInfo { extensions })).await?;
        }
        let partial = Bool(u8::from(self.dev("partial-success-on-failure")));
        self.send(Message::UserauthFailure(UserauthFailure { methods: self.methods_left(), partial_success: partial }))
            .await
    }

    /// A method succeeded for `user`: login, or partial success while the chain has more.
    async fn passed(&mut self, user: &[u8], method: &str) -> Step {
        let chain = &self.shared.settings.chain;
        if !chain.is_empty() {
            if self.passed_user.as_deref().is_some_and(|u| u != user) && !self.dev("partial-success-kept-across-users")
            {
                self.passed.clear();
            }
            self.passed_user = Some(user.to_vec());
            let next = chain.iter().find(|m| !self.passed.contains(m));
            if next.map(String::as_str) != Some(method) {
                return self.failure(true).await;
            }
            self.passed.push(method.to_owned());
            if self.passed.len() < chain.len() {
                let partial = Bool(u8::from(!self.dev("partial-success-unset")));
                let m = UserauthFailure { methods: self.methods_left(), partial_success: partial };
                return self.send(Message::UserauthFailure(m)).await;
            }
        }
        self.authed = true;
        self.authed_at = Some(Instant::now());
        self.send(Message::UserauthSuccess(UserauthSuccess {})).await?;
        if self.dev("banner-after-success") {
            let m = UserauthBanner { message: Bytes(b"welcome\r\n".to_vec()), language: Bytes::default() };
            self.send(Message::UserauthBanner(m)).await?;
        }
        if !self.dev("hostkeys-before-login") {
            self.announce_host_keys().await?;
        }
        Ok(())
    }

    /// OpenSSH PROTOCOL §2.5: every host key, after login, in a request that wants no reply.
    async fn announce_host_keys(&mut self) -> Step {
        let mut data = Vec::new();
        for kind in KeyKind::ALL {
            put_string(&mut data, &self.shared.host.blob(kind));
        }
        let request = GlobalRequestKind::Other { name: Bytes(hostkeys::ANNOUNCE.to_vec()), data: Rest(Bytes(data)) };
        self.send(Message::GlobalRequest(GlobalRequest { want_reply: Bool(0), request })).await
    }

    /// The proofs `hostkeys-prove-00@openssh.com` asks for, in the order of its keys; `None` when
    /// one of them is not ours.
    fn prove_host_keys(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut r = sshspec_wire::Reader::new(data);
        let mut asked = Vec::new();
        while !r.is_empty() {
            let blob = r.string("host key").ok()?;
            asked.push(*KeyKind::ALL.iter().find(|k| self.shared.host.blob(**k) == blob)?);
        }
        if self.dev("hostkeys-proofs-in-own-order") {
            asked.sort_by_key(|k| KeyKind::ALL.iter().position(|x| x == k));
        }
        let session_id = self.t.kex.session_id.clone().unwrap_or_default();
        let mut out = Vec::new();
        for kind in asked {
            let blob = self.shared.host.blob(kind);
            let signed = if self.dev("hostkeys-proof-without-session-id") {
                let mut d = Vec::new();
                put_string(&mut d, hostkeys::PROVE);
                put_string(&mut d, &blob);
                d
            } else {
                hostkeys::signed_data(&session_id, &blob)
            };
            let alg = hostkey::key_type(&blob)
                .map(|t| if t == hostkey::SSH_RSA { hostkey::RSA_SHA2_512.into() } else { t })?;
            put_string(&mut out, &self.shared.host.sign(kind, &alg, &signed).ok()?);
        }
        Some(out)
    }

    async fn on_userauth(&mut self, r: UserauthRequest) -> Step {
        if !self.service {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "USERAUTH_REQUEST before ssh-userauth").await;
        }
        if self.authed {
            // RFC 4252 §5.1: requests after success are ignored.
            if self.dev("success-repeated") {
                return self.send(Message::UserauthSuccess(UserauthSuccess {})).await;
            }
            if self.dev("requests-after-success-failed") {
                return self.failure(false).await;
            }
            return Ok(());
        }
        if self.prompting.is_some() {
            if self.dev("keyboard-interactive-not-abandoned") {
                self.t.log.note("ignored: a request in the middle of keyboard-interactive");
                return Ok(());
            }
            if self.dev("aborted-method-failure") {
                self.failure(false).await?;
            }
        }
        self.prompting = None;
        let counted = !matches!(r.method, AuthMethod::None {});
        if counted && self.failures >= self.shared.settings.max_auth_tries && !self.dev("unlimited-auth-tries") {
            return self
                .disconnect(DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE, "too many authentication failures")
                .await;
        }
        if !r.user.0.is_ascii() && self.dev("non-ascii-user-fatal") {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "user name not ASCII").await;
        }
        let creds = &self.shared.creds;
        let user_known = r.user.0 == creds.user.as_bytes()
            || self.dev("any-user-accepted")
            || (self.dev("user-names-case-insensitive") && r.user.0.eq_ignore_ascii_case(creds.user.as_bytes()))
            || (!self.passed.is_empty() && self.dev("partial-success-kept-across-users"));
        if r.service.0 != b"ssh-connection" && self.dev("unknown-service-silent-close") {
            return Err(Closed);
        }
        let denied = self.shared.settings.denies(&r.user.0) && !self.dev("deny-policy-ignored");
        let right_user =
            user_known && !denied && (r.service.0 == b"ssh-connection" || self.dev("unknown-service-login"));
        let offered = |m: &str| self.shared.settings.methods.iter().any(|x| x == m);
        match r.method {
            AuthMethod::Password { .. }
                if self.t.rx.cipher_name() == cipher::NONE && !self.dev("password-without-confidentiality") =>
            {
                // RFC 4252 §8: no confidentiality, no password authentication.
                self.failure(true).await
            }
            AuthMethod::Password { change, password, new_password } if offered("password") => {
                let right = right_user && password.0 == creds.password.as_bytes();
                let expired = self.shared.settings.password_expired && !self.password_changed;
                if change.0 != 0 && self.dev("password-change-unanswered") {
                    return Ok(());
                }
                match (right, change.0 != 0, expired && !self.dev("expired-password-accepted")) {
                    (true, false, true) => {
                        let m = UserauthPasswdChangereq {
                            prompt: Bytes(b"Password expired".to_vec()),
                            language: Bytes::default(),
                        };
                        self.send(Message::UserauthPasswdChangereq(m)).await
                    }
                    (true, true, true) if new_password.is_some() => {
                        self.password_changed = true;
                        self.passed(&r.user.0, "password").await
                    }
                    (true, false, false) => self.passed(&r.user.0, "password").await,
                    _ => self.failure(true).await,
                }
            }
            AuthMethod::Publickey { signed, algorithm, key, signature } if offered("publickey") => {
                let request = Signed { algorithm, key, host_key: None };
                self.on_publickey(&r.user.0, &r.service.0, right_user, signed, request, signature).await
            }
            AuthMethod::PublickeyHostbound { signed, algorithm, key, host_key, signature } if offered("publickey") => {
                // PROTOCOL §3.1: bound to the host key of the initial key exchange, as OpenSSH
                // checks (it ends the connection; a refusal is as good).
                let ours = self.t.kex.host_key.clone().unwrap_or_default();
                if host_key.0 != ours && !self.dev("hostbound-any-host-key") {
                    return self.failure(true).await;
                }
                let request = Signed { algorithm, key, host_key: Some(host_key) };
                self.on_publickey(&r.user.0, &r.service.0, right_user, signed, request, signature).await
            }
            AuthMethod::Hostbased { algorithm, host_key, client_host, client_user, signature }
                if offered("hostbased") =>
            {
                // RFC 4252 §9: the host key must be the named host's, the user must be allowed
                // from there, and the signature must verify. The client's address names
                // `hostbased_host` alone, so another trusted name fails the address check.
                let keys = &self.shared.creds.keys;
                let settings = &self.shared.settings;
                let named = |h: &Option<String>| h.as_deref().is_some_and(|h| h.as_bytes() == client_host.0);
                let trusted = named(&settings.hostbased_host)
                    || (named(&settings.hostbased_elsewhere) && self.dev("hostbased-address-unchecked"))
                    || self.dev("hostbased-host-unchecked");
                let known = KeyKind::ALL.iter().any(|k| keys.blob(*k) == host_key.0);
                let method = SignedMethod::Hostbased {
                    algorithm: &algorithm.0,
                    host_key: &host_key.0,
                    client_host: &client_host.0,
                    client_user: &client_user.0,
                };
                let session_id = self.t.kex.session_id.clone().unwrap_or_default();
                let data = signed_request(&session_id, &r.user.0, &r.service.0, method);
                let alg = String::from_utf8_lossy(&algorithm.0).to_string();
                let valid = hostkey::verify(&alg, &host_key.0, &signature.0, &data).is_ok();
                if right_user && client_user.0 == r.user.0 && trusted && known && valid {
                    self.passed(&r.user.0, "hostbased").await
                } else {
                    self.failure(true).await
                }
            }
            AuthMethod::KeyboardInteractive { language, .. } if offered("keyboard-interactive") => {
                if r.user.0 != creds.user.as_bytes() && self.dev("keyboard-interactive-unknown-user-refused") {
                    return self.failure(true).await;
                }
                if !language.0.is_empty() && self.dev("language-tag-refused") {
                    return self.failure(true).await;
                }
                let prompt = if self.shared.settings.password_expired && !self.password_changed {
                    "Current password: "
                } else {
                    "Password: "
                };
                self.prompting = Some(r.user.0);
                self.prompt(prompt).await?;
                if self.dev("second-info-request-early") {
                    self.prompt(prompt).await?;
                }
                Ok(())
            }
            AuthMethod::None {} if right_user && self.dev("none-accepted") => self.passed(&r.user.0, "none").await,
            AuthMethod::None {}
                if right_user && self.shared.settings.empty_password && !self.dev("empty-password-refused") =>
            {
                self.passed(&r.user.0, "none").await
            }
            AuthMethod::Other { .. } if self.dev("unknown-method-disconnects") => {
                self.disconnect(DisconnectReason::PROTOCOL_ERROR, "unknown method").await
            }
            _ => self.failure(counted).await,
        }
    }

    /// A keyboard-interactive round of one prompt.
    async fn prompt(&mut self, prompt: &str) -> Step {
        let prompt = if self.dev("empty-prompt") {
            ""
        } else if self.dev("long-prompt") {
            "Password for the sshspec test account on this host: "
        } else {
            prompt
        };
        let p = Prompt { prompt: Bytes(prompt.as_bytes().to_vec()), echo: Bool(0) };
        let m = UserauthInfoRequest {
            name: Bytes::default(),
            instruction: Bytes::default(),
            language: Bytes(if self.dev("prompt-language-tag") { b"en-US".to_vec() } else { Vec::new() }),
            prompts: vec![p],
        };
        self.send(Message::UserauthInfoRequest(m)).await
    }

    async fn on_publickey(
        &mut self,
        user: &[u8],
        service: &[u8],
        right_user: bool,
        signed: Bool,
        request: Signed,
        signature: Option<Bytes>,
    ) -> Step {
        let Signed { algorithm, key, host_key } = request;
        let alg = String::from_utf8_lossy(&algorithm.0).to_string();
        // The key type each algorithm signs with; ssh-rsa (SHA-1) is not in our server-sig-algs.
        let fits = match alg.as_str() {
            hostkey::SSH_ED25519 | hostkey::ECDSA_NISTP256 => {
                hostkey::key_type(&key.0).as_deref() == Some(alg.as_str())
            }
            hostkey::RSA_SHA2_256 | hostkey::RSA_SHA2_512 => {
                hostkey::key_type(&key.0).as_deref() == Some(hostkey::SSH_RSA)
            }
            _ => self.dev("unknown-key-algorithm-accepted") && hostkey::key_type(&key.0).is_some(),
        };
        let keys = &self.shared.creds.keys;
        let known_key = KeyKind::AUTHORIZED.iter().any(|k| keys.blob(*k) == key.0)
            || self.shared.settings.authorized_keys.contains(&key.0)
            || self.dev("unauthorized-key-accepted");
        let authorized = right_user && known_key;
        if signed.0 == 0 {
            if fits && authorized {
                let echoed = if self.dev("pk-ok-names-key-type") {
                    Bytes(hostkey::key_type(&key.0).unwrap_or_default().into_bytes())
                } else {
                    algorithm
                };
                return self.send(Message::UserauthPkOk(UserauthPkOk { algorithm: echoed, key })).await;
            }
            return self.failure(true).await;
        }
        if !(fits && authorized) {
            return self.failure(true).await;
        }
        let session_id = self.t.kex.session_id.clone().unwrap_or_default();
        let method = SignedMethod::Publickey {
            algorithm: &algorithm.0,
            key: &key.0,
            host_key: host_key.as_ref().map(|h| &h.0[..]),
        };
        let data = signed_request(&session_id, user, service, method);
        let valid = signature.as_ref().is_some_and(|s| hostkey::verify(&alg, &key.0, &s.0, &data).is_ok())
            || (self.dev("rsa-signature-parsed")
                && signature.as_ref().is_some_and(|s| parsed_verify(&key.0, &alg, &s.0, &data)));
        if valid || self.dev("signature-unchecked") {
            self.passed(user, "publickey").await
        } else {
            self.failure(true).await
        }
    }
}

/// What a publickey request names and signs, beside the common fields: the host key for the
/// host-bound form (PROTOCOL §3.1).
struct Signed {
    algorithm: Bytes,
    key: Bytes,
    host_key: Option<Bytes>,
}

impl Conn {
    async fn on_info_response(&mut self, r: UserauthInfoResponse) -> Step {
        let Some(user) = self.prompting.take() else { return Ok(()) };
        let creds = &self.shared.creds;
        let expired = self.shared.settings.password_expired && !self.password_changed;
        let answer = match r.responses.as_slice() {
            [p] => Some(p),
            [p, ..] if self.dev("num-responses-unchecked") => Some(p),
            _ => None,
        };
        let right = user == creds.user.as_bytes() && answer.is_some_and(|p| p.0 == creds.password.as_bytes());
        if right && expired {
            // The current password was right: now the new one.
            self.password_changed = true;
            self.prompting = Some(user);
            return self.prompt("New password: ").await;
        }
        let changed = self.password_changed
            && self.shared.settings.password_expired
            && r.responses.len() == 1
            && user == creds.user.as_bytes();
        if right || changed {
            self.passed(&user, "keyboard-interactive").await
        } else if self.dev("keyboard-interactive-reprompt") {
            self.prompting = Some(user);
            self.prompt("Password: ").await
        } else {
            self.failure(true).await
        }
    }

    // ---- connection ----

    async fn on_global_request(&mut self, g: GlobalRequest) -> Step {
        if self.dev("busy-while-program-runs") && self.channels.values().any(|c| c.job.is_some()) {
            self.t.log.note("not answered: a global request while a program runs");
            return Ok(());
        }
        let forward = matches!(g.request, GlobalRequestKind::TcpipForward { .. });
        // The reply's data: the port bound, when the client let us choose it (RFC 4254 §7.1).
        let granted: Option<Vec<u8>> = match g.request {
            GlobalRequestKind::TcpipForward { .. }
                if !self.shared.settings.tcp_forwarding && !self.dev("forwarding-policy-ignored") =>
            {
                self.t.log.note("tcpip-forward refused: forwarding is switched off");
                None
            }
            GlobalRequestKind::TcpipForward { address, port } => match self.forwards.listen(&address.0, port).await {
                Ok(bound) => Some(if port == 0 { bound.to_be_bytes().to_vec() } else { Vec::new() }),
                Err(why) => {
                    self.t.log.note(format!("tcpip-forward refused: {why}"));
                    None
                }
            },
            GlobalRequestKind::CancelTcpipForward { address, port } => {
                self.forwards.cancel(&forward::Listen::Tcp { address: address.0, port }).then(Vec::new)
            }
            GlobalRequestKind::StreamlocalForward { socket_path } => match self.forwards.listen_unix(&socket_path.0) {
                Ok(()) => Some(Vec::new()),
                Err(why) => {
                    self.t.log.note(format!("streamlocal-forward refused: {why}"));
                    None
                }
            },
            GlobalRequestKind::CancelStreamlocalForward { socket_path } => {
                self.forwards.cancel(&forward::Listen::Unix { path: socket_path.0 }).then(Vec::new)
            }
            GlobalRequestKind::Other { name, data } if name.as_slice() == hostkeys::PROVE => {
                self.prove_host_keys(&data.0.0)
            }
            GlobalRequestKind::Other { .. } if self.dev("unknown-global-request-succeeds") => Some(Vec::new()),
            GlobalRequestKind::Other { .. } => None,
        };
        if g.want_reply.0 == 0 && !self.dev("global-reply-always") {
            return Ok(());
        }
        let m = match granted {
            Some(data) => Message::RequestSuccess(RequestSuccess { data: Rest(Bytes(data)) }),
            None => Message::RequestFailure(RequestFailure {}),
        };
        if self.dev("global-replies-reordered") {
            // A forward's reply waits for the next request's, which goes out first.
            if forward && self.held_global.is_none() {
                self.held_global = Some(m);
                return Ok(());
            }
            if let Some(first) = self.held_global.take() {
                self.send(m).await?;
                return self.send(first).await;
            }
        }
        self.send(m).await
    }

    /// A connection to a forwarded port is opened to the client; bytes read from a relayed
    /// socket wait for the channel's window.
    async fn on_forward(&mut self, e: forward::Event) -> Step {
        match e {
            forward::Event::Accepted { on, stream, origin } => {
                let id = self.next_channel;
                self.next_channel += 1;
                self.forwards.hold(id, stream);
                let channel_type = match on {
                    forward::Listen::Tcp { address, port } => ChannelType::ForwardedTcpip {
                        address_connected: Bytes(address),
                        port_connected: port,
                        originator_address: Bytes(origin.map(|o| o.ip().to_string()).unwrap_or_default().into_bytes()),
                        originator_port: origin.map_or(0, |o| u32::from(o.port())),
                    },
                    // OpenSSH PROTOCOL §2.4: the path the client forwarded, and an empty reserved string.
                    forward::Listen::Unix { path } => ChannelType::ForwardedStreamlocal {
                        socket_path: Bytes(if self.dev("forwarded-streamlocal-path-missing") {
                            Vec::new()
                        } else {
                            path
                        }),
                        reserved: Bytes::default(),
                    },
                };
                let open = ChannelOpen {
                    channel_type,
                    sender_channel: id,
                    initial_window_size: WINDOW,
                    maximum_packet_size: MAX_PACKET,
                };
                self.send(Message::ChannelOpen(open)).await
            }
            forward::Event::Read { channel, data } => {
                if let Some(job) = self.channels.get_mut(&channel).and_then(|c| c.job.as_mut()) {
                    job.open &= !data.is_empty();
                    job.stdout.extend(data);
                }
                Ok(())
            }
        }
    }

    /// Our channel `id`, open to the client's `peer`, relays its socket.
    fn start_relay(&mut self, id: u32, peer: u32, window: u32, max_packet: u32) {
        let job = Job {
            program: None,
            stdout: VecDeque::new(),
            stderr: VecDeque::new(),
            zeros: 0,
            reads_stdin: false,
            open: true,
            after_eof: Vec::new(),
        };
        let ch = Channel {
            peer,
            window: u64::from(window),
            max_packet,
            consumed: 0,
            client_window: u64::from(WINDOW),
            job: Some(job),
            stdin_eof: false,
            sent_eof: false,
            sent_close: false,
        };
        self.channels.insert(id, ch);
        self.forwards.start(id);
    }

    async fn on_channel_open(&mut self, o: ChannelOpen) -> Step {
        let refuse = |reason, why: &str| {
            Message::ChannelOpenFailure(ChannelOpenFailure {
                recipient_channel: o.sender_channel,
                reason,
                description: Bytes(why.as_bytes().to_vec()),
                language: Bytes::default(),
            })
        };
        if let ChannelType::DirectStreamlocal { socket_path, reserved, reserved_port } = &o.channel_type {
            // OpenSSH PROTOCOL §2.4: the reserved fields are ignored.
            if (!reserved.0.is_empty() || *reserved_port != 0) && self.dev("streamlocal-reserved-checked") {
                let why = "the reserved fields must be empty";
                return self.send(refuse(ChannelOpenFailureReason::ADMINISTRATIVELY_PROHIBITED, why)).await;
            }
            let stream = match forward::Forwards::connect_unix(&socket_path.0).await {
                Ok(stream) => stream,
                Err(why) => {
                    let reason = if self.dev("local-type-failure-unknown") {
                        ChannelOpenFailureReason::UNKNOWN_CHANNEL_TYPE
                    } else {
                        ChannelOpenFailureReason::CONNECT_FAILED
                    };
                    return self.send(refuse(reason, &why)).await;
                }
            };
            let id = self.next_channel;
            self.next_channel += 1;
            self.forwards.hold(id, stream);
            // Our end is confirmed at once: the relay starts as for a forwarded connection.
            self.start_relay(id, o.sender_channel, o.initial_window_size, o.maximum_packet_size);
            let m = ChannelOpenConfirmation {
                recipient_channel: o.sender_channel,
                sender_channel: id,
                initial_window_size: WINDOW,
                maximum_packet_size: MAX_PACKET,
                data: Rest::default(),
            };
            return self.send(Message::ChannelOpenConfirmation(m)).await;
        }
        let accepted = match o.channel_type {
            ChannelType::Session {} => true,
            ChannelType::X11 { .. } => self.dev("x11-open-accepted"),
            ChannelType::ForwardedTcpip { .. } => self.dev("forwarded-tcpip-open-accepted"),
            _ => false,
        };
        match o.channel_type {
            _ if accepted => {}
            ChannelType::Other { .. } if self.dev("unknown-channel-type-unanswered") => return Ok(()),
            ChannelType::Other { .. } => {
                let reason = if self.dev("unknown-channel-type-wrong-reason") {
                    ChannelOpenFailureReason::ADMINISTRATIVELY_PROHIBITED
                } else {
                    ChannelOpenFailureReason::UNKNOWN_CHANNEL_TYPE
                };
                return self.send(refuse(reason, "unknown channel type")).await;
            }
            _ => return self.send(refuse(ChannelOpenFailureReason::ADMINISTRATIVELY_PROHIBITED, "not offered")).await,
        }
        // RFC 8308 §3.3: one channel at a time without flow control, but one after another.
        if self.flow_control_off() {
            let busy = !self.channels.is_empty() && !self.dev("no-flow-control-channels-at-once");
            // Channel ids are handed out in turn, so a non-zero next id means one was opened.
            let spent = self.next_channel > 0 && self.dev("no-flow-control-one-channel-only");
            if busy || spent {
                let why = "one channel at a time without flow control";
                return self.send(refuse(ChannelOpenFailureReason::RESOURCE_SHORTAGE, why)).await;
            }
        }
        let id = self.next_channel;
        self.next_channel += 1;
        self.channels.insert(
            id,
            Channel {
                peer: o.sender_channel,
                window: if self.dev("window-signed-32-bit") {
                    (o.initial_window_size as i32).max(0) as u64
                } else {
                    u64::from(o.initial_window_size)
                },
                max_packet: o.maximum_packet_size,
                consumed: 0,
                client_window: u64::from(WINDOW),
                job: None,
                stdin_eof: false,
                sent_eof: false,
                sent_close: false,
            },
        );
        let m = ChannelOpenConfirmation {
            recipient_channel: o.sender_channel,
            sender_channel: id,
            initial_window_size: if self.dev("window-unlimited") { u32::MAX } else { WINDOW },
            maximum_packet_size: if self.dev("small-maximum-packet") {
                16 * 1024
            } else if self.dev("long-packets-refused") {
                64 * 1024
            } else {
                MAX_PACKET
            },
            data: Rest::default(),
        };
        self.send(Message::ChannelOpenConfirmation(m)).await
    }

    async fn on_channel_request(&mut self, r: ChannelRequest) -> Step {
        let Some(ch) = self.channels.get(&r.recipient_channel) else {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "request on a channel that is not open").await;
        };
        let peer = ch.peer;
        let is_exec = matches!(r.request, ChannelRequestKind::Exec { .. });
        let ok = match r.request {
            ChannelRequestKind::Exec { command } if ch.job.is_none() => {
                match Program::parse(&String::from_utf8_lossy(&command.0)) {
                    Ok(p) if !matches!(p, Program::Literal(_)) => {
                        let job = start(p);
                        if let Some(ch) = self.channels.get_mut(&r.recipient_channel) {
                            ch.job = Some(job);
                        }
                        true
                    }
                    _ => false,
                }
            }
            ChannelRequestKind::PtyReq { width_chars, height_rows, modes, .. } => {
                let zero = width_chars == 0 || height_rows == 0;
                let refused = (zero && self.dev("zero-pty-size-refused"))
                    || (self.dev("unknown-pty-mode-refused") && has_unknown_mode(&modes.0));
                !refused
            }
            ChannelRequestKind::Env { .. } => true,
            ChannelRequestKind::WindowChange { .. } => {
                if r.want_reply.0 == 0 && self.dev("window-change-answered") {
                    return self.send(Message::ChannelSuccess(ChannelSuccess { recipient_channel: peer })).await;
                }
                true
            }
            ChannelRequestKind::Signal { signal_name } => {
                if self.dev("unknown-signal-closes") && !KNOWN_SIGNALS.contains(&signal_name.0.as_slice()) {
                    if let Some(ch) = self.channels.get_mut(&r.recipient_channel) {
                        ch.sent_eof = true;
                        ch.sent_close = true;
                    }
                    return self.send(Message::ChannelClose(ChannelClose { recipient_channel: peer })).await;
                }
                true
            }
            ChannelRequestKind::Other { .. } => self.dev("unknown-channel-request-succeeds"),
            _ => false,
        };
        if r.want_reply.0 == 0 && !self.dev("channel-reply-always") {
            return Ok(());
        }
        let m = if ok {
            Message::ChannelSuccess(ChannelSuccess { recipient_channel: peer })
        } else {
            Message::ChannelFailure(ChannelFailure { recipient_channel: peer })
        };
        if self.dev("channel-replies-reordered") {
            // The first reply waits for the second, which goes out first.
            match self.held_reply.take() {
                None => {
                    self.held_reply = Some(m);
                    return Ok(());
                }
                Some(first) => {
                    self.send(m).await?;
                    return self.send(first).await;
                }
            }
        }
        self.send(m).await?;
        if ok && is_exec && self.dev("agent-channel-unasked") {
            // An agent channel the client never asked for (no auth-agent-req@openssh.com).
            let open = ChannelOpen {
                channel_type: ChannelType::Other {
                    name: Bytes(b"auth-agent@openssh.com".to_vec()),
                    data: Rest::default(),
                },
                sender_channel: 1000,
                initial_window_size: WINDOW,
                maximum_packet_size: MAX_PACKET,
            };
            self.send(Message::ChannelOpen(open)).await?;
        }
        Ok(())
    }

    /// Channel data (`Some`) or extended data from the client: stdin for the program.
    async fn on_data(&mut self, channel: u32, len: usize, data: Option<Vec<u8>>) -> Step {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return self.disconnect(DisconnectReason::PROTOCOL_ERROR, "data on a channel that is not open").await;
        };
        let mut adjust = len as u32;
        ch.client_window = ch.client_window.saturating_sub(len as u64);
        let holds = ch.job.as_ref().is_some_and(|j| matches!(j.program, Some(Program::ReadStdinAfter(_))));
        if holds && !ch.stdin_eof {
            // Left unread until the input ends, so no window comes back for it: a client that
            // keeps sending runs the window down to 0.
            adjust = 0;
        } else if self.forwards.relays(channel) {
            if let Some(data) = data {
                self.forwards.write(channel, data);
            }
        } else if let (Some(job), Some(data)) = (&mut ch.job, data)
            && job.program == Some(Program::EchoStdin)
            && !ch.stdin_eof
        {
            job.stdout.extend(data);
            // Echoed bytes are granted back once they are sent (`pump`), so an echo never
            // holds more than one window.
            adjust = 0;
        }
        ch.consumed += adjust;
        self.grant(channel).await
    }

    /// Grants the client more window once half of ours is used.
    async fn grant(&mut self, channel: u32) -> Step {
        // Without flow control windows mean nothing, and no adjust is needed (RFC 8308 §3.3).
        if self.flow_control_off() {
            return Ok(());
        }
        let Some(ch) = self.channels.get_mut(&channel) else { return Ok(()) };
        if ch.consumed < WINDOW / 2 || ch.sent_close {
            return Ok(());
        }
        let mut bytes_to_add = std::mem::take(&mut ch.consumed);
        ch.client_window += u64::from(bytes_to_add);
        let peer = ch.peer;
        if self.dev("window-adjust-overflows") {
            // Two such adjusts pass 2^32-1 whatever window the client had left.
            bytes_to_add = u32::MAX / 2 + 1;
        }
        let m = ChannelWindowAdjust { recipient_channel: peer, bytes_to_add };
        self.send(Message::ChannelWindowAdjust(m)).await
    }

    async fn on_channel_close(&mut self, channel: u32) -> Step {
        let Some(ch) = self.channels.remove(&channel) else { return Ok(()) };
        self.forwards.close(channel);
        if !ch.sent_close && !self.dev("close-not-answered") {
            return self.send(Message::ChannelClose(ChannelClose { recipient_channel: ch.peer })).await;
        }
        Ok(())
    }

    /// Sends what programs have for the client, as far as windows allow; ends finished programs.
    async fn pump(&mut self) -> Step {
        if self.t.kex.in_progress() && !self.dev("data-during-own-rekey") {
            return Ok(());
        }
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in ids {
            let echo = self
                .channels
                .get(&id)
                .and_then(|c| c.job.as_ref())
                .is_some_and(|j| j.program == Some(Program::EchoStdin));
            loop {
                if self.t.packet_ready() {
                    return Ok(());
                }
                let Some(m) = self.next_output(id) else { break };
                let sent = match &m {
                    Message::ChannelData(d) if echo => d.data.0.len() as u32,
                    _ => 0,
                };
                self.t.send(&m).await?;
                // Echoed input leaves our window only once it is sent back.
                if let Some(ch) = self.channels.get_mut(&id) {
                    ch.consumed += sent;
                }
                self.grant(id).await?;
                // At the limit, output waits for our rekey to end; the deviant goes on sending.
                let deviant = self.dev("data-during-own-rekey") && self.t.kex.in_progress();
                if self.t.tx.payload >= self.shared.settings.rekey_bytes && !self.dev("never-rekeys") && !deviant {
                    return Ok(());
                }
            }
            self.finish(id).await?;
        }
        Ok(())
    }

    /// Whether `no-flow-control` is in effect (RFC 8308 §3.3): both sides sent it, and one of them
    /// "p". Ours is always "s", so the client's must be "p"; the deviant takes any value of
    /// the client's, or none.
    fn flow_control_off(&self) -> bool {
        self.dev("no-flow-control-unilateral") || self.client_no_flow_control.as_deref() == Some(b"p")
    }

    /// The next data packet channel `id` may send now, if any.
    fn next_output(&mut self, id: u32) -> Option<Message> {
        let windowless = self.flow_control_off() && !self.dev("no-flow-control-window-kept");
        let ignore_window = self.dev("window-ignored") || windowless;
        let ignore_max = self.dev("maximum-packet-ignored");
        let stderr_as_data = self.dev("stderr-as-data");
        let ch = self.channels.get_mut(&id)?;
        let job = ch.job.as_mut()?;
        if ch.sent_eof {
            return None;
        }
        let limit = |avail: usize| {
            let mut n = avail.min(MAX_PACKET as usize);
            if !ignore_max {
                n = n.min(ch.max_packet as usize);
            }
            if !ignore_window {
                n = n.min(ch.window.min(usize::MAX as u64) as usize);
            }
            n
        };
        let (data, stderr) = if !job.stdout.is_empty() {
            let n = limit(job.stdout.len());
            (job.stdout.drain(..n).collect::<Vec<u8>>(), false)
        } else if !job.stderr.is_empty() {
            let n = limit(job.stderr.len());
            (job.stderr.drain(..n).collect(), true)
        } else if job.zeros > 0 {
            let n = limit(job.zeros.min(usize::MAX as u64) as usize);
            job.zeros -= n as u64;
            (vec![0u8; n], false)
        } else {
            return None;
        };
        if data.is_empty() {
            return None;
        }
        ch.window = ch.window.saturating_sub(data.len() as u64);
        Some(if stderr && !stderr_as_data {
            Message::ChannelExtendedData(ChannelExtendedData {
                recipient_channel: ch.peer,
                data_type: ExtendedDataType::STDERR,
                data: Bytes(data),
            })
        } else {
            Message::ChannelData(ChannelData { recipient_channel: ch.peer, data: Bytes(data) })
        })
    }

    /// A program whose output is all sent and whose input (if it reads any) has ended: its exit
    /// status, EOF and CLOSE, in that order.
    async fn finish(&mut self, id: u32) -> Step {
        let Some(ch) = self.channels.get_mut(&id) else { return Ok(()) };
        let Some(job) = &ch.job else { return Ok(()) };
        let drained = job.stdout.is_empty() && job.stderr.is_empty() && job.zeros == 0;
        if ch.sent_close || !drained || job.open || (job.reads_stdin && !ch.stdin_eof) {
            return Ok(());
        }
        let peer = ch.peer;
        let Some(program) = &job.program else {
            // A relayed socket: EOF as soon as it ended, CLOSE once the client's EOF came too.
            let close = ch.stdin_eof;
            if !ch.sent_eof {
                ch.sent_eof = true;
                self.send(Message::ChannelEof(ChannelEof { recipient_channel: peer })).await?;
            }
            if close && let Some(ch) = self.channels.get_mut(&id) {
                ch.sent_close = true;
                self.forwards.close(id);
                return self.send(Message::ChannelClose(ChannelClose { recipient_channel: peer })).await;
            }
            return Ok(());
        };
        let exit = match program {
            Program::Exit(n) => ChannelRequestKind::ExitStatus { exit_status: *n },
            Program::Signal(s) => ChannelRequestKind::ExitSignal {
                signal_name: Bytes(s.as_bytes().to_vec()),
                core_dumped: Bool(0),
                error_message: Bytes::default(),
                language: Bytes::default(),
            },
            _ => ChannelRequestKind::ExitStatus { exit_status: 0 },
        };
        ch.sent_eof = true;
        ch.sent_close = true;
        let input_open = !ch.stdin_eof;
        if !self.dev("no-exit-status") {
            let m = ChannelRequest { recipient_channel: peer, want_reply: Bool(0), request: exit };
            self.send(Message::ChannelRequest(m)).await?;
        }
        // OpenSSH PROTOCOL §2.1: only to OpenSSH clients, and the fixture's clients are not.
        if input_open && self.dev("eow-to-any-client") {
            let request = ChannelRequestKind::Other { name: Bytes(b"eow@openssh.com".to_vec()), data: Rest::default() };
            let m = ChannelRequest { recipient_channel: peer, want_reply: Bool(0), request };
            self.send(Message::ChannelRequest(m)).await?;
        }
        if !self.dev("no-eof") {
            self.send(Message::ChannelEof(ChannelEof { recipient_channel: peer })).await?;
        }
        self.send(Message::ChannelClose(ChannelClose { recipient_channel: peer })).await
    }
}

/// Signals of RFC 4254 §6.10.
const KNOWN_SIGNALS: &[&[u8]] =
    &[b"ABRT", b"ALRM", b"FPE", b"HUP", b"ILL", b"INT", b"KILL", b"PIPE", b"QUIT", b"SEGV", b"TERM", b"USR1", b"USR2"];

/// Extensions the fixture knows (RFC 8308 §3 and OpenSSH's).
fn known_extension(name: &[u8]) -> bool {
    matches!(
        name,
        b"server-sig-algs"
            | b"delay-compression"
            | b"no-flow-control"
            | b"elevation"
            | b"global-requests-ok"
            | b"ping@openssh.com"
            | b"publickey-hostbound@openssh.com"
            | b"ext-info-in-auth@openssh.com"
    )
}

/// Whether encoded terminal modes (RFC 4254 §8) hold an opcode the RFC does not define.
fn has_unknown_mode(modes: &[u8]) -> bool {
    let defined = |op: u8| matches!(op, 1..=42 | 50..=62 | 70..=75 | 90..=93 | 128..=129);
    let mut i = 0;
    while let Some(&op) = modes.get(i) {
        if op == 0 {
            return false;
        }
        if !defined(op) {
            return true;
        }
        i += 5;
    }
    false
}

/// A program as the fixture runs it: its whole output known at start (or counted, for zeros).
fn start(program: Program) -> Job {
    let mut job = Job {
        program: Some(program.clone()),
        stdout: VecDeque::new(),
        stderr: VecDeque::new(),
        zeros: 0,
        reads_stdin: false,
        open: false,
        after_eof: Vec::new(),
    };
    match &program {
        Program::Print(w) => job.stdout.extend(format!("{w}\n").into_bytes()),
        Program::Stderr(w) => job.stderr.extend(format!("{w}\n").into_bytes()),
        Program::Zeros(n) => job.zeros = *n,
        Program::EchoStdin | Program::DiscardStdin => job.reads_stdin = true,
        Program::ReadStdinAfter(_) => {
            job.reads_stdin = true;
            job.after_eof = b"eof\n".to_vec();
        }
        Program::Succeed | Program::Exit(_) | Program::Signal(_) | Program::Literal(_) => {}
    }
    job
}
