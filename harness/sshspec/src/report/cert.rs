//! The certification report: one per target, in Markdown (`cert-<target>.md`) and HTML
//! (`cert-<target>.html`). It states who was tested (banner, host keys, negotiated algorithms),
//! with what (sshspec version, the scenario set's digest), the clauses checked with their
//! MUST/SHOULD/MAY pass rates, and every deviation with its evidence. Two reports with the same
//! set digest judged the same scenario files, so they can be compared line by line.

use super::html::{STYLE, anchor, detail_panel, esc};
use crate::run::{Summary, TargetSummary};
use crate::script::Level;
use crate::verdict::{Outcome, ScenarioResult};
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the scenarios citing a clause found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClauseVerdict {
    /// Some scenario citing it failed (FAIL or XFAIL).
    Deviates,
    /// Every judged scenario citing it passed.
    Conforms,
    /// No scenario citing it could be judged here (skipped or ERROR).
    NotJudged,
}

impl ClauseVerdict {
    fn label(self) -> &'static str {
        match self {
            ClauseVerdict::Deviates => "deviates",
            ClauseVerdict::Conforms => "conforms",
            ClauseVerdict::NotJudged => "not judged",
        }
    }
}

pub struct ClauseRow<'a> {
    pub id: String,
    /// The strongest level among the scenarios citing it.
    pub level: Level,
    pub verdict: ClauseVerdict,
    pub scenarios: Vec<&'a ScenarioResult>,
}

/// Clause counts for one level: judged = conforms + deviates.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct LevelRate {
    pub conforms: usize,
    pub deviates: usize,
    pub not_judged: usize,
}

impl LevelRate {
    pub fn rate(&self) -> Option<f64> {
        let judged = self.conforms + self.deviates;
        (judged > 0).then(|| 100.0 * self.conforms as f64 / judged as f64)
    }
}

pub struct Certificate<'a> {
    pub target: &'a TargetSummary,
    pub summary: &'a Summary,
    pub clauses: Vec<ClauseRow<'a>>,
    pub levels: BTreeMap<Level, LevelRate>,
    /// FAIL, XFAIL, XPASS and ERROR results: everything a certifier must look at.
    pub deviations: Vec<&'a ScenarioResult>,
    /// Skip reasons and how many scenarios each one skipped.
    pub skipped: BTreeMap<&'a str, usize>,
    /// INCONCLUSIVE results: a setup step failed, so their clauses were not reached. Listed apart
    /// from deviations: they say nothing about the clauses they cite.
    pub inconclusive: Vec<&'a ScenarioResult>,
    /// The known-vulnerability probes (scenarios/vulnerabilities/), whatever their verdict: a
    /// certifier wants to see each one checked, not only the ones that failed.
    pub vulnerabilities: Vec<&'a ScenarioResult>,
}

/// Where the known-vulnerability probes live in the catalogue.
pub const VULNERABILITIES: &str = "vulnerabilities/";

fn clause_verdict(rs: &[&ScenarioResult]) -> ClauseVerdict {
    if rs.iter().any(|r| matches!(r.outcome, Outcome::Fail | Outcome::Xfail)) {
        ClauseVerdict::Deviates
    } else if rs.iter().any(|r| matches!(r.outcome, Outcome::Pass | Outcome::Xpass)) {
        ClauseVerdict::Conforms
    } else {
        ClauseVerdict::NotJudged
    }
}

