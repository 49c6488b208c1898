//! The runner: starts each target, runs the selected scenarios against it (concurrently, up to the
//! target's limit), turns each run into a [`ScenarioResult`] and emits typed [`Event`]s that the
//! report consumers turn into console output, JSON and JUnit.

use crate::peer::{self, Credentials, Judgement};
use crate::report::{Event, Reporter};
use crate::script::Scenario;
use crate::targets::{self, BackendKind, StartError, TargetInfo};
use crate::verdict::{Outcome, ScenarioResult, Tally};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

#[derive(Clone)]
pub struct RunOptions {
    /// Concurrency per target; `None` uses the target's own limit.
    pub jobs: Option<usize>,
    pub peer: peer::Options,
    /// In CI a target that cannot start is an ERROR, never a SKIP.
    pub ci: bool,
    pub remote_creds: Option<Credentials>,
    /// Set to true to stop the run (Ctrl-C); what finished is still reported.
    pub cancel: watch::Receiver<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetSummary {
    pub name: String,
    pub server: String,
    pub backend: BackendKind,
    pub version: String,
    pub banner: String,
    pub tally: Tally,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub targets: Vec<TargetSummary>,
    pub results: Vec<ScenarioResult>,
    pub duration_ms: u64,
    pub interrupted: bool,
}

impl Summary {
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        self.results.iter().for_each(|r| t.add(r.outcome));
        t
    }

    /// The documented exit code for this run (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        let t = self.tally();
        if self.interrupted {
            crate::exit::INTERRUPTED
        } else if t.fail + t.xpass > 0 {
            crate::exit::NONCONFORMING
        } else if t.error > 0 {
            crate::exit::HARNESS
        } else {
            crate::exit::OK
        }
    }
}

/// Builds the result of one scenario from its run, applying the target's expected failures.
pub fn result_of(t: &TargetInfo, version: &str, s: &Scenario, run: peer::Run, server_log: Vec<String>) -> ScenarioResult {
    let expected = t.expected_failures.get(&s.id);
    let (outcome, evidence, reason) = match (run.judgement, expected) {
        (Judgement::Pass, None) => (Outcome::Pass, None, None),
        (Judgement::Pass, Some(why)) => {
            (Outcome::Xpass, None, Some(format!("expected to fail ({why}) but passed: remove the entry if fixed")))
        }
        (Judgement::Fail(e), None) => (Outcome::Fail, Some(e), None),
        (Judgement::Fail(e), Some(why)) => (Outcome::Xfail, Some(e), Some(why.clone())),
        (Judgement::Error(e), _) => {
            let reason = e.actual.clone();
            (Outcome::Error, Some(e), Some(reason))
        }
    };
    ScenarioResult {
        scenario: s.id.clone(),
        target: t.name.clone(),
        target_version: version.to_owned(),
        outcome,
        level: s.level,
        spec: s.spec.clone(),
        clauses: s.clauses.clone(),
        title: s.title.clone(),
        duration_ms: run.duration.as_millis() as u64,
        reason,
        evidence,
        identity: Some(run.identity),
        transcript: run.transcript,
        server_log: if outcome.is_failure() || outcome == Outcome::Error || outcome == Outcome::Xfail { server_log } else { Vec::new() },
    }
}

/// A result for a scenario that did not run (skipped, or its target is unavailable).
pub fn not_run(t: &TargetInfo, version: &str, s: &Scenario, outcome: Outcome, reason: String) -> ScenarioResult {
    ScenarioResult {
        scenario: s.id.clone(),
        target: t.name.clone(),
        target_version: version.to_owned(),
        outcome,
        level: s.level,
        spec: s.spec.clone(),
        clauses: s.clauses.clone(),
        title: s.title.clone(),
        duration_ms: 0,
        reason: Some(reason),
        evidence: None,
        identity: None,
        transcript: Vec::new(),
        server_log: Vec::new(),
    }
}

