//! `cargo bench -p sshspec --bench speed`: the harness's speed, measured side by side in one run.
//!
//! 1. Handshake (connect, curve25519 kex, ed25519 publickey login, `exec true`): the scripted peer
//!    against `ssh -o BatchMode=yes ... true`, same OpenSSH server, same algorithms.
//! 2. Upload throughput, chacha20-poly1305 and aes128-gcm: the peer against `ssh ... 'cat > /dev/null'`.
//! 3. The catalogue's wall time per target against the target's limit: connections x the target's
//!    median handshake / concurrency.
//! 4. Cost against work: N = 10, 100, 300 session scenarios, against N x one / concurrency.
//! 5. Peak memory (VmHWM) of a full run against every target.
//!
//! Needs root, OpenSSH and Dropbear (scripts/install-test-deps.sh). Sizes and counts can be set with
//! SSHSPEC_BENCH_MIB (upload size, default 512) and SSHSPEC_BENCH_ROUNDS (handshakes, default 20).

use sshspec::peer::{self, Credentials, Judgement};
use sshspec::report::{Event, Reporter};
use sshspec::run::{RunOptions, run};
use sshspec::script::{self, Scenario};
use sshspec::targets::{self, Running, TargetInfo};
use sshspec::verdict::Outcome;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Quiet;
impl Reporter for Quiet {
    fn on_event(&mut self, _: &Event<'_>) {}
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn scenario(id: &str, steps: &str) -> Scenario {
    let text = format!(
        "title = \"{id}\"\nspec = \"bench\"\nclauses = [\"bench\"]\nlevel = \"may\"\nrequirement = \"-\"\ntimeout = \"600s\"\n{steps}"
    );
    script::parse(id, Path::new(id), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn session(cipher: &str, auth: &str, exec: &str) -> String {
    format!(
        "[[step]]\ndo = \"version-exchange\"\n[[step]]\ndo = \"key-exchange\"\nkex = \"curve25519-sha256\"\nhost_key = \"ssh-ed25519\"\ncipher = \"{cipher}\"\n\
         [[step]]\ndo = \"authenticate\"\nmethod = \"{auth}\"\n[[step]]\ndo = \"open-session\"\n[[step]]\ndo = \"exec\"\n{exec}\nexit_status = 0\ntimeout = \"600s\"\n"
    )
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.total_cmp(b));
    Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn peer_once(s: &Scenario, r: &Running) -> f64 {
    let started = Instant::now();
    let run = peer::run(s, r.addr, &r.creds, &peer::Options::default()).await;
    let t = ms(started.elapsed());
    if run.judgement != Judgement::Pass {
        panic!("{} failed: {:?}", s.id, run.judgement);
    }
    t
}

fn ssh_args(r: &Running, key: &Path, cipher: &str) -> Vec<String> {
    [
        "-i",
        &key.to_string_lossy(),
        "-p",
        &r.addr.port().to_string(),
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "KexAlgorithms=curve25519-sha256",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        "-o",
        &format!("Ciphers={cipher}"),
        "-o",
        "PubkeyAcceptedAlgorithms=ssh-ed25519",
        &format!("{}@127.0.0.1", r.creds.user),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn ssh_once(args: &[String], command: &str, stdin_mib: u64) -> f64 {
    let started = Instant::now();
    let ok = if stdin_mib == 0 {
        Command::new("ssh").args(args).arg(command).stdin(Stdio::null()).stdout(Stdio::null()).status()
    } else {
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let line = format!("head -c {}M /dev/zero | ssh {} '{command}'", stdin_mib, quoted.join(" "));
        Command::new("sh").arg("-c").arg(line).status()
    };
    let t = ms(started.elapsed());
    assert!(ok.is_ok_and(|s| s.success()), "ssh failed");
    t
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn options(jobs: Option<usize>, creds: &Credentials) -> RunOptions {
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    std::mem::forget(_tx);
    RunOptions { jobs, peer: Default::default(), ci: true, creds: Some(creds.clone()), cancel, run_timeout: None }
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; nothing else is accepted.
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let infos: Vec<TargetInfo> =
        ["builtin", "openssh", "dropbear"].iter().map(|n| targets::find(n).unwrap_or_else(|e| panic!("{e}"))).collect();
    for t in &infos {
        let a = targets::availability(t);
        if !a.starts_with("ready") {
            eprintln!(
                "speed bench: target {} is not ready here ({a}); run scripts/install-test-deps.sh as root",
                t.name
            );
            return ExitCode::FAILURE;
        }
    }
    let creds = Credentials::generate(targets::TEST_USER);
    let rounds = env_num("SSHSPEC_BENCH_ROUNDS", 20) as usize;
    let mib = env_num("SSHSPEC_BENCH_MIB", 512);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = dir.path().join("id_ed25519");
    sshspec::keys::write_identity(&key, &creds.keys.ed25519).unwrap_or_else(|e| panic!("{e}"));

    println!("sshspec speed bench: {rounds} handshakes per side, {mib} MiB uploads\n");
    let openssh = rt.block_on(targets::start(&infos[1], Some(creds.clone()))).unwrap_or_else(|e| panic!("{e}"));
    println!("OpenSSH target: {} at {}", openssh.version(), openssh.addr);

    // 1. Handshake.
    let hs = scenario("bench/handshake", &session("chacha20-poly1305@openssh.com", "publickey", "command = \"true\""));
    let args = ssh_args(&openssh, &key, "chacha20-poly1305@openssh.com");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(rt.block_on(peer_once(&hs, &openssh)));
        theirs.push(ssh_once(&args, "true", 0));
    }
    let (o, t) = (stats(ours), stats(theirs));
    println!("\n1. handshake + publickey + exec true (ms)     median     min     max");
    println!("   scripted peer                            {:>8.1} {:>7.1} {:>7.1}", o.median, o.min, o.max);
    println!("   ssh client                               {:>8.1} {:>7.1} {:>7.1}", t.median, t.min, t.max);
    println!("   ratio peer/ssh (target <= 1.0)           {:>8.2}", o.median / t.median);

    // 2. Upload throughput.
    println!(
        "\n2. upload {mib} MiB to 'cat > /dev/null' (MiB/s) median     min     max   ratio peer/ssh (target >= 1.0)"
    );
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"] {
        let up = scenario(
            "bench/upload",
            &session(cipher, "publickey", &format!("command = \"cat > /dev/null\"\nstdin_size = \"{mib}MiB\"")),
        );
        let args = ssh_args(&openssh, &key, cipher);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            ours.push(mib as f64 / (rt.block_on(peer_once(&up, &openssh)) / 1000.0));
            theirs.push(mib as f64 / (ssh_once(&args, "cat > /dev/null", mib) / 1000.0));
        }
        let (o, t) = (stats(ours), stats(theirs));
        println!("   {cipher:<30} peer {:>8.0} {:>7.0} {:>7.0}", o.median, o.min, o.max);
        println!("   {cipher:<30} ssh  {:>8.0} {:>7.0} {:>7.0}   {:.2}", t.median, t.min, t.max, o.median / t.median);
    }
    rt.block_on(openssh.stop());

    // 3. Catalogue wall time against each target's limit.
    let catalogue = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios"))
        .unwrap_or_else(|_| panic!("catalogue"));
    println!("\n3. catalogue ({} scenarios) wall time against the target's limit", catalogue.len());
    println!("   (wall: target ready to last verdict; starting the target is reported apart)");
    println!("   target     conns  jobs  median handshake  limit ms   wall ms   wall/limit (target <= 1.5)   start ms");
    let probe = scenario("bench/probe", &session("chacha20-poly1305@openssh.com", "password", "command = \"true\""));
    for t in &infos {
        let running = rt.block_on(targets::start(t, Some(creds.clone()))).unwrap_or_else(|e| panic!("{e}"));
        let hs = stats((0..15).map(|_| rt.block_on(peer_once(&probe, &running))).collect()).median;
        rt.block_on(running.stop());
        for jobs in [1usize, 2, 4, t.max_jobs] {
            let s = rt.block_on(run(
                std::slice::from_ref(t),
                &catalogue,
                &options(Some(jobs), &creds),
                &mut [Box::new(Quiet) as Box<dyn Reporter>],
            ));
            let wall = s.targets[0].scenarios_ms as f64;
            let conns = s.results.iter().filter(|r| r.outcome != Outcome::Skip).count();
            let limit = conns as f64 * hs / jobs.min(conns.max(1)) as f64;
            println!(
                "   {:<10} {:>5} {:>5} {:>13.1} ms {:>9.1} {:>9.1} {:>10.2} {:>26}",
                t.name,
                conns,
                jobs,
                hs,
                limit,
                wall,
                wall / limit,
                s.targets[0].start_ms
            );
        }
    }

    // 4. Cost against work.
    println!(
        "\n4. cost against work: N session scenarios (handshake, password, exec echo); wall = ready to last verdict"
    );
    println!("   target      N   jobs   wall ms   N x one / jobs   ratio");
    let one = session("chacha20-poly1305@openssh.com", "password", "command = \"echo x\"");
    for t in &infos[..2] {
        let running = rt.block_on(targets::start(t, Some(creds.clone()))).unwrap_or_else(|e| panic!("{e}"));
        let single = stats((0..10).map(|_| rt.block_on(peer_once(&probe, &running))).collect()).median;
        rt.block_on(running.stop());
        for n in [10usize, 100, 300] {
            let set: Vec<Scenario> = (0..n).map(|i| scenario(&format!("bench/copy-{i:04}"), &one)).collect();
            let s = rt.block_on(run(
                std::slice::from_ref(t),
                &set,
                &options(None, &creds),
                &mut [Box::new(Quiet) as Box<dyn Reporter>],
            ));
            let wall = s.targets[0].scenarios_ms as f64;
            assert!(s.results.iter().all(|r| r.outcome == Outcome::Pass), "copies must pass");
            let ideal = n as f64 * single / t.max_jobs as f64;
            println!(
                "   {:<10} {:>4} {:>5} {:>9.1} {:>16.1} {:>7.2}",
                t.name,
                n,
                t.max_jobs,
                wall,
                ideal,
                wall / ideal
            );
        }
    }

    // 4b. The server's own ceiling: the ssh client, 8 sessions at a time, against the same sshd.
    let running = rt.block_on(targets::start(&infos[1], Some(creds.clone()))).unwrap_or_else(|e| panic!("{e}"));
    let args = ssh_args(&running, &key, "chacha20-poly1305@openssh.com");
    let n = 100usize;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..8 {
            let args = &args;
            scope.spawn(move || {
                for _ in (w..n).step_by(8) {
                    ssh_once(args, "echo x", 0);
                }
            });
        }
    });
    let ssh_wall = ms(started.elapsed());
    let one = scenario("bench/one", &session("chacha20-poly1305@openssh.com", "publickey", "command = \"echo x\""));
    let set: Vec<Scenario> = (0..n).map(|i| Scenario { id: format!("bench/pk-{i:04}"), ..one.clone() }).collect();
    let started = Instant::now();
    let mut popts = options(Some(8), &creds);
    popts.creds = Some(running.creds.clone());
    let shared = std::sync::Arc::new((running.addr, running.creds.clone()));
    let peer_wall = rt.block_on(async {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        let mut set_tasks = tokio::task::JoinSet::new();
        for s in set {
            let (sem, shared) = (sem.clone(), shared.clone());
            set_tasks.spawn(async move {
                let _p = sem.acquire_owned().await;
                peer::run(&s, shared.0, &shared.1, &peer::Options::default()).await.judgement
            });
        }
        while let Some(j) = set_tasks.join_next().await {
            assert!(matches!(j, Ok(Judgement::Pass)), "{j:?}");
        }
        ms(started.elapsed())
    });
    rt.block_on(running.stop());
    println!(
        "   openssh, {n} publickey sessions 8 at a time: ssh client {ssh_wall:.0} ms, scripted peer {peer_wall:.0} ms, ratio {:.2} (the server's own ceiling)",
        peer_wall / ssh_wall
    );

    // 5. Peak memory of a full run.
    reset_peak();
    let started = Instant::now();
    let s = rt.block_on(run(&infos, &catalogue, &options(None, &creds), &mut [Box::new(Quiet) as Box<dyn Reporter>]));
    println!(
        "\n5. full run, {} results on {} targets in {:.0} ms: peak RSS {:.1} MiB (target < 100 MiB; includes the in-process russh target)",
        s.results.len(),
        infos.len(),
        ms(started.elapsed()),
        peak_mib()
    );
    ExitCode::SUCCESS
}
