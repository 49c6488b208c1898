//! Fleet audits: many hosts from an inventory, each a remote target with its own login and its own
//! pinned host keys. The keys come from the inventory (SHA256 or SSHFP-style fingerprints), from a
//! known_hosts file, or from an LDAP directory that keeps hosts' public keys in the OpenSSH-LPK
//! schema's `sshPublicKey` attribute, as clusters that keep user keys there often do for hosts too.
//! A host whose key does not match stops alone; the rest are judged.

use crate::transport::hostkey;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// One host of the inventory, as the runner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// How reports name it: the inventory's `name`, or `HOST:PORT`.
    pub name: String,
    pub addr: SocketAddr,
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub identity: Option<PathBuf>,
    /// SHA256 fingerprints (`SHA256:...`) the inventory pins for it.
    pub host_keys: Vec<String>,
    /// Which of the run's key sources apply to it; empty: every source the run has.
    pub host_keys_from: Vec<KeySource>,
}

/// Where a host's pinned keys may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// The inventory's own `host-keys`.
    Inventory,
    /// `--host-key` on the command line.
    Flags,
    /// `--known-hosts FILE`.
    KnownHosts,
    /// `--host-keys-ldap`.
    Directory,
}

impl Host {
    /// Whether `source` pins this host's keys (a host that names none takes every source).
    pub fn uses(&self, source: KeySource) -> bool {
        self.host_keys_from.is_empty() || self.host_keys_from.contains(&source)
    }
}

/// The TOML form: `[defaults]` for every host, then `[[host]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inventory {
    #[serde(default)]
    defaults: Entry,
    #[serde(default)]
    host: Vec<Entry>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Entry {
    name: Option<String>,
    /// `HOST` or `HOST:PORT`.
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password_env: Option<String>,
    identity: Option<PathBuf>,
    /// `SHA256:<base64>` fingerprints, or SSHFP records' text: `<algorithm> 2 <hex SHA-256>`.
    #[serde(default)]
    host_keys: Vec<String>,
    /// Which key sources pin this host: `inventory`, `flags`, `known-hosts`, `directory`.
    #[serde(default)]
    host_keys_from: Vec<KeySource>,
}

/// Reads an inventory: a TOML file (`.toml`) with `[defaults]` and `[[host]]` tables, or any
/// other file as one `HOST[:PORT]` per line (`#` starts a comment). Names must be unique.
pub fn load_inventory(path: &Path) -> Result<Vec<Host>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |line: usize, msg: String| format!("{}:{line}: {msg}", path.display());
    let mut hosts = Vec::new();
    if path.extension().is_some_and(|e| e == "toml") {
        let inv: Inventory = toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
            format!("{}:{line}:{col}: {}", path.display(), e.message())
        })?;
        for (i, h) in inv.host.iter().enumerate() {
            let d = &inv.defaults;
            let where_ = format!("[[host]] number {}", i + 1);
            let address = h.address.as_ref().ok_or_else(|| format!("{}: {where_}: no address", path.display()))?;
            let port = h.port.or(d.port).unwrap_or(22);
            let addr = resolve(address, port).map_err(|e| format!("{}: {where_}: {e}", path.display()))?;
            let mut host_keys = Vec::new();
            for k in h.host_keys.iter().chain(&d.host_keys) {
                host_keys.push(fingerprint_of(k).map_err(|e| format!("{}: {where_}: {e}", path.display()))?);
            }
            hosts.push(Host {
                name: h.name.clone().unwrap_or_else(|| addr.to_string()),
                addr,
                user: h.user.clone().or_else(|| d.user.clone()),
                password_env: h.password_env.clone().or_else(|| d.password_env.clone()),
                identity: h.identity.clone().or_else(|| d.identity.clone()).map(|p| relative_to(path, p)),
                host_keys,
                host_keys_from: if h.host_keys_from.is_empty() {
                    d.host_keys_from.clone()
                } else {
                    h.host_keys_from.clone()
                },
            });
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let addr = resolve(line, 22).map_err(|e| at(i + 1, e))?;
            hosts.push(Host {
                name: addr.to_string(),
                addr,
                user: None,
                password_env: None,
                identity: None,
                host_keys: Vec::new(),
                host_keys_from: Vec::new(),
            });
        }
    }
    if hosts.is_empty() {
        return Err(format!("{}: no hosts", path.display()));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = hosts.iter().find(|h| !seen.insert(h.name.clone())) {
        return Err(format!("{}: host {:?} is listed twice", path.display(), dup.name));
    }
    Ok(hosts)
}

