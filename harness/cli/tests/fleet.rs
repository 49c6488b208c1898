//! A fleet audit as an operator runs one: twenty OpenSSH servers on 127.0.0.1, their host keys kept
//! in a real OpenLDAP directory (the OpenSSH-LPK `sshPublicKey` attribute), some of them wrong or
//! missing. `sshspec run --targets-file --host-keys-ldap` must stop exactly those hosts, judge the
//! rest, and show both on fleet.html (checked in Chromium, screenshot kept).

#[path = "../../sshspec/tests/cdp/mod.rs"]
mod cdp;
mod common;

use common::{assert_schema_valid, bin, ci};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: usize = 20;
/// Hosts whose directory entry holds another host's keys (a copy-paste in the directory).
const WRONG: [usize; 3] = [6, 12, 17];
/// The host with no entry in the directory.
const ABSENT: usize = 20;
const BASE: &str = "ou=hosts,dc=sshspec";

fn missing(what: &str) -> bool {
    assert!(!ci(), "{what} must be installed in CI (scripts/install-test-deps.sh)");
    eprintln!("note: skipping: {what} is not installed here (run scripts/install-test-deps.sh as root)");
    true
}

/// slapd in the foreground (`-d 0`) on a free loopback port, with the LPK schema and `entries`.
struct Slapd {
    child: Child,
    url: String,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn slapd(dir: &Path, entries: &str) -> Slapd {
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(
        dir.join("lpk.schema"),
        "attributetype ( 1.3.6.1.4.1.24552.500.1.1.1.13 NAME 'sshPublicKey'\n  DESC 'OpenSSH public key' \
         EQUALITY octetStringMatch\n  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )\n\
         objectclass ( 1.3.6.1.4.1.24552.500.1.1.2.0 NAME 'ldapPublicKey' SUP top AUXILIARY\n  \
         DESC 'OpenSSH LPK objectclass' MAY ( sshPublicKey $ uid ) )\n",
    )
    .unwrap();
    let conf = dir.join("slapd.conf");
    std::fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\ninclude {d}/lpk.schema\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {d}/slapd.pid\ndatabase mdb\n\
             suffix \"dc=sshspec\"\ndirectory {d}/db\naccess to * by * read\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let ldif = format!(
        "dn: dc=sshspec\nobjectClass: dcObject\nobjectClass: organization\no: sshspec\ndc: sshspec\n\n\
         dn: {BASE}\nobjectClass: organizationalUnit\nou: hosts\n\n{entries}"
    );
    let mut add = Command::new("slapadd").args(["-q", "-f"]).arg(&conf).stdin(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(add.stdin.as_mut().unwrap(), ldif.as_bytes()).unwrap();
    drop(add.stdin.take());
    assert!(add.wait().unwrap().success(), "slapadd loads the directory");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ldap://127.0.0.1:{port}");
    let child = Command::new("slapd")
        .args(["-d", "0", "-f"])
        .arg(&conf)
        .args(["-h", &format!("{url}/")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("slapd starts");
    let s = Slapd { child, url };
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "slapd listens within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    s
}

/// The host keys a server presents, as public key lines (`ssh-keyscan`).
fn keyscan(addr: std::net::SocketAddr) -> Vec<String> {
    let o = Command::new("ssh-keyscan")
        .args(["-T", "10", "-p", &addr.port().to_string(), &addr.ip().to_string()])
        .output()
        .expect("ssh-keyscan runs");
    let keys: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(_, key)| key.to_owned()))
        .collect();
    assert!(!keys.is_empty(), "ssh-keyscan reads {addr}'s keys");
    keys
}

#[test]
fn a_fleet_pinned_from_a_directory_stops_the_mismatched_hosts_and_judges_the_rest() {
    for (tool, path) in
        [("sshd", "/usr/sbin/sshd"), ("slapd", "/usr/sbin/slapd"), ("ssh-keyscan", "/usr/bin/ssh-keyscan")]
    {
        if !Path::new(path).exists() && missing(tool) {
            return;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = sshspec::peer::Credentials::generate(sshspec::targets::TEST_USER);
    let info = sshspec::targets::find("openssh").unwrap();
    let servers: Vec<sshspec::targets::Running> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..HOSTS {
            v.push(sshspec::targets::start(&info, Some(creds.clone())).await.expect("sshd starts"));
        }
        v
    });
    let name = |i: usize| format!("host-{i:02}");
    let keys: Vec<Vec<String>> = servers.iter().map(|s| keyscan(s.addr)).collect();

    let mut entries = String::new();
    for i in 1..=HOSTS {
        if i == ABSENT {
            continue;
        }
        // A wrong entry holds host-01's keys: real keys, of another host.
        let held = if WRONG.contains(&i) { &keys[0] } else { &keys[i - 1] };
        let _ = writeln!(
            entries,
            "dn: cn={n},{BASE}\nobjectClass: device\nobjectClass: ldapPublicKey\ncn: {n}",
            n = name(i)
        );
        for k in held {
            let _ = writeln!(entries, "sshPublicKey: {k}");
        }
        entries.push('\n');
    }
    let tmp = tempfile::tempdir().unwrap();
    let directory = slapd(&tmp.path().join("ldap"), &entries);

    let mut inventory = String::from("[defaults]\nuser = \"sshspec\"\npassword-env = \"FLEET_PASSWORD\"\n");
    for (i, s) in servers.iter().enumerate() {
        let _ = write!(inventory, "\n[[host]]\nname = \"{}\"\naddress = \"{}\"\n", name(i + 1), s.addr);
    }
    let inventory_file = tmp.path().join("fleet.toml");
    std::fs::write(&inventory_file, inventory).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-test");
    let _ = std::fs::remove_dir_all(&out);

    let started = Instant::now();
    let o = Command::new(bin())
        .args(["run", "--smoke", "--targets-file"])
        .arg(&inventory_file)
        .args(["--host-keys-ldap", &directory.url, "--base", BASE, "--report-dir"])
        .arg(&out)
        .env("FLEET_PASSWORD", &creds.password)
        .output()
        .unwrap();
    let wall = started.elapsed();
    let console = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    eprintln!("fleet of {HOSTS} hosts: {:.1} s wall\n{console}", wall.as_secs_f64());
    assert_eq!(o.status.code(), Some(3), "the stopped hosts' scenarios are ERRORs (exit 3): {console}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_schema_valid(&report);
    for i in 1..=HOSTS {
        let t =
            report["targets"].as_array().unwrap().iter().find(|t| t["name"] == name(i)).expect("every host reported");
        let why = t["unavailable"].as_str();
        let results: Vec<&Value> =
            report["results"].as_array().unwrap().iter().filter(|r| r["target"] == name(i)).collect();
        assert!(!results.is_empty());
        if WRONG.contains(&i) {
            assert!(
                why.is_some_and(|w| w.contains("host key mismatch") && w.contains("the directory")),
                "{i}: {why:?}"
            );
        } else if i == ABSENT {
            assert!(why.is_some_and(|w| w.contains("host key unknown")), "{i}: {why:?}");
        } else {
            assert_eq!(why, None, "{} is judged", name(i));
            assert_eq!(t["host_key_source"].as_str().map(|s| s.contains(&directory.url)), Some(true));
            let bad: Vec<_> =
                results.iter().filter(|r| !matches!(r["outcome"].as_str(), Some("PASS" | "SKIP"))).collect();
            assert!(bad.is_empty(), "{}: every smoke scenario PASSes or SKIPs: {bad:?}", name(i));
            assert!(results.iter().any(|r| r["outcome"] == "PASS"));
            continue;
        }
        assert!(results.iter().all(|r| r["outcome"] == "ERROR"), "{}: nothing ran against it", name(i));
    }

    // The page: one row per host, the stopped ones marked, in a real browser.
    let page_file = out.join("fleet.html");
    assert!(page_file.is_file(), "fleet.html is written");
    if cdp::chromium().is_none() && missing("chromium") {
        return;
    }
    let mut b = cdp::Browser::launch(&out).expect("chromium starts");
    let page = b.open(&page_file).expect("fleet.html loads");
    let seen = b
        .eval(
            &page,
            "[document.querySelectorAll('#fleet tbody tr').length, \
              document.querySelectorAll('#fleet tr[data-key=FAIL]').length, \
              [...document.querySelectorAll('#fleet tr[data-key=FAIL]')].map(r => r.dataset.host).join(','), \
              document.getElementById('fleet-summary').textContent]",
        )
        .expect("eval");
    let stopped: Vec<String> = WRONG.iter().chain([&ABSENT]).map(|&i| name(i)).collect();
    let mut stopped_sorted = stopped.clone();
    stopped_sorted.sort();
    assert_eq!(seen[0], HOSTS, "{seen}");
    assert_eq!(seen[1], stopped.len(), "{seen}");
    assert_eq!(seen[2], stopped_sorted.join(","), "{seen}");
    assert!(seen[3].as_str().unwrap().contains("4 host key mismatch"), "{seen}");
    let links = b
        .eval(&page, "[...document.querySelectorAll('#fleet tbody th a')].map(a => a.getAttribute('href'))")
        .expect("eval");
    for link in links.as_array().unwrap() {
        assert!(out.join(link.as_str().unwrap()).is_file(), "each host links to its certification page: {link}");
    }
    b.screenshot(&page, &out.join("fleet.png")).expect("screenshot");
    drop(directory);
    rt.block_on(async {
        for s in servers {
            s.stop().await;
        }
    });
}
