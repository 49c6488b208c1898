//! Elliptic-curve methods (RFC 5656 §4, RFC 8731) and the post-quantum hybrids that reuse their
//! messages: mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex) and sntrup761x25519-sha512
//! (draft-josefsson-ntruprime-ssh, OpenSSH's `@openssh.com` name).

use super::{Curve, Hash, Kem};
use rand::RngCore;
use sshspec_wire::codec::{put_mpint_unsigned, put_string};

const X25519_LEN: usize = 32;
const MLKEM768_CIPHERTEXT: usize = 1088;
const SNTRUP761_CIPHERTEXT: usize = 1039;
const MLKEM768_PUBLIC: usize = 1184;
const SNTRUP761_PUBLIC: usize = 1158;

pub enum EcdhSecret {
    X25519(x25519_dalek::StaticSecret),
    P256(p256::ecdh::EphemeralSecret),
    P384(p384::ecdh::EphemeralSecret),
    P521(p521::ecdh::EphemeralSecret),
}

impl EcdhSecret {
    /// A fresh key pair and our public value Q_C (an uncompressed SEC1 point for the NIST curves).
    pub fn generate(curve: Curve) -> (Self, Vec<u8>) {
        Self::generate_with(curve, &mut rand_core::OsRng)
    }

    /// A key pair from `rng`.
    pub fn generate_with(
        curve: Curve,
        mut rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
    ) -> (Self, Vec<u8>) {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        match curve {
            Curve::X25519 => {
                let s = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
                let p = x25519_dalek::PublicKey::from(&s).to_bytes().to_vec();
                (EcdhSecret::X25519(s), p)
            }
            Curve::P256 => {
                let s = p256::ecdh::EphemeralSecret::random(&mut rng);
                let p = s.public_key().to_encoded_point(false).as_bytes().to_vec();
                (EcdhSecret::P256(s), p)
            }
            Curve::P384 => {
                let s = p384::ecdh::EphemeralSecret::random(&mut rng);
                let p = s.public_key().to_encoded_point(false).as_bytes().to_vec();
                (EcdhSecret::P384(s), p)
            }
            Curve::P521 => {
                let s = p521::ecdh::EphemeralSecret::random(&mut rng);
                let p = s.public_key().to_encoded_point(false).as_bytes().to_vec();
                (EcdhSecret::P521(s), p)
            }
        }
    }

    /// K as an mpint. The server's point is validated: on the curve, not the identity, and for
    /// X25519 not one that forces the all-zero secret (RFC 8731 §3: MUST abort).
    pub fn shared(&self, q_s: &[u8]) -> Result<Vec<u8>, String> {
        let raw: Vec<u8> = match self {
            EcdhSecret::X25519(s) => x25519(s, q_s)?.to_vec(),
            EcdhSecret::P256(s) => {
                let pk = p256::PublicKey::from_sec1_bytes(q_s).map_err(|_| bad_point("nistp256", q_s))?;
                s.diffie_hellman(&pk).raw_secret_bytes().to_vec()
            }
            EcdhSecret::P384(s) => {
                let pk = p384::PublicKey::from_sec1_bytes(q_s).map_err(|_| bad_point("nistp384", q_s))?;
                s.diffie_hellman(&pk).raw_secret_bytes().to_vec()
            }
            EcdhSecret::P521(s) => {
                let pk = p521::PublicKey::from_sec1_bytes(q_s).map_err(|_| bad_point("nistp521", q_s))?;
                s.diffie_hellman(&pk).raw_secret_bytes().to_vec()
            }
        };
        let mut k = Vec::with_capacity(raw.len() + 5);
        put_mpint_unsigned(&mut k, &raw);
        Ok(k)
    }
}

fn bad_point(curve: &str, q: &[u8]) -> String {
    format!("sent a public value that is not a valid {curve} point ({} bytes: {})", q.len(), short_hex(q))
}

fn short_hex(b: &[u8]) -> String {
    if b.len() <= 48 { hex::encode(b) } else { format!("{}...", hex::encode(&b[..48])) }
}

fn x25519(s: &x25519_dalek::StaticSecret, q_s: &[u8]) -> Result<[u8; 32], String> {
    let q: [u8; 32] = q_s
        .try_into()
        .map_err(|_| format!("sent a curve25519 public key of {} bytes, not 32 (RFC 8731 §3)", q_s.len()))?;
    let k = s.diffie_hellman(&x25519_dalek::PublicKey::from(q));
    if !k.was_contributory() {
        return Err(format!(
            "sent the curve25519 public key {}, which gives the all-zero shared secret (RFC 8731 §3)",
            hex::encode(q)
        ));
    }
    Ok(*k.as_bytes())
}

