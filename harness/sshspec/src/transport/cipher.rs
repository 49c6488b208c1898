//! Packet protection for one direction: the ciphers and MACs of RFC 4253 §6.3-6.4 (CBC), RFC 4344 (CTR),
//! RFC 5647 as profiled by OpenSSH (`aes*-gcm@openssh.com`), OpenSSH's `chacha20-poly1305@openssh.com`
//! (PROTOCOL.chacha20poly1305) and the encrypt-then-MAC variants (`*-etm@openssh.com`, PROTOCOL §1.5).

use aes::cipher::KeyInit;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, StreamCipher, StreamCipherSeek};
use aes_gcm::KeyInit as _;
use aes_gcm::aead::AeadInOut;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type Aes192Ctr = ctr::Ctr128BE<aes::Aes192>;
type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type CbcEnc<C> = Box<cbc::Encryptor<C>>;
type CbcDec<C> = Box<cbc::Decryptor<C>>;

pub const CHACHA20_POLY1305: &str = "chacha20-poly1305@openssh.com";
pub const AES128_GCM: &str = "aes128-gcm@openssh.com";
pub const AES256_GCM: &str = "aes256-gcm@openssh.com";
pub const AES128_CTR: &str = "aes128-ctr";
pub const AES192_CTR: &str = "aes192-ctr";
pub const AES256_CTR: &str = "aes256-ctr";
pub const AES128_CBC: &str = "aes128-cbc";
pub const AES192_CBC: &str = "aes192-cbc";
pub const AES256_CBC: &str = "aes256-cbc";
pub const TRIPLE_DES_CBC: &str = "3des-cbc";
pub const NONE: &str = "none";

pub const HMAC_SHA2_256: &str = "hmac-sha2-256";
pub const HMAC_SHA2_512: &str = "hmac-sha2-512";
pub const HMAC_SHA1: &str = "hmac-sha1";
pub const HMAC_SHA2_256_ETM: &str = "hmac-sha2-256-etm@openssh.com";
pub const HMAC_SHA2_512_ETM: &str = "hmac-sha2-512-etm@openssh.com";
pub const HMAC_SHA1_ETM: &str = "hmac-sha1-etm@openssh.com";

/// Ciphers the scripted peer speaks, in our default order of preference. The CBC modes are
/// spoken but offered only when a scenario asks (RFC 4344 §4 advises against them).
pub const CIPHERS: &[&str] = &[CHACHA20_POLY1305, AES128_GCM, AES256_GCM, AES128_CTR, AES192_CTR, AES256_CTR];
/// Every cipher we speak.
pub const ALL_CIPHERS: &[&str] = &[
    CHACHA20_POLY1305,
    AES128_GCM,
    AES256_GCM,
    AES128_CTR,
    AES192_CTR,
    AES256_CTR,
    AES128_CBC,
    AES192_CBC,
    AES256_CBC,
    TRIPLE_DES_CBC,
];
/// MACs the scripted peer speaks, in our default order of preference.
pub const MACS: &[&str] =
    &[HMAC_SHA2_256_ETM, HMAC_SHA2_512_ETM, HMAC_SHA2_256, HMAC_SHA2_512, HMAC_SHA1_ETM, HMAC_SHA1];

/// Key and IV sizes a negotiated algorithm needs from the key derivation (RFC 4253 §7.2).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub key: usize,
    pub iv: usize,
    pub mac_key: usize,
}

pub fn cipher_sizes(name: &str) -> Option<(usize, usize)> {
    Some(match name {
        CHACHA20_POLY1305 => (64, 0),
        AES128_GCM => (16, 12),
        AES256_GCM => (32, 12),
        AES128_CTR => (16, 16),
        AES192_CTR => (24, 16),
        AES256_CTR => (32, 16),
        AES128_CBC => (16, 16),
        AES192_CBC => (24, 16),
        AES256_CBC => (32, 16),
        TRIPLE_DES_CBC => (24, 8),
        NONE => (0, 0),
        _ => return None,
    })
}

