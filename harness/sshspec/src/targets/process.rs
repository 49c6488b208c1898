//! The process backend: OpenSSH's sshd or Dropbear started from the host's packages, with
//! generated host keys and configuration in a temporary folder, on a free loopback port, in its
//! own process group so that stopping it also ends its per-connection children.

use super::{Logs, StartError, TEST_USER};
use crate::peer::Credentials;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
const DROPBEAR: &str = "/usr/sbin/dropbear";
const DROPBEARKEY: &str = "/usr/bin/dropbearkey";
const INSTALL_HINT: &str = "run scripts/install-test-deps.sh (as root) to install it";

pub struct Child {
    child: tokio::process::Child,
    pub logs: Logs,
    /// The server's configuration and keys, removed when the target is dropped.
    _dir: Option<tempfile::TempDir>,
}

impl Child {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM to the whole process group, then SIGKILL if it lingers.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: killpg only sends a signal; the group is the one we created for this child.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_err() {
                unsafe {
                    libc::killpg(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.kill().await;
    }
}

fn need(path: &str, package: &str) -> Result<(), StartError> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(StartError::Missing(format!("{path} is not installed (Debian package {package}); {INSTALL_HINT}")))
    }
}

async fn run(cmd: &str, args: &[&str]) -> Result<(), StartError> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| StartError::Failed(format!("cannot run {cmd}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StartError::Failed(format!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

struct User {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// The test user from /etc/passwd. Process targets log in as a real account.
fn test_user() -> Result<User, StartError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| StartError::Failed(format!("/etc/passwd: {e}")))?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 7 && f[0] == TEST_USER {
            let uid = f[2].parse().unwrap_or(u32::MAX);
            let gid = f[3].parse().unwrap_or(u32::MAX);
            return Ok(User { uid, gid, home: PathBuf::from(f[5]) });
        }
    }
    Err(StartError::Missing(format!("the test user {TEST_USER:?} does not exist; {INSTALL_HINT}")))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Held for the life of the process once a process target starts: the test user is one account
/// per machine, and each run sets its password, so two runs must not overlap.
static TEST_USER_LOCK: tokio::sync::OnceCell<std::fs::File> = tokio::sync::OnceCell::const_new();

async fn lock_test_user() -> Result<(), StartError> {
    TEST_USER_LOCK
        .get_or_try_init(|| async {
            let dir = if Path::new("/run/lock").is_dir() { "/run/lock" } else { "/tmp" };
            let path = format!("{dir}/sshspec-{TEST_USER}.lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| StartError::Failed(format!("{path}: {e}")))?;
            use std::os::fd::AsRawFd;
            let fd = file.as_raw_fd();
            // SAFETY: flock on a descriptor we own; it only takes an advisory lock.
            if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                eprintln!("note: another sshspec run is using the {TEST_USER:?} test user; waiting for it to finish");
                let blocked = tokio::task::spawn_blocking(move || unsafe { libc::flock(fd, libc::LOCK_EX) })
                    .await
                    .map_err(|e| StartError::Failed(e.to_string()))?;
                if blocked != 0 {
                    return Err(StartError::Failed(format!("cannot lock {path}")));
                }
            }
            Ok(file)
        })
        .await
        .map(|_| ())
}

/// The password last set for the test user by this process: instances started side by side share
/// the run's credentials, and concurrent `chpasswd`s would fight over the lock on /etc/shadow.
static PASSWORD_SET: tokio::sync::Mutex<Option<String>> = tokio::sync::Mutex::const_new(None);

async fn set_password(creds: &Credentials) -> Result<(), StartError> {
    use tokio::io::AsyncWriteExt;
    let mut set = PASSWORD_SET.lock().await;
    if set.as_deref() == Some(creds.password.as_str()) {
        return Ok(());
    }
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StartError::Failed(format!("cannot run chpasswd: {e}")))?;
    if let Some(mut stdin) = c.stdin.take() {
        let line = format!("{}:{}\n", creds.user, creds.password);
        stdin.write_all(line.as_bytes()).await.map_err(|e| StartError::Failed(format!("chpasswd: {e}")))?;
    }
    let out = c.wait_with_output().await.map_err(|e| StartError::Failed(format!("chpasswd: {e}")))?;
    if !out.status.success() {
        return Err(StartError::Failed(format!("chpasswd failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    *set = Some(creds.password.clone());
    Ok(())
}

/// Ports this process has picked for servers it starts. A port is free when picked, and taken only
/// when the server binds it, after its host keys are made (a second or more): meanwhile the OS may
/// hand the same port to the next instance. Two instances of one server (a variant beside its
/// target) would then share it unnoticed, both answering with the same banner, and one scenario
/// would judge the other's configuration (seen in CI: a `no-tcp-forwarding` scenario logged in to
/// the `publickey-then-password` instance).
static PICKED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn free_port() -> Result<u16, StartError> {
    for _ in 0..64 {
        let l =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| StartError::Failed(format!("no free port: {e}")))?;
        let port = l.local_addr().map(|a| a.port()).map_err(|e| StartError::Failed(e.to_string()))?;
        let mut picked = PICKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if picked.insert(port) {
            return Ok(port);
        }
    }
    Err(StartError::Failed("no free port this process has not already picked, in 64 tries".into()))
}

fn write(path: &Path, text: &str) -> Result<(), StartError> {
    std::fs::write(path, text).map_err(|e| StartError::Failed(format!("{}: {e}", path.display())))
}

/// Starts `server` ("openssh" or "dropbear") and waits until its banner can be read.
pub async fn start(
    server: &str,
    extra: &[String],
    creds: &Credentials,
) -> Result<(Child, SocketAddr, String), StartError> {
    match server {
        "openssh" => need(SSHD, "openssh-server")?,
        "dropbear" => need(DROPBEAR, "dropbear-bin")?,
        other => {
            return Err(StartError::Failed(format!("no process backend for server {other:?}")));
        }
    }
    if !is_root() {
        return Err(StartError::Missing(format!(
            "the {server} process target needs root (to check passwords and switch users)"
        )));
    }
    let user = test_user()?;
    lock_test_user().await?;
    set_password(creds).await?;
    let dir = tempfile::Builder::new().prefix("sshspec-").tempdir().map_err(|e| StartError::Failed(e.to_string()))?;
    let d = dir.path().to_path_buf();
    // The port is free when we pick it, not necessarily when the server binds it: a target started
    // beside this one (the in-process russh server, say) can take it first, and then the banner we
    // read is that server's. So the banner must be this server's, or we start it again elsewhere.
    let own = if server == "openssh" { "OpenSSH" } else { "dropbear" };
    let mut dir = Some(dir);
    for attempt in 1..=3 {
        // A fresh folder per attempt: key generation will not overwrite the last attempt's keys.
        let here = d.join(format!("attempt-{attempt}"));
        std::fs::create_dir_all(&here).map_err(|e| StartError::Failed(format!("{}: {e}", here.display())))?;
        let (mut child, addr, banner) = match start_on(server, &here, extra, creds, &user).await {
            Ok(started) => started,
            // A server that lost its port to another exits at start: try a new port. One that
            // cannot start for another reason fails the same way three times, and that is reported.
            Err(StartError::Failed(_)) if attempt < 3 => continue,
            Err(e) => return Err(e),
        };
        if banner.contains(own) {
            child._dir = dir.take();
            return Ok((child, addr, banner));
        }
        child.stop().await;
        if attempt == 3 {
            return Err(StartError::Failed(format!(
                "{server}: another server answered on {addr} ({banner:?}) three times: its port was taken before it could bind it"
            )));
        }
    }
    unreachable!("the loop returns")
}

async fn start_on(
    server: &str,
    d: &Path,
    extra: &[String],
    creds: &Credentials,
    user: &User,
) -> Result<(Child, SocketAddr, String), StartError> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = match server {
        "openssh" => openssh(d, port, extra, creds).await?,
        _ => {
            let mut c = dropbear(d, port, creds, user).await?;
            // Dropbear has no configuration file: its variants are command-line options.
            c.args(extra.iter().flat_map(|l| l.split_whitespace()));
            c
        }
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
    let mut child = cmd.spawn().map_err(|e| StartError::Failed(format!("cannot start {server}: {e}")))?;
    let logs = Logs::default();
    if let Some(stderr) = child.stderr.take() {
        let logs = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                logs.push(l);
            }
        });
    }
    let mut child = Child { child, logs, _dir: None };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            let log = child.logs.tail(20).join("\n");
            return Err(StartError::Failed(format!("{server} exited at start ({status}):\n{log}")));
        }
        match read_banner(addr, Duration::from_secs(2)).await {
            Ok(banner) => return Ok((child, addr, banner)),
            Err(e) if tokio::time::Instant::now() > deadline => {
                child.stop().await;
                return Err(StartError::Failed(format!("{server} did not send a banner on {addr} within 15 s: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn openssh(d: &Path, port: u16, extra: &[String], creds: &Credentials) -> Result<Command, StartError> {
    need(SSH_KEYGEN, "openssh-client")?;
    let mut host_keys = String::new();
    // One key per type sshd can serve, so every host key algorithm can be negotiated.
    for (t, bits) in [("ed25519", ""), ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521"), ("rsa", "2048")] {
        let f = d.join(format!("ssh_host_{t}{bits}_key"));
        let fs = f.to_string_lossy().into_owned();
        let mut args = vec!["-q", "-t", t, "-N", "", "-f", &fs];
        if !bits.is_empty() {
            args.extend(["-b", bits]);
        }
        run(SSH_KEYGEN, &args).await?;
        host_keys.push_str(&format!("HostKey {fs}\n"));
    }
    let auth_keys = d.join("authorized_keys");
    write(&auth_keys, &creds.authorized_keys())?;
    // sshd refuses to start without its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    // sshd keeps the first value it reads for a keyword, so the target's and the variant's lines
    // come first and override the defaults below them.
    let config = format!(
        "{extra}Port {port}\nListenAddress 127.0.0.1\n{host_keys}PidFile {pid}\nUsePAM yes\nPasswordAuthentication yes\n\
         KbdInteractiveAuthentication yes\nPubkeyAuthentication yes\nAuthorizedKeysFile {keys}\nStrictModes no\n\
         PermitRootLogin no\nMaxStartups 100:30:200\nLogLevel VERBOSE\nAllowUsers {TEST_USER}\n\
         Subsystem sftp internal-sftp\n",
        pid = d.join("sshd.pid").display(),
        keys = auth_keys.display(),
        extra = extra.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    let cfg = d.join("sshd_config");
    write(&cfg, &config)?;
    let mut c = Command::new(SSHD);
    c.arg("-D").arg("-e").arg("-f").arg(cfg);
    Ok(c)
}

async fn dropbear(d: &Path, port: u16, creds: &Credentials, user: &User) -> Result<Command, StartError> {
    need(DROPBEARKEY, "dropbear-bin")?;
    let mut c = Command::new(DROPBEAR);
    c.args(["-F", "-E", "-p", &format!("127.0.0.1:{port}"), "-P"]).arg(d.join("dropbear.pid"));
    for (t, bits) in [("ed25519", None), ("ecdsa", Some("256")), ("rsa", Some("2048"))] {
        let f = d.join(format!("dropbear_{t}_host_key"));
        let fs = f.to_string_lossy().into_owned();
        let mut args = vec!["-t", t, "-f", &fs];
        if let Some(b) = bits {
            args.extend(["-s", b]);
        }
        run(DROPBEARKEY, &args).await?;
        c.arg("-r").arg(f);
    }
    // Dropbear reads only ~/.ssh/authorized_keys, and checks its owner and modes.
    let ssh = user.home.join(".ssh");
    std::fs::create_dir_all(&ssh).map_err(|e| StartError::Failed(format!("{}: {e}", ssh.display())))?;
    let keys = ssh.join("authorized_keys");
    let line = creds.authorized_keys();
    // Another Dropbear of this process may be reading the file right now: never truncate it in
    // place; replace it whole, and only when it changes.
    if std::fs::read_to_string(&keys).ok().as_deref() != Some(line.as_str()) {
        let tmp = ssh.join(format!("authorized_keys.sshspec-{}", std::process::id()));
        write(&tmp, &line)?;
        std::fs::rename(&tmp, &keys).map_err(|e| StartError::Failed(format!("{}: {e}", keys.display())))?;
    }
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [(&ssh, 0o700), (&keys, 0o600)] {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        let _ = std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid));
    }
    Ok(c)
}

/// Connects and reads the identification line (skipping any lines before it).
pub async fn read_banner(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        let mut total = 0usize;
        loop {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before sending a banner".to_owned());
            }
            total += n;
            buf.extend_from_slice(&chunk[..n]);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                if line.starts_with(b"SSH-") {
                    return Ok(String::from_utf8_lossy(&line).trim_end().to_owned());
                }
            }
            if total > 64 * 1024 {
                return Err("no SSH- line in the first 64 KiB".to_owned());
            }
        }
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| format!("no banner within {timeout:?}"))?
}

/// "ready", or what is missing.
pub fn availability(server: &str) -> String {
    let (bin, pkg) = match server {
        "openssh" => (SSHD, "openssh-server"),
        "dropbear" => (DROPBEAR, "dropbear-bin"),
        _ => return "no process backend".into(),
    };
    if !Path::new(bin).exists() {
        return format!("missing: {bin} (package {pkg})");
    }
    if !is_root() {
        return "needs root".into();
    }
    if test_user().is_err() {
        return format!("missing test user {TEST_USER:?}");
    }
    format!("ready ({bin})")
}
