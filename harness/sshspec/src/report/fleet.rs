//! `fleet.html`: a fleet audit at a glance. One row per host: what answered (identification), its
//! host key against the pinned one (and where the pin came from), and the counts of each verdict
//! per area of the catalogue; each host links to its certification report (clauses, deviations
//! with evidence), and `matrix.html` has every result. Written for runs with
//! remote targets (`--targets-file`, `-t remote:...`); no scripts, no fetches.

use super::html::{STYLE, counts, esc};
use crate::run::{Summary, TargetSummary};
use crate::targets::BackendKind;
use std::fmt::Write;

/// Whether a run has a fleet to show.
pub fn wanted(summary: &Summary) -> bool {
    summary.targets.iter().any(|t| t.backend == BackendKind::Remote)
}

/// The host-key cell: the key seen and the pin's source, or why nothing ran.
fn host_key(t: &TargetSummary) -> (String, &'static str) {
    if let Some(why) = &t.unavailable {
        let class = if why.starts_with("host key") { "FAIL" } else { "ERROR" };
        return (esc(why), class);
    }
    let seen: Vec<String> = t.identity.host_keys.iter().map(|(alg, fp)| format!("{alg} {fp}")).collect();
    let seen = if seen.is_empty() { "(none seen)".to_owned() } else { seen.join("<br>") };
    match &t.host_key_source {
        Some(src) => (format!("{seen}<br><span class=\"meta\">matches {}</span>", esc(src)), "PASS"),
        None => (format!("{seen}<br><span class=\"meta\">not pinned</span>"), "SKIP"),
    }
}

pub fn render(summary: &Summary) -> String {
    let mut areas: Vec<&str> = summary.results.iter().map(|r| r.scenario.split('/').next().unwrap_or("")).collect();
    areas.sort_unstable();
    areas.dedup();
    let hosts: Vec<&TargetSummary> = summary.targets.iter().collect();
    let mismatched =
        hosts.iter().filter(|t| t.unavailable.as_deref().is_some_and(|w| w.starts_with("host key"))).count();
    let unreachable = hosts.iter().filter(|t| t.unavailable.is_some()).count() - mismatched;
    let nonconforming = hosts.iter().filter(|t| t.tally.fail + t.tally.xpass > 0).count();
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sshspec fleet audit</title>\
         <style>{STYLE}#fleet td.key{{max-width:34em;overflow-wrap:anywhere}}</style></head><body>\
         <h1>sshspec fleet audit</h1>\
         <p class=\"meta\">sshspec {} · {} host(s) · {} scenario(s), set digest <span class=\"mono\">{}</span> · {:.1} s</p>\
         <p id=\"fleet-summary\">{} host(s) judged, {nonconforming} with a FAIL or XPASS · \
         <strong>{mismatched} host key mismatch(es)</strong> or unknown key(s) · {unreachable} not reached</p>\
         <table id=\"fleet\"><thead><tr><th>host</th><th>identification</th><th>host key</th>",
        env!("CARGO_PKG_VERSION"),
        hosts.len(),
        summary.scenario_set.count,
        esc(&summary.scenario_set.digest),
        summary.duration_ms as f64 / 1000.0,
        hosts.len() - mismatched - unreachable,
    );
    for a in &areas {
        let _ = write!(o, "<th>{}</th>", esc(a));
    }
    o.push_str("<th>all</th></tr></thead><tbody>\n");
    for t in &hosts {
        let (key, class) = host_key(t);
        let _ = write!(
            o,
            "<tr data-host=\"{n}\" data-key=\"{class}\"><th><a href=\"{page}.html\">{n}</a></th><td class=\"mono\">{}</td>\
             <td class=\"key mono {class}\">{key}</td>",
            esc(&t.banner),
            n = esc(&t.name),
            page = esc(&super::cert::file_stem(&t.name)),
        );
        let mine = || summary.results.iter().filter(|r| r.target == t.name);
        for a in &areas {
            let in_area = mine().filter(|r| r.scenario.split('/').next() == Some(*a));
            let _ = write!(o, "<td class=\"counts\">{}</td>", counts(in_area));
        }
        let _ = writeln!(o, "<td class=\"counts\">{}</td></tr>", counts(mine()));
    }
    o.push_str("</tbody></table></body></html>\n");
    o
}
