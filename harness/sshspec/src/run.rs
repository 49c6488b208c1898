//! The runner: starts each target, runs the selected scenarios against it (concurrently, up to the
//! target's limit), turns each run into a [`ScenarioResult`] and emits typed [`Event`]s that the
//! report consumers turn into console output, JSON and JUnit.

use crate::peer::{self, Credentials, Judgement};
use crate::report::{Event, Reporter};
use crate::script::Scenario;
use crate::targets::{self, BackendKind, StartError, TargetInfo};
use crate::verdict::{Outcome, ScenarioResult, Tally};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Clone)]
pub struct RunOptions {
    /// Concurrency per target; `None` uses the target's own limit.
    pub jobs: Option<usize>,
    pub peer: peer::Options,
    /// In CI a target that cannot start is an ERROR, never a SKIP.
    pub ci: bool,
    /// Credentials to use instead of generated ones (a remote target's user; known ones in tests).
    pub creds: Option<Credentials>,
    /// Set to true to stop the run (Ctrl-C); what finished is still reported.
    pub cancel: watch::Receiver<bool>,
    /// The whole run's deadline: scenarios not finished by then end in ERROR.
    pub run_timeout: Option<Duration>,
    /// Scenarios running at once over all targets together (`--max-connections`); `None` sizes
    /// it to the machine ([`default_budget`]). Each target's own limit still applies within it.
    pub budget: Option<usize>,
    /// Run only this part of the (target, scenario) pairs ([`crate::shard::assign`]).
    pub shard: Option<crate::shard::Shard>,
    /// Run only these scenario ids per target name (`sshspec validate`: each deviant fixture runs
    /// the scenarios citing what it breaks). A target with none is not started.
    pub select: Option<Arc<BTreeMap<String, BTreeSet<String>>>>,
    /// Run a scenario that FAILed on a missed deadline, or found the connection closed before the
    /// server's identification, again alone before its verdict stands (the default). `sshspec
    /// validate` turns it off: its deviant fixtures are meant to miss deadlines, and the
    /// conforming fixture, passing in the same run, is the control for load.
    pub retry_alone: bool,
}

/// Target limits, generated credentials, no deadline, not CI, and a cancel switch nobody holds
/// (the run is never cancelled).
impl Default for RunOptions {
    fn default() -> Self {
        let (_, cancel) = watch::channel(false);
        RunOptions {
            jobs: None,
            peer: peer::Options::default(),
            ci: false,
            creds: None,
            cancel,
            run_timeout: None,
            budget: None,
            shard: None,
            select: None,
            retry_alone: true,
        }
    }
}

/// Scenarios at once for the whole run: twelve per core, and never under 24, one OpenSSH target's
/// own limit. Targets side by side share it, so twelve targets on two cores do not run 200
/// handshakes at once and miss deadlines the servers kept.
pub fn default_budget() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    (cores * 12).max(24)
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct TargetSummary {
    pub name: String,
    pub server: String,
    pub backend: BackendKind,
    pub version: String,
    pub banner: String,
    pub tally: Tally,
    /// Start, scenarios and stop.
    pub duration_ms: u64,
    /// Starting the target until its banner could be read.
    pub start_ms: u64,
    /// From the target being ready to the last verdict.
    pub scenarios_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Who answered: host keys and the algorithms most scenarios negotiated.
    pub identity: TargetIdentity,
    /// What the probe saw the target offer before any scenario ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<peer::Profile>,
    /// Scenarios that FAILed on a deadline under load and PASSed when run again alone.
    pub load_sensitive: usize,
    /// Where the host key it was held to came from, when it was pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_source: Option<String>,
}

/// A target's identity as its scenarios saw it, for certification reports and comparisons.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TargetIdentity {
    /// Host key algorithm to its SHA256 fingerprint, for every host key any scenario saw.
    pub host_keys: BTreeMap<String, String>,
    /// The algorithms negotiated most often (scenarios that pin none get the server's preference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<crate::transport::negotiate::Negotiated>,
}

