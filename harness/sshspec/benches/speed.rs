//! `cargo bench -p sshspec --bench speed [-- SECTION...]`: the harness's speed, measured side by side
//! in one run. Sections (all by default): `handshake`, `bulk`, `catalogue`, `curve`, `memory`.
//!
//! - handshake: connect, curve25519 kex, ed25519 publickey login, `exec true`: the scripted peer
//!   against `ssh -o BatchMode=yes ... true`, same OpenSSH server, same algorithms.
//! - bulk: upload throughput, chacha20-poly1305 and aes128-gcm: the peer against
//!   `ssh ... 'cat > /dev/null'`.
//! - catalogue: the full catalogue's wall time per target at jobs 1, 2, 4, 8 and the target's own
//!   limit, against (a) the target's limit as the issue defines it: connections x the target's
//!   median handshake / concurrency, and (b) the floor the catalogue's own work sets: the longer of
//!   its longest scenario and the sum of its scenarios' serial times / concurrency. Every parallel
//!   run's verdicts are compared with the serial run's; a difference fails the bench.
//! - curve: cost against work, N = 10, 100 and all catalogue scenarios (every k-th by id), and N
//!   identical session scenarios (10, 100, 1000), against N x one / concurrency.
//! - memory: peak RSS (VmHWM) of a full run against every target, targets side by side.
//! - load: loading and compiling the catalogue (files read, fragments included, parameters
//!   expanded, every message checked), as it is and copied until it holds at least 500 scenarios.
//!   Needs no target: `cargo bench --bench speed -- load` runs anywhere.
//!
//! Needs root, OpenSSH and Dropbear (scripts/install-test-deps.sh). Sizes and counts can be set with
//! SSHSPEC_BENCH_MIB (upload size, default 512), SSHSPEC_BENCH_ROUNDS (handshakes, default 20) and
//! SSHSPEC_BENCH_CIPHERS (the bulk section's ciphers, comma-separated).

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
    RunOptions { jobs, ci: true, creds: Some(creds.clone()), ..Default::default() }
}

/// What every section shares: the runtime, the three targets, one set of credentials and its key file.
struct Bench {
    rt: tokio::runtime::Runtime,
    infos: Vec<TargetInfo>,
    creds: Credentials,
    key: std::path::PathBuf,
    catalogue: Vec<Scenario>,
    /// Median handshake (connect, kex, password login, exec true) per target, measured once.
    handshakes: std::collections::BTreeMap<String, f64>,
}

impl Bench {
    fn start(&self, t: &TargetInfo) -> Running {
        self.rt.block_on(targets::start(t, Some(self.creds.clone()))).unwrap_or_else(|e| panic!("{e}"))
    }

    fn run(&self, targets: &[TargetInfo], set: &[Scenario], jobs: Option<usize>) -> sshspec::run::Summary {
        self.rt.block_on(run(targets, set, &options(jobs, &self.creds), &mut [Box::new(Quiet) as Box<dyn Reporter>]))
    }

    /// The target's median handshake: what one connection costs it, the unit of its limit.
    fn handshake(&mut self, t: &TargetInfo) -> f64 {
        if let Some(h) = self.handshakes.get(&t.name) {
            return *h;
        }
        let probe =
            scenario("bench/probe", &session("chacha20-poly1305@openssh.com", "password", "program = \"succeed\""));
        let running = self.start(t);
        let h = stats((0..15).map(|_| self.rt.block_on(peer_once(&probe, &running))).collect()).median;
        self.rt.block_on(running.stop());
        self.handshakes.insert(t.name.clone(), h);
        h
    }
}

fn handshake_section(b: &Bench, rounds: usize) {
    let openssh = b.start(&b.infos[1]);
    println!("OpenSSH target: {} at {}", openssh.version(), openssh.addr);
    let hs =
        scenario("bench/handshake", &session("chacha20-poly1305@openssh.com", "publickey", "program = \"succeed\""));
    let args = ssh_args(&openssh, &b.key, "chacha20-poly1305@openssh.com");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(b.rt.block_on(peer_once(&hs, &openssh)));
        theirs.push(ssh_once(&args, "true", 0));
    }
    let (o, t) = (stats(ours), stats(theirs));
    println!("\nhandshake: connect, kex, publickey, exec true; {rounds} rounds (ms)   median     min     max");
    println!("   scripted peer                                        {:>8.1} {:>7.1} {:>7.1}", o.median, o.min, o.max);
    println!("   ssh client                                           {:>8.1} {:>7.1} {:>7.1}", t.median, t.min, t.max);
    println!("   ratio peer/ssh, medians (target <= 1.0)              {:>8.2}", o.median / t.median);
    b.rt.block_on(openssh.stop());
}

