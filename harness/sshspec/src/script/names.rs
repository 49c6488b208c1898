//! The names a scenario or a target description may use in `requires`, `features` and algorithm
//! pins, checked at load: a misspelt requirement would otherwise SKIP forever ("the target does not
//! offer it"), and a misspelt pin would FAIL the target on a negotiation we never meant to judge.

use super::{Pins, Requires};
use crate::peer::userkey::KeyKind;
use crate::transport::{cipher, compress, hostkey, kex};

/// Features a target can offer beyond what every server has (`requires.feature`, a target's
/// `features`); `subsystem:NAME` names any subsystem.
pub const FEATURES: &[&str] = &[
    "several-sessions",
    "shell",
    "pty",
    "exit-signal",
    "tcpip-forward",
    "direct-tcpip",
    "no-more-sessions@openssh.com",
    "streamlocal-forward@openssh.com",
];
const SUBSYSTEM: &str = "subsystem:";

/// Authentication methods the peer speaks.
pub const AUTH_METHODS: &[&str] = &["none", "password", "publickey", "keyboard-interactive"];

/// Markers a server lists among its kex methods (RFC 8308 §2.1, strict kex): a scenario may require
/// them, never pin them.
const SERVER_MARKERS: &[&str] = &["ext-info-s", kex::KEX_STRICT_S, kex::KEX_STRICT_S_STANDARD];

const COMPRESSION: &[&str] = &[compress::NONE, compress::ZLIB, compress::ZLIB_OPENSSH];

/// EXT_INFO extensions a scenario may require a server to advertise (RFC 8308 §3, OpenSSH PROTOCOL).
pub const EXTENSIONS: &[&str] = &[
    "server-sig-algs",
    "delay-compression",
    "no-flow-control",
    "elevation",
    "ping@openssh.com",
    "publickey-hostbound@openssh.com",
];

fn kex_methods() -> impl Iterator<Item = &'static str> {
    kex::METHODS.iter().map(|m| m.name)
}

/// Whether `name` is a feature this build knows.
pub fn known_feature(name: &str) -> bool {
    FEATURES.contains(&name) || name.strip_prefix(SUBSYSTEM).is_some_and(|s| !s.is_empty())
}

/// A feature name's error, if it is not one: the message names the known ones.
pub fn check_feature(name: &str) -> Result<(), String> {
    if known_feature(name) {
        return Ok(());
    }
    Err(format!("unknown feature {name:?}; known: {}, {SUBSYSTEM}NAME", FEATURES.join(", ")))
}

fn check(what: &str, name: &str, known: &[&str]) -> Result<(), String> {
    if known.contains(&name) {
        return Ok(());
    }
    Err(format!("unknown {what} {name:?}; {}", hint(name, known)))
}

/// "did you mean ...?" with the names close to `name`, or the list of known ones.
pub fn hint(name: &str, known: &[&str]) -> String {
    let close: Vec<&&str> = known.iter().filter(|k| similar(k, name)).collect();
    match close.as_slice() {
        [] => format!("known: {}", known.join(", ")),
        c => format!("did you mean {}?", c.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(" or ")),
    }
}

/// Names that differ only in case, where one contains the other, or within two edits of each
/// other: the usual slips.
fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || (b.len() >= 4 && (a.contains(&b) || b.contains(&a) || edits(&a, &b) <= 2))
}