impl TargetIdentity {
    pub fn from_results(results: &[ScenarioResult]) -> Self {
        let mut id = TargetIdentity::default();
        let mut counts: Vec<(&crate::transport::negotiate::Negotiated, usize)> = Vec::new();
        for i in results.iter().filter_map(|r| r.identity.as_ref()) {
            if let (Some(fp), Some(n)) = (&i.host_key, &i.negotiated) {
                id.host_keys.entry(n.host_key.clone()).or_insert_with(|| fp.clone());
            }
            if let Some(n) = &i.negotiated {
                match counts.iter_mut().find(|(m, _)| *m == n) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((n, 1)),
                }
            }
        }
        // The first of the most frequent, so ties go to the earliest scenario (results are sorted).
        let best = counts.iter().map(|(_, c)| *c).max().unwrap_or(0);
        id.negotiated = counts.iter().find(|(_, c)| *c == best).map(|(n, _)| (*n).clone());
        id
    }
}

/// Which scenario files a run judged: two reports with the same digest ran the same files.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ScenarioSet {
    pub count: usize,
    /// [`crate::script::set_digest`].
    pub digest: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Summary {
    pub scenario_set: ScenarioSet,
    pub targets: Vec<TargetSummary>,
    pub results: Vec<ScenarioResult>,
    pub duration_ms: u64,
    pub interrupted: bool,
    /// The part of a sharded run this report holds (`--shard`); absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// The shards `sshspec merge` joined into this report; empty for a run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_shards: Vec<crate::shard::Shard>,
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
pub fn result_of(
    t: &TargetInfo,
    version: &str,
    s: &Scenario,
    run: peer::Run,
    server_log: Vec<String>,
) -> ScenarioResult {
    let expected = t.expected_failures.get(&s.id);
    let (outcome, evidence, reason) = match (run.judgement, expected) {
        (Judgement::Inconclusive(e), _) => {
            let rule = s.steps.get(e.step.wrapping_sub(1)).and_then(|st| st.setup_rule());
            let reason = format!(
                "setup step {}{} failed, so the clause under test was not reached: expected {}; got {}",
                e.step,
                rule.map(|r| format!(" ({r})")).unwrap_or_default(),
                e.expected,
                e.actual
            );
            (Outcome::Inconclusive, Some(e), Some(reason))
        }
        (Judgement::Unsupported(why), _) => (Outcome::Skip, None, Some(why)),
        (Judgement::Pass, None) => (Outcome::Pass, None, None),
        (Judgement::Pass, Some(x)) => (
            Outcome::Xpass,
            None,
            Some(format!("expected to fail ({}) but passed: remove the entry if fixed", x.reason)),
        ),
        (Judgement::Fail(e), None) => (Outcome::Fail, Some(e), None),
        (Judgement::Fail(e), Some(x)) => match x.expects(&e) {
            Ok(()) => (Outcome::Xfail, Some(e), Some(x.reason.clone())),
            Err(different) => (Outcome::Fail, Some(e), Some(different)),
        },
        (Judgement::Error(e), _) => {
            let reason = e.actual.clone();
            (Outcome::Error, Some(e), Some(reason))
        }
    };
    // The server's log explains what went wrong; on a pass it is noise.
    let keep_log = outcome != Outcome::Pass;
    ScenarioResult {
        reason,
        evidence,
        duration_ms: run.duration.as_millis() as u64,
        identity: Some(run.identity),
        transcript: run.transcript,
        server_log: if keep_log { server_log } else { Vec::new() },
        ..not_run(t, version, s, outcome, String::new())
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
        reason: (!reason.is_empty()).then_some(reason),
        evidence: None,
        identity: None,
        transcript: Vec::new(),
        first_attempt: None,
        server_log: Vec::new(),
    }
}

/// Hands each event to every reporter; shared by the targets running side by side.
struct Emitter<'a>(std::sync::Mutex<&'a mut [Box<dyn Reporter>]>);

impl Emitter<'_> {
    fn emit(&self, e: &Event<'_>) {
        if let Ok(mut r) = self.0.lock() {
            r.iter_mut().for_each(|r| r.on_event(e));
        }
    }
}