pub enum HybridSecret {
    MlKem(Box<ml_kem::DecapsulationKey<ml_kem::MlKem768>>, x25519_dalek::StaticSecret),
    Sntrup(Box<sntrup761::DecapsulationKey>, x25519_dalek::StaticSecret),
}

impl HybridSecret {
    /// C_INIT: the KEM public key followed by the X25519 public key.
    pub fn generate(kem: Kem) -> (Self, Vec<u8>) {
        use ml_kem::KeyExport;
        let x = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        let xp = x25519_dalek::PublicKey::from(&x).to_bytes();
        match kem {
            Kem::MlKem768 => {
                let mut seed = ml_kem::Seed::default();
                rand::thread_rng().fill_bytes(&mut seed);
                let dk = ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(seed);
                let mut c = dk.encapsulation_key().to_bytes().to_vec();
                c.extend_from_slice(&xp);
                (HybridSecret::MlKem(Box::new(dk), x), c)
            }
            Kem::Sntrup761 => {
                let mut seed = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut seed);
                let (pk, sk) = sntrup761::generate_key_from_seed(seed);
                let mut c = pk.as_ref().to_vec();
                c.extend_from_slice(&xp);
                (HybridSecret::Sntrup(Box::new(sk), x), c)
            }
        }
    }

    /// K = HASH(K_PQ || K_CL) as a string, from S_REPLY (the KEM ciphertext, then the server's
    /// X25519 public key).
    pub fn shared(&self, reply: &[u8], hash: Hash) -> Result<Vec<u8>, String> {
        use ml_kem::Decapsulate;
        let (ct_len, name) = match self {
            HybridSecret::MlKem(..) => (MLKEM768_CIPHERTEXT, "mlkem768"),
            HybridSecret::Sntrup(..) => (SNTRUP761_CIPHERTEXT, "sntrup761"),
        };
        if reply.len() != ct_len + X25519_LEN {
            return Err(format!(
                "sent a {name}x25519 reply of {} bytes, not {} ({ct_len}-byte ciphertext and a 32-byte X25519 key)",
                reply.len(),
                ct_len + X25519_LEN
            ));
        }
        let (ct, q) = reply.split_at(ct_len);
        let (k_pq, x): (Vec<u8>, _) = match self {
            HybridSecret::MlKem(dk, x) => {
                let ct = ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(ct)
                    .map_err(|_| "ML-KEM ciphertext of the wrong size")?;
                (dk.decapsulate(&ct).to_vec(), x)
            }
            HybridSecret::Sntrup(sk, x) => {
                let ct = sntrup761::Ciphertext::try_from(ct)
                    .map_err(|e| format!("sent an invalid sntrup761 ciphertext: {e}"))?;
                (sk.decapsulate(&ct).as_ref().to_vec(), x)
            }
        };
        let k_cl = x25519(x, q)?;
        Ok(hybrid_k(hash, &k_pq, &k_cl))
    }

    /// The server's half: from the client's C_INIT, S_REPLY (a ciphertext encapsulated to its KEM
    /// key, then our X25519 public key) and K.
    pub fn respond(kem: Kem, c_init: &[u8], hash: Hash) -> Result<(Vec<u8>, Vec<u8>), String> {
        let (pk_len, name) = match kem {
            Kem::MlKem768 => (MLKEM768_PUBLIC, "mlkem768"),
            Kem::Sntrup761 => (SNTRUP761_PUBLIC, "sntrup761"),
        };
        if c_init.len() != pk_len + X25519_LEN {
            return Err(format!(
                "sent a {name}x25519 init of {} bytes, not {} ({pk_len}-byte KEM key and a 32-byte X25519 key)",
                c_init.len(),
                pk_len + X25519_LEN
            ));
        }
        let (pk, q) = c_init.split_at(pk_len);
        let mut m = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut m);
        let (mut reply, k_pq) = match kem {
            Kem::MlKem768 => {
                let key = pk.try_into().map_err(|_| "ML-KEM key of the wrong size")?;
                let ek = ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(key)
                    .map_err(|_| format!("sent an invalid ML-KEM-768 key ({})", short_hex(pk)))?;
                let (ct, k) = ek.encapsulate_deterministic(&m.into());
                (ct.to_vec(), k.to_vec())
            }
            Kem::Sntrup761 => {
                let ek = sntrup761::EncapsulationKey::try_from(pk)
                    .map_err(|e| format!("sent an invalid sntrup761 key: {e}"))?;
                let (ct, k) = ek.encapsulate_deterministic(m);
                (ct.as_ref().to_vec(), k.as_ref().to_vec())
            }
        };
        let x = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        reply.extend_from_slice(&x25519_dalek::PublicKey::from(&x).to_bytes());
        let k_cl = x25519(&x, q)?;
        Ok((reply, hybrid_k(hash, &k_pq, &k_cl)))
    }
}