fn bulk_section(b: &Bench, mib: u64) {
    let openssh = b.start(&b.infos[1]);
    println!(
        "\nbulk: upload {mib} MiB to 'cat > /dev/null', 3 rounds (MiB/s)   median     min     max   ratio peer/ssh (target >= 1.0)"
    );
    let ciphers = std::env::var("SSHSPEC_BENCH_CIPHERS")
        .unwrap_or_else(|_| "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com".into());
    for cipher in ciphers.split(',') {
        let up = scenario(
            "bench/upload",
            &session(cipher, "publickey", &format!("program = \"discard-stdin\"\nstdin_size = \"{mib}MiB\"")),
        );
        let args = ssh_args(&openssh, &b.key, cipher);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            ours.push(mib as f64 / (b.rt.block_on(peer_once(&up, &openssh)) / 1000.0));
            theirs.push(mib as f64 / (ssh_once(&args, "cat > /dev/null", mib) / 1000.0));
        }
        let (o, t) = (stats(ours), stats(theirs));
        println!("   {cipher:<30} peer               {:>8.0} {:>7.0} {:>7.0}", o.median, o.min, o.max);
        println!(
            "   {cipher:<30} ssh                {:>8.0} {:>7.0} {:>7.0}   {:.2}",
            t.median,
            t.min,
            t.max,
            o.median / t.median
        );
    }
    b.rt.block_on(openssh.stop());
}

/// Verdicts by (target, scenario).
type Verdicts = std::collections::BTreeMap<(String, String), Outcome>;

/// The verdicts of a run.
fn verdicts(s: &sshspec::run::Summary) -> Verdicts {
    s.results.iter().map(|r| ((r.target.clone(), r.scenario.clone()), r.outcome)).collect()
}

/// Verdicts that differ from the serial run's; each is a bug (a verdict that depends on timing).
fn differences(serial: &Verdicts, s: &sshspec::run::Summary, jobs: usize) -> usize {
    let mut n = 0;
    for ((t, id), o) in verdicts(s) {
        let was = serial.get(&(t.clone(), id.clone()));
        if was != Some(&o) {
            println!("   VERDICT DIFFERS at jobs {jobs}: {t} {id}: serial {was:?}, now {o:?}");
            n += 1;
        }
    }
    n
}

/// The floor a set of scenarios sets on any schedule with `jobs` workers, from their serial times.
fn floor_ms(serial_ms: &[f64], jobs: usize) -> f64 {
    let longest = serial_ms.iter().copied().fold(0.0, f64::max);
    longest.max(serial_ms.iter().sum::<f64>() / jobs as f64)
}

/// Serial time of each scenario on one target, from a `--jobs 1` run.
type SerialTimes = std::collections::BTreeMap<String, f64>;

fn catalogue_section(b: &mut Bench) -> (usize, std::collections::BTreeMap<String, SerialTimes>) {
    println!(
        "\ncatalogue: {} scenarios; wall = target ready to last verdict (starting the target apart)",
        b.catalogue.len()
    );
    println!(
        "   limit = connections x median handshake / jobs (the issue's); floor = max(longest scenario, sum of serial times / jobs)"
    );
    println!("   target    conns  jobs  handshake   limit ms   floor ms    wall ms  wall/limit  wall/floor  start ms");
    let mut serial_times = std::collections::BTreeMap::new();
    let mut diffs = 0;
    for t in b.infos.clone() {
        let hs = b.handshake(&t);
        let mut serial: Option<(Verdicts, Vec<f64>)> = None;
        let mut levels = vec![1usize, 2, 4, 8, t.max_jobs];
        levels.dedup();
        for jobs in levels {
            let s = b.run(std::slice::from_ref(&t), &b.catalogue, Some(jobs));
            let wall = s.targets[0].scenarios_ms as f64;
            let ran: Vec<_> = s.results.iter().filter(|r| r.outcome != Outcome::Skip).collect();
            let conns = ran.len();
            let limit = conns as f64 * hs / jobs as f64;
            let times = match &serial {
                None => {
                    let times: Vec<f64> = ran.iter().map(|r| r.duration_ms as f64).collect();
                    serial_times.insert(
                        t.name.clone(),
                        ran.iter().map(|r| (r.scenario.clone(), r.duration_ms as f64)).collect::<SerialTimes>(),
                    );
                    serial = Some((verdicts(&s), times.clone()));
                    times
                }
                Some((v, times)) => {
                    diffs += differences(v, &s, jobs);
                    times.clone()
                }
            };
            let floor = floor_ms(&times, jobs);
            println!(
                "   {:<9} {:>5} {:>5} {:>7.1} ms {:>10.0} {:>10.0} {:>10.0} {:>11.2} {:>11.2} {:>9}",
                t.name,
                conns,
                jobs,
                hs,
                limit,
                floor,
                wall,
                wall / limit,
                wall / floor,
                s.targets[0].start_ms
            );
        }
    }
    println!("   verdicts differing from the serial run: {diffs}");
    (diffs, serial_times)
}

