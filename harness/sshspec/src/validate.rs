//! `sshspec validate`: the mutation check of the catalogue. The fixture server runs the catalogue
//! as it is (every scenario must PASS or SKIP), and once per deviation, made to break one rule,
//! the scenarios citing that rule's clauses (at least one must FAIL, or the catalogue is blind to
//! the deviation). All instances run side by side in one run, in-process.

use crate::report::Reporter;
use crate::run::{self, RunOptions};
use crate::script::Scenario;
use crate::script::clauses::Registry;
use crate::server::Deviation;
use crate::targets::{self, TargetInfo};
use crate::verdict::{Outcome, ScenarioResult};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The conforming fixture's target name; a deviant one is `fixture~NAME`.
pub const FIXTURE: &str = "fixture";

/// The record of the catalogue's validation, beside the scenarios: for each scenario, the
/// fixture deviations it has been seen to FAIL on. `sshspec validate --record` writes it,
/// `sshspec coverage` counts the clauses those scenarios cite as validated, and
/// tests/validate.rs keeps it true.
pub const RECORD_FILE: &str = "validated.toml";

/// Deviations a scenario catches in some runs and not in others, by timing (data-during-own-rekey:
/// download-256k-repeatedly sees the deviant's data only when it was already in the window as the
/// deviant's rekey began, about one run in six). They are left out of the record, so coverage
/// never counts a catch a rerun could lose.
pub const SOMETIMES_CAUGHT: &[&str] = &["data-during-own-rekey"];

/// Scenario id to the deviations it catches.
pub type Record = BTreeMap<String, BTreeSet<String>>;

/// The record as its file holds it.
pub fn record_text(r: &Record) -> String {
    let mut out = String::from(
        "# Written by `sshspec validate --record`; do not edit. For each scenario, the fixture deviations\n\
         # (harness/sshspec/src/server/deviation.rs) it has been seen to FAIL on, each breaking a clause\n\
         # the scenario cites: the proof that the scenario can fail. `sshspec coverage` counts the\n\
         # clauses of these scenarios as validated.\n",
    );
    for (id, devs) in r {
        let devs: Vec<String> = devs.iter().map(|d| format!("{d:?}")).collect();
        out.push_str(&format!("{id:?} = [{}]\n", devs.join(", ")));
    }
    out
}