impl<'a> Certificate<'a> {
    pub fn new(summary: &'a Summary, target: &'a TargetSummary) -> Self {
        let results: Vec<&ScenarioResult> = summary.results.iter().filter(|r| r.target == target.name).collect();
        let mut by_clause: BTreeMap<&str, Vec<&ScenarioResult>> = BTreeMap::new();
        for r in &results {
            for c in &r.clauses {
                by_clause.entry(c.as_str()).or_default().push(r);
            }
        }
        let clauses: Vec<ClauseRow> = by_clause
            .into_iter()
            .map(|(id, rs)| ClauseRow {
                id: id.to_owned(),
                level: rs.iter().map(|r| r.level).min().unwrap_or(Level::May),
                verdict: clause_verdict(&rs),
                scenarios: rs,
            })
            .collect();
        let mut levels: BTreeMap<Level, LevelRate> =
            [Level::Must, Level::Should, Level::May].into_iter().map(|l| (l, LevelRate::default())).collect();
        for c in &clauses {
            let rate = levels.entry(c.level).or_default();
            match c.verdict {
                ClauseVerdict::Conforms => rate.conforms += 1,
                ClauseVerdict::Deviates => rate.deviates += 1,
                ClauseVerdict::NotJudged => rate.not_judged += 1,
            }
        }
        let deviations = results
            .iter()
            .copied()
            .filter(|r| matches!(r.outcome, Outcome::Fail | Outcome::Xfail | Outcome::Xpass | Outcome::Error))
            .collect();
        let inconclusive = results.iter().copied().filter(|r| r.outcome == Outcome::Inconclusive).collect();
        let vulnerabilities = results.iter().copied().filter(|r| r.scenario.starts_with(VULNERABILITIES)).collect();
        let mut skipped = BTreeMap::new();
        for r in results.iter().filter(|r| r.outcome == Outcome::Skip) {
            *skipped.entry(r.reason.as_deref().unwrap_or("(no reason given)")).or_insert(0) += 1;
        }
        Certificate { target, summary, clauses, levels, deviations, skipped, inconclusive, vulnerabilities }
    }

    fn identity_lines(&self) -> Vec<(&'static str, String)> {
        let t = self.target;
        let mut v = vec![
            ("target", t.name.clone()),
            ("server", format!("{} {}", t.server, t.version)),
            ("backend", format!("{:?}", t.backend).to_lowercase()),
            ("identification", t.banner.clone()),
        ];
        for (alg, fp) in &t.identity.host_keys {
            v.push(("host key", format!("{alg} {fp}")));
        }
        if let Some(n) = &t.identity.negotiated {
            v.push(("key exchange", n.kex.clone()));
            v.push(("cipher", format!("{} / {}", n.cipher_c2s, n.cipher_s2c)));
            v.push((
                "MAC",
                format!("{} / {}", n.mac_c2s.as_deref().unwrap_or("(aead)"), n.mac_s2c.as_deref().unwrap_or("(aead)")),
            ));
            v.push(("strict kex", n.strict.to_string()));
        }
        v.push(("sshspec", env!("CARGO_PKG_VERSION").into()));
        v.push((
            "scenario set",
            format!("{} scenarios, SHA-256 {}", self.summary.scenario_set.count, self.summary.scenario_set.digest),
        ));
        if let Some(p) = &t.profile {
            v.push(("strict kex offered", p.strict_kex.to_string()));
            if let Some(m) = &p.auth_methods {
                v.push(("auth methods", m.join(",")));
            }
        }
        if let Some(u) = &t.unavailable {
            v.push(("unavailable", u.clone()));
        }
        v
    }

    /// One line per INCONCLUSIVE result: the scenario and the setup step that failed.
    fn inconclusive_lines(&self) -> Vec<(String, String)> {
        self.inconclusive.iter().map(|r| (r.scenario.clone(), r.reason.clone().unwrap_or_default())).collect()
    }

    fn rate_text(r: &LevelRate) -> String {
        match r.rate() {
            Some(p) => format!("{p:.1}%"),
            None => "–".into(),
        }
    }

