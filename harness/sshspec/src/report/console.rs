//! The console: what a person watching the run sees. Problems as they happen, a table at the end.

use super::{Event, Reporter, transcript_text};
use crate::verdict::Outcome;
use std::io::Write;

pub struct Console {
    /// 0: problems and the summary; 1: every result; 2: also each failing transcript.
    pub verbosity: u8,
    out: Box<dyn Write + Send>,
    /// A one-line progress counter, redrawn in place; only on a terminal.
    progress: bool,
    done: usize,
    total: usize,
    /// Targets already reported unavailable: their per-scenario skips would only repeat it.
    unavailable: Vec<String>,
    failed: usize,
    started: std::time::Instant,
}

impl Console {
    pub fn new(verbosity: u8) -> Self {
        use std::io::IsTerminal;
        let progress = std::io::stdout().is_terminal();
        Console {
            verbosity,
            out: Box::new(std::io::stdout()),
            progress,
            done: 0,
            total: 0,
            unavailable: Vec::new(),
            failed: 0,
            started: std::time::Instant::now(),
        }
    }

    pub fn to(verbosity: u8, out: Box<dyn Write + Send>) -> Self {
        Console {
            verbosity,
            out,
            progress: false,
            done: 0,
            total: 0,
            unavailable: Vec::new(),
            failed: 0,
            started: std::time::Instant::now(),
        }
    }

    fn clear_progress(&mut self) {
        if self.progress {
            let _ = write!(self.out, "\r\x1b[2K");
        }
    }
}

impl Reporter for Console {
    fn on_event(&mut self, e: &Event<'_>) {
        self.clear_progress();
        if let Event::RunStarted { pairs, .. } = e {
            self.total = *pairs;
        }
        if let Event::Result(_) = e {
            self.done += 1;
        }
        if let Event::TargetUnavailable { target, .. } = e {
            self.unavailable.push(target.to_string());
        }
        let o = &mut self.out;
        let _ = match e {
            Event::RunStarted { targets, scenarios, pairs, shard } => writeln!(
                o,
                "sshspec {}: {scenarios} scenario(s) against {} target(s): {}{}",
                env!("CARGO_PKG_VERSION"),
                targets.len(),
                targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
                shard
                    .map(|s| format!("\nshard {s}: {pairs} (target, scenario) pair(s) of this run"))
                    .unwrap_or_default()
            ),
            Event::TargetStarted { target, version, addr } => writeln!(o, "target {target}: {version} at {addr}"),
            Event::TargetUnavailable { target, reason, outcome } => {
                writeln!(o, "{outcome:<5} target {target}: {reason}")
            }
            Event::Result(r) => {
                let show = self.verbosity >= 1
                    || matches!(r.outcome, Outcome::Fail | Outcome::Xpass | Outcome::Error | Outcome::Inconclusive)
                    || (r.outcome == Outcome::Skip && !self.unavailable.contains(&r.target));
                if show {
                    let _ = writeln!(o, "{:<5} {} {} ({} ms)", r.outcome.label(), r.target, r.scenario, r.duration_ms);
                    if let Some(ev) = &r.evidence
                        && r.outcome != Outcome::Pass
                    {
                        let _ = writeln!(o, "      step {} (line {}): expected {}", ev.step, ev.line, ev.expected);
                        let _ = writeln!(o, "      got {}", ev.actual);
                    }
                    if let Some(reason) = &r.reason
                        && r.evidence.as_ref().is_none_or(|ev| &ev.actual != reason)
                    {
                        let _ = writeln!(o, "      {reason}");
                    }
                    if self.verbosity >= 2 && r.outcome != Outcome::Pass && !r.transcript.is_empty() {
                        for l in transcript_text(r).lines() {
                            let _ = writeln!(o, "        {l}");
                        }
                    }
                }
                Ok(())
            }
            Event::TargetFinished { .. } => Ok(()),
            Event::Warning { message } => writeln!(o, "warning: {message}"),
            Event::RunFinished { summary } => {
                let _ = writeln!(o);
                let _ = writeln!(
                    o,
                    "{:<12} {:<40} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>8}",
                    "target", "version", "pass", "fail", "xfail", "xpass", "skip", "incon", "error", "time"
                );
                for t in &summary.targets {
                    let v = if t.version.is_empty() { "(unavailable)" } else { t.version.as_str() };
                    let _ = writeln!(
                        o,
                        "{:<12} {:<40} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>7.2}s",
                        t.name,
                        truncate(v, 40),
                        t.tally.pass,
                        t.tally.fail,
                        t.tally.xfail,
                        t.tally.xpass,
                        t.tally.skip,
                        t.tally.inconclusive,
                        t.tally.error,
                        t.duration_ms as f64 / 1000.0
                    );
                }
                let all = summary.tally();
                let _ = writeln!(o);
                let verdict = match summary.exit_code() {
                    crate::exit::OK => "conforming",
                    crate::exit::NONCONFORMING => "NOT CONFORMING",
                    crate::exit::INTERRUPTED => "INTERRUPTED",
                    _ => "ERRORS: some scenarios could not be judged",
                };
                writeln!(
                    o,
                    "sshspec: {} passed, {} failed, {} xfailed, {} xpassed, {} skipped, {} inconclusive, {} errors in {:.2}s: {verdict}",
                    all.pass,
                    all.fail,
                    all.xfail,
                    all.xpass,
                    all.skip,
                    all.inconclusive,
                    all.error,
                    summary.duration_ms as f64 / 1000.0
                )
            }
        };
        if let Event::Result(r) = e
            && r.outcome.is_failure()
        {
            self.failed += 1;
        }
        if self.progress && self.done < self.total && !matches!(e, Event::RunFinished { .. }) {
            let _ = write!(self.out, "{}", progress_line(self.done, self.total, self.failed, self.started.elapsed()));
        }
        let _ = self.out.flush();
    }
}