/// Runs every scenario against every target; targets run side by side, each up to its own limit.
pub async fn run(
    targets: &[TargetInfo],
    scenarios: &[Scenario],
    opts: &RunOptions,
    reporters: &mut [Box<dyn Reporter>],
) -> Summary {
    let started = Instant::now();
    let out = Emitter(std::sync::Mutex::new(reporters));
    // Each target's scenarios: all of them, or this shard's part; a shard leaves out the targets
    // it has nothing of, so they are not even started.
    let parts: Vec<Arc<Vec<Scenario>>> = match opts.shard {
        None => {
            // One copy shared by every target.
            let all = Arc::new(scenarios.to_vec());
            targets.iter().map(|_| all.clone()).collect()
        }
        Some(shard) => {
            let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
            crate::shard::assign(&names, scenarios, shard)
                .into_iter()
                .map(|picked| Arc::new(picked.into_iter().map(|i| scenarios[i].clone()).collect()))
                .collect()
        }
    };
    let parts: Vec<Arc<Vec<Scenario>>> = match &opts.select {
        None => parts,
        Some(select) => targets
            .iter()
            .zip(parts)
            .map(|(t, p)| {
                let wanted = select.get(&t.name);
                Arc::new(p.iter().filter(|s| wanted.is_some_and(|w| w.contains(&s.id))).cloned().collect())
            })
            .collect(),
    };
    let partial = opts.shard.is_some() || opts.select.is_some();
    let (targets, parts): (Vec<&TargetInfo>, Vec<Arc<Vec<Scenario>>>) =
        targets.iter().zip(parts).filter(|(_, p)| !partial || !p.is_empty()).unzip();
    let started_targets: Vec<TargetInfo> = targets.iter().map(|t| (*t).clone()).collect();
    out.emit(&Event::RunStarted {
        targets: &started_targets,
        scenarios: scenarios.len(),
        pairs: parts.iter().map(|p| p.len()).sum(),
        shard: opts.shard,
    });
    let deadline = opts.run_timeout.map(|d| tokio::time::Instant::now() + d);
    // One set of credentials per run: the process targets share one system user, and they start
    // side by side.
    let creds = opts.creds.clone().unwrap_or_else(|| Credentials::generate(targets::TEST_USER));
    let gate = Gate::new(opts.budget.unwrap_or_else(default_budget));
    let runs = targets.iter().zip(&parts).map(|(t, scenarios)| {
        let (out, creds, gate) = (&out, &creds, &gate);
        async move {
            let t_started = Instant::now();
            let TargetRun { mut results, version, banner, unavailable, interrupted, start_ms, scenarios_ms, profile } =
                run_target(t, scenarios, opts, creds, deadline, out, gate).await;
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
                start_ms,
                scenarios_ms,
                unavailable,
                identity: TargetIdentity::from_results(&results),
                profile,
                load_sensitive: results
                    .iter()
                    .filter(|r| r.first_attempt.is_some() && r.outcome == Outcome::Pass)
                    .count(),
                host_key_source: t.host_key_source.clone(),
            };
            out.emit(&Event::TargetFinished { summary: &ts });
            (ts, results, interrupted)
        }
    });
    let scenario_set = ScenarioSet { count: scenarios.len(), digest: crate::script::set_digest(scenarios) };
    let mut summary = Summary {
        scenario_set,
        targets: Vec::new(),
        results: Vec::new(),
        duration_ms: 0,
        interrupted: false,
        shard: opts.shard,
        merged_shards: Vec::new(),
    };
    for (ts, results, interrupted) in futures::future::join_all(runs).await {
        summary.targets.push(ts);
        summary.results.extend(results);
        summary.interrupted |= interrupted;
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    out.emit(&Event::RunFinished { summary: &summary });
    summary
}

/// What one target's run produced.
#[derive(Default)]
struct TargetRun {
    results: Vec<ScenarioResult>,
    version: String,
    banner: String,
    unavailable: Option<String>,
    interrupted: bool,
    /// Time to start the target until its banner could be read.
    start_ms: u64,
    /// Time from the target being ready to the last scenario's verdict.
    scenarios_ms: u64,
    profile: Option<peer::Profile>,
}

/// What every scenario run passes through, over all targets: the run's budget of scenarios at
/// once, and the lock that lets a scenario run alone. Each run holds a budget permit and a read
/// guard; a re-run takes the write guard, so nothing else runs anywhere while it does.
#[derive(Clone)]
struct Gate {
    budget: Arc<tokio::sync::Semaphore>,
    alone: Arc<tokio::sync::RwLock<()>>,
}

impl Gate {
    fn new(budget: usize) -> Self {
        Gate { budget: Arc::new(tokio::sync::Semaphore::new(budget.max(1))), alone: Arc::default() }
    }
}