pub fn is_aead(cipher: &str) -> bool {
    matches!(cipher, CHACHA20_POLY1305 | AES128_GCM | AES256_GCM)
}

/// (key length, tag length, encrypt-then-MAC)
pub fn mac_sizes(name: &str) -> Option<(usize, usize, bool)> {
    Some(match name {
        HMAC_SHA2_256 => (32, 32, false),
        HMAC_SHA2_512 => (64, 64, false),
        HMAC_SHA1 => (20, 20, false),
        HMAC_SHA2_256_ETM => (32, 32, true),
        HMAC_SHA2_512_ETM => (64, 64, true),
        HMAC_SHA1_ETM => (20, 20, true),
        NONE => (0, 0, false),
        _ => return None,
    })
}

/// The keys one direction gets from the key exchange.
#[derive(Clone)]
pub struct DirectionKeys {
    pub cipher: String,
    pub mac: Option<String>,
    pub iv: Vec<u8>,
    pub key: Vec<u8>,
    pub mac_key: Vec<u8>,
}

enum MacAlg {
    Sha256(Vec<u8>),
    Sha512(Vec<u8>),
    Sha1(Vec<u8>),
    /// The `none` MAC: no integrity (RFC 4253 §6.4).
    Nothing,
}

impl MacAlg {
    fn new(name: &str, key: Vec<u8>) -> Option<Self> {
        Some(match name {
            HMAC_SHA2_256 | HMAC_SHA2_256_ETM => MacAlg::Sha256(key),
            HMAC_SHA2_512 | HMAC_SHA2_512_ETM => MacAlg::Sha512(key),
            HMAC_SHA1 | HMAC_SHA1_ETM => MacAlg::Sha1(key),
            NONE => MacAlg::Nothing,
            _ => return None,
        })
    }

    fn compute(&self, seq: u32, data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], seq: u32, data: &[u8]) -> Vec<u8> {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut m = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
            m.update(&seq.to_be_bytes());
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            MacAlg::Sha256(k) => run::<Hmac<sha2::Sha256>>(k, seq, data),
            MacAlg::Sha512(k) => run::<Hmac<sha2::Sha512>>(k, seq, data),
            MacAlg::Sha1(k) => run::<Hmac<sha1::Sha1>>(k, seq, data),
            MacAlg::Nothing => Vec::new(),
        }
    }

    fn len(&self) -> usize {
        match self {
            MacAlg::Sha256(_) => 32,
            MacAlg::Sha512(_) => 64,
            MacAlg::Sha1(_) => 20,
            MacAlg::Nothing => 0,
        }
    }
}

/// The non-AEAD ciphers: CTR is a keystream (the same either way); CBC keeps one chain per
/// direction, so a packet cipher holds both halves and uses the one its direction needs.
enum Stream {
    Ctr128(Box<Aes128Ctr>),
    Ctr192(Box<Aes192Ctr>),
    Ctr256(Box<Aes256Ctr>),
    Cbc128(CbcEnc<aes::Aes128>, CbcDec<aes::Aes128>),
    Cbc192(CbcEnc<aes::Aes192>, CbcDec<aes::Aes192>),
    Cbc256(CbcEnc<aes::Aes256>, CbcDec<aes::Aes256>),
    Tdes(CbcEnc<des::TdesEde3>, CbcDec<des::TdesEde3>),
    /// The `none` cipher: no confidentiality (RFC 4253 §6.3), packets aligned to 8 bytes.
    Clear,
}