fn curve_section(b: &mut Bench, serial: &std::collections::BTreeMap<String, SerialTimes>) {
    println!(
        "\ncurve: N catalogue scenarios (every k-th by id) at the target's own jobs; one = each scenario's serial time"
    );
    println!("   target       N  jobs    wall ms   sum(one)/jobs   floor ms  wall/floor");
    let all = b.catalogue.len();
    for t in b.infos.clone() {
        let Some(times) = serial.get(&t.name) else {
            println!("   {}: no serial times (run the catalogue section too)", t.name);
            continue;
        };
        for n in [10usize, 100, all] {
            let step = all as f64 / n as f64;
            let set: Vec<Scenario> = (0..n).map(|i| b.catalogue[(i as f64 * step) as usize].clone()).collect();
            let s = b.run(std::slice::from_ref(&t), &set, None);
            let ran: Vec<f64> = s.results.iter().filter_map(|r| times.get(&r.scenario).copied()).collect();
            let wall = s.targets[0].scenarios_ms as f64;
            let ideal = ran.iter().sum::<f64>() / t.max_jobs as f64;
            let floor = floor_ms(&ran, t.max_jobs);
            println!(
                "   {:<10} {:>4} {:>5} {:>10.0} {:>15.0} {:>10.0} {:>11.2}",
                t.name,
                set.len(),
                t.max_jobs,
                wall,
                ideal,
                floor,
                wall / floor
            );
        }
    }
    println!(
        "\n   N identical session scenarios (handshake, password, exec echo): the limit is N x one handshake / jobs"
    );
    println!("   target       N  jobs    wall ms  N x one / jobs   ratio");
    let one = session("chacha20-poly1305@openssh.com", "password", "program = \"print x\"");
    for t in b.infos.clone() {
        let single = b.handshake(&t);
        // N grows at the target's own limit; at N = 100 the concurrency also steps up from 1, so
        // the curve shows where the machine's cores, not the limit, bound CPU-bound handshakes.
        let runs = [(10usize, t.max_jobs), (100, 1), (100, 2), (100, t.max_jobs), (1000, t.max_jobs)];
        for (n, jobs) in runs {
            let set: Vec<Scenario> = (0..n).map(|i| scenario(&format!("bench/copy-{i:04}"), &one)).collect();
            let s = b.run(std::slice::from_ref(&t), &set, Some(jobs));
            let wall = s.targets[0].scenarios_ms as f64;
            assert!(s.results.iter().all(|r| r.outcome == Outcome::Pass), "copies must pass");
            let ideal = n as f64 * single / jobs as f64;
            println!("   {:<10} {:>4} {:>5} {:>10.0} {:>15.0} {:>7.2}", t.name, n, jobs, wall, ideal, wall / ideal);
        }
    }
    // The server's own ceiling: the ssh client, 8 sessions at a time, against the same sshd.
    let running = b.start(&b.infos[1]);
    let args = ssh_args(&running, &b.key, "chacha20-poly1305@openssh.com");
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
    let one = scenario("bench/one", &session("chacha20-poly1305@openssh.com", "publickey", "program = \"print x\""));
    let set: Vec<Scenario> = (0..n).map(|i| Scenario { id: format!("bench/pk-{i:04}"), ..one.clone() }).collect();
    let started = Instant::now();
    let shared = std::sync::Arc::new((running.addr, running.creds.clone()));
    let peer_wall = b.rt.block_on(async {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        let mut tasks = tokio::task::JoinSet::new();
        for s in set {
            let (sem, shared) = (sem.clone(), shared.clone());
            tasks.spawn(async move {
                let _p = sem.acquire_owned().await;
                peer::run(&s, shared.0, &shared.1, &peer::Options::default()).await.judgement
            });
        }
        while let Some(j) = tasks.join_next().await {
            assert!(matches!(j, Ok(Judgement::Pass)), "{j:?}");
        }
        ms(started.elapsed())
    });
    b.rt.block_on(running.stop());
    println!(
        "   openssh, {n} publickey sessions 8 at a time: ssh client {ssh_wall:.0} ms, scripted peer {peer_wall:.0} ms, ratio {:.2} (the server's own ceiling)",
        peer_wall / ssh_wall
    );
}

