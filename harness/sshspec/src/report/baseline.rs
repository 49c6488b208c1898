//! Baselines: this run against a saved `report.json`. A scenario regressed when it was fine in the
//! baseline (PASS, XFAIL or SKIP) and is bad now (FAIL, XPASS or ERROR); it improved the other way
//! round. With `--baseline FILE` the exit code counts regressions only, so a CI job can gate on
//! "nothing got worse" while known failures are being worked on.

use crate::run::Summary;
use crate::verdict::Outcome;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

#[derive(Deserialize)]
struct SavedResult {
    scenario: String,
    target: String,
    outcome: Outcome,
}

#[derive(Deserialize)]
struct Saved {
    schema_version: u32,
    #[serde(default)]
    scenario_set: Option<crate::run::ScenarioSet>,
    results: Vec<SavedResult>,
}

/// A saved run's verdicts, keyed by (target, scenario).
pub struct Baseline {
    pub path: String,
    pub digest: Option<String>,
    pub outcomes: BTreeMap<(String, String), Outcome>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let saved: Saved =
            serde_json::from_str(&text).map_err(|e| format!("{}: not an sshspec report.json: {e}", path.display()))?;
        // Version 1 differs only by what it lacks (INCONCLUSIVE, profiles), so its outcomes compare as they are.
        if !(1..=super::json::SCHEMA_VERSION).contains(&saved.schema_version) {
            return Err(format!(
                "{}: schema_version {} (this sshspec reads {})",
                path.display(),
                saved.schema_version,
                super::json::SCHEMA_VERSION
            ));
        }
        Ok(Baseline {
            path: path.display().to_string(),
            digest: saved.scenario_set.map(|s| s.digest),
            outcomes: saved.results.into_iter().map(|r| ((r.target, r.scenario), r.outcome)).collect(),
        })
    }
}

fn bad(o: Outcome) -> bool {
    matches!(o, Outcome::Fail | Outcome::Xpass | Outcome::Error)
}

/// One scenario whose verdict changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Change {
    pub target: String,
    pub scenario: String,
    pub before: Option<Outcome>,
    pub now: Outcome,
}

#[derive(Debug, Default)]
pub struct Comparison {
    pub baseline: String,
    /// Fine before, bad now.
    pub regressions: Vec<Change>,
    /// Bad before, fine now.
    pub fixed: Vec<Change>,
    /// Any other change of verdict (PASS to XFAIL, SKIP to PASS, ...).
    pub changed: Vec<Change>,
    /// Bad now and absent from the baseline: new scenarios or targets, not counted as regressions.
    pub new_failing: Vec<Change>,
    /// In the baseline but not run now.
    pub missing: usize,
    /// The scenario files differ from the baseline's.
    pub set_differs: bool,
}

impl Comparison {
    pub fn new(base: &Baseline, now: &Summary) -> Self {
        let mut c = Comparison { baseline: base.path.clone(), ..Default::default() };
        c.set_differs = base.digest.as_ref().is_some_and(|d| *d != now.scenario_set.digest);
        let mut seen = 0;
        for r in &now.results {
            let key = (r.target.clone(), r.scenario.clone());
            let before = base.outcomes.get(&key).copied();
            let change = Change { target: r.target.clone(), scenario: r.scenario.clone(), before, now: r.outcome };
            match before {
                None if bad(r.outcome) => c.new_failing.push(change),
                None => {}
                Some(b) => {
                    seen += 1;
                    if !bad(b) && bad(r.outcome) {
                        c.regressions.push(change);
                    } else if bad(b) && !bad(r.outcome) {
                        c.fixed.push(change);
                    } else if b != r.outcome {
                        c.changed.push(change);
                    }
                }
            }
        }
        c.missing = base.outcomes.len() - seen;
        c
    }

    pub fn markdown(&self) -> String {
        let mut o = format!("# Compared with {}\n\n", self.baseline);
        if self.set_differs {
            o.push_str("The scenario files differ from the baseline's (set digests differ).\n\n");
        }
        let _ = writeln!(
            o,
            "{} regression(s), {} fixed, {} other change(s), {} new failing, {} not run now.\n",
            self.regressions.len(),
            self.fixed.len(),
            self.changed.len(),
            self.new_failing.len(),
            self.missing
        );
        for (title, list) in [
            ("Newly failing (regressions)", &self.regressions),
            ("Newly passing", &self.fixed),
            ("Other changes", &self.changed),
            ("Failing, not in the baseline", &self.new_failing),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(o, "## {title}\n");
            for ch in list {
                let before = ch.before.map_or("(absent)".to_string(), |b| b.to_string());
                let _ = writeln!(o, "- {} `{}`: {before} → {}", ch.target, ch.scenario, ch.now);
            }
            o.push('\n');
        }
        o
    }

    /// The run's exit code when judged against the baseline: only regressions make it non-zero.
    pub fn exit_code(&self, now: &Summary) -> u8 {
        if now.interrupted {
            crate::exit::INTERRUPTED
        } else if !self.regressions.is_empty() {
            crate::exit::NONCONFORMING
        } else {
            crate::exit::OK
        }
    }
}
