//! `sshspec diagnose` against real servers, each failing one way: a closed port, a listener whose
//! backlog is full (SYNs dropped), a stopped sshd (accepts, never speaks), an HTTP server, sshd
//! offering only CBC ciphers, sshd with a host key other than the pinned one, sshd allowing
//! publickey only while the user offers a password, a wrong password, and a working login.
//!
//! sshd comes from the project's process target (Debian's openssh-server, scripts/install-test-deps.sh);
//! it missing is a failure in CI and a visible skip elsewhere.

use sshspec::peer::Credentials;
use sshspec::targets::{self, Running};
use std::net::TcpListener;
use std::process::{Command, Output};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn diagnose(args: &[&str], password: Option<&str>) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sshspec"));
    c.arg("diagnose").args(args);
    if let Some(p) = password {
        c.env("DIAG_PW", p);
    }
    let o: Output = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code(), text)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_closed_port_is_connection_refused() {
    let port = closed_port().to_string();
    let (code, out) = diagnose(&[&format!("127.0.0.1:{port}"), "--timeout", "3s"], None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  tcp") && out.contains("connection refused: nothing listens"), "{out}");
}

#[test]
fn a_full_backlog_is_a_connect_timeout() {
    // A listener that never accepts, with a backlog of one: once it holds a connection, the
    // kernel drops further SYNs, as a firewall would.
    // SAFETY: plain socket calls on a descriptor this test owns.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as u16;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(libc::bind(fd, &a as *const _ as *const libc::sockaddr, std::mem::size_of_val(&a) as u32), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = std::mem::size_of_val(&a) as u32;
        libc::getsockname(fd, &mut a as *mut _ as *mut libc::sockaddr, &mut len);
        (fd, u16::from_be(a.sin_port))
    };
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(s) =
            std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), std::time::Duration::from_millis(300))
        {
            fillers.push(s);
        }
    }
    let (code, out) = diagnose(&[&format!("127.0.0.1:{port}"), "--timeout", "2s"], None);
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no TCP answer from 127.0.0.1"), "{out}");
}

#[test]
fn an_http_server_is_not_ssh() {
    let port = closed_port();
    let mut http = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let up = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (code, out) = diagnose(&[&format!("127.0.0.1:{port}"), "--timeout", "3s"], None);
    let _ = http.kill();
    let _ = http.wait();
    assert!(up, "python3 -m http.server did not start");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  identification  this is not an SSH server: its first line is") && out.contains("HTML"),
        "{out}"
    );
}

/// The OpenSSH process target, optionally with a variant's settings.
fn sshd(variant: Option<&str>, rt: &tokio::runtime::Runtime) -> Option<Running> {
    let t = targets::find("openssh").unwrap();
    let a = targets::availability(&t);
    if !a.starts_with("ready") {
        assert!(!ci(), "openssh is unavailable in CI: {a}");
        eprintln!("note: skipping: openssh unavailable here ({a}); run scripts/install-test-deps.sh as root");
        return None;
    }
    let t = t.with_variant(variant).unwrap();
    Some(rt.block_on(targets::start(&t, Some(Credentials::generate(targets::TEST_USER)))).expect("sshd starts"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// One test walks every sshd misconfiguration: the process targets share one system user, so
/// they start one after another.
#[test]
fn real_sshd_misconfigurations_are_each_explained() {
    let rt = rt();
    let Some(ok) = sshd(None, &rt) else { return };
    let addr = ok.addr.to_string();
    let pw = ok.creds.password.clone();
    let user = ok.creds.user.clone();

    // It works: every stage passes and the password is accepted.
    let (code, out) = diagnose(&[&addr, "--user", &user, "--password-env", "DIAG_PW"], Some(&pw));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok    identification  SSH-2.0-OpenSSH_"), "{out}");
    assert!(out.contains("password was accepted"), "{out}");
    let fp = out
        .lines()
        .find(|l| l.contains("ok    host key"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    assert!(fp.starts_with("SHA256:"), "{out}");

    // The right pinned key passes; another is a changed host key, stopped before authentication.
    let (code, out) = diagnose(&[&addr, "--host-key", &fp], None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("matches the pinned key"), "{out}");
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (code, out) = diagnose(&[&addr, "--host-key", wrong, "--user", &user, "--password-env", "DIAG_PW"], Some(&pw));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("HOST KEY CHANGED: the server presented {fp}, but the pinned key is {wrong}")),
        "{out}"
    );
    assert!(!out.contains("authentication"), "nothing is sent after a changed key: {out}");

    // A wrong password: refused, with the methods the server allows.
    let (code, out) = diagnose(&[&addr, "--user", &user, "--password-env", "DIAG_PW"], Some("not-the-password"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the server refused password (it allows publickey, password"), "{out}");

    // A stopped server accepts connections (the kernel does) but never speaks.
    // SAFETY: stops and resumes the sshd this test started.
    unsafe { libc::kill(ok.pid().unwrap() as i32, libc::SIGSTOP) };
    let (code, out) = diagnose(&[&addr, "--timeout", "2s"], None);
    unsafe { libc::kill(ok.pid().unwrap() as i32, libc::SIGCONT) };
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ok    tcp") && out.contains("no SSH identification line came within"), "{out}");
    rt.block_on(ok.stop());

    // Only CBC ciphers on the server: no common cipher, both lists shown.
    let cbc = sshd(Some("cbc-only"), &rt).unwrap();
    let (code, out) = diagnose(&[&cbc.addr.to_string()], None);
    rt.block_on(cbc.stop());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAIL  algorithms      no common client-to-server cipher algorithm"), "{out}");
    assert!(
        out.contains("the server offered: aes128-cbc")
            && out.contains("we offered:         chacha20-poly1305@openssh.com"),
        "{out}"
    );

    // publickey only, and the user offers a password.
    let pk = sshd(Some("publickey-only"), &rt).unwrap();
    let (code, out) =
        diagnose(&[&pk.addr.to_string(), "--user", &user, "--password-env", "DIAG_PW"], Some(&pk.creds.password));
    rt.block_on(pk.stop());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no authentication method in common: the server allows publickey; you offered password"),
        "{out}"
    );
}
