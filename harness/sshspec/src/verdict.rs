//! Outcomes and results: what the runner emits and every report consumes.

use crate::peer::{Evidence, Identity};
use crate::script::Level;
use crate::transcript::Entry;
use serde::{Deserialize, Serialize};

/// PASS and FAIL judge the target; ERROR means the harness could not judge; XFAIL/XPASS are
/// failures and passes of scenarios the target's description expects to fail; INCONCLUSIVE means a
/// setup step failed, so the clause under test was never reached (the setup step's own scenarios
/// judge that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Fail,
    Xfail,
    Xpass,
    Skip,
    Inconclusive,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Xfail,
        Outcome::Xpass,
        Outcome::Skip,
        Outcome::Inconclusive,
        Outcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Xfail => "XFAIL",
            Outcome::Xpass => "XPASS",
            Outcome::Skip => "SKIP",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Error => "ERROR",
        }
    }

    /// Whether this outcome makes the run non-conforming (exit code 1).
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Xpass)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One scenario against one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub target: String,
    pub target_version: String,
    pub outcome: Outcome,
    pub level: Level,
    pub spec: String,
    pub clauses: Vec<String>,
    pub title: String,
    pub duration_ms: u64,
    /// Why: the skip reason, the expected-failure reason, or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub transcript: Vec<Entry>,
    /// When the first attempt FAILed on a deadline and the scenario was run again alone: what
    /// that first attempt saw. The outcome is the lone run's; a PASS here is load-sensitive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_attempt: Option<Evidence>,
    /// The server's log lines written while the scenario ran (process targets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_log: Vec<String>,
}

/// Counts of each outcome.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub xfail: usize,
    pub xpass: usize,
    pub skip: usize,
    pub inconclusive: usize,
    pub error: usize,
}

impl Tally {
    pub fn add(&mut self, o: Outcome) {
        *self.slot(o) += 1;
    }

    fn slot(&mut self, o: Outcome) -> &mut usize {
        match o {
            Outcome::Pass => &mut self.pass,
            Outcome::Fail => &mut self.fail,
            Outcome::Xfail => &mut self.xfail,
            Outcome::Xpass => &mut self.xpass,
            Outcome::Skip => &mut self.skip,
            Outcome::Inconclusive => &mut self.inconclusive,
            Outcome::Error => &mut self.error,
        }
    }

    pub fn get(&self, o: Outcome) -> usize {
        match o {
            Outcome::Pass => self.pass,
            Outcome::Fail => self.fail,
            Outcome::Xfail => self.xfail,
            Outcome::Xpass => self.xpass,
            Outcome::Skip => self.skip,
            Outcome::Inconclusive => self.inconclusive,
            Outcome::Error => self.error,
        }
    }

    pub fn total(&self) -> usize {
        Outcome::ALL.iter().map(|o| self.get(*o)).sum()
    }
}
