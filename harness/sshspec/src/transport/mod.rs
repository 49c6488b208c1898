//! The scripted peer's transport (RFC 4253): version exchange, the binary packet protocol with
//! every length and padding under the scenario's control, and a key-exchange state machine that
//! watches each message sent and received, so that a scenario's low-level steps (send KEXINIT,
//! expect KEX_ECDH_REPLY, ...) make a real key exchange without special cases.
//!
//! Nothing here trusts the target: every length is bounded before anything is allocated for it,
//! and every failure says whether the target misbehaved or we could not go on.

pub mod capture;
pub mod cipher;
pub mod compress;
pub mod hostkey;
pub mod kex;
pub mod negotiate;

use crate::transcript::{Dir, Transcript};
use cipher::{DirectionKeys, OpenError, PacketCipher};
use negotiate::{Negotiated, NoCommon};
use rand::RngCore;
use sshspec_wire::msg::{AuthMethod, ExtInfo, KexFamily, KexInit};
use sshspec_wire::{Bytes, DecodeContext, Message};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The largest packet we accept from a target. RFC 4253 §6.1 asks for 35000 at least; OpenSSH
/// allows 256 KiB. A larger announced length is refused before any buffer is grown for it.
pub const MAX_PACKET: usize = 256 * 1024;
/// The longest line we read during version exchange before calling it garbage.
const MAX_LINE: usize = 8192;
/// How many pre-banner lines we tolerate (RFC 4253 §4.2 sets no limit; this bounds memory).
const MAX_PRE_BANNER_LINES: usize = 1024;
/// How many of the first received bytes are kept.
const HEAD: usize = 256;
const TAIL: usize = 64;
/// packet_length (4) and padding_length (1).
const PACKET_HEADER: usize = 5;

/// Why the conversation could not go on. Each variant says whose fault it is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The target closed the TCP connection (EOF or reset).
    #[error("the target closed the connection{last}")]
    Closed { last: Last },
    /// Nothing complete arrived before the deadline (`waited` is zero when the target kept sending
    /// but the deadline passed between packets).
    #[error("{} ({buffered} byte(s) of an incomplete packet buffered){last}", waited_text(.waited))]
    Timeout { waited: Duration, buffered: usize, last: Last },
    /// The target broke the protocol in a way the transport itself detects.
    #[error("the target misbehaved: {0}")]
    Target(String),
    /// A local I/O failure or something the harness cannot do: our fault or the environment's.
    #[error("harness error: {0}")]
    Ours(String),
}

fn waited_text(w: &Duration) -> String {
    if w.is_zero() {
        "the deadline passed while the target was still sending".into()
    } else {
        format!("timed out after {w:.1?} waiting for the target")
    }
}

/// What the target sent last, for evidence: once packets are encrypted, the last message decoded
/// (its ciphertext would tell a reader nothing); before, the raw bytes.
#[derive(Debug, Clone, Default)]
pub struct Last {
    pub bytes: Vec<u8>,
    pub message: Option<String>,
}

impl std::fmt::Display for Last {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "; last message received: {m}"),
            None if self.bytes.is_empty() => Ok(()),
            None => write!(f, "; last bytes received: {}", hex::encode(&self.bytes)),
        }
    }
}

/// Explicit control of one packet's framing (RFC 4253 §6), for scenarios that break it on purpose.
#[derive(Clone, Debug, Default)]
pub struct Framing {
    /// Number of padding bytes to send (default: the least that aligns, at least 4).
    pub padding: Option<usize>,
    /// Value of the padding_length byte (default: the real padding length).
    pub padding_length_field: Option<u8>,
    /// Value of the packet_length field (default: the real length).
    pub packet_length_field: Option<u32>,
    /// Flip a bit of the MAC or AEAD tag.
    pub corrupt_mac: bool,
}

/// One direction: its sequence number, protection, compression, and the counts for the current
/// key epoch (RFC 4344 §3 counts blocks; RFC 4253 §9 speaks of bytes; we keep all three).
pub struct Direction {
    pub seq: u32,
    cipher: PacketCipher,
    pending: Option<PacketCipher>,
    /// The compression negotiated for the next epoch, taken at NEWKEYS.
    pending_compression: Option<compress::Start>,
    /// Negotiated for this epoch but waiting for USERAUTH_SUCCESS (zlib@openssh.com).
    delayed_compression: bool,
    deflate: Option<compress::Deflater>,
    inflate: Option<compress::Inflater>,
    pub packets: u64,
    pub bytes: u64,
    pub blocks: u64,
    /// Payload bytes (as sent, after compression): the smallest measure of "data", which servers
    /// that count payload rather than packets or blocks use for their rekey limits.
    pub payload: u64,
}

impl Direction {
    fn new() -> Self {
        Direction {
            seq: 0,
            cipher: PacketCipher::plain(),
            pending: None,
            pending_compression: None,
            delayed_compression: false,
            deflate: None,
            inflate: None,
            packets: 0,
            bytes: 0,
            blocks: 0,
            payload: 0,
        }
    }

    fn count(&mut self, wire_len: usize, payload_len: usize) {
        self.packets += 1;
        self.payload += payload_len as u64;
        self.bytes += wire_len as u64;
        self.blocks += (wire_len.saturating_sub(self.cipher.tag_len()) / self.cipher.block_size()) as u64;
    }

    pub fn compressing(&self) -> bool {
        self.deflate.is_some() || self.inflate.is_some()
    }

    pub fn cipher_name(&self) -> &str {
        self.cipher.name()
    }
}

/// What the key exchanges so far have established.
#[derive(Default)]
pub struct KexState {
    pub ours: Option<(KexInit, Vec<u8>)>,
    pub theirs: Option<(KexInit, Vec<u8>)>,
    pub negotiated: Option<Result<Negotiated, NoCommon>>,
    /// Our secret for the exchange in progress, made when our public value was built.
    pub secret: Option<kex::Secret>,
    /// Our public value (Q_C, C_INIT or e) as actually sent, which is what H covers.
    pub client_value: Option<Vec<u8>>,
    /// The group exchange request as sent, and the server's group (p, g).
    pub gex_request: Option<kex::GexRequest>,
    pub gex_group: Option<(Vec<u8>, Vec<u8>)>,
    /// We sent NEWKEYS in the exchange in progress (from then on, anything may be sent again).
    pub newkeys_sent: bool,
    /// When the last exchange completed (for time-based rekeying).
    pub completed_at: Option<Instant>,
    /// USERAUTH_SUCCESS was received: delayed compression may start.
    pub authenticated: bool,
    pub session_id: Option<Vec<u8>>,
    pub host_key: Option<Vec<u8>>,
    /// Key exchanges completed in both directions.
    pub completed: u32,
    /// Strict kex as decided by the first KEXINIT pair.
    pub strict: bool,
    pub server_ext_info: Option<ExtInfo>,
}

