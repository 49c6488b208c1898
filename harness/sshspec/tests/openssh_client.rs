//! The fixture server (`server/`) with a client that is not ours: OpenSSH's `ssh` logs in with a
//! key of its own, runs commands, completes every key exchange method and host key algorithm the
//! two share (post-quantum hybrid, curves, fixed groups, group exchange), and moves 100 MiB each
//! way at once under chacha20-poly1305 and under aes128-gcm, rekeying every MiB (`RekeyLimit 1M`),
//! and forwards a port the fixture picks back to a local echo service (`ssh -R`).
//! A server role that only ever talked to our own client would prove nothing about the server
//! half of the transport.

use sha2::{Digest, Sha256};
use sshspec::peer::Credentials;
use sshspec::server::{self, Settings};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIB: usize = 1024 * 1024;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A scratch directory removed on drop, so a failed run leaves no key behind.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ssh` against the fixture with our options and `extra` ones; the key and known-hosts live in
/// `dir`.
fn ssh(ssh: &Path, dir: &Path, port: u16, extra: &[String], command: &str) -> Command {
    let mut c = Command::new(ssh);
    c.args(["-F", "/dev/null", "-T", "-v", "-p", &port.to_string(), "-i"]).arg(dir.join("id"));
    for o in [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "PreferredAuthentications=publickey",
        "StrictHostKeyChecking=no",
        "ConnectTimeout=30",
    ] {
        c.args(["-o", o]);
    }
    for o in extra {
        c.args(["-o", o]);
    }
    c.arg("-o").arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()));
    c.args(["sshspec@127.0.0.1", command]);
    c
}

#[test]
fn openssh_client_logs_in_and_moves_100_mib_each_way() {
    let (Some(ssh_bin), Some(keygen)) = (on_path("ssh"), on_path("ssh-keygen")) else {
        let why = "ssh or ssh-keygen not on PATH (Debian package openssh-client; scripts/install-test-deps.sh)";
        assert!(!ci(), "{why}");
        eprintln!("note: skipping the OpenSSH client interop test: {why}");
        return;
    };
    let dir = Scratch(std::env::temp_dir().join(format!("sshspec-openssh-client-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("scratch directory");
    let made = Command::new(&keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.0.join("id"))
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(dir.0.join("id.pub")).expect("the public key");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let settings = Settings::parse(&[format!("authorized-key {}", public.trim())]).expect("settings");
    let fixture = rt
        .block_on(server::start("127.0.0.1:0".parse().expect("address"), Credentials::generate("sshspec"), settings))
        .expect("the fixture listens");
    let port = fixture.addr.port();

    // A command and its exit status.
    let out = ssh(&ssh_bin, &dir.0, port, &[], "print logged in").stdin(Stdio::null()).output().expect("ssh runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ssh failed ({}):\n{log}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "logged in\n");
    assert!(log.contains("Authenticated to 127.0.0.1") && log.contains("using \"publickey\""), "{log}");

    let exit = ssh(&ssh_bin, &dir.0, port, &["Ciphers=aes128-gcm@openssh.com".into()], "exit 7")
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs");
    assert_eq!(exit.status.code(), Some(7), "{}", String::from_utf8_lossy(&exit.stderr));

    // Every key exchange method and host key algorithm this client and the fixture share.
    let kex = [
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
    ];
    let host_keys = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"];
    let pairs = kex.iter().map(|k| (*k, host_keys[0])).chain(host_keys.iter().map(|h| (kex[1], *h)));
    for (k, h) in pairs {
        let opts = [format!("KexAlgorithms={k}"), format!("HostKeyAlgorithms={h}")];
        let out = ssh(&ssh_bin, &dir.0, port, &opts, "succeed").stdin(Stdio::null()).output().expect("ssh runs");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{k} with {h}: ssh failed ({}):\n{log}", out.status);
        assert!(log.contains(&format!("kex: algorithm: {k}")), "{k} not negotiated:\n{log}");
        assert!(log.contains(&format!("kex: host key algorithm: {h}")), "{h} not negotiated:\n{log}");
    }

    // 100 MiB of varied bytes each way at once: echo-stdin sends back what it reads.
    let mut data = vec![0u8; 100 * MIB];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sent = Sha256::digest(&data);
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"] {
        let start = std::time::Instant::now();
        let opts = [format!("Ciphers={cipher}"), "RekeyLimit=1M".to_owned()];
        let mut child = ssh(&ssh_bin, &dir.0, port, &opts, "echo-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let feed = {
            let data = data.clone();
            std::thread::spawn(move || stdin.write_all(&data))
        };
        let out = child.wait_with_output().expect("ssh ends");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(feed.join().expect("feeder").is_ok(), "{cipher}: ssh stopped reading:\n{log}");
        assert!(out.status.success(), "{cipher}: ssh failed ({}):\n{log}", out.status);
        assert_eq!(out.stdout.len(), data.len(), "{cipher}: bytes back");
        assert!(Sha256::digest(&out.stdout) == sent, "{cipher}: the bytes came back changed");
        assert!(log.contains(&format!("cipher: {cipher}")), "{cipher} not negotiated:\n{log}");
        // Every key exchange after the first is a rekey; 200 MiB at 1 MiB each is about 200.
        let rekeys = log.matches("SSH2_MSG_KEXINIT sent").count().saturating_sub(1);
        assert!(rekeys >= 100, "{cipher}: only {rekeys} rekeys at RekeyLimit 1M:\n{log}");
        eprintln!("{cipher}: 100 MiB each way in {:.1?}, {rekeys} rekeys", start.elapsed());
    }

    remote_forward(&ssh_bin, &dir.0, port, &data[..4 * MIB]);
    drop(fixture);
}

/// `ssh -R 127.0.0.1:0:127.0.0.1:ECHO` (as `RemoteForward`): the fixture listens on a port it picks (tcpip-forward to
/// port 0), ssh learns it from the reply, and bytes sent to that port come back through a
/// forwarded-tcpip channel, ssh and the echo service.
fn remote_forward(ssh_bin: &Path, dir: &Path, port: u16, data: &[u8]) {
    let echo = TcpListener::bind("127.0.0.1:0").expect("echo listens");
    let echo_port = echo.local_addr().expect("echo address").port();
    std::thread::spawn(move || {
        for mut s in echo.incoming().flatten() {
            std::thread::spawn(move || {
                let mut back = s.try_clone().expect("clone");
                let _ = std::io::copy(&mut s, &mut back);
                let _ = back.shutdown(Shutdown::Write);
            });
        }
    });
    let opts = ["ExitOnForwardFailure=yes".into(), format!("RemoteForward=127.0.0.1:0 127.0.0.1:{echo_port}")];
    let mut child = ssh(ssh_bin, dir, port, &opts, "discard-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh runs");
    // ssh says which port the server picked: "Allocated port N for remote forward to ...".
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = String::new();
    let bound: u16 = loop {
        let line = lines.recv_timeout(std::time::Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("ssh never reported the forwarded port:\n{log}")
        });
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.strip_prefix("Allocated port ") {
            break rest.split(' ').next().and_then(|p| p.parse().ok()).expect("a port number");
        }
    };
    let mut conn = TcpStream::connect(("127.0.0.1", bound)).expect("the forwarded port accepts");
    let mut writer = conn.try_clone().expect("clone");
    let sent = data.to_vec();
    let feed = std::thread::spawn(move || {
        writer.write_all(&sent)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut back = Vec::new();
    conn.read_to_end(&mut back).expect("the forwarded connection is read to its end");
    feed.join().expect("feeder").expect("the forwarded connection takes the bytes");
    drop(child.stdin.take());
    let status = child.wait().expect("ssh ends");
    log.extend(lines.try_iter().map(|l| l + "\n"));
    assert_eq!(back.len(), data.len(), "bytes back through the forward:\n{log}");
    assert!(back == data, "the bytes came back changed through the forward");
    assert!(status.success(), "ssh failed ({status}):\n{log}");
    assert!(log.contains("forwarded-tcpip"), "no forwarded-tcpip channel in ssh's log:\n{log}");
    eprintln!("remote forward: {} KiB there and back through port {bound}", data.len() / 1024);
}
