//! The container backend as a user sees it: a run, finished or interrupted, leaves no container
//! behind, and the containers of a run that was killed outright are removed by the next run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OPENSSH: &str = "openssh-9.2p1";
const DROPBEAR: &str = "dropbear-2022.83";

mod common;
use common::{SLOW, bin, ci};

/// Whether the two images are built; outside CI their absence skips, visibly.
fn images_ready() -> bool {
    let out = Command::new(bin()).arg("targets").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ready = [OPENSSH, DROPBEAR].iter().all(|t| text.lines().any(|l| l.starts_with(t) && l.contains("ready")));
    if !ready {
        assert!(!ci(), "container targets unavailable in CI:\n{text}");
        eprintln!("note: skipping: container images not built (sshspec images build):\n{text}");
    }
    ready
}

/// The ids of the containers a given sshspec process owns.
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("label=sshspec.pid={pid}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Starts a run of two slow scenarios against both container targets and returns once both
/// targets are up and their sessions under way.
fn start_slow_run(dir: &std::path::Path) -> Child {
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for i in 0..2 {
        std::fs::write(scenarios.join(format!("slow-{i}.toml")), SLOW).unwrap();
    }
    let mut child = Command::new(bin())
        .args(["run", "-v", "-t", OPENSSH, "-t", DROPBEAR, "--no-report"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut up = 0;
    let mut seen = Vec::new();
    for l in lines.map_while(Result::ok) {
        seen.push(l.clone());
        if l.starts_with(&format!("target {OPENSSH}:")) || l.starts_with(&format!("target {DROPBEAR}:")) {
            up += 1;
            if up == 2 {
                break;
            }
        }
    }
    assert_eq!(up, 2, "both targets should start: {seen:?}");
    std::thread::sleep(Duration::from_millis(1000));
    child
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(started.elapsed() < limit, "sshspec did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_mid_run_removes_the_run_s_containers() {
    if !images_ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut child = start_slow_run(d.path());
    let pid = child.id();
    assert_eq!(containers_of(pid).len(), 2, "one container per target while the run is under way");
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    assert_eq!(wait(&mut child, Duration::from_secs(20)).code(), Some(130));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "containers left after SIGINT");
}

#[test]
fn a_killed_run_s_containers_are_removed_by_the_next_run() {
    if !images_ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut child = start_slow_run(d.path());
    let pid = child.id();
    // SIGKILL: no chance to clean up, so the containers stay until someone removes them.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(containers_of(pid).len(), 2);
    let out = Command::new(bin())
        .args(["run", "-t", OPENSSH, "--no-report", "sanity/password-session"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(containers_of(pid), Vec::<String>::new(), "the next run should remove the orphans");
    // That run has finished, so its own containers must be gone too: no container may name an
    // owner that is no longer running.
    assert_eq!(orphans(), Vec::<String>::new());
}

/// Containers whose owning sshspec process has exited.
fn orphans() -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", "label=sshspec.pid", "--format", "{{.ID}} {{.Label \"sshspec.pid\"}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, pid)| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .map(|(id, pid)| format!("{id} (owner {pid})"))
        .collect()
}