impl KexState {
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref().and_then(|n| n.as_ref().ok())
    }

    /// The negotiated method, if it is one we speak.
    pub fn method(&self) -> Option<&'static kex::Method> {
        self.negotiated().and_then(|n| kex::method(&n.kex))
    }

    /// No key exchange under way in either direction: the only time a new one may start (a
    /// second KEXINIT of ours before the server's NEWKEYS would begin an exchange it never sees).
    pub fn idle(&self) -> bool {
        self.ours.is_none() && self.theirs.is_none()
    }

    /// We sent KEXINIT and have not yet sent NEWKEYS: RFC 4253 §7.1 allows only transport
    /// messages from us until we do.
    pub fn in_progress(&self) -> bool {
        self.ours.is_some() && !self.newkeys_sent
    }
}

/// Which end of the connection this transport is. Every scenario's peer is a client; the server
/// role is the fixture server's (`crate::server`), built on the same framing and key exchange so
/// that whatever the client side can break, the server side can break too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Client,
    Server,
}

/// Rules the transport can be told to break: the fixture server's deviations that live below the
/// message layer. All off by default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quirks {
    /// Under strict kex, keep counting sequence numbers across NEWKEYS.
    pub keep_sequence_numbers: bool,
    /// Make each exchange's hash the session id, not only the first one's.
    pub session_id_follows_rekey: bool,
    /// Under strict kex, reset sequence numbers at the first NEWKEYS only.
    pub reset_sequence_numbers_once: bool,
    /// Let a rekey KEXINIT's markers switch strict kex on or off.
    pub strict_follows_rekey_markers: bool,
    /// Lengthen keys longer than one hash by repeating the first hash, not by RFC 4253 §7.2's chain.
    pub repeat_short_keys: bool,
    /// Compute H with SHA-256 whatever hash the method names.
    pub exchange_hash_sha256: bool,
    /// Leave min and max out of a group exchange's H (hash only n, as for the old request).
    pub gex_hash_without_bounds: bool,
    /// Hash an old group exchange request (n alone) as if min and max had come too.
    pub gex_old_hash_with_bounds: bool,
    /// Encode a curve25519 K as a 32-byte string, not RFC 8731 §3.1's mpint.
    pub curve25519_k_as_string: bool,
    /// Append 20 bytes, as if of a MAC, to each packet sent before the first NEWKEYS.
    pub mac_before_keys: bool,
    /// Send a Diffie-Hellman f with one unnecessary leading zero byte.
    pub mpint_not_minimal: bool,
    /// Send a NIST-curve ECDH public value compressed (0x02 or 0x03 and x).
    pub ecdh_point_compressed: bool,
    /// Answer every ECDH exchange with the same key pair, as if the ephemeral key were kept.
    pub ecdh_key_reused: bool,
    /// Under an EtM MAC, compute the MAC over the plaintext.
    pub etm_over_plaintext: bool,
    /// Under CBC, start each packet's chain from the first IV again.
    pub cbc_restarts: bool,
    /// Require a common MAC even when an AEAD cipher is chosen (as RFC 5647 would).
    pub aead_needs_mac: bool,
    /// Pad every packet with zero bytes instead of random ones.
    pub zero_padding: bool,
    /// Refuse packets longer than RFC 4253 §6.1's 35000 bytes, whatever was announced.
    pub refuse_long_packets: bool,
}

/// The first padding bytes the other end sent, before its first NEWKEYS and after: enough to
/// tell random padding from a constant fill (RFC 4253 §6), kept small on purpose.
#[derive(Clone, Debug, Default)]
pub struct PaddingSeen {
    pub in_clear: Vec<u8>,
    pub under_keys: Vec<u8>,
}

impl PaddingSeen {
    pub const KEPT: usize = 64;

    fn record(&mut self, in_clear: bool, padding: &[u8]) {
        let kept = if in_clear { &mut self.in_clear } else { &mut self.under_keys };
        let room = Self::KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&padding[..padding.len().min(room)]);
    }
}

/// The other end's identification and what preceded it (the server's, in the client role).
#[derive(Clone, Debug, Default)]
pub struct ServerVersion {
    /// The identification line as received, CR LF included if sent.
    pub line: Vec<u8>,
    pub pre_banner: Vec<Vec<u8>>,
}

pub struct Transport {
    pub role: Role,
    pub quirks: Quirks,
    stream: TcpStream,
    inbuf: Vec<u8>,
    inpos: usize,
    tail: VecDeque<u8>,
    pub tx: Direction,
    pub rx: Direction,
    pub kex: KexState,
    /// The peer's last KEXINIT and key exchange messages (30-49), one of each kind, for
    /// `$earlier.MESSAGE.FIELD` after a `reconnect`.
    pub last_kex: Vec<Message>,
    pub padding_seen: PaddingSeen,
    pub ctx: DecodeContext,
    pub log: Transcript,
    /// Our identification string, without CR LF (the exchange hash's V_C in the client role).
    pub v_c: Vec<u8>,
    /// Raw bytes sent before our identification was known (see `note_raw_identification`).
    raw_sent: Vec<u8>,
    /// The other end's identification (the server's, in the client role).
    pub server: Option<ServerVersion>,
    /// If not empty, the host key's fingerprint must be one of these.
    pub pinned_host_keys: Vec<String>,
    /// A pcap and key log of this connection (`--capture`).
    pub capture: Option<capture::Capture>,
    /// The first bytes the target sent, for explaining a server that does not speak SSH.
    head: Vec<u8>,
    /// The last message decoded once packets were encrypted, for evidence.
    last_message: Option<String>,
    /// The packet being built, kept between sends: bulk data would otherwise allocate and grow a
    /// fresh buffer for every packet.
    out: Vec<u8>,
}