/// Levenshtein distance, in characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A cipher or MAC list and `none`, which the peer speaks when a scenario pins or requires it but
/// never offers of its own accord (RFC 4253 §6.3, §6.4: it is not recommended).
fn with_none(list: &[&'static str]) -> Vec<&'static str> {
    list.iter().copied().chain([cipher::NONE]).collect()
}

/// The `requires` lists that name KEXINIT algorithms, where `!name` asks for one to be absent.
const ALGORITHM_LISTS: &[&str] = &["kex method", "host key algorithm", "cipher", "MAC", "compression method"];

/// Checks every name in a scenario's `requires`; the error gives the offending name first, so the
/// loader can point at it.
pub fn check_requires(r: &Requires) -> Result<(), (String, String)> {
    let kex: Vec<&str> = kex_methods().chain(SERVER_MARKERS.iter().copied()).collect();
    let user_keys: Vec<&str> = KeyKind::ALL.iter().map(|k| k.key_type()).collect();
    let (ciphers, macs) = (with_none(cipher::ALL_CIPHERS), with_none(cipher::MACS));
    let lists: [(&str, &[String], &[&str]); 8] = [
        ("authentication method", &r.auth, AUTH_METHODS),
        ("kex method", &r.kex, &kex),
        ("host key algorithm", &r.host_key, hostkey::ALL),
        ("cipher", &r.cipher, &ciphers),
        ("MAC", &r.mac, &macs),
        ("compression method", &r.compression, COMPRESSION),
        ("user key type", &r.user_key, &user_keys),
        ("EXT_INFO extension", &r.extension, EXTENSIONS),
    ];
    for (what, names, known) in lists {
        for n in names {
            // `!name`: the scenario needs the server's KEXINIT to leave the algorithm out.
            let name = n.strip_prefix('!').filter(|_| ALGORITHM_LISTS.contains(&what)).unwrap_or(n);
            check(what, name, known).map_err(|m| (n.clone(), m))?;
        }
    }
    for f in &r.feature {
        check_feature(f).map_err(|m| (f.clone(), m))?;
    }
    Ok(())
}

/// Checks a `key-exchange` step's pins: each must be an algorithm the peer speaks.
pub fn check_pins(p: &Pins) -> Result<(), String> {
    let kex: Vec<&str> = kex_methods().collect();
    let (ciphers, macs) = (with_none(cipher::ALL_CIPHERS), with_none(cipher::MACS));
    let pins: [(&str, &Option<String>, &[&str]); 5] = [
        ("kex method", &p.kex, &kex),
        ("host key algorithm", &p.host_key, hostkey::ALL),
        ("cipher", &p.cipher, &ciphers),
        ("MAC", &p.mac, &macs),
        ("compression method", &p.compression, COMPRESSION),
    ];
    for (what, pin, known) in pins {
        if let Some(n) = pin {
            check(what, n, known).map_err(|m| format!("{m} (a pin must be an algorithm the peer speaks)"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_requirement_is_refused_with_a_hint() {
        let r = Requires { cipher: vec!["chacha20-poly1305@openssh.co".into()], ..Requires::default() };
        let (name, m) = check_requires(&r).unwrap_err();
        assert_eq!(name, "chacha20-poly1305@openssh.co");
        assert!(m.contains("did you mean \"chacha20-poly1305@openssh.com\""), "{m}");
        let r = Requires { feature: vec!["tcpip-fwd".into()], ..Requires::default() };
        assert!(check_requires(&r).unwrap_err().1.contains("unknown feature"));
        let r = Requires { kex: vec!["kex-strict-s-v00@openssh.com".into()], ..Requires::default() };
        assert!(check_requires(&r).is_ok(), "a server marker may be required");
        assert!(known_feature("subsystem:sftp") && !known_feature("subsystem:"));
    }

    #[test]
    fn near_misses_get_a_hint() {
        assert_eq!(edits("logn", "login"), 1);
        assert_eq!(edits("kitten", "sitting"), 3);
        assert!(hint("aes256-gcm@opensh.com", cipher::ALL_CIPHERS).contains("did you mean \"aes256-gcm@openssh.com\""));
    }

    #[test]
    fn a_marker_cannot_be_pinned() {
        let p = Pins { kex: Some("ext-info-s".into()), ..Pins::default() };
        assert!(check_pins(&p).is_err());
        let p = Pins { cipher: Some("aes128-cbc".into()), mac: Some("hmac-sha1".into()), ..Pins::default() };
        assert!(check_pins(&p).is_ok());
    }
}
