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
    /// A 3072-bit RSA key with public exponent 3 whose private half was thrown away when it was
    /// made: authorized on every target we set up, yet the only signatures anyone can make for it
    /// are forgeries against verifiers that parse the decrypted block (RFC 8332 §5.3).
    RsaE3,
}

impl KeyKind {
    /// The kinds whose private keys we hold.
    pub const ALL: [KeyKind; 3] = [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa];
    /// What a target we set up authorizes: the keys we hold and the e = 3 key nobody holds.
    pub const AUTHORIZED: [KeyKind; 4] = [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa, KeyKind::RsaE3];
    pub const NAMES: &'static str = "ed25519, ecdsa, rsa or rsa-e3";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ed25519" => KeyKind::Ed25519,
            "ecdsa" => KeyKind::EcdsaP256,
            "rsa" => KeyKind::Rsa,
            "rsa-e3" => KeyKind::RsaE3,
            _ => return None,
        })
    }

    /// The key type in its blob, which is also what a target lists in `user_keys`.
    pub fn key_type(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => hostkey::SSH_ED25519,
            KeyKind::EcdsaP256 => hostkey::ECDSA_NISTP256,
            KeyKind::Rsa | KeyKind::RsaE3 => hostkey::SSH_RSA,
        }
    }

    /// The algorithm a client names by default: RSA keys sign with SHA-256 (RFC 8332).
    pub fn default_algorithm(self) -> &'static str {
        match self {
            KeyKind::Rsa | KeyKind::RsaE3 => hostkey::RSA_SHA2_256,
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
            KeyKind::RsaE3 => {
                put_mpint(&mut b, &[3]);
                put_mpint(&mut b, &rsa_e3_modulus());
            }
        }
        b
    }

    /// Every key a target authorizes ([`KeyKind::AUTHORIZED`]) in `authorized_keys` form, one per line.
    pub fn authorized_lines(&self) -> String {
        use base64::Engine;
        KeyKind::AUTHORIZED
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
            KeyKind::RsaE3 => forge_e3(algorithm, data),
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

/// The modulus of [`KeyKind::RsaE3`] (made with `openssl genpkey -pkeyopt rsa_keygen_pubexp:3`).
fn rsa_e3_modulus() -> Vec<u8> {
    const N: &str = concat!(
        "b1a884ca70c1f716062f746e5501639449137ce05487dfcb8c39febd0931025f",
        "9a7fb6a2264e20da4052d852e62005ea500c26156d9e03d7f00432a187b470d0",
        "fa36bcef54c247d2c9f6bc32d5cf4b1713d3f963882a577822bacb527121b001",
        "cc8dda22c582091ddcaa17daf940532210529e31fca11fd89f4030e9e7140a9c",
        "58cccbc0dd0580e751cfda1bda9486914e0d44ebd5ff446f55d43c9423ca5d24",
        "6b0595f728efa3be4d921989a4101f7dd5e4d58603d571f5ed85269b7309a391",
        "4c33798513038e279849d4e224ecaf67badce70d04ae7d0ba43bfa2489bda113",
        "381a9e32ab49481cb5e6c0f3d4f77a750ee08c945ba657b5e48549246cb505a1",
        "7ceaa7a34ce7c16c7a21e1cc14a42649bc1373b91da1918dffc53e62d7483e07",
        "80ed2d2c9bb9f93c03ef4dfd3cde5f34dc0916336f739de3fdb4299928b65a38",
        "4f5c53344372065075beebc450702a25a9ac0f3fcf5d0f4dad66a8f6ae442026",
        "a074c7cf8e21632e66130483ace2c5ececea18972a3fe96e9d780b40a750293d",
    );
    // A constant: the unit tests check it decodes to 384 bytes.
    hex::decode(N).unwrap_or_default()
}

/// The DER prefix of PKCS#1 v1.5's DigestInfo for the hash `algorithm` names (RFC 8017 §9.2),
/// with the hash itself.
pub fn digest_info(algorithm: &str, data: &[u8]) -> (&'static [u8], Vec<u8>) {
    use sha2::Digest;
    match algorithm {
        hostkey::SSH_RSA => (
            &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14],
            sha1::Sha1::digest(data).to_vec(),
        ),
        hostkey::RSA_SHA2_512 => (
            &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
            sha2::Sha512::digest(data).to_vec(),
        ),
        _ => (
            &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            sha2::Sha256::digest(data).to_vec(),
        ),
    }
}

/// Bleichenbacher's e = 3 forgery (CRYPTO 2006 rump session): the integer cube root, rounded up,
/// of `00 01 FF 00 DigestInfo hash` followed by zeros to the modulus length. Its cube keeps that
/// prefix and differs only in the low bytes: the error is below 3·s², about 2040 bits of 3072 (under
/// a 2048-bit modulus it would reach into a SHA-512 hash, hence the key's size). A verifier that
/// checks the block's start and ignores what follows the hash accepts it; one that builds the whole
/// expected block and compares, as RFC 8332 §5.3 requires, does not.
fn forge_e3(algorithm: &str, data: &[u8]) -> Vec<u8> {
    use rsa::BigUint;
    let size = rsa_e3_modulus().len();
    let (prefix, hash) = digest_info(algorithm, data);
    let mut block = vec![0x00, 0x01, 0xff, 0x00];
    block.extend_from_slice(prefix);
    block.extend_from_slice(&hash);
    block.resize(size, 0);
    let target = BigUint::from_bytes_be(&block);
    let mut s = target.cbrt();
    if &s * &s * &s < target {
        s += 1u32;
    }
    let be = s.to_bytes_be();
    // RFC 8332 §3: the signature blob is the modulus length.
    [vec![0u8; size - be.len()], be].concat()
}