    pub fn markdown(&self) -> String {
        let t = self.target;
        let mut o = String::new();
        let _ = writeln!(o, "# sshspec certification report: {}\n", t.name);
        o.push_str("| | |\n|---|---|\n");
        for (k, v) in self.identity_lines() {
            let _ = writeln!(o, "| {k} | `{}` |", v.replace('|', "\\|"));
        }
        let c = &t.tally;
        let _ = writeln!(
            o,
            "\nScenarios: {} pass, {} fail, {} xfail (known deviations), {} xpass, {} skip, {} inconclusive, {} error.\n",
            c.pass, c.fail, c.xfail, c.xpass, c.skip, c.inconclusive, c.error
        );
        o.push_str("## Clauses by level\n\n| level | clauses judged | conform | deviate | pass rate | not judged here |\n|---|---|---|---|---|---|\n");
        for (l, r) in &self.levels {
            let _ = writeln!(
                o,
                "| {l} | {} | {} | {} | {} | {} |",
                r.conforms + r.deviates,
                r.conforms,
                r.deviates,
                Self::rate_text(r),
                r.not_judged
            );
        }
        if !self.vulnerabilities.is_empty() {
            let _ = writeln!(
                o,
                "\n## Known vulnerabilities, probed by behaviour ({})\n\n| verdict | probe | what it shows |\n|---|---|---|",
                self.vulnerabilities.len()
            );
            for r in &self.vulnerabilities {
                let _ = writeln!(o, "| {} | `{}` | {} |", r.outcome, r.scenario, r.title.replace('|', "\\|"));
            }
        }
        let _ = writeln!(o, "\n## Deviations ({})\n", self.deviations.len());
        if self.deviations.is_empty() {
            o.push_str("None.\n\n");
        }
        for r in &self.deviations {
            let _ =
                writeln!(o, "### {} `{}` ({}, {} {})\n", r.outcome, r.scenario, r.clauses.join(", "), r.spec, r.level);
            let _ = writeln!(o, "{}\n", r.title);
            if let Some(e) = &r.evidence {
                let _ =
                    writeln!(o, "- step {} (line {})\n- expected: {}\n- got: {}", e.step, e.line, e.expected, e.actual);
            }
            if let Some(reason) = &r.reason {
                let _ = writeln!(o, "- note: {reason}");
            }
            let tail: Vec<String> = r
                .transcript
                .iter()
                .rev()
                .take(8)
                .rev()
                .map(|e| format!("{:>6}ms {}", e.at_ms, e.text.chars().take(160).collect::<String>()))
                .collect();
            if !tail.is_empty() {
                let _ = writeln!(o, "\n```text\n{}\n```", tail.join("\n"));
            }
            o.push('\n');
        }
        o.push_str("## Clauses\n\n| clause | level | verdict | scenarios |\n|---|---|---|---|\n");
        for c in &self.clauses {
            let sc: Vec<String> = c.scenarios.iter().map(|r| format!("`{}` {}", r.scenario, r.outcome)).collect();
            let _ = writeln!(o, "| {} | {} | {} | {} |", c.id, c.level, c.verdict.label(), sc.join("<br>"));
        }
        if !self.inconclusive.is_empty() {
            o.push_str("\n## Not reached: a setup step failed (no verdict on these clauses)\n\n| scenario | setup failure |\n|---|---|\n");
            for (id, why) in self.inconclusive_lines() {
                let _ = writeln!(o, "| `{id}` | {} |", why.replace('|', "\\|"));
            }
        }
        if !self.skipped.is_empty() {
            o.push_str("\n## Not run here\n\n| scenarios | reason |\n|---|---|\n");
            for (reason, n) in &self.skipped {
                let _ = writeln!(o, "| {n} | {} |", reason.replace('|', "\\|"));
            }
        }
        o
    }

