//! The project's clause registry: every normative clause of the documents the catalogue checks,
//! kept in `scenarios/clauses/<document>.toml` and embedded in the binary, so any copy of sshspec
//! can tell a cited id from a typo and count coverage. Scenarios cite clauses by id
//! (`4253-11.4-b`); the registry says what the clause requires and whether a server's behaviour
//! can show it.

use super::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The registry's files, embedded at build time (name, text).
const FILES: [(&str, &str); 16] = [
    ("rfc4251.toml", include_str!("../../../../scenarios/clauses/rfc4251.toml")),
    ("rfc4252.toml", include_str!("../../../../scenarios/clauses/rfc4252.toml")),
    ("rfc4253.toml", include_str!("../../../../scenarios/clauses/rfc4253.toml")),
    ("rfc4254.toml", include_str!("../../../../scenarios/clauses/rfc4254.toml")),
    ("rfc4256.toml", include_str!("../../../../scenarios/clauses/rfc4256.toml")),
    ("rfc4344.toml", include_str!("../../../../scenarios/clauses/rfc4344.toml")),
    ("rfc8308.toml", include_str!("../../../../scenarios/clauses/rfc8308.toml")),
    ("rfc8332.toml", include_str!("../../../../scenarios/clauses/rfc8332.toml")),
    ("strict-kex.toml", include_str!("../../../../scenarios/clauses/strict-kex.toml")),
    ("rfc4419.toml", include_str!("../../../../scenarios/clauses/rfc4419.toml")),
    ("rfc5656.toml", include_str!("../../../../scenarios/clauses/rfc5656.toml")),
    ("rfc6668.toml", include_str!("../../../../scenarios/clauses/rfc6668.toml")),
    ("rfc8268.toml", include_str!("../../../../scenarios/clauses/rfc8268.toml")),
    ("rfc8731.toml", include_str!("../../../../scenarios/clauses/rfc8731.toml")),
    ("rfc9142.toml", include_str!("../../../../scenarios/clauses/rfc9142.toml")),
    ("openssh-protocol.toml", include_str!("../../../../scenarios/clauses/openssh-protocol.toml")),
];

/// Whether a server's behaviour can show that a clause is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Testable {
    /// A scripted client can provoke or observe it against any server.
    Yes,
    /// Only with a particular configuration or account, statistically, or at impractical cost.
    Partly,
    /// It binds clients only.
    Client,
    /// Not visible on the wire (spec-writing, registries, configuration).
    No,
    /// Replaced by a later document that updates this one (RFC 9142 for RFC 4253's key exchange
    /// methods); the registry holds the replacement, which scenarios judge instead.
    Superseded,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    pub id: String,
    pub section: String,
    /// As the text has it: `MUST`, `SHOULD NOT`, `MUST / MUST NOT`, `implicit` (no keyword).
    pub level: String,
    /// The requirement, quoted verbatim; text outside quotes is paraphrase.
    pub requirement: String,
    pub testable: Testable,
    /// How a scenario can check it.
    #[serde(default)]
    pub check: Option<String>,
    /// Rank among the 25 clauses most likely to expose server bugs.
    #[serde(default)]
    pub top25: Option<u8>,
}

impl Clause {
    /// MUST, MUST NOT, REQUIRED, SHALL or SHALL NOT, alone or with a SHOULD.
    pub fn must_level(&self) -> bool {
        ["MUST", "REQUIRED", "SHALL"].iter().any(|k| self.level.contains(k))
    }

    /// A server's behaviour can show it (yes or partly).
    pub fn server_testable(&self) -> bool {
        matches!(self.testable, Testable::Yes | Testable::Partly)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// `RFC 4253`, `Strict KEX`.
    pub document: String,
    pub title: String,
    pub source: String,
    pub clause: Vec<Clause>,
}

#[derive(Debug)]
pub struct Registry {
    pub documents: Vec<Document>,
}

impl Registry {
    /// The registry this sshspec was built with (an error only if the files embedded are broken,
    /// which the tests rule out).
    pub fn builtin() -> Result<&'static Registry, String> {
        static R: OnceLock<Result<Registry, String>> = OnceLock::new();
        R.get_or_init(|| Registry::parse(&FILES)).as_ref().map_err(Clone::clone)
    }

