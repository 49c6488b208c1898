//! Key files a user hands us: an OpenSSH ed25519 identity (`openssh-key-v1`, unencrypted) to log
//! in to a remote target, and `known_hosts` to pin a remote target's host key.

use crate::transport::hostkey;
use base64::Engine;
use hmac::{Hmac, Mac};
use sshspec_wire::Reader;
use std::net::SocketAddr;
use std::path::Path;

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read key file {}: {e}", path.display()))
}

/// A private key from an identity file, of one of the kinds the peer signs with.
pub enum IdentityKey {
    Ed25519(ed25519_dalek::SigningKey),
    EcdsaP256(p256::ecdsa::SigningKey),
    Rsa(rsa::RsaPrivateKey),
}

/// Names the kind only: a private key never reaches a log.
impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({:?})", self.kind())
    }
}

impl IdentityKey {
    pub fn kind(&self) -> crate::peer::KeyKind {
        use crate::peer::KeyKind;
        match self {
            IdentityKey::Ed25519(_) => KeyKind::Ed25519,
            IdentityKey::EcdsaP256(_) => KeyKind::EcdsaP256,
            IdentityKey::Rsa(_) => KeyKind::Rsa,
        }
    }

    /// Puts this key in place of the run's generated key of its kind.
    pub fn install(self, keys: &mut crate::peer::UserKeys) {
        match self {
            IdentityKey::Ed25519(k) => keys.ed25519 = k,
            IdentityKey::EcdsaP256(k) => keys.ecdsa = k,
            IdentityKey::Rsa(k) => keys.rsa = std::sync::Arc::new(k),
        }
    }
}