    pub fn html(&self) -> String {
        let t = self.target;
        let mut o = String::new();
        let _ = write!(
            o,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sshspec certification: {n}</title>\
             <style>{STYLE}</style></head><body id=\"top\"><h1>sshspec certification report: {n}</h1><table class=\"identity\">",
            n = esc(&t.name)
        );
        for (k, v) in self.identity_lines() {
            let _ = write!(o, "<tr><th>{k}</th><td class=\"mono\">{}</td></tr>", esc(&v));
        }
        o.push_str("</table><h2>Clauses by level</h2><table id=\"levels\"><tr><th>level</th><th>judged</th><th>conform</th><th>deviate</th><th>pass rate</th><th>not judged here</th></tr>");
        for (l, r) in &self.levels {
            let _ = write!(
                o,
                "<tr class=\"level\" data-level=\"{l}\"><td>{l}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"rate\">{}</td><td>{}</td></tr>",
                r.conforms + r.deviates,
                r.conforms,
                r.deviates,
                Self::rate_text(r),
                r.not_judged
            );
        }
        o.push_str("</table>");
        if !self.vulnerabilities.is_empty() {
            let _ = write!(
                o,
                "<h2>Known vulnerabilities, probed by behaviour ({})</h2><table id=\"vulnerabilities\"><tr><th>verdict</th><th>probe</th><th>what it shows</th></tr>",
                self.vulnerabilities.len()
            );
            for r in &self.vulnerabilities {
                let _ = write!(
                    o,
                    "<tr><td class=\"v {v}\"><a href=\"#{a}\">{v}</a></td><td class=\"mono\">{s}</td><td>{t}</td></tr>",
                    v = r.outcome.label(),
                    a = anchor(&r.target, &r.scenario),
                    s = esc(&r.scenario),
                    t = esc(&r.title)
                );
            }
            o.push_str("</table>");
        }
        let _ = write!(
            o,
            "<h2>Deviations ({})</h2><table id=\"deviations\"><tr><th>verdict</th><th>scenario</th><th>clauses</th><th>evidence</th></tr>",
            self.deviations.len()
        );
        for r in &self.deviations {
            let ev = match (&r.evidence, &r.reason) {
                (Some(e), _) => format!("step {} (line {}): expected {}; got {}", e.step, e.line, e.expected, e.actual),
                (None, Some(reason)) => reason.clone(),
                _ => String::new(),
            };
            let _ = write!(
                o,
                "<tr><td class=\"v {v}\"><a href=\"#{a}\">{v}</a></td><td class=\"mono\">{s}</td><td class=\"mono\">{c}</td><td>{e}</td></tr>",
                v = r.outcome.label(),
                a = anchor(&r.target, &r.scenario),
                s = esc(&r.scenario),
                c = esc(&r.clauses.join(", ")),
                e = esc(&ev)
            );
        }
        o.push_str("</table><h2>Clauses</h2><table id=\"clauses\"><tr><th>clause</th><th>level</th><th>verdict</th><th>scenarios</th></tr>");
        for c in &self.clauses {
            let cls = match c.verdict {
                ClauseVerdict::Conforms => "PASS",
                ClauseVerdict::Deviates => "FAIL",
                ClauseVerdict::NotJudged => "SKIP",
            };
            let sc: Vec<String> = c
                .scenarios
                .iter()
                .map(|r| {
                    format!("<a href=\"#{}\">{}</a> {}", anchor(&r.target, &r.scenario), esc(&r.scenario), r.outcome)
                })
                .collect();
            let _ = write!(
                o,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"v {cls}\">{}</td><td class=\"mono\">{}</td></tr>",
                esc(&c.id),
                c.level,
                c.verdict.label(),
                sc.join("<br>")
            );
        }
        o.push_str("</table>");
        if !self.inconclusive.is_empty() {
            o.push_str("<h2>Not reached: a setup step failed (no verdict on these clauses)</h2><table id=\"inconclusive\"><tr><th>scenario</th><th>setup failure</th></tr>");
            for (id, why) in self.inconclusive_lines() {
                let _ = write!(o, "<tr><td class=\"mono\">{}</td><td>{}</td></tr>", esc(&id), esc(&why));
            }
            o.push_str("</table>");
        }
        if !self.skipped.is_empty() {
            o.push_str("<h2>Not run here</h2><table><tr><th>scenarios</th><th>reason</th></tr>");
            for (reason, n) in &self.skipped {
                let _ = write!(o, "<tr><td>{n}</td><td>{}</td></tr>", esc(reason));
            }
            o.push_str("</table>");
        }
        for r in self.summary.results.iter().filter(|r| r.target == t.name && r.outcome != Outcome::Skip) {
            o.push_str(&detail_panel(r, "top"));
        }
        o.push_str("</body></html>\n");
        o
    }
}

/// The file name stem for a target's certification report.
pub fn file_stem(target: &str) -> String {
    let clean: String =
        target.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    format!("cert-{clean}")
}
