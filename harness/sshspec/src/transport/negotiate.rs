//! Algorithm negotiation (RFC 4253 §7.1): for each category, the first of the client's algorithms
//! that the server also lists. Also notes the extension markers of RFC 8308 and strict kex.

use super::cipher;
use super::kex::{EXT_INFO_C, KEX_STRICT_C, KEX_STRICT_C_STANDARD, KEX_STRICT_S, KEX_STRICT_S_STANDARD};
use serde::Serialize;
use sshspec_wire::NameList;
use sshspec_wire::msg::KexInit;

/// What both KEXINITs agreed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Negotiated {
    pub kex: String,
    pub host_key: String,
    pub cipher_c2s: String,
    pub cipher_s2c: String,
    /// `None` when the cipher is an AEAD and carries its own tag.
    pub mac_c2s: Option<String>,
    pub mac_s2c: Option<String>,
    pub compression_c2s: String,
    pub compression_s2c: String,
    /// Both sides offered strict kex (OpenSSH PROTOCOL §1.10).
    pub strict: bool,
    /// The server will accept EXT_INFO from us / we said we accept it.
    pub ext_info_c: bool,
}

/// The category in which the two lists had nothing in common.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no common {category} algorithm: we offered [{ours}], the server offered [{theirs}]")]
pub struct NoCommon {
    pub category: &'static str,
    pub ours: String,
    pub theirs: String,
}

fn pick(category: &'static str, client: &NameList, server: &NameList) -> Result<String, NoCommon> {
    client.iter().find(|c| server.contains(c)).map(str::to_owned).ok_or_else(|| NoCommon {
        category,
        ours: client.joined(),
        theirs: server.joined(),
    })
}

/// Whether the MAC lists have a name in common in each direction, whatever the cipher: what RFC 5647
/// would demand of an AEAD cipher, and OpenSSH's definition (PROTOCOL §1.6) does not.
pub fn common_mac(c: &KexInit, s: &KexInit) -> Result<(), NoCommon> {
    pick("client-to-server MAC", &c.mac_algorithms_client_to_server, &s.mac_algorithms_client_to_server)?;
    pick("server-to-client MAC", &c.mac_algorithms_server_to_client, &s.mac_algorithms_server_to_client).map(drop)
}