impl Transport {
    pub async fn connect(
        addr: std::net::SocketAddr,
        source: Option<std::net::IpAddr>,
        deadline: Instant,
        log: Transcript,
    ) -> Result<Self, TransportError> {
        let connect = async {
            match source {
                None => TcpStream::connect(addr).await,
                Some(ip) => {
                    let s =
                        if ip.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
                    s.bind((ip, 0).into())?;
                    s.connect(addr).await
                }
            }
        };
        let stream = tokio::time::timeout_at(deadline, connect)
            .await
            .map_err(|_| TransportError::Ours(format!("timed out connecting to {addr}")))?
            .map_err(|e| TransportError::Ours(format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Self::from_stream(stream, log))
    }

    pub fn from_stream(stream: TcpStream, log: Transcript) -> Self {
        Transport {
            role: Role::Client,
            quirks: Quirks::default(),
            stream,
            inbuf: Vec::with_capacity(16 * 1024),
            inpos: 0,
            tail: VecDeque::with_capacity(TAIL),
            tx: Direction::new(),
            rx: Direction::new(),
            kex: KexState::default(),
            last_kex: Vec::new(),
            padding_seen: PaddingSeen::default(),
            ctx: DecodeContext::default(),
            log,
            v_c: Vec::new(),
            raw_sent: Vec::new(),
            server: None,
            pinned_host_keys: Vec::new(),
            capture: None,
            last_message: None,
            out: Vec::new(),
            head: Vec::new(),
        }
    }

    /// A transport in the server role, over a connection we accepted.
    pub fn accepted(stream: TcpStream, log: Transcript) -> Self {
        let _ = stream.set_nodelay(true);
        Transport { role: Role::Server, ..Self::from_stream(stream, log) }
    }

    /// Starts writing `<stem>.pcap` and `<stem>.keylog` for this connection.
    pub fn start_capture(&mut self, stem: &std::path::Path) -> std::io::Result<()> {
        let (local, remote) = (self.stream.local_addr()?, self.stream.peer_addr()?);
        self.capture = Some(capture::Capture::create(stem, local, remote)?);
        Ok(())
    }

    /// The first bytes the target sent (up to 256).
    pub fn first_bytes(&self) -> &[u8] {
        &self.head
    }

    pub fn last_bytes(&self) -> Vec<u8> {
        self.tail.iter().copied().collect()
    }

    /// What the target sent last (see [`Last`]).
    pub fn last(&self) -> Last {
        Last { bytes: self.last_bytes(), message: self.last_message.clone() }
    }

    fn buffered(&self) -> &[u8] {
        &self.inbuf[self.inpos..]
    }

    async fn read_more(&mut self, deadline: Instant) -> Result<(), TransportError> {
        self.make_room();
        let started = Instant::now();
        let before = self.inbuf.len();
        match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.inbuf)).await {
            Err(_) => Err(TransportError::Timeout {
                waited: started.elapsed(),
                buffered: self.buffered().len(),
                last: self.last(),
            }),
            Ok(Ok(0)) => Err(TransportError::Closed { last: self.last() }),
            Ok(Ok(_)) => {
                self.took(before);
                Ok(())
            }
            Ok(Err(e)) if is_reset(&e) => Err(TransportError::Closed { last: self.last() }),
            Ok(Err(e)) => Err(TransportError::Ours(format!("reading from the target: {e}"))),
        }
    }

    /// Whether the target has already closed the connection, found without waiting: EOF or a
    /// reset is queued on the socket. Bytes queued before it are read into the buffer, not lost.
    pub fn closed_already(&mut self) -> bool {
        // A few reads at most: a server streaming data is open, whatever follows.
        for _ in 0..8 {
            self.make_room();
            let before = self.inbuf.len();
            match self.stream.try_read_buf(&mut self.inbuf) {
                Ok(0) => return true,
                Ok(_) => self.took(before),
                Err(e) if is_reset(&e) => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// Drops consumed input once it is half the buffer, and leaves room for a read.
    fn make_room(&mut self) {
        if self.inpos > 0 && (self.inpos >= self.inbuf.len() / 2 || self.inpos > 1 << 20) {
            self.inbuf.drain(..self.inpos);
            self.inpos = 0;
        }
        self.inbuf.reserve(32 * 1024);
    }

    /// Records bytes just read past `before`: capture, the first bytes, the last bytes.
    fn took(&mut self, before: usize) {
        if let Some(c) = &mut self.capture {
            c.data(capture::Side::Server, &self.inbuf[before..]);
        }
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(self.inbuf.len() - before);
            self.head.extend_from_slice(&self.inbuf[before..before + take]);
        }
        for &b in &self.inbuf[before.max(self.inbuf.len().saturating_sub(TAIL))..] {
            if self.tail.len() == TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(b);
        }
    }

    /// Takes what the socket already holds, without waiting, and says whether a whole packet is
    /// buffered (or a broken one that `recv` will report): a sender reads the target's window
    /// adjusts as they come instead of draining its window first and stalling the pipe.
    pub fn packet_ready(&mut self) -> bool {
        self.make_room();
        let before = self.inbuf.len();
        if self.stream.try_read_buf(&mut self.inbuf).is_ok_and(|n| n > 0) {
            self.took(before);
        }
        let header = self.rx.cipher.header_len();
        if self.buffered().len() < header {
            return false;
        }
        let head_end = self.inpos + header;
        let len = self.rx.cipher.packet_length(self.rx.seq, &self.inbuf[self.inpos..head_end]) as usize;
        !(5..=MAX_PACKET).contains(&len) || self.buffered().len() >= 4 + len + self.rx.cipher.tag_len()
    }

    /// Writes bytes straight to the socket, outside any packet (version lines, garbage).
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.log.push(Dir::Sent, None, format!("bytes {}", printable(bytes)));
        self.note_raw_identification(bytes);
        self.write_all(bytes).await
    }

    /// Raw bytes may carry our identification (split, or ended by a bare LF); the exchange hash
    /// covers it as sent, so it is taken from the first complete line starting with "SSH-".
    fn note_raw_identification(&mut self, bytes: &[u8]) {
        if !self.v_c.is_empty() || self.kex.ours.is_some() {
            return;
        }
        self.raw_sent.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = self.raw_sent[start..].iter().position(|b| *b == b'\n') {
            let line = &self.raw_sent[start..start + n];
            if line.starts_with(b"SSH-") {
                self.v_c = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.raw_sent = Vec::new();
                return;
            }
            start += n + 1;
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        if let Some(c) = &mut self.capture {
            c.data(capture::Side::Client, bytes);
        }
        match self.stream.write_all(bytes).await {
            Ok(()) => Ok(()),
            Err(e) if is_reset(&e) => Err(TransportError::Closed { last: self.last() }),
            Err(e) => Err(TransportError::Ours(format!("writing to the target: {e}"))),
        }
    }

    /// Reads one line (through LF) during version exchange.
    pub async fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        loop {
            if let Some(i) = self.buffered().iter().position(|&b| b == b'\n') {
                let line = self.buffered()[..=i].to_vec();
                self.inpos += i + 1;
                return Ok(line);
            }
            if self.buffered().len() > MAX_LINE {
                return Err(TransportError::Target(format!(
                    "sent {} bytes without a line feed during version exchange",
                    self.buffered().len()
                )));
            }
            self.read_more(deadline).await?;
        }
    }

    /// Sends our identification (after any pre-banner lines of ours).
    pub async fn send_version(&mut self, ours: &str, pre_banner: &[String]) -> Result<(), TransportError> {
        let mut out = Vec::new();
        for l in pre_banner {
            out.extend_from_slice(l.as_bytes());
            // A line given with its own ending keeps it (a deviant fixture's bare LF).
            if !l.ends_with('\n') {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(ours.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.v_c = ours.as_bytes().to_vec();
        self.log.push(Dir::Sent, None, format!("version {}", printable(&out)));
        self.write_all(&out).await
    }

    /// Reads the server's identification line, keeping the lines before it (RFC 4253 §4.2).
    pub async fn read_version(&mut self, deadline: Instant) -> Result<ServerVersion, TransportError> {
        let mut pre_banner = Vec::new();
        loop {
            let line = self.read_line(deadline).await?;
            if line.starts_with(b"SSH-") {
                self.log.push(Dir::Received, None, format!("version {}", printable(&line)));
                let v = ServerVersion { line, pre_banner };
                self.server = Some(v.clone());
                return Ok(v);
            }
            self.log.push(Dir::Received, None, format!("pre-banner line {}", printable(&line)));
            pre_banner.push(line);
            if pre_banner.len() > MAX_PRE_BANNER_LINES {
                return Err(TransportError::Target(format!(
                    "sent more than {MAX_PRE_BANNER_LINES} lines before its identification string"
                )));
            }
        }
    }

    /// The other end's identification line without CR LF.
    fn peer_version(&self) -> Vec<u8> {
        let l = self.server.as_ref().map(|s| s.line.as_slice()).unwrap_or_default();
        let l = l.strip_suffix(b"\n").unwrap_or(l);
        l.strip_suffix(b"\r").unwrap_or(l).to_vec()
    }

    /// V_C and V_S of the exchange hash.
    fn versions(&self) -> (Vec<u8>, Vec<u8>) {
        match self.role {
            Role::Client => (self.v_c.clone(), self.peer_version()),
            Role::Server => (self.peer_version(), self.v_c.clone()),
        }
    }

    /// I_C and I_S of the exchange hash: the KEXINIT payloads of the exchange in progress.
    fn kexinit_payloads(&self) -> Option<(&[u8], &[u8])> {
        let (Some((_, ours)), Some((_, theirs))) = (&self.kex.ours, &self.kex.theirs) else {
            return None;
        };
        Some(match self.role {
            Role::Client => (ours, theirs),
            Role::Server => (theirs, ours),
        })
    }

    /// Sends a message with default framing.
    pub async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.send_with(msg, &[], &Framing::default()).await
    }

    /// Sends a message; `trailing` bytes are appended to its payload, and `framing` shapes the packet.
    pub async fn send_with(&mut self, msg: &Message, trailing: &[u8], framing: &Framing) -> Result<(), TransportError> {
        // The payload is encoded straight into the packet buffer, after room for the header.
        let mut packet = std::mem::take(&mut self.out);
        packet.clear();
        packet.resize(PACKET_HEADER, 0);
        msg.encode_into(&mut packet);
        packet.extend_from_slice(trailing);
        self.log.message(Dir::Sent, self.tx.seq, msg);
        if !trailing.is_empty() {
            self.log.note(format!("... with {} trailing byte(s) {}", trailing.len(), hex::encode(trailing)));
        }
        self.before_send(msg, &packet[PACKET_HEADER..]);
        let sent = self.write_packet(&mut packet, framing).await;
        self.out = packet;
        sent?;
        self.after_send(msg);
        Ok(())
    }

    /// Sends bytes as a packet payload, whatever they are.
    pub async fn send_payload(&mut self, payload: &[u8], framing: &Framing) -> Result<(), TransportError> {
        self.log.push(Dir::Sent, Some(self.tx.seq), format!("raw payload {}", hex::encode(payload)));
        let mut packet = vec![0u8; PACKET_HEADER];
        packet.extend_from_slice(payload);
        self.write_packet(&mut packet, framing).await
    }

    /// Frames, protects and writes a packet whose payload follows `PACKET_HEADER` bytes of room.
    /// An IGNORE that is block-aligned under the current keys with 3 bytes of padding: a packet
    /// whose only fault is short padding (the fixture's `short-padding-sent`).
    pub fn short_padded_ignore(&self) -> (Message, Framing) {
        let block = self.tx.cipher.block_size();
        let clear = if self.tx.cipher.length_in_clear() { 4 } else { 0 };
        // Length, padding length byte, message number, string length, data, 3 bytes of padding.
        let data = (0..block).find(|d| (4 + 1 + 1 + 4 + d + 3 - clear) % block == 0).unwrap_or(0);
        let msg = Message::Ignore(sshspec_wire::msg::Ignore { data: Bytes(vec![b' '; data]) });
        (msg, Framing { padding: Some(3), ..Framing::default() })
    }

    async fn write_packet(&mut self, packet: &mut Vec<u8>, f: &Framing) -> Result<(), TransportError> {
        if let Some(z) = &mut self.tx.deflate {
            let c = z.compress(&packet[PACKET_HEADER..]);
            packet.truncate(PACKET_HEADER);
            packet.extend_from_slice(&c);
        }
        let payload_len = packet.len() - PACKET_HEADER;
        let block = self.tx.cipher.block_size();
        let clear = if self.tx.cipher.length_in_clear() { 4 } else { 0 };
        let padding = f.padding.unwrap_or_else(|| {
            let mut p = block - ((4 + 1 + payload_len - clear) % block);
            if p < 4 {
                p += block;
            }
            p
        });
        let length = (1 + payload_len + padding) as u32;
        packet.reserve(padding + self.tx.cipher.tag_len());
        packet[..4].copy_from_slice(&f.packet_length_field.unwrap_or(length).to_be_bytes());
        packet[4] = f.padding_length_field.unwrap_or(padding as u8);
        let start = packet.len();
        packet.resize(start + padding, 0);
        if !self.quirks.zero_padding {
            rand::thread_rng().fill_bytes(&mut packet[start..]);
        }
        self.tx.cipher.seal(self.tx.seq, packet);
        if self.quirks.mac_before_keys && self.kex.completed == 0 && !self.kex.newkeys_sent {
            packet.extend_from_slice(&[0x4d; 20]);
        }
        if f.corrupt_mac
            && let Some(last) = packet.last_mut()
        {
            *last ^= 0x01;
        }
        self.tx.seq = self.tx.seq.wrapping_add(1);
        self.tx.count(packet.len(), payload_len);
        self.write_all(packet).await
    }

    /// Receives one packet's payload, checking its framing and MAC.
    pub async fn recv_payload(&mut self, deadline: Instant) -> Result<(u32, Vec<u8>), TransportError> {
        loop {
            let header = self.rx.cipher.header_len();
            if self.buffered().len() >= header {
                let seq = self.rx.seq;
                let head_end = self.inpos + header;
                let len = self.rx.cipher.packet_length(seq, &self.inbuf[self.inpos..head_end]) as usize;
                if !(5..=MAX_PACKET).contains(&len) {
                    return Err(TransportError::Target(format!(
                        "announced a packet length of {len} (accepted: 5 to {MAX_PACKET}), sequence number {seq}"
                    )));
                }
                if self.quirks.refuse_long_packets && len > 35000 {
                    return Err(TransportError::Target(format!("sent a packet of {len} bytes, over 35000")));
                }
                let total = 4 + len + self.rx.cipher.tag_len();
                if self.buffered().len() >= total {
                    let mut pkt = self.inbuf[self.inpos..self.inpos + total].to_vec();
                    self.inpos += total;
                    self.rx.cipher.open(seq, &mut pkt).map_err(|e| match e {
                        OpenError::BadMac { .. } | OpenError::Misaligned { .. } => {
                            TransportError::Target(e.to_string())
                        }
                    })?;
                    let padding = pkt[4] as usize;
                    if padding < 4 || padding + 1 > len {
                        return Err(TransportError::Target(format!(
                            "sent padding_length {padding} in a packet of length {len} (RFC 4253 §6: at least 4, inside the packet)"
                        )));
                    }
                    self.padding_seen.record(self.rx.cipher.name() == cipher::NONE, &pkt[4 + len - padding..4 + len]);
                    self.rx.seq = seq.wrapping_add(1);
                    self.rx.count(total, len - padding - 1);
                    pkt.truncate(4 + len - padding);
                    pkt.drain(..5);
                    if let Some(z) = &mut self.rx.inflate {
                        pkt = z
                            .decompress(&pkt, MAX_PACKET)
                            .map_err(|e| TransportError::Target(format!("{e} (sequence number {seq})")))?;
                    }
                    return Ok((seq, pkt));
                }
            }
            self.read_more(deadline).await?;
        }
    }

    /// Receives and decodes one message, and lets the key-exchange state machine see it.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Message, TransportError> {
        // A target that floods us keeps the socket always readable; the deadline must still win.
        if Instant::now() >= deadline {
            return Err(TransportError::Timeout {
                waited: Duration::ZERO,
                buffered: self.buffered().len(),
                last: self.last(),
            });
        }
        let (seq, payload) = self.recv_payload(deadline).await?;
        let msg = match Message::decode(&payload, self.ctx) {
            Ok(m) => m,
            Err(e) => {
                self.log.push(Dir::Received, Some(seq), format!("malformed payload {}", hex::encode(&payload)));
                return Err(TransportError::Target(format!("sent a malformed message (sequence number {seq}): {e}")));
            }
        };
        self.log.message(Dir::Received, seq, &msg);
        if self.rx.cipher.is_encrypted() {
            self.last_message = Some(format!("#{seq} {}", crate::transcript::summarize(&msg)));
        }
        self.after_recv(&msg, &payload)?;
        Ok(msg)
    }

    fn before_send(&mut self, msg: &Message, payload: &[u8]) {
        match msg {
            Message::KexInit(k) => {
                self.kex.ours = Some((k.clone(), payload.to_vec()));
                self.kex.newkeys_sent = false;
                self.try_negotiate();
            }
            Message::KexEcdhInit(m) => self.kex.client_value = Some(m.q_c.0.clone()),
            Message::KexdhInit(m) => self.kex.client_value = Some(m.e.0.clone()),
            Message::KexDhGexInit(m) => self.kex.client_value = Some(m.e.0.clone()),
            Message::KexDhGexRequest(m) => {
                self.kex.gex_request = Some(kex::GexRequest { min: Some(m.min), n: m.n, max: Some(m.max) });
            }
            Message::KexDhGexRequestOld(m) => {
                self.kex.gex_request = Some(kex::GexRequest { min: None, n: m.n, max: None })
            }
            Message::KexDhGexGroup(g) if self.role == Role::Server => {
                self.kex.gex_group = Some((g.p.0.clone(), g.g.0.clone()));
            }
            Message::UserauthRequest(r) => self.ctx.auth = auth_family(r),
            _ => {}
        }
    }

    fn after_send(&mut self, msg: &Message) {
        match msg {
            Message::NewKeys(_) => {
                self.kex.newkeys_sent = true;
                self.on_newkeys(true);
            }
            Message::UserauthSuccess(_) if self.role == Role::Server => self.on_authenticated(),
            _ => {}
        }
    }

    /// USERAUTH_SUCCESS went by: delayed compression (zlib@openssh.com) starts in both directions.
    fn on_authenticated(&mut self) {
        self.kex.authenticated = true;
        if std::mem::take(&mut self.tx.delayed_compression) {
            self.tx.deflate = Some(compress::Deflater::new());
            self.log.note("outgoing compression (zlib@openssh.com) starts after USERAUTH_SUCCESS");
        }
        if std::mem::take(&mut self.rx.delayed_compression) {
            self.rx.inflate = Some(compress::Inflater::new());
            self.log.note("incoming compression (zlib@openssh.com) starts after USERAUTH_SUCCESS");
        }
    }

    fn after_recv(&mut self, msg: &Message, payload: &[u8]) -> Result<(), TransportError> {
        if matches!(msg.msg_type().0, 20 | 30..=49) {
            self.last_kex.retain(|m| m.name() != msg.name());
            self.last_kex.push(msg.clone());
        }
        match msg {
            Message::KexInit(k) => {
                self.kex.theirs = Some((k.clone(), payload.to_vec()));
                self.try_negotiate();
            }
            Message::KexEcdhReply(r) if self.role == Role::Client => {
                self.on_kex_reply(&r.k_s.0, &r.q_s.0, &r.signature.0)?
            }
            Message::KexdhReply(r) if self.role == Role::Client => {
                self.on_kex_reply(&r.k_s.0, &r.f.0, &r.signature.0)?
            }
            Message::KexDhGexReply(r) if self.role == Role::Client => {
                self.on_kex_reply(&r.k_s.0, &r.f.0, &r.signature.0)?
            }
            Message::KexDhGexGroup(g) if self.role == Role::Client => self.on_gex_group(&g.p.0, &g.g.0)?,
            Message::KexDhGexRequest(m) if self.role == Role::Server => {
                self.kex.gex_request = Some(kex::GexRequest { min: Some(m.min), n: m.n, max: Some(m.max) });
            }
            Message::KexDhGexRequestOld(m) if self.role == Role::Server => {
                self.kex.gex_request = Some(kex::GexRequest { min: None, n: m.n, max: None })
            }
            Message::NewKeys(_) => self.on_newkeys(false),
            Message::ExtInfo(e) => self.kex.server_ext_info = Some(e.clone()),
            Message::UserauthSuccess(_) if self.role == Role::Client => self.on_authenticated(),
            // Messages 60 and 61 mean what the method of the last request makes them mean.
            Message::UserauthRequest(r) if self.role == Role::Server => self.ctx.auth = auth_family(r),
            // The server role: the client's half of the exchange, which our reply answers.
            Message::KexEcdhInit(m) if self.role == Role::Server => self.kex.client_value = Some(m.q_c.0.clone()),
            Message::KexdhInit(m) if self.role == Role::Server => self.kex.client_value = Some(m.e.0.clone()),
            Message::KexDhGexInit(m) if self.role == Role::Server => self.kex.client_value = Some(m.e.0.clone()),
            _ => {}
        }
        Ok(())
    }

    /// NEWKEYS sent (`outgoing`) or received: that direction switches to its pending keys, and under
    /// strict kex its sequence number restarts at 0 (OpenSSH PROTOCOL §1.10).
    fn on_newkeys(&mut self, outgoing: bool) {
        let strict = self.kex.strict;
        let (dir, which) = if outgoing { (&mut self.tx, "outgoing") } else { (&mut self.rx, "incoming") };
        let Some(c) = dir.pending.take() else {
            self.log.note(format!("NEWKEYS with no keys pending: {which} protection unchanged"));
            return;
        };
        let ended = format!(
            "{which} key epoch ended after {} packet(s), {} byte(s), {} block(s)",
            dir.packets, dir.bytes, dir.blocks
        );
        dir.cipher = c;
        dir.packets = 0;
        dir.bytes = 0;
        dir.blocks = 0;
        dir.payload = 0;
        let once = self.quirks.reset_sequence_numbers_once && self.kex.completed > 0;
        if strict && !self.quirks.keep_sequence_numbers && !once {
            dir.seq = 0;
        }
        // Each epoch starts a fresh zlib stream, as OpenSSH and Dropbear do.
        let start = dir.pending_compression.take().unwrap_or(compress::Start::Never);
        let now =
            start == compress::Start::AtNewKeys || (start == compress::Start::AfterAuth && self.kex.authenticated);
        dir.delayed_compression = start == compress::Start::AfterAuth && !now;
        (dir.deflate, dir.inflate) = if now && outgoing {
            (Some(compress::Deflater::new()), None)
        } else if now {
            (None, Some(compress::Inflater::new()))
        } else {
            (None, None)
        };
        let note = format!(
            "{ended}; keys active: {}{}{}",
            dir.cipher.name(),
            if dir.compressing() {
                ", compressed"
            } else if dir.delayed_compression {
                ", compression after authentication"
            } else {
                ""
            },
            if strict { ", sequence number reset to 0 (strict kex)" } else { "" }
        );
        self.log.note(note);
        self.finish_kex_if_done();
    }

    fn try_negotiate(&mut self) {
        let (Some((ours, _)), Some((theirs, _))) = (&self.kex.ours, &self.kex.theirs) else {
            return;
        };
        let mut n = match self.role {
            Role::Client => negotiate::negotiate(ours, theirs),
            Role::Server => negotiate::negotiate(theirs, ours),
        };
        if self.quirks.aead_needs_mac && n.is_ok() {
            let (c, s) = match self.role {
                Role::Client => (ours, theirs),
                Role::Server => (theirs, ours),
            };
            if let Err(e) = negotiate::common_mac(c, s) {
                n = Err(e);
            }
        }
        match &n {
            Ok(n) => {
                if self.kex.completed == 0 || self.quirks.strict_follows_rekey_markers {
                    self.kex.strict = n.strict;
                }
                self.ctx.kex = match kex::method(&n.kex).map(|m| m.family) {
                    Some(kex::Family::Dh(_)) => KexFamily::Dh,
                    Some(kex::Family::Gex) => KexFamily::Gex,
                    _ => KexFamily::Ecdh,
                };
                self.log.note(format!(
                    "negotiated kex={} hostkey={} cipher c2s={} s2c={} mac c2s={} s2c={} compression={}/{} strict-kex={}",
                    n.kex,
                    n.host_key,
                    n.cipher_c2s,
                    n.cipher_s2c,
                    n.mac_c2s.as_deref().unwrap_or("(aead)"),
                    n.mac_s2c.as_deref().unwrap_or("(aead)"),
                    n.compression_c2s,
                    n.compression_s2c,
                    self.kex.strict
                ));
            }
            Err(e) => self.log.note(format!("negotiation failed: {e}")),
        }
        self.kex.negotiated = Some(n);
    }

    /// Our half of the exchange: a fresh secret for the negotiated method (curve25519 before
    /// negotiation, so a scenario may send an init message at any time), and the public value.
    pub fn new_kex_secret(&mut self) -> Result<Vec<u8>, String> {
        let method = self.kex.method().or_else(|| kex::method("curve25519-sha256")).ok_or("no key exchange method")?;
        let group = self.kex.gex_group.as_ref().map(|(p, g)| (p.as_slice(), g.as_slice()));
        let group = match (method.family, group) {
            (kex::Family::Gex, None) => {
                return Err("group exchange needs the server's KEX_DH_GEX_GROUP first".into());
            }
            (_, g) => g,
        };
        let (secret, public) = kex::Secret::generate(method, group)?;
        self.kex.secret = Some(secret);
        Ok(public)
    }

    fn on_gex_group(&mut self, p: &[u8], g: &[u8]) -> Result<(), TransportError> {
        let bits = kex::modp_bits(p);
        self.log.note(format!("server's group: a {bits}-bit prime, g = {}", hex::encode(g)));
        if let Some(req) = self.kex.gex_request
            && !req.allows(bits)
        {
            return Err(TransportError::Target(format!(
                "sent a {bits}-bit group for a request of min {} / n {} / max {} (RFC 4419 §3)",
                req.min.map_or("-".into(), |v| v.to_string()),
                req.n,
                req.max.map_or("-".into(), |v| v.to_string())
            )));
        }
        self.kex.gex_group = Some((p.to_vec(), g.to_vec()));
        Ok(())
    }

    /// The server's reply: K, H, the host key signature, and the next epoch's keys.
    fn on_kex_reply(&mut self, k_s: &[u8], server_value: &[u8], sig: &[u8]) -> Result<(), TransportError> {
        let (Some(n), Some(method), Some(secret), Some(client)) =
            (self.kex.negotiated().cloned(), self.kex.method(), self.kex.secret.take(), self.kex.client_value.take())
        else {
            self.log.note("key exchange reply outside an exchange we started: not processed");
            return Ok(());
        };
        let Some(cookie) = self.kexinit_payloads().map(|(i_c, _)| i_c.get(1..17).unwrap_or_default().to_vec()) else {
            return Ok(());
        };
        let k = secret
            .shared(server_value, method.hash)
            .map_err(|e| TransportError::Target(format!("{}: {e}", method.name)))?;
        if let Some(c) = &mut self.capture {
            c.secrets(&cookie, secret.x25519_private().as_ref().map(|x| &x[..]), &k);
        }
        let h = self.exchange_hash(method, k_s, &client, server_value, &k)?;
        hostkey::verify(&n.host_key, k_s, sig, &h)
            .map_err(|e| TransportError::Target(format!("host key check failed ({}): {e}", n.host_key)))?;
        let fp = hostkey::fingerprint(k_s);
        self.log.note(format!("host key {} verified: {}", fp, hostkey::openssh_line(k_s)));
        if !self.pinned_host_keys.is_empty() && !self.pinned_host_keys.contains(&fp) {
            return Err(TransportError::Ours(format!(
                "host key {fp} is not the pinned key ({}); stopping before authentication",
                self.pinned_host_keys.join(", ")
            )));
        }
        self.kex.host_key = Some(k_s.to_vec());
        self.install_keys(&n, method, &k, &h)
    }

    /// The server role's half: from the client's public value (received), our own value, K and H,
    /// H signed by `sign` with the host key `k_s` under the negotiated algorithm, and the next
    /// epoch's keys; returns the reply to send. Fixed groups and the elliptic curves only.
    pub fn server_kex_reply(
        &mut self,
        k_s: &[u8],
        sign: impl FnOnce(&str, &[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<Message, TransportError> {
        use sshspec_wire::msg::{KexDhGexReply, KexEcdhReply, KexdhReply};
        let (Some(n), Some(method)) = (self.kex.negotiated().cloned(), self.kex.method()) else {
            return Err(TransportError::Target("sent a key exchange init message before negotiation".into()));
        };
        let client = self
            .kex
            .client_value
            .take()
            .ok_or_else(|| TransportError::Ours("a kex reply with no client value received".into()))?;
        let theirs = |e: String| TransportError::Target(format!("{}: {e}", method.name));
        let (ours, k) = match method.family {
            kex::Family::Hybrid(kem) => kex::HybridSecret::respond(kem, &client, method.hash).map_err(theirs)?,
            _ => {
                let group = self.kex.gex_group.as_ref().map(|(p, g)| (p.as_slice(), g.as_slice()));
                let (secret, ours) = match kex::Secret::reused(method).filter(|_| self.quirks.ecdh_key_reused) {
                    Some(reused) => reused,
                    None => kex::Secret::generate(method, group).map_err(TransportError::Ours)?,
                };
                let k = secret.shared(&client, method.hash).map_err(theirs)?;
                (ours, k)
            }
        };
        let k = if self.quirks.curve25519_k_as_string && matches!(method.family, kex::Family::Ecdh(kex::Curve::X25519))
        {
            kex::mpint_as_string(&k, 32)
        } else {
            k
        };
        let ours = match method.family {
            kex::Family::Dh(_) | kex::Family::Gex if self.quirks.mpint_not_minimal => [&[0u8][..], &ours].concat(),
            kex::Family::Ecdh(c) if self.quirks.ecdh_point_compressed && c != kex::Curve::X25519 => {
                kex::compress_point(&ours)
            }
            _ => ours,
        };
        let h = self.exchange_hash(method, k_s, &client, &ours, &k)?;
        let signature = sign(&n.host_key, &h).map_err(TransportError::Ours)?;
        self.install_keys(&n, method, &k, &h)?;
        let (k_s, signature) = (Bytes(k_s.to_vec()), Bytes(signature));
        Ok(match method.family {
            kex::Family::Dh(_) => Message::KexdhReply(KexdhReply { k_s, f: Bytes(ours), signature }),
            kex::Family::Gex => Message::KexDhGexReply(KexDhGexReply { k_s, f: Bytes(ours), signature }),
            _ => Message::KexEcdhReply(KexEcdhReply { k_s, q_s: Bytes(ours), signature }),
        })
    }

    /// The server role's answer to a group exchange request (RFC 4419 §3): the smallest of the
    /// RFC 3526 groups that is at least the preferred size and within the bounds, else the
    /// largest within them. With `largest`, the largest within them always (the fixture's
    /// `gex-largest-allowed`).
    pub fn server_gex_group(&self, largest: bool) -> Result<Message, TransportError> {
        let req = self
            .kex
            .gex_request
            .ok_or_else(|| TransportError::Ours("a group exchange group with no request received".into()))?;
        let groups = [
            (2048, kex::modp::GROUP14),
            (3072, kex::modp::GROUP15),
            (4096, kex::modp::GROUP16),
            (6144, kex::modp::GROUP17),
            (8192, kex::modp::GROUP18),
        ];
        let allowed: Vec<_> = groups.iter().filter(|(bits, _)| req.allows(*bits)).collect();
        let smallest_fitting = allowed.iter().find(|(bits, _)| *bits as u32 >= req.n);
        let (_, p_hex) = smallest_fitting.filter(|_| !largest).or(allowed.last()).ok_or_else(|| {
            TransportError::Target(format!(
                "asked for a group of {:?} to {:?} bits; ours have 2048 to 8192",
                req.min, req.max
            ))
        })?;
        Self::gex_group(p_hex)
    }

    /// KEX_DH_GEX_GROUP for one of the MODP primes (hex), generator 2.
    pub fn gex_group(p_hex: &str) -> Result<Message, TransportError> {
        let mut p = vec![0u8];
        p.extend(hex::decode(p_hex).map_err(|e| TransportError::Ours(format!("a MODP prime: {e}")))?);
        Ok(Message::KexDhGexGroup(sshspec_wire::msg::KexDhGexGroup { p: Bytes(p), g: Bytes(vec![2]) }))
    }

    fn exchange_hash(
        &self,
        method: &kex::Method,
        k_s: &[u8],
        client: &[u8],
        server: &[u8],
        k: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        let (i_c, i_s) = self
            .kexinit_payloads()
            .ok_or_else(|| TransportError::Ours("an exchange hash without both KEXINITs".into()))?;
        let old_request;
        let gex = match (method.family, &self.kex.gex_request, &self.kex.gex_group) {
            (kex::Family::Gex, Some(req), Some((p, g))) if self.quirks.gex_hash_without_bounds => {
                old_request = kex::GexRequest { min: None, max: None, ..*req };
                Some((&old_request, p.as_slice(), g.as_slice()))
            }
            (kex::Family::Gex, Some(req), Some((p, g)))
                if self.quirks.gex_old_hash_with_bounds && req.min.is_none() =>
            {
                let bounds = kex::GexRequest::DEFAULT;
                old_request = kex::GexRequest { n: req.n, ..bounds };
                Some((&old_request, p.as_slice(), g.as_slice()))
            }
            (kex::Family::Gex, Some(req), Some((p, g))) => Some((req, p.as_slice(), g.as_slice())),
            (kex::Family::Gex, ..) => {
                return Err(TransportError::Ours(
                    "group exchange reply without our request and the server's group".into(),
                ));
            }
            _ => None,
        };
        let (v_c, v_s) = self.versions();
        let middle = kex::Middle { gex, client, server };
        let hash = if self.quirks.exchange_hash_sha256 { kex::Hash::Sha256 } else { method.hash };
        Ok(kex::exchange_hash(hash, &kex::HashInputs { v_c: &v_c, v_s: &v_s, i_c, i_s, k_s, middle, k }))
    }

    /// Derives the next epoch's keys from K and H (RFC 4253 §7.2) and holds them until NEWKEYS.
    fn install_keys(&mut self, n: &Negotiated, method: &kex::Method, k: &[u8], h: &[u8]) -> Result<(), TransportError> {
        if self.quirks.session_id_follows_rekey {
            self.kex.session_id = Some(h.to_vec());
        }
        let session_id = self.kex.session_id.get_or_insert_with(|| h.to_vec()).clone();
        let derive =
            |cipher: &str, mac: &Option<String>, iv: u8, key: u8, mk: u8| -> Result<DirectionKeys, TransportError> {
                let (klen, ivlen) = cipher::cipher_sizes(cipher).ok_or_else(|| {
                    TransportError::Ours(format!("negotiated cipher {cipher} is not one the scripted peer speaks"))
                })?;
                let mlen = match mac {
                    Some(m) => {
                        cipher::mac_sizes(m)
                            .ok_or_else(|| {
                                TransportError::Ours(format!("negotiated MAC {m} is not one the scripted peer speaks"))
                            })?
                            .0
                    }
                    None => 0,
                };
                let d = |letter: u8, len: usize| {
                    if self.quirks.repeat_short_keys {
                        let one = method.hash.digest(&[k, h, &[letter], &session_id]);
                        return one.iter().copied().cycle().take(len).collect();
                    }
                    kex::derive_key(method.hash, k, h, letter, &session_id, len)
                };
                Ok(DirectionKeys {
                    cipher: cipher.to_owned(),
                    mac: mac.clone(),
                    iv: d(iv, ivlen),
                    key: d(key, klen),
                    mac_key: d(mk, mlen),
                })
            };
        let c2s = derive(&n.cipher_c2s, &n.mac_c2s, b'A', b'C', b'E')?;
        let s2c = derive(&n.cipher_s2c, &n.mac_s2c, b'B', b'D', b'F')?;
        let comp = |name: &str, dir: &str| {
            compress::start(name).ok_or_else(|| {
                TransportError::Ours(format!(
                    "negotiated {dir} compression {name}, which the scripted peer does not speak"
                ))
            })
        };
        let (c2s_comp, s2c_comp) =
            (comp(&n.compression_c2s, "client-to-server")?, comp(&n.compression_s2c, "server-to-client")?);
        let (tx, rx, tx_comp, rx_comp) = match self.role {
            Role::Client => (c2s, s2c, c2s_comp, s2c_comp),
            Role::Server => (s2c, c2s, s2c_comp, c2s_comp),
        };
        self.tx.pending_compression = Some(tx_comp);
        self.rx.pending_compression = Some(rx_comp);
        self.tx.pending = PacketCipher::new(&tx).map(|mut c| {
            c.etm_over_plaintext = self.quirks.etm_over_plaintext;
            c.cbc_restarts = self.quirks.cbc_restarts;
            c
        });
        self.rx.pending = PacketCipher::new(&rx);
        Ok(())
    }

    fn finish_kex_if_done(&mut self) {
        if self.tx.pending.is_none()
            && self.rx.pending.is_none()
            && self.kex.ours.is_some()
            && self.kex.theirs.is_some()
        {
            self.kex.completed += 1;
            self.kex.completed_at = Some(Instant::now());
            self.kex.ours = None;
            self.kex.theirs = None;
            self.kex.gex_request = None;
            self.kex.gex_group = None;
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
        if let Some(mut c) = self.capture.take() {
            c.finish();
            if let Some(e) = c.error {
                self.log.note(e);
            }
        }
    }
}

fn auth_family(r: &sshspec_wire::msg::UserauthRequest) -> sshspec_wire::msg::AuthFamily {
    use sshspec_wire::msg::AuthFamily;
    match r.method {
        AuthMethod::Publickey { .. } | AuthMethod::PublickeyHostbound { .. } => AuthFamily::Publickey,
        AuthMethod::Password { .. } => AuthFamily::Password,
        AuthMethod::KeyboardInteractive { .. } => AuthFamily::KeyboardInteractive,
        _ => AuthFamily::Unset,
    }
}

fn is_reset(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
}

/// Bytes as text with escapes, for transcripts of lines and raw sends.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(300) {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    if b.len() > 300 {
        s.push_str(&format!("...({} bytes)", b.len()));
    }
    s
}
