//! Reports: consumers of the runner's typed events and its final [`Summary`] (after nextest). Each
//! consumer has one job: the console, `report.json`, `junit.xml`, the interop matrix
//! (`matrix.html`), a certification report per target (`cert-<target>.md` and `.html`), the fleet page
//! (`fleet.html`) and the
//! comparison with a baseline (`baseline.md`). `merge` reads shards' reports back into one.

pub mod baseline;
pub mod cert;
pub mod console;
pub mod fleet;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;

use crate::run::{Summary, TargetSummary};
use crate::targets::TargetInfo;
use crate::verdict::{Outcome, ScenarioResult};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub enum Event<'a> {
    /// `pairs`: the (target, scenario) pairs this run judges (all of them, or a shard's part).
    RunStarted {
        targets: &'a [TargetInfo],
        scenarios: usize,
        pairs: usize,
        shard: Option<crate::shard::Shard>,
    },
    TargetStarted {
        target: &'a str,
        version: &'a str,
        addr: SocketAddr,
    },
    TargetUnavailable {
        target: &'a str,
        reason: &'a str,
        outcome: Outcome,
    },
    Result(&'a ScenarioResult),
    TargetFinished {
        summary: &'a TargetSummary,
    },
    Warning {
        message: &'a str,
    },
    RunFinished {
        summary: &'a Summary,
    },
}

pub trait Reporter: Send {
    fn on_event(&mut self, e: &Event<'_>);
}

/// Writes every report file of a finished run into `dir` (the passing results' pages in
/// `dir/matrix/`); returns the paths written.
pub fn write_all(
    dir: &Path,
    summary: &Summary,
    comparison: Option<&baseline::Comparison>,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |name: String, body: &str| -> std::io::Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, body)?;
        written.push(p);
        Ok(())
    };
    json::write(&dir.join("report.json"), summary)?;
    put("junit.xml".into(), &junit::render(summary).map_err(std::io::Error::other)?)?;
    let matrix = html::render(summary);
    put("matrix.html".into(), &matrix.page)?;
    std::fs::create_dir_all(dir.join(html::SIDE_DIR))?;
    for (path, body) in &matrix.side_pages {
        put(path.clone(), body)?;
    }
    for t in &summary.targets {
        let c = cert::Certificate::new(summary, t);
        let stem = cert::file_stem(&t.name);
        put(format!("{stem}.md"), &c.markdown())?;
        put(format!("{stem}.html"), &c.html())?;
    }
    if fleet::wanted(summary) {
        put("fleet.html".into(), &fleet::render(summary))?;
    }
    if let Some(c) = comparison {
        put("baseline.md".into(), &c.markdown())?;
    }
    written.insert(0, dir.join("report.json"));
    Ok(written)
}

/// The folder a run writes into: `reports/<UTC timestamp>/`, with `reports/latest` pointing at it.
pub fn new_report_dir(base: &Path) -> std::io::Result<PathBuf> {
    let stamp = utc_stamp(std::time::SystemTime::now());
    let mut dir = base.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir)?;
    let latest = base.join("latest");
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(dir.file_name().unwrap_or_default(), &latest);
    Ok(dir)
}

/// `20261121T054700Z` for a time, without a date library.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// The transcript as plain text lines, for JUnit's system-out and the console.
pub fn transcript_text(r: &ScenarioResult) -> String {
    let mut s = String::new();
    for e in &r.transcript {
        let seq = e.seq.map(|q| format!(" #{q}")).unwrap_or_default();
        s.push_str(&format!("{:>6}ms {}{seq} {}\n", e.at_ms, e.dir.arrow(), e.text));
    }
    if !r.server_log.is_empty() {
        s.push_str("--- server log ---\n");
        for l in &r.server_log {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_239_000);
        assert_eq!(super::utc_stamp(t), "20261121T053000Z");
        assert_eq!(super::utc_stamp(std::time::UNIX_EPOCH), "19700101T000000Z");
    }
}