/// K = HASH(K_PQ || K_CL), encoded as a string (draft-ietf-sshm-mlkem-hybrid-kex §2.4).
fn hybrid_k(hash: Hash, k_pq: &[u8], k_cl: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + 64);
    put_string(&mut k, &hash.digest(&[k_pq, k_cl]));
    k
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
        let k = EcdhSecret::X25519(x25519_dalek::StaticSecret::from(a)).shared(&b_pub).expect("a contributory point");
        // 0x4a.. has its top bit clear, so no sign byte is added.
        assert_eq!(hex::encode(&k[4..]), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    }

    #[test]
    fn all_zero_and_short_points_are_refused() {
        let (s, _) = EcdhSecret::generate(Curve::X25519);
        assert!(s.shared(&[0u8; 32]).is_err());
        assert!(s.shared(&[9u8; 31]).is_err());
        let (s, _) = EcdhSecret::generate(Curve::P384);
        assert!(s.shared(&[4u8; 97]).is_err(), "a point off the curve");
    }

    /// Both sides of each NIST curve agree, and K is the x coordinate as an mpint.
    #[test]
    fn nist_curves_agree_with_the_other_side() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let (a, qa) = EcdhSecret::generate(curve);
            let (b, qb) = EcdhSecret::generate(curve);
            assert_eq!(a.shared(&qb).expect("valid point"), b.shared(&qa).expect("valid point"), "{curve:?}");
        }
    }

    /// Our server half (`respond`) and our client half reach the same K, and a short init is
    /// the client's fault.
    #[test]
    fn hybrid_server_half_agrees_with_the_client_half() {
        for (kem, hash) in [(Kem::MlKem768, Hash::Sha256), (Kem::Sntrup761, Hash::Sha512)] {
            let (client, c_init) = HybridSecret::generate(kem);
            let (reply, k) = HybridSecret::respond(kem, &c_init, hash).expect("a valid init");
            assert_eq!(client.shared(&reply, hash).expect("a valid reply"), k, "{kem:?}");
            assert!(HybridSecret::respond(kem, &c_init[1..], hash).is_err());
        }
    }

    /// The server side of each hybrid, done with the same crates, reaches our K.
    #[test]
    fn hybrids_agree_with_an_encapsulating_server() {
        let sx = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
        let sq = x25519_dalek::PublicKey::from(&sx).to_bytes();
        for kem in [Kem::MlKem768, Kem::Sntrup761] {
            let (ours, c_init) = HybridSecret::generate(kem);
            let (pk, xq) = c_init.split_at(c_init.len() - 32);
            let k_cl = sx.diffie_hellman(&x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(xq).expect("32")));
            let (mut reply, k_pq) = match kem {
                Kem::MlKem768 => {
                    let ek =
                        ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(pk.try_into().expect("size")).expect("key");
                    let (ct, k) = ek.encapsulate_deterministic(&[7u8; 32].into());
                    (ct.to_vec(), k.to_vec())
                }
                Kem::Sntrup761 => {
                    let ek = sntrup761::EncapsulationKey::try_from(pk).expect("key");
                    let (ct, k) = ek.encapsulate_deterministic([7u8; 32]);
                    (ct.as_ref().to_vec(), k.as_ref().to_vec())
                }
            };
            reply.extend_from_slice(&sq);
            let hash = if kem == Kem::MlKem768 { Hash::Sha256 } else { Hash::Sha512 };
            let mut want = Vec::new();
            put_string(&mut want, &hash.digest(&[&k_pq, k_cl.as_bytes()]));
            assert_eq!(ours.shared(&reply, hash).expect("valid reply"), want, "{kem:?}");
            assert!(ours.shared(&reply[1..], hash).is_err(), "a short reply is refused");
        }
    }
}