/// Reads the record in `scenarios_dir`; none yet is an empty record.
pub fn read_record(scenarios_dir: &std::path::Path) -> Result<Record, String> {
    let path = scenarios_dir.join(RECORD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What one deviation did to the scenarios citing its clauses.
#[derive(Debug, Serialize)]
pub struct Mutant {
    pub deviation: &'static str,
    pub clauses: Vec<&'static str>,
    pub what: &'static str,
    /// The registry document of its first clause (`RFC 4253`).
    pub document: String,
    /// Scenarios that ran against it.
    pub ran: Vec<String>,
    /// Those that FAILed: the deviation is caught (killed) when this is not empty.
    pub killed_by: Vec<String>,
    /// How many of those FAILs were a missed deadline (the deviant server stayed silent), not a
    /// wrong answer.
    pub killed_by_deadline: usize,
    /// Those that ended otherwise than PASS or FAIL, with the outcome (a setup step the deviation
    /// broke gives INCONCLUSIVE: not a catch).
    pub other: Vec<(String, Outcome)>,
}

impl Mutant {
    pub fn killed(&self) -> bool {
        !self.killed_by.is_empty()
    }
}

/// Mutation score of one document: deviations caught over deviations.
#[derive(Debug, Serialize)]
pub struct DocumentScore {
    pub document: String,
    pub deviations: usize,
    pub killed: usize,
}

#[derive(Debug, Serialize)]
pub struct Validation {
    /// The conforming fixture's results that are not PASS or SKIP (empty when the catalogue holds).
    pub conforming_failures: Vec<(String, Outcome, String)>,
    pub conforming_passed: usize,
    pub conforming_skipped: Vec<(String, String)>,
    pub mutants: Vec<Mutant>,
    pub documents: Vec<DocumentScore>,
    /// Scenarios that ran against some deviation and never FAILed.
    pub blind: Vec<String>,
    /// Scenarios no deviation's clauses reach.
    pub unexercised: Vec<String>,
    pub duration_ms: u64,
    /// The longest scenario runs, longest first: (fixture, scenario, outcome, milliseconds). The
    /// check can end no sooner than the longest.
    pub slowest: Vec<(String, String, Outcome, u64)>,
}

/// How many of the longest runs the report names.
const SLOWEST: usize = 5;

impl Validation {
    pub fn killed(&self) -> usize {
        self.mutants.iter().filter(|m| m.killed()).count()
    }

    /// Deviations caught over deviations, in percent.
    pub fn score(&self) -> f64 {
        if self.mutants.is_empty() { 100.0 } else { 100.0 * self.killed() as f64 / self.mutants.len() as f64 }
    }

    pub fn survivors(&self) -> impl Iterator<Item = &Mutant> {
        self.mutants.iter().filter(|m| !m.killed())
    }

    /// For each scenario, the deviations it caught (each citing a clause the scenario cites).
    pub fn kills(&self) -> Record {
        let mut r = Record::new();
        for m in self.mutants.iter().filter(|m| !SOMETIMES_CAUGHT.contains(&m.deviation)) {
            for id in &m.killed_by {
                r.entry(id.clone()).or_default().insert(m.deviation.to_owned());
            }
        }
        r
    }

    /// The report as text: per document, the survivors, the blind scenarios.
    pub fn text(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!(
            "conforming fixture: {} passed, {} skipped, {} other\n",
            self.conforming_passed,
            self.conforming_skipped.len(),
            self.conforming_failures.len()
        ));
        for (id, outcome, why) in &self.conforming_failures {
            o.push_str(&format!("  {outcome:?} {id}: {why}\n"));
        }
        o.push_str(&format!(
            "\nmutation score: {}/{} deviations caught ({:.1}%)\n\n| document | deviations | caught |\n|---|---:|---:|\n",
            self.killed(),
            self.mutants.len(),
            self.score()
        ));
        for d in &self.documents {
            o.push_str(&format!("| {} | {} | {} |\n", d.document, d.deviations, d.killed));
        }
        let survivors: Vec<&Mutant> = self.survivors().collect();
        if !survivors.is_empty() {
            o.push_str("\nsurviving deviations (no scenario citing their clauses FAILed):\n");
            for m in survivors {
                let ran = if m.ran.is_empty() {
                    "no scenario cites these clauses".to_owned()
                } else {
                    format!("ran {}", m.ran.join(", "))
                };
                o.push_str(&format!("  {} [{}]: {}; {ran}\n", m.deviation, m.clauses.join(", "), m.what));
                for (id, outcome) in &m.other {
                    o.push_str(&format!("    {outcome:?} {id}\n"));
                }
            }
        }
        if !self.blind.is_empty() {
            o.push_str(&format!(
                "\nblind scenarios (ran against a deviation of a clause they cite, never FAILed): {}\n",
                self.blind.len()
            ));
            for id in &self.blind {
                o.push_str(&format!("  {id}\n"));
            }
        }
        o.push_str(&format!("\n{} scenario(s) cite no clause any deviation breaks\n", self.unexercised.len()));
        if !self.slowest.is_empty() {
            o.push_str("\nlongest runs:\n");
            for (target, id, outcome, ms) in &self.slowest {
                o.push_str(&format!("  {:>6.1} s  {outcome:?} {id} on {target}\n", *ms as f64 / 1000.0));
            }
        }
        o
    }
}

/// Scenario ids citing any of `clauses`.
fn citing(scenarios: &[Scenario], clauses: &[&str]) -> BTreeSet<String> {
    scenarios.iter().filter(|s| s.clauses.iter().any(|c| clauses.contains(&c.as_str()))).map(|s| s.id.clone()).collect()
}

/// Runs the check: `scenarios` against the conforming fixture, and against each of `deviations`.
pub async fn validate(
    scenarios: &[Scenario],
    deviations: &[&'static Deviation],
    opts: &RunOptions,
    reporters: &mut [Box<dyn Reporter>],
) -> Result<Validation, String> {
    let base = targets::find(FIXTURE)?;
    let registry = Registry::builtin()?;
    let mut infos: Vec<TargetInfo> = vec![base.clone()];
    let mut select: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    select.insert(FIXTURE.into(), scenarios.iter().map(|s| s.id.clone()).collect());
    for d in deviations {
        let mut t = base.clone();
        t.name = format!("{FIXTURE}~{}", d.name);
        t.config.push(format!("deviate {}", d.name));
        select.insert(t.name.clone(), citing(scenarios, d.clauses));
        infos.push(t);
    }
    let opts = RunOptions { select: Some(Arc::new(select.clone())), ..opts.clone() };
    let summary = run::run(&infos, scenarios, &opts, reporters).await;
    let by_target =
        |name: &str| -> Vec<&ScenarioResult> { summary.results.iter().filter(|r| r.target == name).collect() };
    let conforming = by_target(FIXTURE);
    let mut v = Validation {
        conforming_failures: conforming
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Pass | Outcome::Skip))
            .map(|r| {
                (
                    r.scenario.clone(),
                    r.outcome,
                    r.reason.clone().or_else(|| r.evidence.as_ref().map(|e| e.actual.clone())).unwrap_or_default(),
                )
            })
            .collect(),
        conforming_passed: conforming.iter().filter(|r| r.outcome == Outcome::Pass).count(),
        conforming_skipped: conforming
            .iter()
            .filter(|r| r.outcome == Outcome::Skip)
            .map(|r| (r.scenario.clone(), r.reason.clone().unwrap_or_default()))
            .collect(),
        mutants: Vec::new(),
        documents: Vec::new(),
        blind: Vec::new(),
        unexercised: Vec::new(),
        duration_ms: summary.duration_ms,
        slowest: {
            let mut runs: Vec<&ScenarioResult> = summary.results.iter().collect();
            runs.sort_by_key(|r| std::cmp::Reverse(r.duration_ms));
            runs.iter()
                .take(SLOWEST)
                .map(|r| (r.target.clone(), r.scenario.clone(), r.outcome, r.duration_ms))
                .collect()
        },
    };
    let mut ran_any: BTreeSet<String> = BTreeSet::new();
    let mut failed_any: BTreeSet<String> = BTreeSet::new();
    for d in deviations {
        let results = by_target(&format!("{FIXTURE}~{}", d.name));
        let m = Mutant {
            deviation: d.name,
            clauses: d.clauses.to_vec(),
            what: d.what,
            document: d.clauses.first().and_then(|c| registry.document_of(c)).unwrap_or_default(),
            ran: results.iter().map(|r| r.scenario.clone()).collect(),
            killed_by: results.iter().filter(|r| r.outcome == Outcome::Fail).map(|r| r.scenario.clone()).collect(),
            killed_by_deadline: results
                .iter()
                .filter(|r| r.outcome == Outcome::Fail && r.evidence.as_ref().is_some_and(|e| e.timed_out))
                .count(),
            other: results
                .iter()
                .filter(|r| !matches!(r.outcome, Outcome::Pass | Outcome::Fail))
                .map(|r| (r.scenario.clone(), r.outcome))
                .collect(),
        };
        ran_any.extend(results.iter().filter(|r| r.outcome != Outcome::Skip).map(|r| r.scenario.clone()));
        failed_any.extend(m.killed_by.iter().cloned());
        v.mutants.push(m);
    }
    let mut docs: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in &v.mutants {
        let e = docs.entry(m.document.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(m.killed());
    }
    v.documents = docs
        .into_iter()
        .map(|(document, (deviations, killed))| DocumentScore { document, deviations, killed })
        .collect();
    v.blind = ran_any.difference(&failed_any).cloned().collect();
    v.unexercised = scenarios.iter().map(|s| s.id.clone()).filter(|id| !ran_any.contains(id)).collect();
    Ok(v)
}
