//! Safety as a user of the binary sees it: interruption leaves nothing behind, and a remote target's
//! host key is checked before anything logs in.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{SLOW, bin, ci};

/// Whether the process targets can run here; outside CI their absence skips, visibly.
fn process_targets_ready() -> bool {
    let out = Command::new(bin()).arg("targets").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ready = ["openssh", "dropbear"].iter().all(|t| text.lines().any(|l| l.starts_with(t) && l.contains("ready")));
    if !ready {
        assert!(!ci(), "process targets unavailable in CI:\n{text}");
        eprintln!("note: skipping: OpenSSH/Dropbear process targets unavailable here:\n{text}");
    }
    ready
}

/// Tests that start process targets take turns: the targets share one test user.
static PROCESS_TARGETS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn process_stat(pid: u32) -> Option<(String, u32)> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 5 (process group) comes after the parenthesised command name.
    let pgrp = stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()?;
    Some((String::from_utf8_lossy(&cmdline).replace('\0', " "), pgrp))
}

/// The server processes of one run: the masters, found by their files under the run's own
/// TMPDIR, and everything in their process groups (sshd's per-connection children).
fn run_processes(tmp: &Path, groups: &mut Vec<u32>) -> Vec<(u32, String)> {
    let tmp = tmp.to_string_lossy().into_owned();
    let all: Vec<(u32, String, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|pid| process_stat(pid).map(|(cmd, pgrp)| (pid, cmd, pgrp)))
        .collect();
    for (pid, cmd, _) in &all {
        if cmd.contains(&tmp) && !groups.contains(pid) {
            groups.push(*pid);
        }
    }
    all.into_iter()
        .filter(|(_, cmd, pgrp)| cmd.contains(&tmp) || groups.contains(pgrp))
        .map(|(p, c, _)| (p, c))
        .collect()
}

fn interrupt_mid_run(signal: i32) {
    let _turn = PROCESS_TARGETS.lock().unwrap_or_else(|e| e.into_inner());
    if !process_targets_ready() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let scenarios = d.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for i in 0..4 {
        std::fs::write(scenarios.join(format!("slow-{i}.toml")), SLOW).unwrap();
    }
    let tmp = d.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let reports = d.path().join("reports");
    let mut child = Command::new(bin())
        .args(["run", "-v", "-t", "openssh", "-t", "dropbear", "-t", "builtin", "--report-dir"])
        .arg(&reports)
        .current_dir(d.path())
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until OpenSSH is up and its sessions are under way.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push(l.clone());
        if l.starts_with("target openssh:") {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.starts_with("target openssh:")), "{seen:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let mut groups = Vec::new();
    let during = run_processes(&tmp, &mut groups);
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "sshspec did not stop within 15 s of the signal");
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(130), "{seen:?}\n{rest:?}");
    assert!(during.len() >= 2, "the run should have had server processes: {during:?}");
    // Every server process of the run is gone (give the kernel a moment to reap).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = run_processes(&tmp, &mut groups);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "server processes left after the signal: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    assert!(reports.join("junit.xml").exists());
}

#[test]
fn sigint_mid_run_stops_servers_and_writes_partial_reports() {
    interrupt_mid_run(libc::SIGINT);
}

#[test]
fn sigterm_mid_run_stops_servers_and_writes_partial_reports() {
    interrupt_mid_run(libc::SIGTERM);
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A russh server playing a remote device, with a known password.
fn remote_device() -> (tokio::runtime::Runtime, sshspec_russh_target::RunningTarget) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = sshspec_russh_target::Credentials {
        user: "device".into(),
        password: "device-password".into(),
        authorized_keys: Vec::new(),
    };
    let t = rt.block_on(sshspec_russh_target::start("127.0.0.1:0".parse().unwrap(), creds)).unwrap();
    (rt, t)
}

#[test]
fn a_pinned_host_key_mismatch_stops_the_run_before_authentication() {
    let (_rt, device) = remote_device();
    let target = format!("remote:{}", device.addr);
    let run = |pin: &str| {
        Command::new(bin())
            .args([
                "run",
                "--no-report",
                "-t",
                &target,
                "--user",
                "device",
                "--password-env",
                "DEVICE_PW",
                "--host-key",
                pin,
            ])
            .arg("sanity/password-session")
            .current_dir(repo())
            .env("DEVICE_PW", "device-password")
            .output()
            .unwrap()
    };
    let wrong = run("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let out = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(3), "{out}");
    assert!(out.contains("host key mismatch"), "{out}");
    assert!(out.contains("nothing was run"), "{out}");
    // The real fingerprint, as the mismatch message reports it, lets the run through.
    let fp = out.split("presented ").nth(1).unwrap().split(',').next().unwrap().trim().to_owned();
    let right = run(&fp);
    assert_eq!(right.status.code(), Some(0), "{}", String::from_utf8_lossy(&right.stdout));
}

#[test]
fn destructive_scenarios_run_against_a_remote_target_only_when_asked() {
    let (_rt, device) = remote_device();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("scenarios")).unwrap();
    std::fs::write(
        d.path().join("scenarios/flood.toml"),
        "title = \"t\"\nspec = \"RFC 4253 §11.2\"\nclauses = [\"4253-11.2-a\"]\nlevel = \"must\"\nrequirement = \"r\"\n\
         destructive = true\n[[step]]\ndo = \"version-exchange\"\n",
    )
    .unwrap();
    let target = format!("remote:{}", device.addr);
    let run = |extra: &[&str]| {
        let o = Command::new(bin())
            .args(["run", "-v", "--no-report", "-t", &target])
            .args(extra)
            .current_dir(d.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let refused = run(&[]);
    assert!(refused.contains("SKIP") && refused.contains("--allow-destructive"), "{refused}");
    let allowed = run(&["--allow-destructive"]);
    assert!(allowed.contains("PASS"), "{allowed}");
}

/// Concurrency changes nothing but time: a parallel run gives exactly the serial run's verdicts.
#[test]
fn parallel_and_serial_runs_give_the_same_verdicts() {
    let _turn = PROCESS_TARGETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut targets = vec!["builtin"];
    if process_targets_ready() {
        targets.extend(["openssh", "dropbear"]);
    }
    let verdicts = |jobs: &[&str]| {
        let d = tempfile::tempdir().unwrap();
        let mut args = vec!["run", "--report-dir", d.path().to_str().unwrap()];
        for t in &targets {
            args.extend(["-t", t]);
        }
        args.extend(jobs);
        let o = Command::new(bin()).args(&args).current_dir(repo()).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.path().join("report.json")).unwrap()).unwrap();
        let mut v: Vec<(String, String, String)> = json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["target"].to_string(), r["scenario"].to_string(), r["outcome"].to_string()))
            .collect();
        v.sort();
        v
    };
    let serial = verdicts(&["--jobs", "1"]);
    let parallel = verdicts(&[]);
    assert_eq!(serial, parallel);
    assert!(serial.len() >= 9 * targets.len());
}