/// The method-specific fields a USERAUTH_REQUEST's signature covers, as the request carries them.
pub enum SignedMethod<'a> {
    /// RFC 4252 §7; `host_key` for the host-bound form (PROTOCOL §3.1), which names its method
    /// `publickey-hostbound-v00@openssh.com`.
    Publickey { algorithm: &'a [u8], key: &'a [u8], host_key: Option<&'a [u8]> },
    /// RFC 4252 §9.
    Hostbased { algorithm: &'a [u8], host_key: &'a [u8], client_host: &'a [u8], client_user: &'a [u8] },
}

/// What a publickey or hostbased signature covers: the session identifier, then the request up to
/// its signature. The peer signs it and the fixture verifies it, so both build it here.
pub fn signed_request(session_id: &[u8], user: &[u8], service: &[u8], method: SignedMethod) -> Vec<u8> {
    let mut data = Vec::new();
    put_string(&mut data, session_id);
    data.push(50); // SSH_MSG_USERAUTH_REQUEST
    put_string(&mut data, user);
    put_string(&mut data, service);
    match method {
        SignedMethod::Publickey { algorithm, key, host_key } => {
            let name: &[u8] = if host_key.is_some() { b"publickey-hostbound-v00@openssh.com" } else { b"publickey" };
            put_string(&mut data, name);
            data.push(1); // TRUE: a signed request
            put_string(&mut data, algorithm);
            put_string(&mut data, key);
            if let Some(h) = host_key {
                put_string(&mut data, h);
            }
        }
        SignedMethod::Hostbased { algorithm, host_key, client_host, client_user } => {
            for field in [&b"hostbased"[..], algorithm, host_key, client_host, client_user] {
                put_string(&mut data, field);
            }
        }
    }
    data
}

/// The verification RFC 8332 §5.3 forbids, for the fixture's `rsa-signature-parsed` deviation:
/// apply the public key, then parse the block (`00 01`, at least one `FF`, `00`, DigestInfo,
/// hash) and ignore whatever follows the hash.
/// `signature_blob` is the whole blob (type and signature), as for [`hostkey::verify`].
pub fn parsed_verify(key_blob: &[u8], algorithm: &str, signature_blob: &[u8], data: &[u8]) -> bool {
    use rsa::BigUint;
    let mut s = sshspec_wire::Reader::new(signature_blob);
    let (Ok(_), Ok(signature)) = (s.string("type"), s.string("signature")) else {
        return false;
    };
    let mut k = sshspec_wire::Reader::new(key_blob);
    let (Ok(_), Ok(e), Ok(n)) = (k.string("type"), k.string("e"), k.string("n")) else {
        return false;
    };
    let n = BigUint::from_bytes_be(n);
    let block = BigUint::from_bytes_be(signature).modpow(&BigUint::from_bytes_be(e), &n).to_bytes_be();
    let Some(rest) = block.strip_prefix(&[0x01][..]) else {
        return false;
    };
    let padding = rest.iter().take_while(|&&b| b == 0xff).count();
    let Some(rest) = rest[padding..].strip_prefix(&[0x00][..]).filter(|_| padding > 0) else {
        return false;
    };
    let (prefix, hash) = digest_info(algorithm, data);
    rest.strip_prefix(prefix).is_some_and(|r| r.starts_with(&hash))
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
        assert_eq!(keys.authorized_lines().lines().count(), 4);
    }

    /// The forgery is what it claims: cubed, it starts with the PKCS#1 block of the hash and ends
    /// in garbage, so a strict verifier (ours) refuses it and a parsing one would accept it.
    #[test]
    fn e3_forgery_keeps_the_prefix_and_fails_strict_verification() {
        use rsa::BigUint;
        let keys = UserKeys::generate();
        let data = b"session id and request";
        for alg in [hostkey::SSH_RSA, hostkey::RSA_SHA2_256, hostkey::RSA_SHA2_512] {
            let blob = keys.sign(KeyKind::RsaE3, alg, data).unwrap();
            assert!(hostkey::verify(alg, &keys.blob(KeyKind::RsaE3), &blob, data).is_err());
            let mut r = sshspec_wire::Reader::new(&blob);
            assert_eq!(r.string("alg").unwrap(), alg.as_bytes());
            let sig = r.string("sig").unwrap();
            assert_eq!(sig.len(), 384);
            assert_eq!(rsa_e3_modulus().len(), 384);
            let s = BigUint::from_bytes_be(sig);
            let block = (&s * &s * &s).to_bytes_be();
            let (prefix, hash) = digest_info(alg, data);
            let expected = [&[0x01, 0xff, 0x00][..], prefix, &hash].concat();
            assert_eq!(&block[..expected.len()], &expected[..], "{alg}");
            assert_eq!(block.len(), 383, "{alg}: 00 01 ... is 383 bytes once the leading zero goes");
            assert!(parsed_verify(&keys.blob(KeyKind::RsaE3), alg, &blob, data), "{alg}");
        }
    }
}