/// Whether a result may be the machine's fault rather than the target's: it failed only because a
/// deadline passed, or the connection was closed at the version exchange, before the server
/// identified itself: what a server at its connection limit does (Dropbear counts connections
/// we have dropped until its child reaps them, so fast scenarios side by side can reach it). Such a
/// scenario is run again alone before its verdict stands.
pub fn may_be_load(s: &Scenario, j: &Judgement) -> bool {
    match j {
        Judgement::Fail(e) | Judgement::Inconclusive(e) if e.timed_out => true,
        Judgement::Fail(e) | Judgement::Inconclusive(e) => {
            e.kind == peer::FailureKind::Close
                && e.step
                    .checked_sub(1)
                    .and_then(|i| s.steps.get(i))
                    .is_some_and(|step| matches!(step.action, crate::script::Action::VersionExchange { .. }))
        }
        _ => false,
    }
}

type Done =
    tokio::sync::mpsc::UnboundedSender<(usize, Result<peer::Run, String>, Option<peer::Evidence>, Instant, Instant)>;

/// Runs one scenario in its own task, so a panic in it (a harness bug) is that scenario's ERROR;
/// aborting the caller (Ctrl-C, the run's deadline) aborts it too.
async fn run_job(
    shared: &Arc<(Credentials, peer::Options)>,
    scenarios: &Arc<Vec<Scenario>>,
    job: &Job,
) -> Result<peer::Run, String> {
    let (shared, scenarios, job) = (shared.clone(), scenarios.clone(), job.clone());
    let mut task = AbortOnDrop(tokio::spawn(async move {
        let (creds, popts) = &*shared;
        let popts = peer::Options { source: job.source, ssh_inner: job.inner, ..popts.clone() };
        peer::run(&scenarios[job.index], job.addr, creds, &popts).await
    }));
    (&mut task.0).await.map_err(|e| e.to_string())
}

/// Runs a target's deadline misses (and refusals at the door, [`may_be_load`]) again, one by one,
/// holding the run's write guard: nothing else runs anywhere meanwhile, so a miss that repeats is
/// the server's. Once [`CONFIRMED_MISSES_BEFORE_TRUST`] have repeated, the rest stand as they are.
async fn retry_alone(
    list: Vec<(Job, peer::Run, Instant)>,
    gate: &Gate,
    shared: &Arc<(Credentials, peer::Options)>,
    scenarios: &Arc<Vec<Scenario>>,
    done: &Done,
) {
    if list.is_empty() {
        return;
    }
    let _alone = gate.alone.clone().write_owned().await;
    let mut confirmed = 0;
    for (job, first, from) in list {
        let evidence = match &first.judgement {
            Judgement::Fail(e) | Judgement::Inconclusive(e) => Some(e.clone()),
            _ => None,
        };
        let (run, first) = if confirmed < CONFIRMED_MISSES_BEFORE_TRUST {
            let run = run_job(shared, scenarios, &job).await;
            if run.as_ref().is_ok_and(|r| may_be_load(&scenarios[job.index], &r.judgement)) {
                confirmed += 1;
            }
            (run, evidence)
        } else {
            (Ok(first), None)
        };
        if done.send((job.index, run, first, from, Instant::now())).is_err() {
            return;
        }
    }
}

/// After this many of a target's deadline misses were confirmed by running alone, its further
/// misses are the server's (a stalled or hostile server misses every deadline) and are not re-run:
/// re-running each alone would serialise the whole run behind it.
const CONFIRMED_MISSES_BEFORE_TRUST: u32 = 3;

/// What every step deadline gains for a target whose handshake took `handshake_ms` in the probe:
/// four handshakes (a step waits on a few round trips and some server work at most), capped so a
/// stalled probe cannot stretch a run without bound.
pub fn latency_allowance(handshake_ms: u64) -> Duration {
    Duration::from_millis(handshake_ms.saturating_mul(4)).min(Duration::from_secs(20))
}

/// A scenario that only connects and exchanges keys: how the host key is learned before any login.
fn host_key_probe() -> Scenario {
    use crate::script::{Action, Pins};
    Scenario::internal(
        "host-key-probe",
        Duration::from_secs(30),
        vec![
            Action::VersionExchange { banner: None, pre_banner: Vec::new() },
            Action::KeyExchange { pins: Pins::default(), with: toml::Table::new(), rekey: None, guess: false },
        ],
    )
}

