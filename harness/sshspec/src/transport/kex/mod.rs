//! Key exchange (RFC 4253 §7-8): every method the scripted peer speaks, our half of each, the
//! exchange hash and the key derivation.
//!
//! All methods share one shape: we send a public value (after a group request, for group
//! exchange), the server answers with its host key, its public value and a signature over the
//! exchange hash H. They differ in the hash function, in how K is computed and encoded (an mpint,
//! or a string for the post-quantum hybrids), and in which extra fields H covers.

mod dh;
mod ecdh;
pub mod modp;

pub use dh::{GexRequest, bits as modp_bits, is_safe_prime};
pub use ecdh::HybridSecret;

use sha2::Digest;
use sshspec_wire::codec::put_string;

/// RFC 8308 §2.1: we accept EXT_INFO.
pub const EXT_INFO_C: &str = "ext-info-c";
/// OpenSSH PROTOCOL §1.10: strict key exchange (the Terrapin countermeasure).
pub const KEX_STRICT_C: &str = "kex-strict-c-v00@openssh.com";
pub const KEX_STRICT_S: &str = "kex-strict-s-v00@openssh.com";
/// draft-ietf-sshm-strict-kex's standard names: each agrees only with its own kind (§5.1).
pub const KEX_STRICT_C_STANDARD: &str = "kex-strict-c";
pub const KEX_STRICT_S_STANDARD: &str = "kex-strict-s";

/// The hash a method uses for H and the key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(parts),
            Hash::Sha256 => run::<sha2::Sha256>(parts),
            Hash::Sha384 => run::<sha2::Sha384>(parts),
            Hash::Sha512 => run::<sha2::Sha512>(parts),
        }
    }
}

/// Elliptic curves of the one-round-trip methods (RFC 5656, RFC 8731).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
    P521,
}

/// A SEC1 uncompressed point (0x04, x, y) in compressed form (0x02 or 0x03 by y's parity, then x);
/// anything else unchanged.
pub fn compress_point(p: &[u8]) -> Vec<u8> {
    match p.split_first() {
        Some((4, xy)) if !xy.is_empty() && xy.len() % 2 == 0 => {
            let (x, y) = xy.split_at(xy.len() / 2);
            let mut out = vec![2 | (y[y.len() - 1] & 1)];
            out.extend_from_slice(x);
            out
        }
        _ => p.to_vec(),
    }
}

/// Post-quantum KEMs combined with X25519 (draft-ietf-sshm-mlkem-hybrid-kex, draft-josefsson-ntruprime-ssh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kem {
    MlKem768,
    Sntrup761,
}

/// How a method computes K and which messages carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// KEX_ECDH_INIT/REPLY (RFC 5656 §4); K is an mpint.
    Ecdh(Curve),
    /// The same messages carrying a KEM public key and ciphertext next to X25519 values; K is a string.
    Hybrid(Kem),
    /// KEXDH_INIT/REPLY over a fixed MODP group (RFC 4253 §8), generator 2; the prime as hex.
    Dh(&'static str),
    /// Group exchange (RFC 4419): the server picks the group.
    Gex,
}

pub struct Method {
    pub name: &'static str,
    pub hash: Hash,
    pub family: Family,
}

/// Every method the scripted peer speaks, in our default order of preference.
pub const METHODS: &[Method] = &[
    Method { name: "curve25519-sha256", hash: Hash::Sha256, family: Family::Ecdh(Curve::X25519) },
    Method { name: "curve25519-sha256@libssh.org", hash: Hash::Sha256, family: Family::Ecdh(Curve::X25519) },
    Method { name: "mlkem768x25519-sha256", hash: Hash::Sha256, family: Family::Hybrid(Kem::MlKem768) },
    Method { name: "sntrup761x25519-sha512", hash: Hash::Sha512, family: Family::Hybrid(Kem::Sntrup761) },
    Method { name: "sntrup761x25519-sha512@openssh.com", hash: Hash::Sha512, family: Family::Hybrid(Kem::Sntrup761) },
    Method { name: "ecdh-sha2-nistp256", hash: Hash::Sha256, family: Family::Ecdh(Curve::P256) },
    Method { name: "ecdh-sha2-nistp384", hash: Hash::Sha384, family: Family::Ecdh(Curve::P384) },
    Method { name: "ecdh-sha2-nistp521", hash: Hash::Sha512, family: Family::Ecdh(Curve::P521) },
    Method { name: "diffie-hellman-group-exchange-sha256", hash: Hash::Sha256, family: Family::Gex },
    Method { name: "diffie-hellman-group16-sha512", hash: Hash::Sha512, family: Family::Dh(modp::GROUP16) },
    Method { name: "diffie-hellman-group18-sha512", hash: Hash::Sha512, family: Family::Dh(modp::GROUP18) },
    Method { name: "diffie-hellman-group15-sha512", hash: Hash::Sha512, family: Family::Dh(modp::GROUP15) },
    Method { name: "diffie-hellman-group17-sha512", hash: Hash::Sha512, family: Family::Dh(modp::GROUP17) },
    Method { name: "diffie-hellman-group14-sha256", hash: Hash::Sha256, family: Family::Dh(modp::GROUP14) },
    Method { name: "diffie-hellman-group14-sha1", hash: Hash::Sha1, family: Family::Dh(modp::GROUP14) },
    Method { name: "diffie-hellman-group-exchange-sha1", hash: Hash::Sha1, family: Family::Gex },
    Method { name: "diffie-hellman-group1-sha1", hash: Hash::Sha1, family: Family::Dh(modp::GROUP1) },
];