impl Stream {
    fn new(name: &str, key: &[u8], iv: &[u8]) -> Option<Self> {
        fn cbc<C>(key: &[u8], iv: &[u8]) -> Option<(CbcEnc<C>, CbcDec<C>)>
        where
            C: aes::cipher::BlockCipher
                + aes::cipher::BlockEncryptMut
                + aes::cipher::BlockDecryptMut
                + aes::cipher::KeyInit,
        {
            Some((
                Box::new(cbc::Encryptor::new_from_slices(key, iv).ok()?),
                Box::new(cbc::Decryptor::new_from_slices(key, iv).ok()?),
            ))
        }
        Some(match name {
            AES128_CTR => Stream::Ctr128(Box::new(Aes128Ctr::new_from_slices(key, iv).ok()?)),
            AES192_CTR => Stream::Ctr192(Box::new(Aes192Ctr::new_from_slices(key, iv).ok()?)),
            AES256_CTR => Stream::Ctr256(Box::new(Aes256Ctr::new_from_slices(key, iv).ok()?)),
            AES128_CBC => {
                let (e, d) = cbc(key, iv)?;
                Stream::Cbc128(e, d)
            }
            AES192_CBC => {
                let (e, d) = cbc(key, iv)?;
                Stream::Cbc192(e, d)
            }
            AES256_CBC => {
                let (e, d) = cbc(key, iv)?;
                Stream::Cbc256(e, d)
            }
            TRIPLE_DES_CBC => {
                let (e, d) = cbc(key, iv)?;
                Stream::Tdes(e, d)
            }
            NONE => Stream::Clear,
            _ => return None,
        })
    }

    fn block_size(&self) -> usize {
        if matches!(self, Stream::Tdes(..) | Stream::Clear) { 8 } else { 16 }
    }

    /// Encrypts whole blocks in place; a trailing partial block (only ever in a packet a scenario
    /// misframes on purpose) is left as it is for CBC.
    fn encrypt(&mut self, buf: &mut [u8]) {
        fn blocks<C: BlockEncryptMut>(c: &mut C, buf: &mut [u8], bs: usize) {
            for b in buf.chunks_exact_mut(bs) {
                c.encrypt_block_mut(aes::cipher::generic_array::GenericArray::from_mut_slice(b));
            }
        }
        let bs = self.block_size();
        match self {
            Stream::Ctr128(c) => c.apply_keystream(buf),
            Stream::Ctr192(c) => c.apply_keystream(buf),
            Stream::Ctr256(c) => c.apply_keystream(buf),
            Stream::Cbc128(e, _) => blocks(&mut **e, buf, bs),
            Stream::Cbc192(e, _) => blocks(&mut **e, buf, bs),
            Stream::Cbc256(e, _) => blocks(&mut **e, buf, bs),
            Stream::Tdes(e, _) => blocks(&mut **e, buf, bs),
            Stream::Clear => {}
        }
    }

    fn decrypt(&mut self, buf: &mut [u8]) {
        fn blocks<C: BlockDecryptMut>(c: &mut C, buf: &mut [u8], bs: usize) {
            for b in buf.chunks_exact_mut(bs) {
                c.decrypt_block_mut(aes::cipher::generic_array::GenericArray::from_mut_slice(b));
            }
        }
        let bs = self.block_size();
        match self {
            Stream::Ctr128(c) => c.apply_keystream(buf),
            Stream::Ctr192(c) => c.apply_keystream(buf),
            Stream::Ctr256(c) => c.apply_keystream(buf),
            Stream::Cbc128(_, d) => blocks(&mut **d, buf, bs),
            Stream::Cbc192(_, d) => blocks(&mut **d, buf, bs),
            Stream::Cbc256(_, d) => blocks(&mut **d, buf, bs),
            Stream::Tdes(_, d) => blocks(&mut **d, buf, bs),
            Stream::Clear => {}
        }
    }
}

enum Gcm {
    A128(Box<aes_gcm::Aes128Gcm>),
    A256(Box<aes_gcm::Aes256Gcm>),
}

enum State {
    Plain,
    ChaCha { main: [u8; 32], header: [u8; 32] },
    Gcm { gcm: Gcm, fixed: [u8; 4], counter: u64 },
    Block { stream: Stream, mac: MacAlg, etm: bool },
}