/// Runs every scenario against every target, in the order given.
pub async fn run(targets: &[TargetInfo], scenarios: &[Scenario], opts: &RunOptions, reporters: &mut [Box<dyn Reporter>]) -> Summary {
    let started = Instant::now();
    let emit = |reporters: &mut [Box<dyn Reporter>], e: &Event<'_>| reporters.iter_mut().for_each(|r| r.on_event(e));
    emit(reporters, &Event::RunStarted { targets, scenarios: scenarios.len() });
    let scenarios: Arc<Vec<Scenario>> = Arc::new(scenarios.to_vec());
    let mut summary = Summary { targets: Vec::new(), results: Vec::new(), duration_ms: 0, interrupted: false };
    for t in targets {
        if *opts.cancel.borrow() {
            summary.interrupted = true;
            break;
        }
        let t_started = Instant::now();
        let (mut results, version, banner, unavailable, interrupted) = run_target(t, &scenarios, opts, reporters).await;
        results.sort_by(|a, b| a.scenario.cmp(&b.scenario));
        let mut tally = Tally::default();
        results.iter().for_each(|r| tally.add(r.outcome));
        let ts = TargetSummary {
            name: t.name.clone(),
            server: t.server.clone(),
            backend: t.backend,
            version,
            banner,
            tally,
            duration_ms: t_started.elapsed().as_millis() as u64,
            unavailable,
        };
        emit(reporters, &Event::TargetFinished { summary: &ts });
        summary.targets.push(ts);
        summary.results.extend(results);
        if interrupted {
            summary.interrupted = true;
            break;
        }
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    emit(reporters, &Event::RunFinished { summary: &summary });
    summary
}

type TargetRun = (Vec<ScenarioResult>, String, String, Option<String>, bool);

async fn run_target(t: &TargetInfo, scenarios: &Arc<Vec<Scenario>>, opts: &RunOptions, reporters: &mut [Box<dyn Reporter>]) -> TargetRun {
    let emit = |reporters: &mut [Box<dyn Reporter>], e: &Event<'_>| reporters.iter_mut().for_each(|r| r.on_event(e));
    let running = match targets::start(t, opts.remote_creds.clone()).await {
        Ok(r) => r,
        Err(e) => {
            let (outcome, reason) = match &e {
                StartError::Missing(m) if !opts.ci => (Outcome::Skip, format!("target {} unavailable: {m}", t.name)),
                StartError::Missing(m) => (Outcome::Error, format!("target {} unavailable in CI: {m}", t.name)),
                StartError::Failed(m) => (Outcome::Error, format!("target {} did not start: {m}", t.name)),
            };
            emit(reporters, &Event::TargetUnavailable { target: &t.name, reason: &reason, outcome });
            let results: Vec<_> = scenarios.iter().map(|s| not_run(t, "", s, outcome, reason.clone())).collect();
            results.iter().for_each(|r| emit(reporters, &Event::Result(r)));
            return (results, String::new(), String::new(), Some(reason), false);
        }
    };
    let version = running.version();
    emit(reporters, &Event::TargetStarted { target: &t.name, version: &version, addr: running.addr });
    let jobs = opts.jobs.unwrap_or(t.max_jobs).max(1);
    let sem = Arc::new(Semaphore::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    let mut results = Vec::with_capacity(scenarios.len());
    let shared = Arc::new((running.addr, running.creds.clone(), opts.peer.clone()));
    for (i, s) in scenarios.iter().enumerate() {
        if let Some(why) = t.unmet(s) {
            let r = not_run(t, &version, s, Outcome::Skip, why);
            emit(reporters, &Event::Result(&r));
            results.push(r);
            continue;
        }
        let sem = sem.clone();
        let shared = shared.clone();
        let scenarios = scenarios.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let (addr, creds, popts) = &*shared;
            let from = Instant::now();
            let run = peer::run(&scenarios[i], *addr, creds, popts).await;
            (i, run, from, Instant::now())
        });
    }
    let mut cancel = opts.cancel.clone();
    let mut interrupted = false;
    loop {
        tokio::select! {
            next = set.join_next() => match next {
                None => break,
                Some(Ok((i, run, from, to))) => {
                    let s = &scenarios[i];
                    let r = result_of(t, &version, s, run, running.logs.between(from, to + Duration::from_millis(50)));
                    emit(reporters, &Event::Result(&r));
                    results.push(r);
                }
                Some(Err(e)) => {
                    // A panicking scenario is a harness bug; it must not take the run down with it.
                    emit(reporters, &Event::Warning { message: &format!("a scenario task failed: {e}") });
                }
            },
            _ = cancel.changed() => {
                if *cancel.borrow() {
                    set.abort_all();
                    interrupted = true;
                    break;
                }
            }
        }
    }
    let banner = running.banner.clone();
    running.stop().await;
    (results, version, banner, None, interrupted)
}
