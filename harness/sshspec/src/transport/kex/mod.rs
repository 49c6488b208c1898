//! Key exchange: curve25519-sha256 (RFC 8731), the exchange hash and key derivation (RFC 4253 §7.2, §8).

use sha2::{Digest, Sha256};
use sshspec_wire::codec::{put_mpint_unsigned, put_string};

pub const CURVE25519_SHA256: &str = "curve25519-sha256";
pub const CURVE25519_SHA256_LIBSSH: &str = "curve25519-sha256@libssh.org";
/// RFC 8308 §2.1: we accept EXT_INFO.
pub const EXT_INFO_C: &str = "ext-info-c";
/// OpenSSH PROTOCOL §1.10: strict key exchange (the Terrapin countermeasure).
pub const KEX_STRICT_C: &str = "kex-strict-c-v00@openssh.com";
pub const KEX_STRICT_S: &str = "kex-strict-s-v00@openssh.com";

/// Key-exchange methods the scripted peer speaks, in our default order of preference.
pub const KEX_ALGORITHMS: &[&str] = &[CURVE25519_SHA256, CURVE25519_SHA256_LIBSSH];

/// Our half of an ECDH exchange, created when we send KEX_ECDH_INIT.
pub struct EcdhClient {
    secret: x25519_dalek::StaticSecret,
    pub public: [u8; 32],
}

impl EcdhClient {
    pub fn new() -> Self {
        let secret = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        EcdhClient { secret, public }
    }

    /// The shared secret K as the mpint encoding the hash uses, or `None` when the server's point
    /// is not 32 bytes or yields the all-zero secret (RFC 8731 §3: MUST abort).
    pub fn shared_secret(&self, server_public: &[u8]) -> Option<Vec<u8>> {
        let q: [u8; 32] = server_public.try_into().ok()?;
        let k = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(q));
        if !k.was_contributory() {
            return None;
        }
        let mut out = Vec::with_capacity(37);
        put_mpint_unsigned(&mut out, k.as_bytes());
        Some(out)
    }
}

impl Default for EcdhClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The inputs of the exchange hash H (RFC 4253 §8, RFC 5656 §4).
pub struct HashInputs<'a> {
    pub v_c: &'a [u8],
    pub v_s: &'a [u8],
    pub i_c: &'a [u8],
    pub i_s: &'a [u8],
    pub k_s: &'a [u8],
    pub q_c: &'a [u8],
    pub q_s: &'a [u8],
    /// Already mpint-encoded.
    pub k: &'a [u8],
}

pub fn exchange_hash(h: &HashInputs<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in [h.v_c, h.v_s, h.i_c, h.i_s, h.k_s, h.q_c, h.q_s] {
        put_string(&mut buf, s);
    }
    buf.extend_from_slice(h.k);
    Sha256::digest(&buf).to_vec()
}

/// RFC 4253 §7.2: HASH(K || H || letter || session_id), extended by HASH(K || H || K1 ...) to `len`.
pub fn derive_key(k: &[u8], h: &[u8], letter: u8, session_id: &[u8], len: usize) -> Vec<u8> {
    let mut out = Sha256::new().chain_update(k).chain_update(h).chain_update([letter]).chain_update(session_id).finalize().to_vec();
    while out.len() < len {
        let more = Sha256::new().chain_update(k).chain_update(h).chain_update(&out).finalize();
        out.extend_from_slice(&more);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1 test vector, run through our mpint encoding.
    #[test]
    fn x25519_rfc7748_vector() {
        let a: [u8; 32] = hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let b_pub = hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f").expect("hex");
        let c = EcdhClient { secret: x25519_dalek::StaticSecret::from(a), public: [0; 32] };
        let k = c.shared_secret(&b_pub).expect("a contributory point");
        // 0x4a.. has its top bit clear, so no sign byte is added.
        assert_eq!(hex::encode(&k[4..]), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    }

    #[test]
    fn all_zero_point_is_refused() {
        assert!(EcdhClient::new().shared_secret(&[0u8; 32]).is_none());
    }

    #[test]
    fn derivation_extends_past_one_hash() {
        let k = derive_key(b"k", b"h", b'C', b"s", 64);
        assert_eq!(k.len(), 64);
        assert_eq!(&k[..32], &derive_key(b"k", b"h", b'C', b"s", 32)[..]);
    }
}