/// Extension markers in the kex list: RFC 8308's `ext-info-*` and strict kex's `kex-strict-*`.
pub fn is_marker(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// Negotiates as RFC 4253 §7.1 says. `first_kex` decides whether the strict-kex markers count:
/// they are honoured only in the first key exchange.
pub fn negotiate(c: &KexInit, s: &KexInit) -> Result<Negotiated, NoCommon> {
    // Markers announce extensions and are never methods (RFC 8308 §2.2), even when both sides list
    // one: a server that lists `ext-info-c` must not make us run a key exchange called that.
    let methods = |l: &NameList| NameList::new(l.iter().filter(|n| !is_marker(n)));
    let kex = pick("key exchange", &methods(&c.kex_algorithms), &methods(&s.kex_algorithms))?;
    let host_key = pick("host key", &c.server_host_key_algorithms, &s.server_host_key_algorithms)?;
    let cipher_c2s = pick(
        "client-to-server cipher",
        &c.encryption_algorithms_client_to_server,
        &s.encryption_algorithms_client_to_server,
    )?;
    let cipher_s2c = pick(
        "server-to-client cipher",
        &c.encryption_algorithms_server_to_client,
        &s.encryption_algorithms_server_to_client,
    )?;
    let mac_c2s = if cipher::is_aead(&cipher_c2s) {
        None
    } else {
        Some(pick("client-to-server MAC", &c.mac_algorithms_client_to_server, &s.mac_algorithms_client_to_server)?)
    };
    let mac_s2c = if cipher::is_aead(&cipher_s2c) {
        None
    } else {
        Some(pick("server-to-client MAC", &c.mac_algorithms_server_to_client, &s.mac_algorithms_server_to_client)?)
    };
    let compression_c2s = pick(
        "client-to-server compression",
        &c.compression_algorithms_client_to_server,
        &s.compression_algorithms_client_to_server,
    )?;
    let compression_s2c = pick(
        "server-to-client compression",
        &c.compression_algorithms_server_to_client,
        &s.compression_algorithms_server_to_client,
    )?;
    Ok(Negotiated {
        kex,
        host_key,
        cipher_c2s,
        cipher_s2c,
        mac_c2s,
        mac_s2c,
        compression_c2s,
        compression_s2c,
        // draft-ietf-sshm-strict-kex-02 §5.1: the pre-standard and the standard names each pair
        // only with their own kind.
        strict: (c.kex_algorithms.contains(KEX_STRICT_C) && s.kex_algorithms.contains(KEX_STRICT_S))
            || (c.kex_algorithms.contains(KEX_STRICT_C_STANDARD) && s.kex_algorithms.contains(KEX_STRICT_S_STANDARD)),
        ext_info_c: c.kex_algorithms.contains(EXT_INFO_C),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_kex_names_pair_only_with_their_own_kind() {
        let strict = |c: &[&str], s: &[&str]| {
            negotiate(&kexinit(c, &["aes128-ctr"]), &kexinit(s, &["aes128-ctr"])).map(|n| n.strict)
        };
        let m = "curve25519-sha256";
        assert_eq!(strict(&[m, KEX_STRICT_C], &[m, KEX_STRICT_S]).ok(), Some(true));
        assert_eq!(strict(&[m, KEX_STRICT_C_STANDARD], &[m, KEX_STRICT_S_STANDARD]).ok(), Some(true));
        assert_eq!(strict(&[m, KEX_STRICT_C_STANDARD], &[m, KEX_STRICT_S]).ok(), Some(false));
        assert_eq!(strict(&[m, KEX_STRICT_C], &[m, KEX_STRICT_S_STANDARD]).ok(), Some(false));
    }

    fn kexinit(kex: &[&str], cipher: &[&str]) -> KexInit {
        let l = |v: &[&str]| NameList::new(v.iter().copied());
        KexInit {
            kex_algorithms: l(kex),
            server_host_key_algorithms: l(&["ssh-ed25519"]),
            encryption_algorithms_client_to_server: l(cipher),
            encryption_algorithms_server_to_client: l(cipher),
            mac_algorithms_client_to_server: l(&["hmac-sha2-256"]),
            mac_algorithms_server_to_client: l(&["hmac-sha2-256"]),
            compression_algorithms_client_to_server: l(&["none"]),
            compression_algorithms_server_to_client: l(&["none"]),
            ..Default::default()
        }
    }

    #[test]
    fn markers_are_never_methods() {
        let c = kexinit(&["curve25519-sha256", EXT_INFO_C, KEX_STRICT_C], &["aes128-ctr"]);
        let s = kexinit(&[EXT_INFO_C, KEX_STRICT_C, "curve25519-sha256"], &["aes128-ctr"]);
        assert_eq!(negotiate(&c, &s).expect("common kex").kex, "curve25519-sha256");
        let s = kexinit(&[EXT_INFO_C, KEX_STRICT_C], &["aes128-ctr"]);
        assert_eq!(negotiate(&c, &s).expect_err("markers only").category, "key exchange");
    }

    #[test]
    fn client_preference_wins() {
        let c = kexinit(&["b", "a", KEX_STRICT_C], &["aes128-ctr", "chacha20-poly1305@openssh.com"]);
        let s = kexinit(&["a", "b", KEX_STRICT_S], &["chacha20-poly1305@openssh.com", "aes128-ctr"]);
        let n = negotiate(&c, &s).expect("common algorithms");
        assert_eq!(n.kex, "b");
        assert_eq!(n.cipher_c2s, "aes128-ctr");
        assert_eq!(n.mac_c2s.as_deref(), Some("hmac-sha2-256"));
        assert!(n.strict);
    }

    #[test]
    fn aead_skips_mac_and_missing_kex_is_named() {
        let c = kexinit(&["x"], &["chacha20-poly1305@openssh.com"]);
        let mut s = kexinit(&["x"], &["chacha20-poly1305@openssh.com"]);
        s.mac_algorithms_client_to_server = NameList::default();
        assert_eq!(negotiate(&c, &s).expect("common algorithms").mac_c2s, None);
        let s = kexinit(&["y"], &["chacha20-poly1305@openssh.com"]);
        assert_eq!(negotiate(&c, &s).unwrap_err().category, "key exchange");
    }
}