fn memory_section(b: &Bench) {
    reset_peak();
    let started = Instant::now();
    let s = b.run(&b.infos, &b.catalogue, None);
    println!(
        "\nmemory: full run, {} results on {} targets side by side in {:.0} ms: peak RSS {:.1} MiB (target < 100 MiB; includes the in-process russh target)",
        s.results.len(),
        b.infos.len(),
        ms(started.elapsed()),
        peak_mib()
    );
}

fn load_section() {
    const ROUNDS: usize = 20;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let timed = |dir: &Path| {
        let mut n = 0;
        let times: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                n = script::load_dir(dir).unwrap_or_else(|e| panic!("{e:?}")).len();
                ms(started.elapsed())
            })
            .collect();
        (n, stats(times))
    };
    println!(
        "\nload: load_dir, {ROUNDS} rounds (ms)                      scenarios   median     min     max  us/scenario"
    );
    let (n, t) = timed(&root);
    println!(
        "   the catalogue                                    {n:>9} {:>8.2} {:>7.2} {:>7.2} {:>12.1}",
        t.median,
        t.min,
        t.max,
        t.median * 1000.0 / n as f64
    );
    // Copies of the catalogue side by side (one folder each, fragments beside them) until >= 500.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let copies = 500usize.div_ceil(n.max(1));
    for k in 0..copies {
        copy_scenarios(&root, &dir.path().join(format!("copy{k}")));
    }
    copy_tree(&root.join(script::FRAGMENTS_DIR), &dir.path().join(script::FRAGMENTS_DIR));
    let (n, t) = timed(dir.path());
    println!(
        "   {copies} copies (target <= 50 ms for 500)               {n:>9} {:>8.2} {:>7.2} {:>7.2} {:>12.1}",
        t.median,
        t.min,
        t.max,
        t.median * 1000.0 / n as f64
    );
}

/// The scenario files under `from` (not the registry, the record or the fragments), into `to`.
fn copy_scenarios(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")).flatten() {
        let name = e.file_name();
        let skip = ["clauses", script::FRAGMENTS_DIR, sshspec::validate::RECORD_FILE];
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        if e.path().is_dir() {
            copy_tree(&e.path(), &to.join(&name));
        } else if e.path().extension().is_some_and(|x| x == "toml") {
            std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
            std::fs::copy(e.path(), to.join(&name)).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{e}")).flatten() {
        if e.path().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

const SECTIONS: [&str; 6] = ["handshake", "bulk", "catalogue", "curve", "memory", "load"];

fn main() -> ExitCode {
    // `cargo bench` passes --bench; other arguments name the sections to run.
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let Some(bad) = wanted.iter().find(|w| !SECTIONS.contains(&w.as_str())) {
        eprintln!("speed bench: unknown section {bad:?}; sections: {}", SECTIONS.join(", "));
        return ExitCode::from(2);
    }
    let on = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if on("load") {
        load_section();
        if wanted.iter().all(|w| w == "load") && !wanted.is_empty() {
            return ExitCode::SUCCESS;
        }
    }
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
    let catalogue = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios"))
        .unwrap_or_else(|_| panic!("catalogue"));
    let mut b = Bench { rt, infos, creds, key, catalogue, handshakes: Default::default() };

    println!("sshspec speed bench ({} cores): {rounds} handshakes per side, {mib} MiB uploads\n", cores());
    if on("handshake") {
        handshake_section(&b, rounds);
    }
    if on("bulk") {
        bulk_section(&b, mib);
    }
    let mut failed = false;
    let mut serial = Default::default();
    if on("catalogue") || on("curve") {
        let (diffs, times) = catalogue_section(&mut b);
        failed |= diffs > 0;
        serial = times;
    }
    if on("curve") {
        curve_section(&mut b, &serial);
    }
    if on("memory") {
        memory_section(&b);
    }
    if failed {
        eprintln!("speed bench: verdicts differ between serial and parallel runs (see above): a bug");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
