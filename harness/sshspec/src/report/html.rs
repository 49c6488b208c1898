//! `matrix.html`: the interop matrix, one self-contained page (no scripts, no fetches). Scenarios
//! are rows, grouped by area and ordered by clause; each target is a column; each cell is the
//! verdict and links to a panel with the evidence, the transcript and the server's log lines for
//! that scenario (shown with CSS `:target`, so it works offline and in any browser).

use super::transcript_text;
use crate::run::Summary;
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
th{background:#f3f3f3;position:sticky;top:0}
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

fn cell(r: Option<&ScenarioResult>) -> String {
    match r {
        None => "<td class=\"v\">–</td>".into(),
        Some(r) => {
            let title = r.evidence.as_ref().map(|e| e.actual.as_str()).or(r.reason.as_deref()).unwrap_or("");
            format!(
                "<td class=\"v {o}\" title=\"{t}\"><a href=\"#{a}\">{o}</a></td>",
                o = r.outcome.label(),
                t = esc(&title.chars().take(300).collect::<String>()),
                a = anchor(&r.target, &r.scenario)
            )
        }
    }
}

pub fn render(summary: &Summary) -> String {
    let targets: Vec<&str> = summary.targets.iter().map(|t| t.name.as_str()).collect();
    let mut by: BTreeMap<(&str, &str), &ScenarioResult> = BTreeMap::new();
    // Rows: area, then first clause, then id; one row per scenario id.
    let mut rows: BTreeMap<(String, String, String), &ScenarioResult> = BTreeMap::new();
    for r in &summary.results {
        by.insert((r.scenario.as_str(), r.target.as_str()), r);
        let area = r.scenario.split('/').next().unwrap_or("").to_owned();
        let clause = r.clauses.first().cloned().unwrap_or_default();
        rows.entry((area, clause, r.scenario.clone())).or_insert(r);
    }
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sshspec interop matrix</title>\
         <style>{STYLE}</style></head><body id=\"top\"><h1>sshspec interop matrix</h1>\
         <p class=\"meta\">sshspec {} · {} scenario(s), set digest <span class=\"mono\">{}</span> · {} target(s) · {:.1} s</p>",
        env!("CARGO_PKG_VERSION"),
        summary.scenario_set.count,
        esc(&summary.scenario_set.digest),
        targets.len(),
        summary.duration_ms as f64 / 1000.0
    );
    o.push_str("<table id=\"matrix\"><thead><tr><th>scenario</th><th>clauses</th><th>level</th>");
    for t in &summary.targets {
        let v = if t.version.is_empty() { "unavailable" } else { t.version.as_str() };
        let _ = write!(
            o,
            "<th class=\"target\" title=\"{}\">{}<br><span class=\"meta\">{}</span></th>",
            esc(&t.banner),
            esc(&t.name),
            esc(v)
        );
    }
    o.push_str("</tr><tr><th colspan=\"3\">pass / fail / xfail / xpass / skip / inconclusive / error</th>");
    for t in &summary.targets {
        let c = &t.tally;
        let _ = write!(
            o,
            "<th class=\"tally\">{}/{}/{}/{}/{}/{}/{}</th>",
            c.pass, c.fail, c.xfail, c.xpass, c.skip, c.inconclusive, c.error
        );
    }
    o.push_str("</tr></thead><tbody>\n");
    let mut area = String::new();
    for ((a, _, id), r) in &rows {
        if *a != area {
            area = a.clone();
            let _ = writeln!(o, "<tr class=\"area\"><th colspan=\"{}\">{}</th></tr>", 3 + targets.len(), esc(a));
        }
        let _ = write!(
            o,
            "<tr class=\"row\" data-scenario=\"{id}\"><td class=\"mono\" title=\"{title}\">{id}</td><td class=\"mono\">{c}</td><td>{l}</td>",
            id = esc(id),
            title = esc(&r.title),
            c = esc(&r.clauses.join(" ")),
            l = r.level
        );
        for t in &targets {
            o.push_str(&cell(by.get(&(id.as_str(), *t)).copied()));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
    for r in summary.results.iter().filter(|r| r.outcome != Outcome::Skip || r.reason.is_some()) {
        o.push_str(&detail_panel(r, "top"));
    }
    o.push_str("</body></html>\n");
    o
}