/// With pinned host keys, the key is checked once before any scenario runs; a mismatch stops the
/// target's run before anything authenticates.
async fn check_pinned(
    t: &TargetInfo,
    addr: std::net::SocketAddr,
    creds: &Credentials,
    opts: &RunOptions,
) -> Result<(), String> {
    let source = t.host_key_source.as_deref().unwrap_or("--host-key");
    if t.pinned_host_keys.is_empty() {
        return match &t.host_key_source {
            Some(src) => Err(format!("host key unknown: {src} has no key for {}; nothing was run", t.name)),
            None => Ok(()),
        };
    }
    let run = peer::run(&host_key_probe(), addr, creds, &peer::Options { echo: false, ..opts.peer.clone() }).await;
    match (run.judgement, run.identity.host_key) {
        (_, Some(fp)) if t.pinned_host_keys.contains(&fp) => Ok(()),
        (_, Some(fp)) => Err(format!(
            "host key mismatch: {} presented {fp}, {source} holds {}; nothing was run",
            t.name,
            t.pinned_host_keys.join(", ")
        )),
        (Judgement::Fail(e) | Judgement::Inconclusive(e) | Judgement::Error(e), None) => {
            Err(format!("could not read the host key: {}", e.actual))
        }
        (Judgement::Unsupported(why), None) => Err(format!("could not read the host key: {why}")),
        (Judgement::Pass, None) => Err("the key exchange gave no host key".into()),
    }
}

/// A task that ends when its handle is dropped, not one that runs on unobserved.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One scenario ready to run: where to connect and from where.
#[derive(Clone)]
struct Job {
    index: usize,
    addr: std::net::SocketAddr,
    inner: Option<std::net::SocketAddr>,
    source: Option<std::net::IpAddr>,
}