pub fn method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// Method names in our default order of preference.
pub fn algorithms() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|m| m.name)
}

/// Our secret half of one exchange, made when our public value is built.
pub enum Secret {
    Ecdh(ecdh::EcdhSecret),
    Hybrid(ecdh::HybridSecret),
    Dh(dh::DhSecret),
}

impl Secret {
    /// Our ephemeral curve25519 private key, for the key log Wireshark 4.0 reads.
    pub fn x25519_private(&self) -> Option<[u8; 32]> {
        match self {
            Secret::Ecdh(ecdh::EcdhSecret::X25519(s)) => Some(s.to_bytes()),
            _ => None,
        }
    }

    /// A fresh secret for `method` and the public value to send. Group exchange needs the
    /// server's group (`p`, `g` as mpint bodies); `Err` if that group is unusable.
    pub fn generate(method: &Method, group: Option<(&[u8], &[u8])>) -> Result<(Secret, Vec<u8>), String> {
        Ok(match method.family {
            Family::Ecdh(c) => {
                let (s, p) = ecdh::EcdhSecret::generate(c);
                (Secret::Ecdh(s), p)
            }
            Family::Hybrid(k) => {
                let (s, p) = ecdh::HybridSecret::generate(k);
                (Secret::Hybrid(s), p)
            }
            Family::Dh(p) => {
                let (s, e) = dh::DhSecret::fixed(p);
                (Secret::Dh(s), e)
            }
            Family::Gex => {
                let (p, g) = group.ok_or("group exchange needs the server's group first")?;
                let (s, e) = dh::DhSecret::from_group(p, g)?;
                (Secret::Dh(s), e)
            }
        })
    }

    /// For an ECDH method, the same key pair on every call (from a fixed seed): an ephemeral key
    /// kept and reused, which RFC 5656 §9 asks implementations not to do (a fixture deviation).
    pub fn reused(method: &Method) -> Option<(Secret, Vec<u8>)> {
        use rand::SeedableRng;
        let Family::Ecdh(c) = method.family else { return None };
        let (s, p) = ecdh::EcdhSecret::generate_with(c, &mut rand::rngs::StdRng::seed_from_u64(5656));
        Some((Secret::Ecdh(s), p))
    }

    /// K, encoded as H and the key derivation take it, from the server's public value. `Err`
    /// names what is wrong with that value (the target's fault).
    pub fn shared(&self, server: &[u8], hash: Hash) -> Result<Vec<u8>, String> {
        match self {
            Secret::Ecdh(s) => s.shared(server),
            Secret::Hybrid(s) => s.shared(server, hash),
            Secret::Dh(s) => s.shared(server),
        }
    }
}

/// What H covers besides the identification strings and KEXINITs (RFC 4253 §8, RFC 4419 §3,
/// RFC 5656 §4): the group request and group for group exchange, then both public values.
pub struct Middle<'a> {
    pub gex: Option<(&'a GexRequest, &'a [u8], &'a [u8])>,
    pub client: &'a [u8],
    pub server: &'a [u8],
}

/// The inputs of the exchange hash H.
pub struct HashInputs<'a> {
    pub v_c: &'a [u8],
    pub v_s: &'a [u8],
    pub i_c: &'a [u8],
    pub i_s: &'a [u8],
    pub k_s: &'a [u8],
    pub middle: Middle<'a>,
    /// Already encoded (mpint or string).
    pub k: &'a [u8],
}