/// An identity path in the inventory is relative to the inventory's folder.
fn relative_to(inventory: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { inventory.parent().unwrap_or(Path::new(".")).join(p) }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `HOST`, `HOST:PORT`, `[V6]:PORT`, to one address (the first the resolver gives).
fn resolve(address: &str, default_port: u16) -> Result<SocketAddr, String> {
    let with_port = if let Ok(a) = address.parse::<SocketAddr>() {
        return Ok(a);
    } else if address.parse::<std::net::IpAddr>().is_ok() && address.contains(':') {
        format!("[{address}]:{default_port}")
    } else if address.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        address.to_owned()
    } else {
        format!("{address}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address:?} resolves to no address"))
}

/// A pinned key as written in an inventory: `SHA256:<base64>` as ssh-keygen prints it, or an SSHFP
/// record's text `<algorithm> <type> <hex>` (RFC 4255, 6594, 7479) with type 2 (SHA-256).
pub fn fingerprint_of(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Some(b64) = s.strip_prefix("SHA256:") {
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| format!("host key {s:?}: SHA256: must be followed by base64"))?;
        if raw.len() != 32 {
            return Err(format!("host key {s:?}: a SHA-256 fingerprint is 32 bytes, this is {}", raw.len()));
        }
        return Ok(hostkey::fingerprint_from_digest(&raw));
    }
    let f: Vec<&str> = s.split_whitespace().collect();
    match f.as_slice() {
        [alg, "2", hex_fp] if alg.parse::<u8>().is_ok() => {
            let raw = hex::decode(hex_fp).map_err(|_| format!("SSHFP {s:?}: the fingerprint is not hex"))?;
            if raw.len() != 32 {
                return Err(format!("SSHFP {s:?}: a SHA-256 fingerprint is 32 bytes, this is {}", raw.len()));
            }
            Ok(hostkey::fingerprint_from_digest(&raw))
        }
        [_, "1", _] => Err(format!("SSHFP {s:?}: SHA-1 fingerprints (type 1) are not accepted; give type 2 (SHA-256)")),
        _ => Err(format!("host key {s:?}: expected SHA256:<base64> or an SSHFP record `<algorithm> 2 <hex>`")),
    }
}

/// The fingerprint of a public key line (`ssh-ed25519 AAAA... comment`), as `sshPublicKey` holds it.
pub fn public_key_fingerprint(line: &str) -> Result<String, String> {
    let mut f = line.split_whitespace();
    let (Some(_kind), Some(b64)) = (f.next(), f.next()) else {
        return Err(format!("{line:?} is not a public key line (TYPE BASE64 [COMMENT])"));
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| format!("{line:?}: the key is not base64"))?;
    Ok(hostkey::fingerprint(&blob))
}

/// Where `--host-keys-ldap` reads from.
#[derive(Clone, Debug)]
pub struct Directory {
    /// `ldap://HOST:PORT` (plain LDAP; ldapi:// for a local socket).
    pub url: String,
    pub base: String,
    /// The search filter, with `{name}` replaced by the host's name (escaped).
    pub filter: String,
}

/// Hosts are found by their name in `cn` or `uid`, among entries carrying the LPK object class.
pub const DEFAULT_LDAP_FILTER: &str = "(&(objectClass=ldapPublicKey)(|(cn={name})(uid={name})))";