/// Why an incoming packet was rejected. These are the target's faults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("MAC or authentication tag mismatch on packet with sequence number {seq}")]
    BadMac { seq: u32 },
    #[error("packet length {len} is not a multiple of the cipher block size {block}")]
    Misaligned { len: usize, block: usize },
}

/// One direction's packet protection. The sequence number is passed in, since strict kex resets it.
pub struct PacketCipher {
    state: State,
    name: String,
    /// Under an EtM MAC, compute the MAC over the plaintext as RFC 4253 does (a deviant fixture).
    pub etm_over_plaintext: bool,
    /// Under CBC, start each packet's chain from the first IV again ("inner chaining", which
    /// RFC 4253 §6.3 forbids: a deviant fixture).
    pub cbc_restarts: bool,
    /// The key and IV the stream began with, for `cbc_restarts`.
    origin: (Vec<u8>, Vec<u8>),
    /// The first block of a non-EtM packet, already decrypted to read its length.
    peeked: Option<Vec<u8>>,
}

impl PacketCipher {
    pub fn plain() -> Self {
        PacketCipher {
            state: State::Plain,
            name: NONE.into(),
            etm_over_plaintext: false,
            cbc_restarts: false,
            origin: Default::default(),
            peeked: None,
        }
    }

    /// Whether packets are encrypted (after the first NEWKEYS), so their raw bytes mean nothing to a reader.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self.state, State::Plain)
    }

    /// Builds the state for a negotiated cipher and MAC; `None` if we do not speak them.
    pub fn new(k: &DirectionKeys) -> Option<Self> {
        let state = match k.cipher.as_str() {
            CHACHA20_POLY1305 => {
                let mut main = [0u8; 32];
                let mut header = [0u8; 32];
                main.copy_from_slice(k.key.get(..32)?);
                header.copy_from_slice(k.key.get(32..64)?);
                State::ChaCha { main, header }
            }
            AES128_GCM | AES256_GCM => {
                let gcm = if k.cipher == AES128_GCM {
                    Gcm::A128(Box::new(aes_gcm::Aes128Gcm::new_from_slice(&k.key).ok()?))
                } else {
                    Gcm::A256(Box::new(aes_gcm::Aes256Gcm::new_from_slice(&k.key).ok()?))
                };
                let mut fixed = [0u8; 4];
                fixed.copy_from_slice(k.iv.get(..4)?);
                let mut c = [0u8; 8];
                c.copy_from_slice(k.iv.get(4..12)?);
                State::Gcm { gcm, fixed, counter: u64::from_be_bytes(c) }
            }
            other => {
                let stream = Stream::new(other, &k.key, &k.iv)?;
                let mac_name = k.mac.as_deref()?;
                let (_, _, etm) = mac_sizes(mac_name)?;
                State::Block { stream, mac: MacAlg::new(mac_name, k.mac_key.clone())?, etm }
            }
        };
        Some(PacketCipher {
            state,
            name: k.cipher.clone(),
            etm_over_plaintext: false,
            cbc_restarts: false,
            origin: (k.key.clone(), k.iv.clone()),
            peeked: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The alignment unit for padding (RFC 4253 §6: at least 8).
    pub fn block_size(&self) -> usize {
        match &self.state {
            State::Plain | State::ChaCha { .. } => 8,
            State::Gcm { .. } => 16,
            State::Block { stream, .. } => stream.block_size(),
        }
    }

    /// Whether the length field is outside the encrypted, aligned part (AEAD and EtM modes).
    pub fn length_in_clear(&self) -> bool {
        match &self.state {
            State::Plain => false,
            State::ChaCha { .. } | State::Gcm { .. } => true,
            State::Block { etm, .. } => *etm,
        }
    }

    pub fn tag_len(&self) -> usize {
        match &self.state {
            State::Plain => 0,
            State::ChaCha { .. } | State::Gcm { .. } => 16,
            State::Block { mac, .. } => mac.len(),
        }
    }

    /// Encrypts `packet` (length field, padding length, payload, padding) in place and appends the tag.
    pub fn seal(&mut self, seq: u32, packet: &mut Vec<u8>) {
        match &mut self.state {
            State::Plain => {}
            State::ChaCha { main, header } => {
                let nonce = u64::from(seq).to_be_bytes();
                let mut hc = chacha20::ChaCha20Legacy::new((&*header).into(), &nonce.into());
                hc.apply_keystream(&mut packet[..4]);
                let mut mc = chacha20::ChaCha20Legacy::new((&*main).into(), &nonce.into());
                let mut poly_key = [0u8; 32];
                mc.apply_keystream(&mut poly_key);
                mc.seek(64u64);
                mc.apply_keystream(&mut packet[4..]);
                let tag = poly1305_tag(&poly_key, packet);
                packet.extend_from_slice(&tag);
            }
            State::Gcm { gcm, fixed, counter } => {
                let nonce = gcm_nonce(fixed, *counter);
                *counter = counter.wrapping_add(1);
                let (aad, body) = packet.split_at_mut(4);
                let tag = match gcm {
                    Gcm::A128(g) => g.encrypt_inout_detached(&nonce.into(), aad, body.into()),
                    Gcm::A256(g) => g.encrypt_inout_detached(&nonce.into(), aad, body.into()),
                };
                // Encryption only fails for buffers over 64 GiB, which a packet never is.
                if let Ok(tag) = tag {
                    packet.extend_from_slice(&tag);
                }
            }
            State::Block { stream, mac, etm } => {
                if self.cbc_restarts
                    && matches!(stream, Stream::Cbc128(..) | Stream::Cbc192(..) | Stream::Cbc256(..) | Stream::Tdes(..))
                    && let Some(fresh) = Stream::new(&self.name, &self.origin.0, &self.origin.1)
                {
                    *stream = fresh;
                }
                if *etm && self.etm_over_plaintext {
                    let tag = mac.compute(seq, packet);
                    stream.encrypt(&mut packet[4..]);
                    packet.extend_from_slice(&tag);
                } else if *etm {
                    stream.encrypt(&mut packet[4..]);
                    let tag = mac.compute(seq, packet);
                    packet.extend_from_slice(&tag);
                } else {
                    let tag = mac.compute(seq, packet);
                    stream.encrypt(packet);
                    packet.extend_from_slice(&tag);
                }
            }
        }
    }

    /// How many bytes must be buffered before [`Self::packet_length`] can be called.
    pub fn header_len(&self) -> usize {
        match self.state {
            State::Plain => 4,
            _ if self.length_in_clear() => 4,
            _ => self.block_size(),
        }
    }

    /// Reads the packet length from the first `header_len()` bytes, decrypting them if need be.
    pub fn packet_length(&mut self, seq: u32, head: &[u8]) -> u32 {
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[..4]);
        match &mut self.state {
            State::ChaCha { header, .. } => {
                let nonce = u64::from(seq).to_be_bytes();
                let mut hc = chacha20::ChaCha20Legacy::new((&*header).into(), &nonce.into());
                hc.apply_keystream(&mut len);
            }
            State::Block { stream, etm: false, .. } => {
                if self.peeked.is_none() {
                    let mut first = head[..stream.block_size()].to_vec();
                    stream.decrypt(&mut first);
                    self.peeked = Some(first);
                }
                if let Some(p) = &self.peeked {
                    len.copy_from_slice(&p[..4]);
                }
            }
            _ => {}
        }
        u32::from_be_bytes(len)
    }

    /// Verifies and decrypts a whole packet (length field through tag) in place. On success the
    /// buffer holds the plaintext packet without the tag, length field first.
    pub fn open(&mut self, seq: u32, buf: &mut Vec<u8>) -> Result<(), OpenError> {
        let tag_len = self.tag_len();
        let body_len = buf.len() - tag_len;
        let block = self.block_size();
        let aligned = if self.length_in_clear() { body_len - 4 } else { body_len };
        match &mut self.state {
            State::Plain => {}
            State::ChaCha { main, .. } => {
                let nonce = u64::from(seq).to_be_bytes();
                let mut mc = chacha20::ChaCha20Legacy::new((&*main).into(), &nonce.into());
                let mut poly_key = [0u8; 32];
                mc.apply_keystream(&mut poly_key);
                let tag = poly1305_tag(&poly_key, &buf[..body_len]);
                if !bool::from(tag.ct_eq(&buf[body_len..])) {
                    return Err(OpenError::BadMac { seq });
                }
                mc.seek(64u64);
                mc.apply_keystream(&mut buf[4..body_len]);
                let n = self.packet_length_clear(seq, buf);
                buf[..4].copy_from_slice(&n);
            }
            State::Gcm { gcm, fixed, counter } => {
                let nonce = gcm_nonce(fixed, *counter);
                let (head, rest) = buf.split_at_mut(4);
                let (body, tag) = rest.split_at_mut(body_len - 4);
                let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| OpenError::BadMac { seq })?;
                let ok = match gcm {
                    Gcm::A128(g) => g.decrypt_inout_detached(&nonce.into(), head, body.into(), &tag),
                    Gcm::A256(g) => g.decrypt_inout_detached(&nonce.into(), head, body.into(), &tag),
                };
                ok.map_err(|_| OpenError::BadMac { seq })?;
                *counter = counter.wrapping_add(1);
            }
            State::Block { stream, mac, etm } => {
                if *etm {
                    let expect = mac.compute(seq, &buf[..body_len]);
                    if !bool::from(expect.ct_eq(&buf[body_len..])) {
                        return Err(OpenError::BadMac { seq });
                    }
                    stream.decrypt(&mut buf[4..body_len]);
                } else {
                    let first = self.peeked.take().unwrap_or_default();
                    let n = first.len().min(body_len);
                    buf[..n].copy_from_slice(&first[..n]);
                    stream.decrypt(&mut buf[n..body_len]);
                    let expect = mac.compute(seq, &buf[..body_len]);
                    if !bool::from(expect.ct_eq(&buf[body_len..])) {
                        return Err(OpenError::BadMac { seq });
                    }
                }
            }
        }
        buf.truncate(body_len);
        if aligned % block != 0 {
            return Err(OpenError::Misaligned { len: aligned, block });
        }
        Ok(())
    }

    fn packet_length_clear(&self, seq: u32, buf: &[u8]) -> [u8; 4] {
        let mut len = [0u8; 4];
        len.copy_from_slice(&buf[..4]);
        if let State::ChaCha { header, .. } = &self.state {
            let nonce = u64::from(seq).to_be_bytes();
            let mut hc = chacha20::ChaCha20Legacy::new(header.into(), &nonce.into());
            hc.apply_keystream(&mut len);
        }
        len
    }
}