pub fn exchange_hash(hash: Hash, h: &HashInputs<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4096);
    for s in [h.v_c, h.v_s, h.i_c, h.i_s, h.k_s] {
        put_string(&mut buf, s);
    }
    if let Some((req, p, g)) = h.middle.gex {
        req.encode_for_hash(&mut buf);
        put_string(&mut buf, p);
        put_string(&mut buf, g);
    }
    // Public values are strings (ECDH, hybrids) or mpints (DH); we hold both as their encoded
    // bodies, and an mpint's encoding is a string of its body.
    put_string(&mut buf, h.middle.client);
    put_string(&mut buf, h.middle.server);
    buf.extend_from_slice(h.k);
    hash.digest(&[&buf])
}

/// An encoded mpint (length and body) re-encoded as a string of `width` bytes: the value
/// left-padded with zeros, its sign byte dropped. Only the fixture's `curve25519-k-as-string`
/// deviation encodes K so; RFC 8731 §3.1 requires the mpint.
pub fn mpint_as_string(mpint: &[u8], width: usize) -> Vec<u8> {
    let body = mpint.get(4..).unwrap_or_default();
    let value = &body[body.iter().take_while(|b| **b == 0).count()..];
    let mut out = Vec::with_capacity(width + 4);
    out.extend_from_slice(&(width as u32).to_be_bytes());
    out.resize(4 + width.saturating_sub(value.len()), 0);
    out.extend_from_slice(value);
    out
}

/// RFC 4253 §7.2: HASH(K || H || letter || session_id), extended by HASH(K || H || K1 ...) to `len`.
pub fn derive_key(hash: Hash, k: &[u8], h: &[u8], letter: u8, session_id: &[u8], len: usize) -> Vec<u8> {
    let mut out = hash.digest(&[k, h, &[letter], session_id]);
    while out.len() < len {
        let more = hash.digest(&[k, h, &out]);
        out.extend_from_slice(&more);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mpint_becomes_a_fixed_width_string() {
        use sshspec_wire::codec::put_mpint_unsigned;
        let mut top_bit = Vec::new();
        put_mpint_unsigned(&mut top_bit, &[0x80, 1]);
        assert_eq!(hex::encode(&top_bit), "00000003008001", "the mpint has a sign byte");
        assert_eq!(hex::encode(mpint_as_string(&top_bit, 4)), "0000000400008001");
        let mut small = Vec::new();
        put_mpint_unsigned(&mut small, &[0, 0, 5]);
        assert_eq!(hex::encode(mpint_as_string(&small, 3)), "00000003000005");
    }

    #[test]
    fn derivation_extends_past_one_hash() {
        let k = derive_key(Hash::Sha256, b"k", b"h", b'C', b"s", 64);
        assert_eq!(k.len(), 64);
        assert_eq!(&k[..32], &derive_key(Hash::Sha256, b"k", b"h", b'C', b"s", 32)[..]);
        let expected_tail = Hash::Sha256.digest(&[b"k", b"h", &k[..32]]);
        assert_eq!(&k[32..], &expected_tail[..]);
    }

    /// FIPS 180-4 examples ("abc"), so that each hash is the one its name says.
    #[test]
    fn hashes_are_the_named_ones() {
        let abc: &[&[u8]] = &[b"a", b"bc"];
        assert_eq!(hex::encode(Hash::Sha1.digest(abc)), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex::encode(Hash::Sha256.digest(abc)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hex::encode(Hash::Sha384.digest(abc)).starts_with("cb00753f45a35e8bb5a03d699ac65007"));
        assert!(hex::encode(Hash::Sha512.digest(abc)).starts_with("ddaf35a193617abacc417349ae204131"));
    }

    #[test]
    fn every_method_makes_a_public_value_of_the_right_size() {
        for m in METHODS {
            let group = (dh::tests::small_safe_prime(), vec![2u8]);
            let g = matches!(m.family, Family::Gex).then_some((group.0.as_slice(), group.1.as_slice()));
            let (_, public) = Secret::generate(m, g).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            let want = match m.family {
                Family::Ecdh(Curve::X25519) => 32..=32,
                Family::Ecdh(Curve::P256) => 65..=65,
                Family::Ecdh(Curve::P384) => 97..=97,
                Family::Ecdh(Curve::P521) => 133..=133,
                Family::Hybrid(Kem::MlKem768) => 1216..=1216,
                Family::Hybrid(Kem::Sntrup761) => 1190..=1190,
                Family::Dh(p) => 1..=p.len() / 2 + 1,
                Family::Gex => 1..=group.0.len() + 1,
            };
            assert!(want.contains(&public.len()), "{}: {} bytes", m.name, public.len());
        }
    }
}
