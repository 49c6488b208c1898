//! Verdicts do not depend on concurrency: the whole catalogue against builtin russh, OpenSSH and
//! Dropbear (local processes), once serially (`--jobs 1`) and once at each target's own limit, must
//! give the same outcome for every (target, scenario). A difference is a verdict that depends on
//! timing or on what else runs: a bug in a scenario, the peer or the runner.
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

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn targets() -> Option<Vec<TargetInfo>> {
    let mut out = Vec::new();
    for name in ["builtin", "openssh", "dropbear"] {
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
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let opts = RunOptions {
        jobs,
        peer: Default::default(),
        ci: true,
        creds: Some(creds.clone()),
        cancel,
        run_timeout: None,
        budget: None,
    };
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
    let creds = Credentials::generate(targets::TEST_USER);
    let serial = run_at(&list, Some(1), &creds).await;
    let parallel = run_at(&list, None, &creds).await;
    let (a, b) = (by_key(&serial), by_key(&parallel));
    assert_eq!(a.len(), b.len(), "both runs judge the same (target, scenario) pairs");
    let passed = a.values().filter(|r| r.outcome == Outcome::Pass).count();
    assert!(passed > 300, "only {passed} PASS results: the runs did not really run");
    let mut differ = Vec::new();
    for (key, r) in &a {
        let p = b.get(key).expect("the same pairs");
        if r.outcome != p.outcome {
            differ.push(format!("{} {}:\n  serial:   {}\n  parallel: {}", key.0, key.1, explain(r), explain(p)));
        }
    }
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
}