fn gcm_nonce(fixed: &[u8; 4], counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(fixed);
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn poly1305_tag(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
    use poly1305::universal_hash::KeyInit as _;
    poly1305::Poly1305::new(key.into()).compute_unpadded(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(cipher: &str, mac: Option<&str>) -> DirectionKeys {
        let (k, iv) = cipher_sizes(cipher).expect("a cipher we list has sizes");
        let mk = mac.and_then(mac_sizes).map(|m| m.0).unwrap_or(0);
        DirectionKeys {
            cipher: cipher.into(),
            mac: mac.map(Into::into),
            iv: (0..iv as u8).collect(),
            key: (100..100 + k as u8).collect(),
            mac_key: (7..7 + mk as u8).collect(),
        }
    }

    fn frame(c: &PacketCipher, payload: &[u8]) -> Vec<u8> {
        let block = c.block_size();
        let clear = if c.length_in_clear() { 4 } else { 0 };
        let mut pad = block - ((4 + 1 + payload.len() - clear) % block);
        if pad < 4 {
            pad += block;
        }
        let mut p = (((1 + payload.len() + pad) as u32).to_be_bytes()).to_vec();
        p.push(pad as u8);
        p.extend_from_slice(payload);
        p.extend(std::iter::repeat_n(0u8, pad));
        p
    }

    fn round_trip(cipher: &str, mac: Option<&str>, payloads: &[Vec<u8>]) {
        let k = keys(cipher, mac);
        let mut tx = PacketCipher::new(&k).expect("keys of the right sizes");
        let mut rx = PacketCipher::new(&k).expect("keys of the right sizes");
        for (i, p) in payloads.iter().enumerate() {
            let seq = 3 + i as u32;
            let plain = frame(&tx, p);
            let mut wire = plain.clone();
            tx.seal(seq, &mut wire);
            assert_eq!(wire.len(), plain.len() + tx.tag_len());
            let len = rx.packet_length(seq, &wire[..rx.header_len()]);
            assert_eq!(len as usize + 4 + rx.tag_len(), wire.len());
            rx.open(seq, &mut wire).expect("a sealed packet opens");
            assert_eq!(wire, plain);
        }
    }

    #[test]
    fn every_cipher_and_mac_pair_round_trips() {
        let payloads = vec![vec![], b"hello".to_vec(), vec![0xab; 1000]];
        for c in ALL_CIPHERS {
            if is_aead(c) {
                round_trip(c, None, &payloads);
            } else {
                for m in MACS {
                    round_trip(c, Some(m), &payloads);
                }
            }
        }
    }

    #[test]
    fn a_flipped_bit_is_a_bad_mac() {
        for (c, m) in [(CHACHA20_POLY1305, None), (AES128_GCM, None), (AES128_CTR, Some(HMAC_SHA2_256))] {
            let k = keys(c, m);
            let mut tx = PacketCipher::new(&k).expect("keys of the right sizes");
            let mut rx = PacketCipher::new(&k).expect("keys of the right sizes");
            let mut wire = frame(&tx, b"payload");
            tx.seal(9, &mut wire);
            let last = wire.len() - 1;
            wire[last] ^= 1;
            let _ = rx.packet_length(9, &wire[..rx.header_len()]);
            assert_eq!(rx.open(9, &mut wire), Err(OpenError::BadMac { seq: 9 }), "{c}");
        }
    }

    /// The sequence number is bound into every tag, so a wrong one fails (what strict kex probes rely on).
    #[test]
    fn a_wrong_sequence_number_fails() {
        let k = keys(CHACHA20_POLY1305, None);
        let mut tx = PacketCipher::new(&k).expect("keys of the right sizes");
        let mut rx = PacketCipher::new(&k).expect("keys of the right sizes");
        let mut wire = frame(&tx, b"x");
        tx.seal(0, &mut wire);
        let _ = rx.packet_length(1, &wire[..4]);
        assert!(rx.open(1, &mut wire).is_err());
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt) and F.2.1 (CBC-AES128.Encrypt), two blocks each,
    /// through the same stream state the packet cipher uses, block by block as packets would be.
    #[test]
    fn aes_ctr_and_cbc_match_sp800_38a() {
        let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let plain = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        for (name, iv, want) in [
            (
                AES128_CTR,
                "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff",
            ),
            (
                AES128_CBC,
                "000102030405060708090a0b0c0d0e0f",
                "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2",
            ),
        ] {
            let mut enc = Stream::new(name, &key, &unhex(iv)).expect("valid sizes");
            let mut buf = plain.clone();
            let (a, b) = buf.split_at_mut(16);
            enc.encrypt(a);
            enc.encrypt(b);
            assert_eq!(hex::encode(&buf), want, "{name}");
            let mut dec = Stream::new(name, &key, &unhex(iv)).expect("valid sizes");
            dec.decrypt(&mut buf);
            assert_eq!(buf, plain, "{name} decrypts");
        }
    }

    /// RFC 4231 §4.2 and RFC 2202 §3 test case 1 ("Hi There", key 0x0b x 20). Our MAC input is
    /// the sequence number then the packet, so the first four bytes of the text ride as the number.
    #[test]
    fn hmacs_match_rfc4231_and_rfc2202() {
        let seq = u32::from_be_bytes(*b"Hi T");
        for (name, want) in [
            (HMAC_SHA2_256, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                HMAC_SHA2_512,
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ),
            (HMAC_SHA1, "b617318655057264e28bc0b6fb378c8ef146be00"),
        ] {
            let mac = MacAlg::new(name, vec![0x0b; 20]).expect("a MAC we speak");
            assert_eq!(hex::encode(mac.compute(seq, b"here")), want, "{name}");
        }
    }

    /// The ChaCha20 keystream for the all-zero key and nonce (the vector every implementation
    /// shares), and RFC 8439 §2.5.2 for Poly1305: the two halves of chacha20-poly1305@openssh.com.
    #[test]
    fn chacha20_and_poly1305_match_their_vectors() {
        let mut c = chacha20::ChaCha20Legacy::new((&[0u8; 32]).into(), (&[0u8; 8]).into());
        let mut ks = [0u8; 32];
        c.apply_keystream(&mut ks);
        assert_eq!(hex::encode(ks), "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7");
        let key: [u8; 32] =
            unhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b").try_into().expect("32 bytes");
        assert_eq!(
            hex::encode(poly1305_tag(&key, b"Cryptographic Forum Research Group")),
            "a8061dc1305136c6c22b8baf0c0127a9"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_round_trip(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..6),
                                         which in 0usize..ALL_CIPHERS.len(), mac in 0usize..MACS.len()) {
            let c = ALL_CIPHERS[which];
            round_trip(c, (!is_aead(c)).then_some(MACS[mac]), &payloads);
        }

        /// The byte stream of several sealed packets arrives in arbitrary pieces; the receiver
        /// reads each length as soon as a header is in (decrypting it once, however often it is
        /// asked) and opens each packet when complete, as the transport does.
        #[test]
        fn packets_open_whatever_the_split_points(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..5),
                                                  cuts in proptest::collection::vec(1usize..200, 1..40),
                                                  which in 0usize..ALL_CIPHERS.len(), mac in 0usize..MACS.len()) {
            let c = ALL_CIPHERS[which];
            let k = keys(c, (!is_aead(c)).then_some(MACS[mac]));
            let mut tx = PacketCipher::new(&k).expect("keys of the right sizes");
            let mut rx = PacketCipher::new(&k).expect("keys of the right sizes");
            let mut stream = Vec::new();
            let mut plains = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                let plain = frame(&tx, p);
                let mut wire = plain.clone();
                tx.seal(i as u32, &mut wire);
                stream.extend_from_slice(&wire);
                plains.push(plain);
            }
            let (mut arrived, mut pos, mut seq, mut cut) = (0usize, 0usize, 0u32, cuts.iter().cycle());
            let mut opened = Vec::new();
            while opened.len() < plains.len() {
                arrived = (arrived + cut.next().copied().unwrap_or(1)).min(stream.len());
                loop {
                    let buffered = &stream[pos..arrived];
                    if buffered.len() < rx.header_len() {
                        break;
                    }
                    let len = rx.packet_length(seq, &buffered[..rx.header_len()]) as usize;
                    let total = 4 + len + rx.tag_len();
                    if buffered.len() < total {
                        break;
                    }
                    let mut pkt = buffered[..total].to_vec();
                    rx.open(seq, &mut pkt).expect("a sealed packet opens");
                    opened.push(pkt);
                    pos += total;
                    seq += 1;
                }
            }
            prop_assert_eq!(opened, plains);
        }
    }
}
