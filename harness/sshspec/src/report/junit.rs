//! `junit.xml` in the shape CI systems render: one testsuite per target, FAIL and XPASS as
//! failures, ERROR as errors, SKIP as skipped with its reason, the transcript in system-out.

use super::transcript_text;
use crate::run::Summary;
use crate::verdict::Outcome;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

pub fn render(summary: &Summary) -> Result<String, String> {
    let mut report = Report::new("sshspec");
    for t in &summary.targets {
        let mut suite = TestSuite::new(t.name.as_str());
        suite.set_time(Duration::from_millis(t.duration_ms));
        for r in summary.results.iter().filter(|r| r.target == t.name) {
            let message = match (&r.evidence, &r.reason) {
                (Some(e), _) => format!("step {} (line {}): expected {}; got {}", e.step, e.line, e.expected, e.actual),
                (None, Some(reason)) => reason.clone(),
                (None, None) => String::new(),
            };
            let status = match r.outcome {
                Outcome::Pass | Outcome::Xfail => TestCaseStatus::success(),
                Outcome::Fail | Outcome::Xpass => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(message.as_str()).set_type(r.outcome.label());
                    s
                }
                Outcome::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(message.as_str()).set_type("ERROR");
                    s
                }
                Outcome::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(message.as_str());
                    s
                }
                // JUnit has no "not judged": skipped, with the setup step that failed as the message.
                Outcome::Inconclusive => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("INCONCLUSIVE: {}", r.reason.as_deref().unwrap_or(&message)));
                    s.set_type("INCONCLUSIVE");
                    s
                }
            };
            let mut case = TestCase::new(r.scenario.as_str(), status);
            case.set_classname(format!("{}.{}", t.name, r.scenario.split('/').next().unwrap_or("")));
            case.set_time(Duration::from_millis(r.duration_ms));
            let mut out = format!("{} [{}] {}: {}\n", r.spec, r.level, r.title, r.outcome);
            if r.outcome == Outcome::Xfail {
                out.push_str(&format!("expected failure: {}\n{message}\n", r.reason.as_deref().unwrap_or("")));
            }
            out.push_str(&transcript_text(r));
            case.set_system_out(out);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| e.to_string())
}

pub fn write(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let xml = render(summary).map_err(std::io::Error::other)?;
    std::fs::write(path, xml)
}
