//! Server host keys and their signatures: ssh-ed25519 (RFC 8709), rsa-sha2-256/512 (RFC 8332),
//! ssh-rsa (RFC 4253 §6.6) and ecdsa-sha2-nistp256/384/521 (RFC 5656 §3). Also the SHA256 fingerprint.

use base64::Engine;
use sha2::Digest;
use sshspec_wire::{Reader, codec::DecodeError};

pub const SSH_ED25519: &str = "ssh-ed25519";
pub const RSA_SHA2_256: &str = "rsa-sha2-256";
pub const RSA_SHA2_512: &str = "rsa-sha2-512";
pub const SSH_RSA: &str = "ssh-rsa";
pub const ECDSA_NISTP256: &str = "ecdsa-sha2-nistp256";
pub const ECDSA_NISTP384: &str = "ecdsa-sha2-nistp384";
pub const ECDSA_NISTP521: &str = "ecdsa-sha2-nistp521";

/// Host key algorithms the scripted peer verifies, in our default order of preference. ssh-rsa
/// (SHA-1) is spoken but offered only when a scenario asks for it.
pub const HOST_KEY_ALGORITHMS: &[&str] =
    &[SSH_ED25519, ECDSA_NISTP256, ECDSA_NISTP384, ECDSA_NISTP521, RSA_SHA2_512, RSA_SHA2_256];
/// Every host key algorithm we can verify.
pub const ALL: &[&str] =
    &[SSH_ED25519, ECDSA_NISTP256, ECDSA_NISTP384, ECDSA_NISTP521, RSA_SHA2_512, RSA_SHA2_256, SSH_RSA];

/// Why a host key or its signature was rejected. These are the target's faults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    #[error("malformed host key blob: {0}")]
    MalformedKey(DecodeError),
    #[error("malformed signature blob: {0}")]
    MalformedSignature(DecodeError),
    #[error("host key is of type {key_type:?}, which does not fit the negotiated algorithm {algorithm}")]
    WrongKeyType { key_type: String, algorithm: String },
    #[error("signature is of type {sig_type:?}, but {algorithm} was negotiated")]
    WrongSignatureType { sig_type: String, algorithm: String },
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    #[error("the signature over the exchange hash does not verify")]
    BadSignature,
    #[error("host key algorithm {0} is not one we can verify")]
    Unsupported(String),
}

/// The SHA256 fingerprint as `ssh-keygen -l` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    fingerprint_from_digest(&sha2::Sha256::digest(blob))
}

/// The `SHA256:...` form of a SHA-256 digest already taken (an SSHFP record's, say).
pub fn fingerprint_from_digest(digest: &[u8]) -> String {
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
}