/// Loads an unencrypted OpenSSH private key (`openssh-key-v1`): ed25519, ECDSA P-256 or RSA.
pub fn load_identity(path: &Path) -> Result<IdentityKey, String> {
    let text = read(path)?;
    let bad = |why: &str| format!("{}: not a usable identity: {why}", path.display());
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err(bad("no OPENSSH PRIVATE KEY block (convert with `ssh-keygen -p -f FILE`)"));
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(body.trim()).map_err(|_| bad("bad base64"))?;
    let rest = raw.strip_prefix(b"openssh-key-v1\0".as_slice()).ok_or_else(|| bad("not openssh-key-v1"))?;
    let mut r = Reader::new(rest);
    let field =
        |r: &mut Reader<'_>, what: &'static str| r.string(what).map(<[u8]>::to_vec).map_err(|e| bad(&e.to_string()));
    let cipher = field(&mut r, "cipher")?;
    if cipher != b"none" {
        return Err(bad("the key is encrypted; sshspec reads only unencrypted identities"));
    }
    let _kdf = field(&mut r, "kdf")?;
    let _kdf_options = field(&mut r, "kdf options")?;
    let n = r.u32("key count").map_err(|e| bad(&e.to_string()))?;
    if n != 1 {
        return Err(bad("expected exactly one key"));
    }
    let _public = field(&mut r, "public key")?;
    let private = field(&mut r, "private section")?;
    let mut p = Reader::new(&private);
    let c1 = p.u32("check").map_err(|e| bad(&e.to_string()))?;
    let c2 = p.u32("check").map_err(|e| bad(&e.to_string()))?;
    if c1 != c2 {
        return Err(bad("check bytes differ (corrupt file)"));
    }
    let kind = field(&mut p, "key type")?;
    // mpints as unsigned big-endian integers: a leading zero byte only marks the sign.
    let uint = |p: &mut Reader<'_>, what: &'static str| field(p, what).map(|v| rsa::BigUint::from_bytes_be(&v));
    match kind.as_slice() {
        k if k == hostkey::SSH_ED25519.as_bytes() => {
            let _pk = field(&mut p, "public key")?;
            let sk = field(&mut p, "private key")?;
            let seed: [u8; 32] =
                sk.get(..32).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("short private key"))?;
            Ok(IdentityKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
        }
        k if k == hostkey::ECDSA_NISTP256.as_bytes() => {
            let _curve = field(&mut p, "curve")?;
            let _q = field(&mut p, "public point")?;
            let d = field(&mut p, "private scalar")?;
            let d = d.strip_prefix(&[0]).unwrap_or(&d);
            p256::ecdsa::SigningKey::from_slice(d)
                .map(IdentityKey::EcdsaP256)
                .map_err(|e| bad(&format!("bad ECDSA P-256 scalar: {e}")))
        }
        k if k == hostkey::SSH_RSA.as_bytes() => {
            let n = uint(&mut p, "rsa n")?;
            let e = uint(&mut p, "rsa e")?;
            let d = uint(&mut p, "rsa d")?;
            let _iqmp = uint(&mut p, "rsa iqmp")?;
            let prime_p = uint(&mut p, "rsa p")?;
            let prime_q = uint(&mut p, "rsa q")?;
            rsa::RsaPrivateKey::from_components(n, e, d, vec![prime_p, prime_q])
                .map(IdentityKey::Rsa)
                .map_err(|e| bad(&format!("bad RSA key: {e}")))
        }
        other => Err(bad(&format!(
            "key type {:?}; ssh-ed25519, ecdsa-sha2-nistp256 and ssh-rsa identities are supported",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// The SHA256 fingerprints `known_hosts` lists for `addr` (plain and hashed host entries).
pub fn known_host_fingerprints(path: &Path, addr: SocketAddr) -> Result<Vec<String>, String> {
    let text = read(path)?;
    let host = if addr.port() == 22 { addr.ip().to_string() } else { format!("[{}]:{}", addr.ip(), addr.port()) };
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(key)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !hosts.split(',').any(|h| host_matches(h, &host)) {
            continue;
        }
        if let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) {
            out.push(hostkey::fingerprint(&blob));
        }
    }
    if out.is_empty() {
        return Err(format!("{} has no key for {host}", path.display()));
    }
    Ok(out)
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let Some(hashed) = pattern.strip_prefix("|1|") else {
        return pattern == host;
    };
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Writes `key` as an unencrypted OpenSSH private key file (mode 0600), so `ssh -i` can use the
/// same identity as the scripted peer (the benchmarks compare the two on equal terms).
pub fn write_identity(path: &Path, key: &ed25519_dalek::SigningKey) -> std::io::Result<()> {
    use sshspec_wire::codec::put_string;
    let pk = key.verifying_key().to_bytes();
    let mut blob = Vec::new();
    put_string(&mut blob, hostkey::SSH_ED25519.as_bytes());
    put_string(&mut blob, &pk);
    let mut private = Vec::new();
    let check = 0x5353_4853u32.to_be_bytes();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, hostkey::SSH_ED25519.as_bytes());
    put_string(&mut private, &pk);
    put_string(&mut private, &key.to_keypair_bytes());
    put_string(&mut private, b"sshspec");
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut raw = b"openssh-key-v1\0".to_vec();
    put_string(&mut raw, b"none");
    put_string(&mut raw, b"none");
    put_string(&mut raw, b"");
    raw.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut raw, &blob);
    put_string(&mut raw, &private);
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut text = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        text.push_str(&String::from_utf8_lossy(chunk));
        text.push('\n');
    }
    text.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_written_by_ssh_keygen_load() {
        for (kind, args) in [
            (crate::peer::KeyKind::Ed25519, &["-t", "ed25519"][..]),
            (crate::peer::KeyKind::EcdsaP256, &["-t", "ecdsa", "-b", "256"][..]),
            (crate::peer::KeyKind::Rsa, &["-t", "rsa", "-b", "2048"][..]),
        ] {
            let d = tempfile::tempdir().unwrap();
            let f = d.path().join("id");
            let ok =
                std::process::Command::new("ssh-keygen").args(["-q", "-N", ""]).args(args).arg("-f").arg(&f).status();
            if !ok.is_ok_and(|s| s.success()) {
                eprintln!("ssh-keygen not installed; identity parsing covered by the written-identity test only");
                return;
            }
            let key = load_identity(&f).unwrap();
            assert_eq!(key.kind(), kind);
            let mut keys = crate::peer::UserKeys::generate();
            key.install(&mut keys);
            // Our public blob of the loaded key is the one ssh-keygen wrote beside it.
            let public = std::fs::read_to_string(d.path().join("id.pub")).unwrap();
            let blob =
                base64::engine::general_purpose::STANDARD.decode(public.split_whitespace().nth(1).unwrap()).unwrap();
            assert_eq!(keys.blob(kind), blob, "{kind:?}");
        }
    }

    #[test]
    fn unreadable_and_malformed_key_files_say_why() {
        let e = load_identity(Path::new("/nonexistent/id")).unwrap_err();
        assert!(e.contains("cannot read key file /nonexistent/id"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("id");
        std::fs::write(&f, "hello").unwrap();
        assert!(load_identity(&f).unwrap_err().contains("no OPENSSH PRIVATE KEY block"));
    }

    #[test]
    fn hashed_and_plain_known_hosts_entries_match() {
        // `ssh-keygen -H` form for "[127.0.0.1]:2222" with salt "sshspec-salt-000" (16 bytes).
        let salt = b"sshspec-salt-000";
        let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac.finalize().into_bytes()));
        let key = b64.encode(b"\0\0\0\x0bssh-ed25519\0\0\0\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("known_hosts");
        std::fs::write(&f, format!("{hashed} ssh-ed25519 {key}\nother.example ssh-ed25519 {key}\n")).unwrap();
        let fps = known_host_fingerprints(&f, "127.0.0.1:2222".parse().unwrap()).unwrap();
        assert_eq!(fps.len(), 1);
        assert!(known_host_fingerprints(&f, "127.0.0.1:2223".parse().unwrap()).is_err());
    }

    #[test]
    fn written_identities_read_back_and_satisfy_ssh_keygen() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("id");
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        write_identity(&f, &key).unwrap();
        let Ok(IdentityKey::Ed25519(back)) = load_identity(&f) else { panic!("not read back as ed25519") };
        assert_eq!(back.to_bytes(), key.to_bytes());
        if let Ok(out) = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&f).output()
            && out.status.success()
        {
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("ssh-ed25519 "));
        }
    }
}
