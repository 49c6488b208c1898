//! Judging the server's KEXINIT as a message (RFC 4253 §7.1, RFC 4251 §5 and §6): every algorithm
//! name-list non-empty, every name 1 to 64 printable US-ASCII characters with no empty element,
//! `@` names with a single at-sign, `none` among the compression methods (RFC 4253 §6.2: REQUIRED),
//! a cookie that is not all zero, no client-only indicator among the kex methods, booleans 0 or 1,
//! and the reserved field 0. Negotiation reads
//! the lists leniently; this is where their form is held to the RFCs.

use crate::transport::kex::{EXT_INFO_C, KEX_STRICT_C};
use sshspec_wire::NameList;
use sshspec_wire::msg::KexInit;

/// Every way `k` breaks the rules above, in the server's field order.
pub fn problems(k: &KexInit) -> Vec<String> {
    let mut out = Vec::new();
    let algorithm_lists: [(&str, &NameList); 8] = [
        ("kex_algorithms", &k.kex_algorithms),
        ("server_host_key_algorithms", &k.server_host_key_algorithms),
        ("encryption_algorithms_client_to_server", &k.encryption_algorithms_client_to_server),
        ("encryption_algorithms_server_to_client", &k.encryption_algorithms_server_to_client),
        ("mac_algorithms_client_to_server", &k.mac_algorithms_client_to_server),
        ("mac_algorithms_server_to_client", &k.mac_algorithms_server_to_client),
        ("compression_algorithms_client_to_server", &k.compression_algorithms_client_to_server),
        ("compression_algorithms_server_to_client", &k.compression_algorithms_server_to_client),
    ];
    for (field, list) in algorithm_lists {
        if list.0.is_empty() {
            out.push(format!(
                "{field} is empty (RFC 4253 §7.1: each name-list MUST contain at least one algorithm name)"
            ));
        }
    }
    for (field, list) in &algorithm_lists[6..] {
        if !list.0.is_empty() && !list.contains("none") {
            out.push(format!(
                "{field} [{}] lacks none (RFC 4253 §6.2: \"none REQUIRED no compression\")",
                list.joined()
            ));
        }
    }
    // One connection cannot show randomness; an all-zero cookie is the one value that is surely not.
    if k.cookie.0 == [0; 16] {
        out.push("the cookie is 16 zero bytes (RFC 4253 §7.1: the cookie MUST be a random value)".into());
    }
    let languages = [
        ("languages_client_to_server", &k.languages_client_to_server),
        ("languages_server_to_client", &k.languages_server_to_client),
    ];
    for (field, list) in algorithm_lists.into_iter().chain(languages) {
        for name in &list.0 {
            if let Some(why) = bad_name(name) {
                out.push(format!("{field} [{}]: {why}", list.joined()));
            }
        }
    }
    for client_only in [EXT_INFO_C, KEX_STRICT_C] {
        if k.kex_algorithms.contains(client_only) {
            out.push(format!(
                "kex_algorithms lists {client_only}, the client's indicator (RFC 8308 §2.2: implementations MUST NOT send an incorrect indicator name for their role)"
            ));
        }
    }
    if k.first_kex_packet_follows.0 > 1 {
        out.push(format!(
            "first_kex_packet_follows is {} (RFC 4251 §5: only 0 and 1 may be stored in a boolean)",
            k.first_kex_packet_follows.0
        ));
    }
    // Every standard method but RSA key exchange (RFC 4432) has the client speak first, so a
    // server has no guessed packet to send unless its preferred method is one of those.
    let server_speaks_first = k.kex_algorithms.0.first().is_some_and(|m| m.starts_with("rsa"));
    if k.first_kex_packet_follows.0 == 1 && !server_speaks_first {
        out.push(format!(
            "first_kex_packet_follows is TRUE, but with {} first the client sends the first kex packet, so no guessed packet can follow (RFC 4253 §7.1: if no guessed packet will be sent, this MUST be FALSE)",
            k.kex_algorithms.0.first().map_or("no kex algorithm", String::as_str)
        ));
    }
    if k.reserved != 0 {
        out.push(format!("the reserved field is {} (RFC 4253 §7.1: 0, reserved for future extension)", k.reserved));
    }
    out
}

/// Why one name breaks RFC 4251 §5 and §6, if it does.
fn bad_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an empty name (RFC 4251 §5: a name MUST have a non-zero length)".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_graphic())) {
        return Some(format!(
            "{name:?} holds {c:?} (RFC 4251 §5, §6: names are printable US-ASCII without whitespace or controls)"
        ));
    }
    if name.len() > 64 {
        return Some(format!("{name:?} is {} characters long (RFC 4251 §6: at most 64)", name.len()));
    }
    if name.matches('@').count() > 1 {
        return Some(format!("{name:?} has more than one at-sign (RFC 4251 §6)"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sshspec_wire::{Bool, Cookie};

    fn good() -> KexInit {
        let l = |v: &[&str]| NameList::new(v.iter().copied());
        KexInit {
            kex_algorithms: l(&["curve25519-sha256", "kex-strict-s-v00@openssh.com"]),
            server_host_key_algorithms: l(&["ssh-ed25519"]),
            encryption_algorithms_client_to_server: l(&["aes128-ctr"]),
            encryption_algorithms_server_to_client: l(&["aes128-ctr"]),
            mac_algorithms_client_to_server: l(&["hmac-sha2-256"]),
            mac_algorithms_server_to_client: l(&["hmac-sha2-256"]),
            compression_algorithms_client_to_server: l(&["none"]),
            compression_algorithms_server_to_client: l(&["none"]),
            cookie: Cookie([7; 16]),
            ..KexInit::default()
        }
    }

    #[test]
    fn a_well_formed_kexinit_has_no_problems() {
        assert_eq!(problems(&good()), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_caught() {
        let mut k = good();
        k.kex_algorithms = NameList::new(["curve25519-sha256", "", "a@b@c"]);
        k.mac_algorithms_server_to_client = NameList::default();
        k.server_host_key_algorithms = NameList::new(["ssh ed25519", &"x".repeat(65)]);
        k.first_kex_packet_follows = Bool(2);
        k.reserved = 1;
        k.compression_algorithms_server_to_client = NameList::new(["zlib@openssh.com"]);
        k.cookie.0 = [0; 16];
        let p = problems(&k);
        assert_eq!(p.len(), 9, "{p:#?}");
    }

    #[test]
    fn a_guess_flag_needs_a_method_where_the_server_speaks_first() {
        let mut k = good();
        k.first_kex_packet_follows = Bool(1);
        assert!(problems(&k)[0].contains("MUST be FALSE"));
        k.kex_algorithms = NameList::new(["rsa2048-sha256", "curve25519-sha256"]);
        assert_eq!(problems(&k), Vec::<String>::new());
    }
}