/// `[#########...........]  412/1760 judged, 3 failing, 12.4s`
fn progress_line(done: usize, total: usize, failed: usize, elapsed: std::time::Duration) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {done:>5}/{total} judged, {failed} failing, {:.1}s",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        elapsed.as_secs_f64()
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Level;
    use crate::verdict::ScenarioResult;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn skip(target: &str, reason: &str) -> ScenarioResult {
        ScenarioResult {
            scenario: "x/y".into(),
            target: target.into(),
            target_version: String::new(),
            outcome: Outcome::Skip,
            level: Level::Must,
            spec: String::new(),
            clauses: Vec::new(),
            title: String::new(),
            duration_ms: 0,
            reason: Some(reason.into()),
            evidence: None,
            identity: None,
            transcript: Vec::new(),
            first_attempt: None,
            server_log: Vec::new(),
        }
    }

    #[test]
    fn the_progress_bar_fills_with_the_work() {
        let d = std::time::Duration::from_millis(1500);
        assert_eq!(progress_line(0, 10, 0, d), format!("[{}]     0/10 judged, 0 failing, 1.5s", ".".repeat(30)));
        assert!(progress_line(5, 10, 1, d).starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))));
        assert!(progress_line(3, 0, 0, d).starts_with(&format!("[{}]", ".".repeat(30))));
    }

    #[test]
    fn skips_show_once_per_unavailable_target_and_always_otherwise() {
        let buf = Buf::default();
        let mut c = Console::to(0, Box::new(buf.clone()));
        c.on_event(&Event::TargetUnavailable { target: "gone", reason: "gone: not installed", outcome: Outcome::Skip });
        c.on_event(&Event::Result(&skip("gone", "gone: not installed")));
        c.on_event(&Event::Result(&skip("here", "here does not offer the cipher z")));
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.matches("not installed").count(), 1, "{out}");
        assert!(out.contains("SKIP  here x/y"), "{out}");
    }
}