impl Directory {
    /// Each host's fingerprints from the directory (anonymous bind, one search per host); a host with
    /// no entry, or an entry with no `sshPublicKey`, has none.
    pub async fn host_keys(&self, names: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
        use ldap3::{LdapConnAsync, Scope, SearchEntry};
        let (conn, mut ldap) =
            LdapConnAsync::new(&self.url).await.map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        ldap3::drive!(conn);
        let mut out = BTreeMap::new();
        for name in names {
            let filter = self.filter.replace("{name}", &ldap3::ldap_escape(name));
            let (entries, _) = ldap
                .search(&self.base, Scope::Subtree, &filter, vec!["sshPublicKey"])
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("{}: searching {} for {filter}: {e}", self.url, self.base))?;
            let mut fps = Vec::new();
            for e in entries {
                let e = SearchEntry::construct(e);
                let mut lines: Vec<String> = e.attrs.get("sshPublicKey").cloned().unwrap_or_default();
                let binary = e.bin_attrs.get("sshPublicKey").cloned().unwrap_or_default();
                lines.extend(binary.iter().map(|b| String::from_utf8_lossy(b).into_owned()));
                for line in lines {
                    fps.push(public_key_fingerprint(&line).map_err(|m| format!("{} in {}: {m}", e.dn, self.url))?);
                }
            }
            out.insert(name.clone(), fps);
        }
        let _ = ldap.unbind().await;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_both_forms_agree() {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(hex::decode(hex).unwrap());
        let want = format!("SHA256:{b64}");
        assert_eq!(fingerprint_of(&want), Ok(want.clone()));
        assert_eq!(fingerprint_of(&format!("4 2 {hex}")), Ok(want.clone()));
        assert!(fingerprint_of(&format!("4 1 {}", &hex[..40])).unwrap_err().contains("SHA-1"));
        assert!(fingerprint_of("SHA256:abc").is_err());
        assert!(fingerprint_of("nonsense").is_err());
    }

    #[test]
    fn inventories_in_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("hosts");
        std::fs::write(&plain, "# lab\n127.0.0.1:2201\n127.0.0.1  # default port\n").unwrap();
        let hosts = load_inventory(&plain).unwrap();
        assert_eq!(hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["127.0.0.1:2201", "127.0.0.1:22"]);

        let toml = dir.path().join("fleet.toml");
        std::fs::write(
            &toml,
            "[defaults]\nuser = \"audit\"\nidentity = \"id_ed25519\"\n\n[[host]]\nname = \"web-1\"\naddress = \"127.0.0.1\"\nport = 2202\nhost-keys = [\"4 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]\nhost-keys-from = [\"inventory\", \"directory\"]\n",
        )
        .unwrap();
        let h = &load_inventory(&toml).unwrap()[0];
        assert_eq!((h.name.as_str(), h.addr.port(), h.user.as_deref()), ("web-1", 2202, Some("audit")));
        assert_eq!(h.identity.as_deref(), Some(dir.path().join("id_ed25519").as_path()));
        assert_eq!(h.host_keys.len(), 1);
        assert!(h.uses(KeySource::Directory) && !h.uses(KeySource::KnownHosts));

        std::fs::write(&toml, "[[host]]\nname = \"a\"\naddres = \"x\"\n").unwrap();
        let e = load_inventory(&toml).unwrap_err();
        assert!(e.contains("fleet.toml:3:1") && e.contains("addres"), "{e}");
        std::fs::write(
            &toml,
            "[[host]]\nname = \"a\"\naddress = \"127.0.0.1\"\n[[host]]\nname = \"a\"\naddress = \"127.0.0.1:23\"\n",
        )
        .unwrap();
        assert!(load_inventory(&toml).unwrap_err().contains("listed twice"));
    }
}
