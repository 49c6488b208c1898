//! Verdicts do not depend on concurrency: the whole catalogue against builtin russh, OpenSSH,
//! OpenSSH with legacy settings and Dropbear (local processes), once serially (`--jobs 1`), once
//! with each target run alone at its own limit, and once with all four side by side at their
//! limits under the run's one budget, must give the same outcome for every (target, scenario). A
//! difference is a verdict that depends on timing or on what else runs: a bug in a scenario, the
//! peer or the runner. The wall times of one after another and side by side are printed.
//!
//! A missing target fails the test in CI and is a visible skip elsewhere.

use sshspec::peer::Credentials;
use sshspec::report::{Event, Reporter};
use sshspec::run::{RunOptions, Summary, run};
use sshspec::script;
use sshspec::targets::{self, TargetInfo};
use sshspec::verdict::{Outcome, ScenarioResult};
use std::collections::BTreeMap;
use std::path::Path;

struct Quiet;
impl Reporter for Quiet {
    fn on_event(&mut self, _: &Event<'_>) {}
}

/// One set of credentials for every test here: starting a process target sets the shared system
/// user's password, so two tests with their own would log each other out.
fn creds() -> Credentials {
    static CREDS: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();
    CREDS.get_or_init(|| Credentials::generate(targets::TEST_USER)).clone()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn targets() -> Option<Vec<TargetInfo>> {
    let mut out = Vec::new();
    for name in ["builtin", "openssh", "openssh-legacy", "dropbear"] {
        let t = targets::find(name).expect("a known target");
        let a = targets::availability(&t);
        if !a.starts_with("ready") {
            assert!(!ci(), "target {name} is unavailable in CI: {a}");
            eprintln!(
                "note: skipping: target {name} is unavailable here ({a}); run scripts/install-test-deps.sh as root"
            );
            return None;
        }
        out.push(t);
    }
    Some(out)
}

async fn run_at(targets: &[TargetInfo], jobs: Option<usize>, creds: &Credentials) -> Summary {
    let catalogue =
        script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")).expect("catalogue");
    let opts = RunOptions { jobs, ci: true, creds: Some(creds.clone()), ..Default::default() };
    run(targets, &catalogue, &opts, &mut [Box::new(Quiet) as Box<dyn Reporter>]).await
}

fn by_key(s: &Summary) -> BTreeMap<(String, String), &ScenarioResult> {
    s.results.iter().map(|r| ((r.target.clone(), r.scenario.clone()), r)).collect()
}

fn explain(r: &ScenarioResult) -> String {
    let evidence = r.evidence.as_ref().map(|e| format!("step {}: expected {}, got {}", e.step, e.expected, e.actual));
    format!("{:?} in {} ms; {}", r.outcome, r.duration_ms, evidence.or(r.reason.clone()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_and_parallel_runs_give_the_same_verdicts() {
    let Some(list) = targets() else { return };
    assert!(list.iter().all(|t| t.max_jobs > 1), "every target here runs scenarios concurrently by default");
    let creds = creds();
    let serial = run_at(&list, Some(1), &creds).await;
    let mut alone_ms = 0;
    let mut alone = Vec::new();
    for t in &list {
        let clock = std::time::Instant::now();
        alone.push(run_at(std::slice::from_ref(t), None, &creds).await);
        alone_ms += clock.elapsed().as_millis();
    }
    let clock = std::time::Instant::now();
    let parallel = run_at(&list, None, &creds).await;
    let together_ms = clock.elapsed().as_millis();
    let a = by_key(&serial);
    let b = by_key(&parallel);
    let c: BTreeMap<_, _> = alone.iter().flat_map(by_key).collect();
    assert_eq!(a.len(), b.len(), "both runs judge the same (target, scenario) pairs");
    assert_eq!(a.len(), c.len(), "the lone runs judge the same (target, scenario) pairs");
    let passed = a.values().filter(|r| r.outcome == Outcome::Pass).count();
    assert!(passed > 400, "only {passed} PASS results: the runs did not really run");
    let mut differ = Vec::new();
    for (key, r) in &a {
        let p = b.get(key).expect("the same pairs");
        let l = c.get(key).expect("the same pairs");
        if r.outcome != p.outcome || r.outcome != l.outcome {
            differ.push(format!(
                "{} {}:\n  serial:       {}\n  alone:        {}\n  side by side: {}",
                key.0,
                key.1,
                explain(r),
                explain(l),
                explain(p)
            ));
        }
    }
    let load_sensitive: Vec<String> = parallel
        .results
        .iter()
        .filter(|r| r.first_attempt.is_some())
        .map(|r| format!("{} {}: {:?}", r.target, r.scenario, r.outcome))
        .collect();
    eprintln!(
        "four targets one after another {alone_ms} ms, side by side {together_ms} ms; re-run alone after a deadline miss: {load_sensitive:?}"
    );
    for t in &parallel.targets {
        let s = serial.targets.iter().find(|s| s.name == t.name).expect("same targets");
        eprintln!(
            "{}: serial {} ms, parallel ({} jobs) {} ms",
            t.name,
            s.scenarios_ms,
            list.iter().find(|i| i.name == t.name).map_or(0, |i| i.max_jobs),
            t.scenarios_ms
        );
    }
    assert!(differ.is_empty(), "{} verdict(s) depend on concurrency:\n{}", differ.len(), differ.join("\n"));
    // Wall times are printed, not asserted: on a loaded machine a timing assertion is a flaky
    // test. `cargo bench --bench speed` measures them.
}

/// The conformance trials decide SKIPs from the descriptions' algorithm lists; runs decide them
/// from the probe. Both must agree: every algorithm (and marker) a description declares, the
/// server lists in its KEXINIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_algorithms_are_what_the_probe_finds() {
    let Some(list) = targets() else { return };
    let creds = creds();
    let mut wrong = Vec::new();
    for t in &list {
        let running = targets::start(t, Some(creds.clone())).await.expect("the target starts");
        let p = sshspec::peer::probe::probe(running.addr, &running.creds, &Default::default()).await;
        running.stop().await;
        assert!(p.incomplete.is_none(), "{}: the probe stopped: {:?}", t.name, p.incomplete);
        let a = &t.algorithms;
        for (category, names) in [
            ("kex", &a.kex),
            ("host_key", &a.host_key),
            ("cipher", &a.cipher),
            ("mac", &a.mac),
            ("compression", &a.compression),
        ] {
            for n in names.iter().filter(|n| !p.offers(category, n)) {
                wrong.push(format!("{}: declares {category} {n}, which its KEXINIT does not list", t.name));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