    /// Parses registry files; an id given twice is an error.
    pub fn parse(files: &[(&str, &str)]) -> Result<Registry, String> {
        let mut documents = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, text) in files {
            let d: Document = toml::from_str(text).map_err(|e| format!("scenarios/clauses/{name}: {e}"))?;
            if let Some(dup) = d.clause.iter().find(|c| !seen.insert(c.id.clone())) {
                return Err(format!("scenarios/clauses/{name}: clause {} is listed twice", dup.id));
            }
            documents.push(d);
        }
        Ok(Registry { documents })
    }

    pub fn get(&self, id: &str) -> Option<&Clause> {
        self.documents.iter().flat_map(|d| &d.clause).find(|c| c.id == id)
    }

    /// The document holding clause `id` (`RFC 4253`).
    pub fn document_of(&self, id: &str) -> Option<String> {
        self.documents.iter().find(|d| d.clause.iter().any(|c| c.id == id)).map(|d| d.document.clone())
    }

    /// The cited ids that are not in the registry, by scenario.
    pub fn unknown_citations<'a>(&self, scenarios: &'a [Scenario]) -> Vec<(&'a Scenario, &'a str)> {
        let known: BTreeSet<&str> = self.documents.iter().flat_map(|d| &d.clause).map(|c| c.id.as_str()).collect();
        scenarios
            .iter()
            .flat_map(|s| s.clauses.iter().filter(|c| !known.contains(c.as_str())).map(move |c| (s, c.as_str())))
            .collect()
    }

    /// Coverage per document. `validated`: scenarios seen to FAIL on some server and PASS on
    /// another (a shipped target description's expected failures, the fixture's recorded kills).
    pub fn coverage(&self, scenarios: &[Scenario], validated: &BTreeSet<String>) -> Vec<Coverage> {
        let mut by_clause: BTreeMap<&str, Vec<&Scenario>> = BTreeMap::new();
        for s in scenarios {
            for c in &s.clauses {
                by_clause.entry(c.as_str()).or_default().push(s);
            }
        }
        self.documents
            .iter()
            .map(|d| {
                let testable: Vec<&Clause> = d.clause.iter().filter(|c| c.server_testable()).collect();
                let cited = |c: &Clause| by_clause.contains_key(c.id.as_str());
                let is_validated = |c: &Clause| {
                    by_clause.get(c.id.as_str()).is_some_and(|v| v.iter().any(|s| validated.contains(&s.id)))
                };
                Coverage {
                    document: d.document.clone(),
                    clauses: d.clause.len(),
                    testable: testable.len(),
                    testable_must: testable.iter().filter(|c| c.must_level()).count(),
                    cited: testable.iter().filter(|c| cited(c)).count(),
                    cited_must: testable.iter().filter(|c| c.must_level() && cited(c)).count(),
                    validated: testable.iter().filter(|c| is_validated(c)).count(),
                    uncited: testable.iter().filter(|c| !cited(c)).map(|c| c.id.clone()).collect(),
                    top25_uncited: testable
                        .iter()
                        .filter(|c| c.top25.is_some() && !cited(c))
                        .map(|c| c.id.clone())
                        .collect(),
                }
            })
            .collect()
    }
}

/// One document's coverage by the catalogue; counts are of server-testable clauses.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    pub document: String,
    pub clauses: usize,
    pub testable: usize,
    pub testable_must: usize,
    pub cited: usize,
    pub cited_must: usize,
    /// Cited by a scenario seen to FAIL on a server that breaks the clause.
    pub validated: usize,
    pub uncited: Vec<String>,
    pub top25_uncited: Vec<String>,
}

/// A share to a tenth of a percent, rounded down: 311 of 346 is 89.8%, never a rounded-up 90%
/// that a threshold would read as met.
fn pct(n: usize, of: usize) -> String {
    match (n * 1000).checked_div(of) {
        None => "-".into(),
        Some(per_mille) => format!("{}.{}%", per_mille / 10, per_mille % 10),
    }
}

/// The coverage table and the uncited ids, as Markdown (CATALOGUE.md, `sshspec coverage`).
pub fn coverage_markdown(rows: &[Coverage]) -> String {
    let mut o = String::from(
        "| document | clauses | server-testable | cited | MUST-level cited | validated |\n|---|---|---|---|---|---|\n",
    );
    let sum = |f: fn(&Coverage) -> usize| rows.iter().map(f).sum::<usize>();
    let mut line = |name: &str, clauses, testable, cited, must, cited_must, validated| {
        o.push_str(&format!(
            "| {name} | {clauses} | {testable} | {cited} ({}) | {cited_must} of {must} ({}) | {validated} ({}) |\n",
            pct(cited, testable),
            pct(cited_must, must),
            pct(validated, testable)
        ));
    };
    for r in rows {
        line(&r.document, r.clauses, r.testable, r.cited, r.testable_must, r.cited_must, r.validated);
    }
    line(
        "**all**",
        sum(|r| r.clauses),
        sum(|r| r.testable),
        sum(|r| r.cited),
        sum(|r| r.testable_must),
        sum(|r| r.cited_must),
        sum(|r| r.validated),
    );
    o.push_str(
        "\n*Validated*: cited by a scenario seen to FAIL: on a real server that breaks the clause (a shipped \
         target description's expected failure), or on the fixture server made to break a clause the scenario \
         cites (scenarios/validated.toml).\n",
    );
    let top: Vec<&String> = rows.iter().flat_map(|r| &r.top25_uncited).collect();
    o.push_str(&format!(
        "\nTop-25 bug-prone clauses not cited: {}.\n\nServer-testable clauses not cited yet:\n\n",
        if top.is_empty() {
            "none".to_owned()
        } else {
            top.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        }
    ));
    for r in rows.iter().filter(|r| !r.uncited.is_empty()) {
        o.push_str(&format!(
            "- {}: {}\n",
            r.document,
            r.uncited.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_registry_parses_and_counts_as_documented() {
        let r = Registry::builtin().unwrap();
        let all: Vec<&Clause> = r.documents.iter().flat_map(|d| &d.clause).collect();
        assert_eq!(
            all.len(),
            410,
            "the nine first documents: 307 keyword rows and 15 implicit ones; the seven added: 88"
        );
        assert_eq!(all.iter().filter(|c| c.server_testable()).count(), 346);
        assert_eq!(all.iter().filter(|c| c.top25.is_some()).count(), 25);
        assert!(r.get("4253-11.4-b").is_some_and(|c| c.must_level()));
        assert!(r.get("4253-99-z").is_none());
    }

    #[test]
    fn a_duplicate_id_is_an_error() {
        let one = "document = \"X\"\ntitle = \"t\"\nsource = \"s\"\n[[clause]]\nid = \"x-1-a\"\nsection = \"1\"\nlevel = \"MUST\"\nrequirement = \"r\"\ntestable = \"yes\"\n";
        let e = Registry::parse(&[("a.toml", one), ("b.toml", one)]).unwrap_err();
        assert!(e.contains("b.toml") && e.contains("x-1-a"), "{e}");
        assert!(Registry::parse(&[("c.toml", &one.replace("yes", "maybe"))]).unwrap_err().contains("c.toml"));
    }
}