/// The key as an OpenSSH public key line (`type base64`), for transcripts.
pub fn openssh_line(blob: &[u8]) -> String {
    format!(
        "{} {}",
        key_type(blob).unwrap_or_else(|| "unknown".into()),
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// The key type named at the start of a key blob.
pub fn key_type(blob: &[u8]) -> Option<String> {
    let mut r = Reader::new(blob);
    r.string("key type").ok().map(|t| String::from_utf8_lossy(t).into_owned())
}

/// Verifies `signature_blob` over `data` with the host key `key_blob`, for the negotiated `algorithm`.
pub fn verify(algorithm: &str, key_blob: &[u8], signature_blob: &[u8], data: &[u8]) -> Result<(), HostKeyError> {
    let mut k = Reader::new(key_blob);
    let kt = k.string("key type").map_err(HostKeyError::MalformedKey)?;
    let mut s = Reader::new(signature_blob);
    let st = s.string("signature type").map_err(HostKeyError::MalformedSignature)?;
    let sig = s.string("signature").map_err(HostKeyError::MalformedSignature)?;
    s.finish("signature blob").map_err(HostKeyError::MalformedSignature)?;
    let expected_key_type = match algorithm {
        RSA_SHA2_256 | RSA_SHA2_512 | SSH_RSA => SSH_RSA,
        other => other,
    };
    if kt != expected_key_type.as_bytes() {
        return Err(HostKeyError::WrongKeyType {
            key_type: String::from_utf8_lossy(kt).into_owned(),
            algorithm: algorithm.into(),
        });
    }
    if st != algorithm.as_bytes() {
        return Err(HostKeyError::WrongSignatureType {
            sig_type: String::from_utf8_lossy(st).into_owned(),
            algorithm: algorithm.into(),
        });
    }
    match algorithm {
        SSH_ED25519 => {
            let pk = k.string("ed25519 key").map_err(HostKeyError::MalformedKey)?;
            k.finish("ed25519 key blob").map_err(HostKeyError::MalformedKey)?;
            let pk: [u8; 32] =
                pk.try_into().map_err(|_| HostKeyError::InvalidKey("ed25519 key is not 32 bytes".into()))?;
            let vk =
                ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|e| HostKeyError::InvalidKey(e.to_string()))?;
            let sig: [u8; 64] = sig.try_into().map_err(|_| HostKeyError::BadSignature)?;
            vk.verify_strict(data, &ed25519_dalek::Signature::from_bytes(&sig)).map_err(|_| HostKeyError::BadSignature)
        }
        RSA_SHA2_256 | RSA_SHA2_512 | SSH_RSA => {
            use rsa::pkcs1v15::Pkcs1v15Sign;
            let e = k.string("rsa e").map_err(HostKeyError::MalformedKey)?;
            let n = k.string("rsa n").map_err(HostKeyError::MalformedKey)?;
            k.finish("rsa key blob").map_err(HostKeyError::MalformedKey)?;
            let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e))
                .map_err(|e| HostKeyError::InvalidKey(e.to_string()))?;
            let (scheme, hashed) = match algorithm {
                RSA_SHA2_256 => (Pkcs1v15Sign::new::<sha2::Sha256>(), sha2::Sha256::digest(data).to_vec()),
                RSA_SHA2_512 => (Pkcs1v15Sign::new::<sha2::Sha512>(), sha2::Sha512::digest(data).to_vec()),
                _ => (Pkcs1v15Sign::new::<sha1::Sha1>(), sha1::Sha1::digest(data).to_vec()),
            };
            // RFC 8332 §3 fixes the blob at the modulus length, but a signer that encodes the
            // integer minimally drops leading zero bytes (lshd, about 1 in 256 signatures); PKCS#1
            // verification wants the full length, so restore them rather than blame the server.
            let size = rsa::traits::PublicKeyParts::size(&key);
            let padded;
            let sig = if sig.len() < size {
                padded = [vec![0u8; size - sig.len()], sig.to_vec()].concat();
                &padded[..]
            } else {
                sig
            };
            key.verify(scheme, &hashed, sig).map_err(|_| HostKeyError::BadSignature)
        }
        ECDSA_NISTP256 | ECDSA_NISTP384 | ECDSA_NISTP521 => {
            use p256::ecdsa::signature::Verifier;
            let curve = k.string("curve").map_err(HostKeyError::MalformedKey)?;
            let q = k.string("point").map_err(HostKeyError::MalformedKey)?;
            k.finish("ecdsa key blob").map_err(HostKeyError::MalformedKey)?;
            if curve != &algorithm.as_bytes()["ecdsa-sha2-".len()..] {
                return Err(HostKeyError::InvalidKey(format!(
                    "curve {:?} in a {algorithm} key",
                    String::from_utf8_lossy(curve)
                )));
            }
            let mut sr = Reader::new(sig);
            let r = sr.string("ecdsa r").map_err(HostKeyError::MalformedSignature)?;
            let s = sr.string("ecdsa s").map_err(HostKeyError::MalformedSignature)?;
            sr.finish("ecdsa signature").map_err(HostKeyError::MalformedSignature)?;
            let invalid = |e: p256::ecdsa::Error| HostKeyError::InvalidKey(e.to_string());
            // RFC 5656 §6.2.1: the hash follows the curve size (SHA-256, SHA-384, SHA-512).
            // The three curves differ only in their crate and scalar size.
            macro_rules! verify {
                ($curve:ident, $size:expr) => {{
                    let vk = $curve::ecdsa::VerifyingKey::from_sec1_bytes(q).map_err(invalid)?;
                    let sig = $curve::ecdsa::Signature::from_scalars(
                        $curve::FieldBytes::clone_from_slice(&scalar(r, $size)?),
                        $curve::FieldBytes::clone_from_slice(&scalar(s, $size)?),
                    )
                    .map_err(|_| HostKeyError::BadSignature)?;
                    vk.verify(data, &sig).map_err(|_| HostKeyError::BadSignature)
                }};
            }
            match algorithm {
                ECDSA_NISTP256 => verify!(p256, 32),
                ECDSA_NISTP384 => verify!(p384, 48),
                _ => verify!(p521, 66),
            }
        }
        other => Err(HostKeyError::Unsupported(other.into())),
    }
}

/// An mpint scalar as the fixed-size big-endian bytes a curve wants.
fn scalar(m: &[u8], n: usize) -> Result<Vec<u8>, HostKeyError> {
    let m = match m.iter().position(|&b| b != 0) {
        Some(i) => &m[i..],
        None => &[],
    };
    if m.len() > n {
        return Err(HostKeyError::BadSignature);
    }
    let mut out = vec![0u8; n];
    out[n - m.len()..].copy_from_slice(m);
    Ok(out)
}
