//! `matrix.html`: the interop matrix, one page with no scripts and no fetches. It opens with a
//! summary (implementation × area, counts of each verdict); then scenarios are rows, grouped by
//! area and ordered by clause, and targets are columns, grouped by implementation, with the header
//! and the scenario column kept in view while scrolling. A checkbox (CSS only) hides the rows where
//! every target passed or skipped. Each cell is the verdict: for anything but a PASS it opens a
//! panel on the page with the evidence, the transcript and the server's log lines (CSS `:target`);
//! a PASS links to a small page of its own beside the matrix (`matrix/<anchor>.html`), so the
//! matrix stays small however many targets run (passing transcripts are most of a run's text).

use super::transcript_text;
use crate::run::{Summary, TargetSummary};
use crate::verdict::{Outcome, ScenarioResult};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The style both HTML reports share: verdict colours that stay apart in greyscale print too.
pub const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.meta{color:#555}.mono,pre{font-family:ui-monospace,monospace;font-size:12px}
.v{font-weight:600;text-align:center;white-space:nowrap}.v a{color:inherit;text-decoration:none;display:block}
.PASS{background:#d9f2d9}.FAIL{background:#f7c6c6}.XFAIL{background:#f7e3b5}.XPASS{background:#e9c6f7}
.SKIP{background:#eee;color:#666}.INCONCLUSIVE{background:#f2f2d0;color:#555}.ERROR{background:#c9d8f7}
tr.area th{background:#dde6f0;text-align:left;font-size:1.05em}
.detail{display:none}
.detail:target{display:block;position:fixed;inset:3% 4%;overflow:auto;background:#fff;border:2px solid #333;
 padding:1em 1.4em;box-shadow:0 0 0 100vmax rgba(0,0,0,.35);z-index:10}
.detail .close{float:right;font-size:1.2em}
pre{white-space:pre-wrap;word-break:break-all;background:#f8f8f8;border:1px solid #ddd;padding:.5em}
.scroll{overflow:auto;max-height:88vh;border:1px solid #bbb}
#matrix{border-collapse:separate;border-spacing:0}
#matrix th,#matrix td{border-width:0 1px 1px 0}
#matrix thead{position:sticky;top:0;z-index:3}
#matrix .sc{position:sticky;left:0;z-index:2;background:#fff;min-width:22em;max-width:30em;overflow-wrap:anywhere}
#matrix thead .sc{background:#f3f3f3}
#matrix th.impl{text-align:center;background:#e4e4ee}
.filter:checked~.scroll tr.ok{display:none}
.counts span{display:inline-block;min-width:2.2em;padding:0 3px;margin:1px;text-align:right}
";

/// A stable anchor for one result: `r-<target>-<scenario>` with unsafe characters replaced.
pub fn anchor(target: &str, scenario: &str) -> String {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>();
    format!("r-{}-{}", clean(target), clean(scenario))
}

/// The panel with everything known about one result.
pub fn detail_panel(r: &ScenarioResult, close_to: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<section class=\"detail\" id=\"{}\"><a class=\"close\" href=\"#{close_to}\">close ✕</a>\
         <h2><span class=\"v {}\">{}</span> {} on {}</h2><p>{} [{}] {}<br>clauses: {}; {} ms</p>",
        anchor(&r.target, &r.scenario),
        r.outcome.label(),
        r.outcome.label(),
        esc(&r.scenario),
        esc(&r.target),
        esc(&r.spec),
        r.level,
        esc(&r.title),
        esc(&r.clauses.join(", ")),
        r.duration_ms
    );
    if let Some(e) = &r.evidence {
        let _ = write!(
            o,
            "<p><b>step {} (line {})</b><br>expected: {}<br>got: {}</p>",
            e.step,
            e.line,
            esc(&e.expected),
            esc(&e.actual)
        );
    }
    if let Some(reason) = &r.reason {
        let _ = write!(o, "<p><b>reason:</b> {}</p>", esc(reason));
    }
    if !r.transcript.is_empty() || !r.server_log.is_empty() {
        let _ = write!(o, "<h3>transcript</h3><pre>{}</pre>", esc(&transcript_text(r)));
    }
    o.push_str("</section>\n");
    o
}

/// Whether a result needs a reader's eye: anything but PASS and SKIP.
fn notable(o: Outcome) -> bool {
    !matches!(o, Outcome::Pass | Outcome::Skip)
}

/// Where a result's details are: a panel on the page, or a page of its own beside it (PASS).
fn link(r: &ScenarioResult) -> String {
    let a = anchor(&r.target, &r.scenario);
    if r.outcome == Outcome::Pass { format!("{SIDE_DIR}/{a}.html") } else { format!("#{a}") }
}

/// The folder beside `matrix.html` holding one page per passing result.
pub const SIDE_DIR: &str = "matrix";

fn cell(r: Option<&ScenarioResult>) -> String {
    match r {
        None => "<td class=\"v\">–</td>".into(),
        Some(r) => {
            let title = r.evidence.as_ref().map(|e| e.actual.as_str()).or(r.reason.as_deref()).unwrap_or("");
            format!(
                "<td class=\"v {o}\" title=\"{t}\"><a href=\"{h}\">{o}</a></td>",
                o = r.outcome.label(),
                t = esc(&title.chars().take(300).collect::<String>()),
                h = link(r)
            )
        }
    }
}

/// Counts of each verdict, non-zero ones only, coloured as the cells are.
pub(crate) fn counts<'a>(results: impl Iterator<Item = &'a ScenarioResult>) -> String {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        *n.entry(r.outcome.label()).or_default() += 1;
    }
    let mut o = String::new();
    for label in ["PASS", "FAIL", "XFAIL", "XPASS", "INCONCLUSIVE", "ERROR", "SKIP"] {
        if let Some(c) = n.get(label) {
            let _ = write!(o, "<span class=\"{label}\" title=\"{label}\">{c}</span>");
        }
    }
    o
}

/// The rendered matrix: the page, and the pages of the passing results to write beside it
/// (`(path relative to the page, body)`).
pub struct Matrix {
    pub page: String,
    pub side_pages: Vec<(String, String)>,
}

/// A page of its own for one result (a passing one: the matrix links here, not to a panel).
fn result_page(r: &ScenarioResult) -> String {
    let panel = detail_panel(r, "top").replacen("class=\"detail\"", "class=\"detail page\"", 1);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} on {}</title>\
         <style>{STYLE}.page{{display:block}}.page .close{{display:none}}</style></head><body id=\"top\">\
         <p><a href=\"../matrix.html\">← matrix</a></p>{panel}</body></html>\n",
        esc(&r.scenario),
        esc(&r.target)
    )
}

pub fn render(summary: &Summary) -> Matrix {
    // Columns grouped by implementation, in the order each first appears; the run's order within.
    let mut impls: Vec<&str> = Vec::new();
    for t in &summary.targets {
        if !impls.contains(&t.server.as_str()) {
            impls.push(&t.server);
        }
    }
    let columns: Vec<&TargetSummary> =
        impls.iter().flat_map(|i| summary.targets.iter().filter(move |t| t.server == *i)).collect();
    let server_of: BTreeMap<&str, &str> =
        summary.targets.iter().map(|t| (t.name.as_str(), t.server.as_str())).collect();
    let mut by: BTreeMap<(&str, &str), &ScenarioResult> = BTreeMap::new();
    // Rows: area, then first clause, then id; one row per scenario id.
    let mut rows: BTreeMap<(String, String, String), &ScenarioResult> = BTreeMap::new();
    let mut areas: Vec<String> = Vec::new();
    for r in &summary.results {
        by.insert((r.scenario.as_str(), r.target.as_str()), r);
        let area = r.scenario.split('/').next().unwrap_or("").to_owned();
        if !areas.contains(&area) {
            areas.push(area.clone());
        }
        let clause = r.clauses.first().cloned().unwrap_or_default();
        rows.entry((area, clause, r.scenario.clone())).or_insert(r);
    }
    areas.sort();
    let mut o = String::with_capacity(1024 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sshspec interop matrix</title>\
         <style>{STYLE}</style></head><body id=\"top\"><h1>sshspec interop matrix</h1>\
         <p class=\"meta\">sshspec {} · {} scenario(s), set digest <span class=\"mono\">{}</span> · {} target(s) of {} \
         implementation(s) · {:.1} s</p>",
        env!("CARGO_PKG_VERSION"),
        summary.scenario_set.count,
        esc(&summary.scenario_set.digest),
        columns.len(),
        impls.len(),
        summary.duration_ms as f64 / 1000.0
    );

    // The summary: implementation × area.
    o.push_str("<h2>Summary</h2><table id=\"summary\"><thead><tr><th>implementation</th><th>targets</th>");
    for a in &areas {
        let _ = write!(o, "<th>{}</th>", esc(a));
    }
    o.push_str("<th>all</th></tr></thead><tbody>\n");
    for i in &impls {
        let of_impl = |area: Option<&str>| {
            summary
                .results
                .iter()
                .filter(|r| {
                    server_of.get(r.target.as_str()) == Some(i)
                        && area.is_none_or(|a| r.scenario.split('/').next() == Some(a))
                })
                .collect::<Vec<_>>()
        };
        let names: Vec<String> = columns.iter().filter(|t| t.server == *i).map(|t| esc(&t.name)).collect();
        let _ = write!(o, "<tr data-implementation=\"{i}\"><th>{i}</th><td>{}</td>", names.join("<br>"), i = esc(i));
        for a in &areas {
            let _ = write!(o, "<td class=\"counts\">{}</td>", counts(of_impl(Some(a)).into_iter()));
        }
        let _ = writeln!(o, "<td class=\"counts\">{}</td></tr>", counts(of_impl(None).into_iter()));
    }
    o.push_str("</tbody></table>\n");

    o.push_str(
        "<h2>Scenarios × targets</h2><input type=\"checkbox\" class=\"filter\" id=\"only-notable\">\
         <label for=\"only-notable\"> show only scenarios with a FAIL, XFAIL, XPASS, INCONCLUSIVE or ERROR</label>\
         <div class=\"scroll\"><table id=\"matrix\"><thead><tr><th class=\"sc\" rowspan=\"3\">scenario</th>\
         <th rowspan=\"3\">clauses</th><th rowspan=\"3\">level</th>",
    );
    for i in &impls {
        let n = columns.iter().filter(|t| t.server == *i).count();
        let _ = write!(o, "<th class=\"impl\" colspan=\"{n}\">{}</th>", esc(i));
    }
    o.push_str("</tr><tr>");
    for t in &columns {
        let v = if t.version.is_empty() { "unavailable" } else { t.version.as_str() };
        let _ = write!(
            o,
            "<th class=\"target\" title=\"{}\">{}<br><span class=\"meta\">{}</span></th>",
            esc(&t.banner),
            esc(&t.name),
            esc(v)
        );
    }
    o.push_str("</tr><tr>");
    for t in &columns {
        let c = &t.tally;
        let _ = write!(
            o,
            "<th class=\"tally\" title=\"pass / fail / xfail / xpass / skip / inconclusive / error\">{}/{}/{}/{}/{}/{}/{}</th>",
            c.pass, c.fail, c.xfail, c.xpass, c.skip, c.inconclusive, c.error
        );
    }
    o.push_str("</tr></thead><tbody>\n");
    let mut area = String::new();
    for ((a, _, id), r) in &rows {
        if *a != area {
            area = a.clone();
            let _ = writeln!(
                o,
                "<tr class=\"area\"><th class=\"sc\">{}</th><th colspan=\"{}\"></th></tr>",
                esc(a),
                2 + columns.len()
            );
        }
        let cells: Vec<Option<&ScenarioResult>> =
            columns.iter().map(|t| by.get(&(id.as_str(), t.name.as_str())).copied()).collect();
        let ok = cells.iter().flatten().all(|r| !notable(r.outcome));
        let _ = write!(
            o,
            "<tr class=\"row{ok}\" data-scenario=\"{id}\"><td class=\"mono sc\" title=\"{title}\">{id}</td><td class=\"mono\">{c}</td><td>{l}</td>",
            ok = if ok { " ok" } else { "" },
            id = esc(id),
            title = esc(&r.title),
            c = esc(&r.clauses.join(" ")),
            l = r.level
        );
        for c in cells {
            o.push_str(&cell(c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n");
    let mut side_pages = Vec::new();
    for r in &summary.results {
        if r.outcome == Outcome::Pass {
            side_pages.push((link(r), result_page(r)));
        } else if r.outcome != Outcome::Skip || r.reason.is_some() {
            o.push_str(&detail_panel(r, "top"));
        }
    }
    o.push_str("</body></html>\n");
    Matrix { page: o, side_pages }
}
