//! The user keys the peer authenticates with (RFC 4252 §7, RFC 8332, RFC 5656): their public key
//! blobs, `authorized_keys` lines, and signatures under any algorithm name, right or wrong.

use crate::transport::hostkey;
use sshspec_wire::codec::put_string;

/// Which of the run's user keys a `publickey` attempt uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyKind {
    #[default]
    Ed25519,
    EcdsaP256,
    Rsa,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa];
    pub const NAMES: &'static str = "ed25519, ecdsa or rsa";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ed25519" => KeyKind::Ed25519,
            "ecdsa" => KeyKind::EcdsaP256,
            "rsa" => KeyKind::Rsa,
            _ => return None,
        })
    }

    /// The key type in its blob, which is also what a target lists in `user_keys`.
    pub fn key_type(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => hostkey::SSH_ED25519,
            KeyKind::EcdsaP256 => hostkey::ECDSA_NISTP256,
            KeyKind::Rsa => hostkey::SSH_RSA,
        }
    }

    /// The algorithm a client names by default: RSA keys sign with SHA-256 (RFC 8332).
    pub fn default_algorithm(self) -> &'static str {
        match self {
            KeyKind::Rsa => hostkey::RSA_SHA2_256,
            other => other.key_type(),
        }
    }
}

/// One private key of each kind; each run makes fresh ones (or takes the ed25519 one from a file).
#[derive(Clone)]
pub struct UserKeys {
    pub ed25519: ed25519_dalek::SigningKey,
    pub ecdsa: p256::ecdsa::SigningKey,
    pub rsa: std::sync::Arc<rsa::RsaPrivateKey>,
}

impl UserKeys {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        UserKeys {
            ed25519: ed25519_dalek::SigningKey::generate(&mut rng),
            ecdsa: p256::ecdsa::SigningKey::random(&mut rng),
            // 2048 bits: OpenSSH refuses RSA keys under 1024 bits, and 2048 is what ssh-keygen makes.
            rsa: std::sync::Arc::new(rsa_key(&mut rng)),
        }
    }

    /// The public key blob (RFC 4253 §6.6, RFC 5656 §3.1).
    pub fn blob(&self, kind: KeyKind) -> Vec<u8> {
        let mut b = Vec::new();
        put_string(&mut b, kind.key_type().as_bytes());
        match kind {
            KeyKind::Ed25519 => put_string(&mut b, &self.ed25519.verifying_key().to_bytes()),
            KeyKind::EcdsaP256 => {
                put_string(&mut b, b"nistp256");
                put_string(&mut b, self.ecdsa.verifying_key().to_encoded_point(false).as_bytes());
            }
            KeyKind::Rsa => {
                use rsa::traits::PublicKeyParts;
                put_mpint(&mut b, &self.rsa.e().to_bytes_be());
                put_mpint(&mut b, &self.rsa.n().to_bytes_be());
            }
        }
        b
    }

    /// Every key in `authorized_keys` form, one per line.
    pub fn authorized_lines(&self) -> String {
        use base64::Engine;
        KeyKind::ALL
            .iter()
            .map(|k| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(self.blob(*k));
                format!("{} {b64} sshspec\n", k.key_type())
            })
            .collect()
    }

    /// A signature blob over `data` with the key of `kind`, labelled `algorithm`. The hash follows
    /// the label for RSA (so `ssh-rsa` signs with SHA-1); a label that fits no hash of the key's
    /// type signs as the key's default, which is what a mismatch scenario sends.
    pub fn sign(&self, kind: KeyKind, algorithm: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let sig = match kind {
            KeyKind::Ed25519 => {
                use ed25519_dalek::Signer;
                self.ed25519.sign(data).to_bytes().to_vec()
            }
            KeyKind::EcdsaP256 => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = self.ecdsa.sign(data);
                let (r, s) = s.split_bytes();
                let mut out = Vec::new();
                put_mpint(&mut out, &r);
                put_mpint(&mut out, &s);
                out
            }
            KeyKind::Rsa => {
                use rsa::pkcs1v15::Pkcs1v15Sign;
                use sha2::Digest;
                let (scheme, hashed) = match algorithm {
                    hostkey::SSH_RSA => (Pkcs1v15Sign::new::<sha1::Sha1>(), sha1::Sha1::digest(data).to_vec()),
                    hostkey::RSA_SHA2_512 => (Pkcs1v15Sign::new::<sha2::Sha512>(), sha2::Sha512::digest(data).to_vec()),
                    _ => (Pkcs1v15Sign::new::<sha2::Sha256>(), sha2::Sha256::digest(data).to_vec()),
                };
                self.rsa.sign(scheme, &hashed).map_err(|e| format!("RSA signing with our own key: {e}"))?
            }
        };
        let mut blob = Vec::new();
        put_string(&mut blob, algorithm.as_bytes());
        put_string(&mut blob, &sig);
        Ok(blob)
    }
}

/// A 2048-bit RSA key. Generation fails only for sizes the crate refuses, never for 2048 bits;
/// an unlucky draw is simply drawn again.
fn rsa_key(rng: &mut rand::rngs::ThreadRng) -> rsa::RsaPrivateKey {
    loop {
        if let Ok(k) = rsa::RsaPrivateKey::new(rng, 2048) {
            return k;
        }
    }
}

/// An mpint (RFC 4251 §5) from unsigned big-endian bytes.
fn put_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    let mut v = be[start..].to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    put_string(out, &v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own verifier (the host key code) accepts every kind under its default algorithm, and
    /// RSA under all three names: what we send a target is well formed.
    #[test]
    fn signatures_verify() {
        let keys = UserKeys::generate();
        let data = b"session id and request";
        for kind in KeyKind::ALL {
            let alg = kind.default_algorithm();
            hostkey::verify(alg, &keys.blob(kind), &keys.sign(kind, alg, data).unwrap(), data).unwrap();
        }
        for alg in [hostkey::SSH_RSA, hostkey::RSA_SHA2_256, hostkey::RSA_SHA2_512] {
            hostkey::verify(alg, &keys.blob(KeyKind::Rsa), &keys.sign(KeyKind::Rsa, alg, data).unwrap(), data).unwrap();
        }
        assert_eq!(keys.authorized_lines().lines().count(), 3);
    }
}