/// Starts, side by side, every configuration variant instance the runnable scenarios need: once
/// per variant, or once per scenario for variants whose scenarios change the server's state.
async fn start_variants(
    t: &TargetInfo,
    scenarios: &[Scenario],
    creds: &Credentials,
) -> BTreeMap<String, Result<targets::Running, String>> {
    let mut wanted = BTreeMap::new();
    for s in scenarios.iter().filter(|s| t.unmet(s).is_none()) {
        if let (Some(key), Some(v)) = (TargetInfo::instance_key(s), &s.requires.variant) {
            wanted.entry(key).or_insert_with(|| v.clone());
        }
    }
    let starts = wanted.into_iter().map(|(key, v)| async move {
        let started = match t.with_variant(Some(&v)) {
            Ok(info) => targets::start(&info, Some(creds.clone())).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        (key, started)
    });
    futures::future::join_all(starts).await.into_iter().collect()
}

async fn run_target(
    t: &TargetInfo,
    scenarios: &Arc<Vec<Scenario>>,
    opts: &RunOptions,
    creds: &Credentials,
    deadline: Option<tokio::time::Instant>,
    out: &Emitter<'_>,
    gate: &Gate,
) -> TargetRun {
    let unavailable = |outcome: Outcome, reason: String| {
        out.emit(&Event::TargetUnavailable { target: &t.name, reason: &reason, outcome });
        let results: Vec<_> = scenarios.iter().map(|s| not_run(t, "", s, outcome, reason.clone())).collect();
        results.iter().for_each(|r| out.emit(&Event::Result(r)));
        TargetRun { results, unavailable: Some(reason), ..TargetRun::default() }
    };
    if *opts.cancel.borrow() {
        return unavailable(Outcome::Error, "the run was interrupted before this target started".into());
    }
    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
        return unavailable(Outcome::Error, "the run's deadline passed before this target started".into());
    }
    let start_clock = Instant::now();
    let creds = t.credentials.as_ref().unwrap_or(creds);
    let running = match targets::start(t, Some(creds.clone())).await {
        Ok(r) => r,
        Err(e) => {
            let (outcome, reason) = match &e {
                StartError::Missing(m) if !opts.ci => (Outcome::Skip, format!("target {} unavailable: {m}", t.name)),
                StartError::Missing(m) => (Outcome::Error, format!("target {} unavailable in CI: {m}", t.name)),
                StartError::Failed(m) => (Outcome::Error, format!("target {} did not start: {m}", t.name)),
            };
            return unavailable(outcome, reason);
        }
    };
    if let Err(why) = check_pinned(t, running.addr, &running.creds, opts).await {
        running.stop().await;
        return unavailable(Outcome::Error, why);
    }
    let start_ms = start_clock.elapsed().as_millis() as u64;
    // Probe, then judge: `requires`, the login method and our offers follow what the target offers.
    let mut profile = peer::probe::probe(running.addr, &running.creds, &opts.peer).await;
    let t = &TargetInfo { profile: Some(profile.clone()), ..t.clone() };
    let mut popts = opts.peer.clone();
    popts.pinned_host_keys = t.pinned_host_keys.clone();
    popts.login = t.login_method();
    popts.login_key = t.login_key();
    popts.extra = profile.extra_offers();
    popts.latency_allowance = latency_allowance(profile.handshake_ms);
    // Whether the programs' POSIX commands run there (only where a scenario runs a program).
    if scenarios.iter().any(|s| !s.programs().is_empty()) && profile.incomplete.is_none() {
        (profile.posix_shell, profile.shell_note) =
            peer::probe::probe_shell(running.addr, &running.creds, &popts).await;
    }
    let t = &TargetInfo { profile: Some(profile.clone()), ..t.clone() };
    popts.programs = t.programs();
    popts.capture = opts.peer.capture.as_ref().map(|d| d.join(&t.name));
    let scenarios_clock = Instant::now();
    let version = running.version();
    out.emit(&Event::TargetStarted { target: &t.name, version: &version, addr: running.addr });
    let jobs = opts.jobs.unwrap_or(t.max_jobs).max(1);
    let mut results = Vec::with_capacity(scenarios.len());
    let variants = start_variants(t, scenarios, creds).await;
    let address_of = |key: &Option<String>| match key {
        None => Ok((running.addr, running.inner, running.logs.clone())),
        Some(v) => match variants.get(v) {
            Some(Ok(r)) => Ok((r.addr, r.inner, r.logs.clone())),
            Some(Err(e)) => Err(format!("the {v} variant of {} did not start: {e}", t.name)),
            None => Err(format!("the {v} variant of {} was not started", t.name)),
        },
    };
    let mut queue = Vec::new();
    let mut logs_of = Vec::with_capacity(scenarios.len());
    for (i, s) in scenarios.iter().enumerate() {
        let instance = address_of(&TargetInfo::instance_key(s));
        logs_of.push(instance.as_ref().map(|(_, _, l)| l.clone()).unwrap_or_else(|_| running.logs.clone()));
        let (outcome, why) = match (t.unmet(s), instance) {
            (None, Ok((addr, inner, _))) => {
                queue.push(Job { index: i, addr, inner, source: t.source_address(i, addr) });
                continue;
            }
            (Some(why), _) => (Outcome::Skip, why),
            (None, Err(why)) => (Outcome::Error, why),
        };
        let r = not_run(t, &version, s, outcome, why);
        out.emit(&Event::Result(&r));
        results.push(r);
    }
    // Costliest first (ties in id order): a long scenario started last would trail alone behind
    // the rest; started first it overlaps them. Workers take the next job as they finish one.
    queue.sort_by_key(|j| std::cmp::Reverse(scenarios[j.index].expected_cost()));
    let mut pending: Vec<usize> = queue.iter().map(|j| j.index).collect();
    let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(queue)));
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new((running.creds.clone(), popts));
    // Connections to the target are spaced by its connect interval (remote devices may rate-limit).
    let pace = Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now()));
    let mut workers = tokio::task::JoinSet::new();
    // Deadline misses wait here until every worker is done; then they are run again one by one
    // with the run to themselves (see `retry_alone`).
    let retries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let finished = Arc::new(tokio::sync::Semaphore::new(0));
    let worker_count = jobs.min(pending.len());
    let expected_fail: Arc<std::collections::BTreeSet<usize>> = Arc::new(
        scenarios.iter().enumerate().filter(|(_, s)| t.expected_failures.contains_key(&s.id)).map(|(i, _)| i).collect(),
    );
    let retry = opts.retry_alone;
    for _ in 0..worker_count {
        let expected_fail = expected_fail.clone();
        let (queue, shared, scenarios, pace, done, gate, retries, finished) = (
            queue.clone(),
            shared.clone(),
            scenarios.clone(),
            pace.clone(),
            done_tx.clone(),
            gate.clone(),
            retries.clone(),
            finished.clone(),
        );
        let interval = t.connect_interval;
        workers.spawn(async move {
            while let Some(job) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                let from = Instant::now();
                let run = {
                    // The budget is taken before the guard, so a re-run waiting for the write
                    // guard never waits on a permit held by a worker that waits on it.
                    let _permit = gate.budget.clone().acquire_owned().await.ok();
                    let _shared = gate.alone.clone().read_owned().await;
                    if !interval.is_zero() {
                        let mut next = pace.lock().await;
                        tokio::time::sleep_until(*next).await;
                        *next = tokio::time::Instant::now() + interval;
                    }
                    run_job(&shared, &scenarios, &job).await
                };
                // A deadline miss in a scenario the target is expected to fail is an XFAIL either
                // way: only a miss that could hide a PASS is worth the run to itself.
                let expected = expected_fail.contains(&job.index);
                match run {
                    Ok(r) if retry && may_be_load(&scenarios[job.index], &r.judgement) && !expected => {
                        if let Ok(mut l) = retries.lock() {
                            l.push((job, r, from));
                        }
                    }
                    run => {
                        if done.send((job.index, run, None, from, Instant::now())).is_err() {
                            break;
                        }
                    }
                }
            }
            finished.add_permits(1);
        });
    }
    {
        let (shared, scenarios, done, gate) = (shared.clone(), scenarios.clone(), done_tx.clone(), gate.clone());
        workers.spawn(async move {
            let _ = finished.acquire_many(worker_count as u32).await;
            let list = retries.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
            retry_alone(list, &gate, &shared, &scenarios, &done).await;
        });
    }
    drop(done_tx);
    let mut cancel = opts.cancel.clone();
    let mut interrupted = false;
    let run_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(run_deadline);
    loop {
        tokio::select! {
            next = done.recv() => match next {
                None => break,
                Some((i, run, first, from, to)) => {
                    pending.retain(|p| *p != i);
                    let s = &scenarios[i];
                    let mut r = match run {
                        Ok(run) => result_of(t, &version, s, run, logs_of[i].between(from, to + Duration::from_millis(50))),
                        Err(panic) => not_run(t, &version, s, Outcome::Error, format!("harness bug: the scenario's task failed: {panic}")),
                    };
                    if let Some(e) = first {
                        if r.outcome == Outcome::Pass {
                            r.reason = Some(format!(
                                "load-sensitive: under load step {} failed ({}); run again alone it passed",
                                e.step, e.actual
                            ));
                        }
                        r.first_attempt = Some(e);
                    }
                    out.emit(&Event::Result(&r));
                    results.push(r);
                }
            },
            // A dropped sender means nobody can cancel: the branch is then disabled, not spun on.
            Ok(()) = cancel.changed() => {
                if *cancel.borrow() {
                    workers.abort_all();
                    interrupted = true;
                    break;
                }
            }
            _ = &mut run_deadline => {
                workers.abort_all();
                for &i in &pending {
                    let r = not_run(t, &version, &scenarios[i], Outcome::Error, "the run's deadline (--run-timeout) passed before this scenario finished".into());
                    out.emit(&Event::Result(&r));
                    results.push(r);
                }
                break;
            }
        }
    }
    let scenarios_ms = scenarios_clock.elapsed().as_millis() as u64;
    let banner = running.banner.clone();
    running.stop().await;
    for v in variants.into_values().flatten() {
        v.stop().await;
    }
    TargetRun {
        results,
        version,
        banner,
        unavailable: None,
        interrupted,
        start_ms,
        scenarios_ms,
        profile: Some(profile),
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;
    use crate::peer::{Evidence, FailureKind};

    fn evidence(step: usize, kind: FailureKind, timed_out: bool) -> Evidence {
        Evidence { step, line: 0, expected: String::new(), actual: String::new(), timed_out, kind }
    }

    #[test]
    fn a_refusal_at_the_version_exchange_may_be_load_and_a_close_later_is_not() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let s = crate::script::load_file(&dir, &dir.join("transport/kex/server-kexinit-is-well-formed.toml"))
            .expect("the scenario loads")
            .remove(0);
        assert!(matches!(s.steps[0].action, crate::script::Action::VersionExchange { .. }));
        let inconclusive = |e| Judgement::Inconclusive(e);
        assert!(may_be_load(&s, &inconclusive(evidence(1, FailureKind::Close, false))));
        assert!(may_be_load(&s, &Judgement::Fail(evidence(2, FailureKind::Timeout, true))));
        assert!(!may_be_load(&s, &Judgement::Fail(evidence(2, FailureKind::Close, false))));
        assert!(!may_be_load(&s, &inconclusive(evidence(1, FailureKind::Answer, false))));
    }
}
