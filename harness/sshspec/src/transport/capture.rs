//! Captures on request (`--capture`): a pcap of one connection and a key log that lets Wireshark
//! decrypt it. We own the TCP stream, not the interface, so the pcap is written from the bytes as
//! they were sent and received, with their times, wrapped in Ethernet/IP/TCP headers that carry the
//! connection's real addresses and ports and consistent sequence numbers. No privileges, no
//! libpcap, and only this connection's traffic.
//!
//! The key log holds, per key exchange, the client KEXINIT cookie with our ephemeral curve25519
//! private key (`<cookie> <key>`, the format Wireshark 4.0 reads) and with the shared secret
//! (`<cookie> SHARED_SECRET <K>`, read by Wireshark 4.2 and later, for every method).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Segments are cut at this size so each fits an IP packet.
const MAX_SEGMENT: usize = 32 * 1024;

pub struct Capture {
    pcap: std::io::BufWriter<std::fs::File>,
    keylog: Option<std::fs::File>,
    keylog_path: PathBuf,
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence numbers of the client's and the server's streams.
    seq: [u32; 2],
    /// The first write error; later writes are skipped and the error is reported once.
    pub error: Option<String>,
}

/// From the client (us) or from the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client = 0,
    Server = 1,
}

impl Capture {
    /// Starts `<stem>.pcap` (with the TCP handshake) for the connection `client` → `server`; the key
    /// log `<stem>.keylog` is created when the first secret is known.
    pub fn create(stem: &Path, client: SocketAddr, server: SocketAddr) -> std::io::Result<Self> {
        if let Some(dir) = stem.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut pcap = std::io::BufWriter::new(std::fs::File::create(stem.with_extension("pcap"))?);
        // Classic pcap, microsecond times, LINKTYPE_ETHERNET.
        pcap.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        pcap.write_all(&2u16.to_le_bytes())?;
        pcap.write_all(&4u16.to_le_bytes())?;
        pcap.write_all(&[0; 8])?;
        pcap.write_all(&262_144u32.to_le_bytes())?;
        pcap.write_all(&1u32.to_le_bytes())?;
        let mut c = Capture {
            pcap,
            keylog: None,
            keylog_path: stem.with_extension("keylog"),
            client,
            server,
            seq: [0x1000_0000, 0x2000_0000],
            error: None,
        };
        c.segment(Side::Client, TCP_SYN, &[]);
        c.segment(Side::Server, TCP_SYN | TCP_ACK, &[]);
        c.segment(Side::Client, TCP_ACK, &[]);
        Ok(c)
    }

    pub fn data(&mut self, from: Side, bytes: &[u8]) {
        for chunk in bytes.chunks(MAX_SEGMENT) {
            self.segment(from, TCP_ACK | TCP_PSH, chunk);
        }
    }

    /// Records a finished key exchange's secrets under the client's KEXINIT cookie.
    pub fn secrets(&mut self, client_cookie: &[u8], x25519_private: Option<&[u8]>, k_encoded: &[u8]) {
        let mut lines = String::new();
        let cookie = hex::encode(client_cookie);
        if let Some(x) = x25519_private {
            lines.push_str(&format!("{cookie} {}\n", hex::encode(x)));
        }
        lines.push_str(&format!("{cookie} SHARED_SECRET {}\n", hex::encode(k_encoded)));
        let file = match self.keylog.take() {
            Some(f) => Ok(f),
            None => std::fs::File::create(&self.keylog_path),
        };
        match file.and_then(|mut f| f.write_all(lines.as_bytes()).map(|_| f)) {
            Ok(f) => self.keylog = Some(f),
            Err(e) => self.fail(e),
        }
    }

    /// The connection's end: a FIN each way.
    pub fn finish(&mut self) {
        self.segment(Side::Client, TCP_FIN | TCP_ACK, &[]);
        self.segment(Side::Server, TCP_FIN | TCP_ACK, &[]);
        if let Err(e) = self.pcap.flush() {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        if self.error.is_none() {
            self.error = Some(format!("capture: {e}"));
        }
    }

    fn segment(&mut self, from: Side, flags: u8, payload: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let (src, dst) = match from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        let me = from as usize;
        let seq = self.seq[me];
        let ack = if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 { 0 } else { self.seq[1 - me] };
        self.seq[me] = seq.wrapping_add(payload.len() as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0));
        let headers = headers(src, dst, seq, ack, flags, payload);
        let len = (headers.len() + payload.len()) as u32;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        // Headers and payload go straight to the buffered file: a 1 GiB transfer is copied once.
        let written = self
            .pcap
            .write_all(&rec)
            .and_then(|_| self.pcap.write_all(&headers))
            .and_then(|_| self.pcap.write_all(payload));
        if let Err(e) = written {
            self.fail(e);
        }
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// The Ethernet, IPv4 or IPv6, and TCP headers of one segment carrying `payload`, with checksums.
fn headers(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let tcp_len = 20 + payload.len();
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&src.port().to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(40);
    let mut out = Vec::with_capacity(14 + 40 + 20);
    out.extend_from_slice(&[2, 0, 0, 0, 0, if src == dst { 1 } else { 2 }]);
    out.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            ip[6] = 0x40;
            ip[8] = 64;
            ip[9] = 6;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let sum = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            out.extend_from_slice(&ip);
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            out.extend_from_slice(&0x86ddu16.to_be_bytes());
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            out.extend_from_slice(&[6, 64]);
            out.extend_from_slice(&v6(s));
            out.extend_from_slice(&v6(d));
            pseudo.extend_from_slice(&v6(s));
            pseudo.extend_from_slice(&v6(d));
            pseudo.extend_from_slice(&(tcp_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 6]);
        }
    }
    let sum = checksum(&[&pseudo, &tcp, payload]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    out.extend_from_slice(&tcp);
    out
}

/// A whole frame, headers and payload, as the pcap holds it.
#[cfg(test)]
fn frame(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = headers(src, dst, seq, ack, flags, payload);
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum (RFC 1071) of the parts taken as one run of bytes; every part but the
/// last has an even length, so its 16-bit words line up with the whole's.
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies_to_zero() {
        let f = frame("127.0.0.1:5000".parse().unwrap(), "127.0.0.1:22".parse().unwrap(), 1, 2, TCP_ACK, b"abc");
        assert_eq!(checksum(&[&f[14..34]]), 0);
        assert_eq!(f.len(), 14 + 20 + 20 + 3);
    }

    #[test]
    fn sequence_numbers_advance_by_payload_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut c =
            Capture::create(&dir.path().join("x"), "127.0.0.1:5000".parse().unwrap(), "127.0.0.1:22".parse().unwrap())
                .unwrap();
        let start = c.seq;
        c.data(Side::Client, &[0; 70_000]);
        assert_eq!(c.seq[0], start[0].wrapping_add(70_000));
        c.finish();
        assert!(c.error.is_none());
        let len = std::fs::metadata(dir.path().join("x.pcap")).unwrap().len();
        // Header, 3 handshake segments, 3 data segments (32 KiB pieces), 2 FINs.
        assert_eq!(len, 24 + 8 * (16 + 54) + 70_000);
    }
}
