//! The algorithm interop matrix: for each algorithm a target advertises, one at a time (the others
//! left at our defaults), a key exchange, a login, and 1 MiB through `cat` both ways, checked
//! byte for byte. The scenarios are generated, run by the ordinary runner, and the results are
//! folded into an algorithm × target table.
//!
//! What a target advertises comes from its live KEXINIT (the run's probe, `peer::probe`), not
//! from its description: the matrix shows what the server really offers.

use crate::peer::{self, Profile};
use crate::script::{
    Action, AuthKind, AuthOutcome, AuthStep, Input, Level, Pins, RekeyPolicy, Requires, Scenario, Step, Tier,
};
use crate::targets::{self, Algorithms, TargetInfo};
use crate::transport::{cipher, compress, hostkey, kex};
use crate::verdict::{Outcome, ScenarioResult};
use serde::Serialize;
use std::time::Duration;

/// Bytes sent through `cat` in each matrix scenario (echoed back, so as many each way).
pub const BULK: u64 = 1 << 20;
/// The cipher MAC rows use: the MAC list is ignored under an AEAD cipher.
const MAC_ROW_CIPHER: &str = cipher::AES128_CTR;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Kex,
    HostKey,
    Cipher,
    Mac,
    Compression,
}

impl Category {
    pub const ALL: [Category; 5] =
        [Category::Kex, Category::HostKey, Category::Cipher, Category::Mac, Category::Compression];

    pub fn name(self) -> &'static str {
        match self {
            Category::Kex => "kex",
            Category::HostKey => "host-key",
            Category::Cipher => "cipher",
            Category::Mac => "mac",
            Category::Compression => "compression",
        }
    }

    /// What the scripted peer speaks in this category.
    pub fn spoken(self) -> Vec<&'static str> {
        match self {
            Category::Kex => kex::algorithms().collect(),
            Category::HostKey => hostkey::ALL.to_vec(),
            Category::Cipher => cipher::ALL_CIPHERS.to_vec(),
            Category::Mac => cipher::MACS.to_vec(),
            Category::Compression => compress::METHODS.to_vec(),
        }
    }

    /// What a KEXINIT offers in this category (both directions, in order; markers left out).
    /// What the probe saw the server offer in this category, both directions, in its order.
    pub fn offered(self, p: &Profile) -> Vec<String> {
        let lists: Vec<&Vec<String>> = match self {
            Category::Kex => vec![&p.kex],
            Category::HostKey => vec![&p.host_key],
            Category::Cipher => vec![&p.cipher_c2s, &p.cipher_s2c],
            Category::Mac => vec![&p.mac_c2s, &p.mac_s2c],
            Category::Compression => vec![&p.compression_c2s, &p.compression_s2c],
        };
        let mut out: Vec<String> = Vec::new();
        for name in lists.into_iter().flatten() {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }

    fn clauses(self) -> Vec<String> {
        let ids: &[&str] = match self {
            Category::Kex => &["4253-7.1-g", "4253-7.2-a"],
            Category::HostKey => &["4253-7.1-j", "4253-6.6-d"],
            Category::Cipher => &["4253-7.1-l", "4253-7.2-b"],
            Category::Mac => &["4253-7.1-n", "4253-7.2-b"],
            Category::Compression => &["4253-7.1-p", "4253-6.2-a"],
        };
        ids.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// The scenario id of one matrix cell's row.
pub fn id(c: Category, algorithm: &str) -> String {
    format!("matrix/{}/{algorithm}", c.name())
}

/// One scenario per algorithm the peer speaks, in every category.
pub fn scenarios() -> Vec<Scenario> {
    Category::ALL.iter().flat_map(|&c| c.spoken().into_iter().map(move |a| scenario(c, a))).collect()
}

fn scenario(c: Category, alg: &str) -> Scenario {
    let mut pins = Pins::default();
    let mut requires = Requires { auth: vec!["publickey".into()], ..Default::default() };
    match c {
        Category::Kex => {
            pins.kex = Some(alg.into());
            requires.kex.push(alg.into());
        }
        Category::HostKey => {
            pins.host_key = Some(alg.into());
            requires.host_key.push(alg.into());
        }
        Category::Cipher => {
            pins.cipher = Some(alg.into());
            requires.cipher.push(alg.into());
        }
        Category::Mac => {
            pins.cipher = Some(MAC_ROW_CIPHER.into());
            pins.mac = Some(alg.into());
            requires.cipher.push(MAC_ROW_CIPHER.into());
            requires.mac.push(alg.into());
        }
        Category::Compression => {
            pins.compression = Some(alg.into());
            requires.compression.push(alg.into());
        }
    }
    Scenario {
        id: id(c, alg),
        path: Default::default(),
        title: format!("{alg} ({}) negotiates and carries 1 MiB each way intact", c.name()),
        spec: "RFC 4253 §7".into(),
        clauses: c.clauses(),
        level: Level::Must,
        requirement: "The chosen algorithm MUST be the first algorithm on the client's name-list that is also on the \
                      server's name-list; keys MUST be derived with the key exchange's hash."
            .into(),
        tier: Tier::Full,
        requires,
        destructive: false,
        timeout: Duration::from_secs(60),
        steps: session_steps(pins, None, BULK),
        digest: format!("generated:matrix:{alg}"),
    }
}

/// A key exchange with `pins` (and our own rekey thresholds, if any), a publickey login, and
/// `bytes` through `cat` checked to come back intact.
pub fn session_steps(pins: Pins, rekey: Option<RekeyPolicy>, bytes: u64) -> Vec<Step> {
    let step = |action| Step::new(0, action);
    vec![
        step(Action::VersionExchange { banner: None, pre_banner: Vec::new() }),
        // The pinned algorithm is what the matrix judges, so its key exchange is under test.
        Step { judged: true, ..step(Action::KeyExchange { pins, with: toml::Table::new(), rekey, guess: false }) },
        step(Action::Authenticate(Box::new(AuthStep::new(AuthKind::Publickey, AuthOutcome::Success)))),
        step(Action::OpenSession { window: None, max_packet: None }),
        // The bulk step gets most of the scenario's minute: under a full matrix on a small
        // machine, 1 MiB each way through a legacy cipher can outlast the 10 s step default.
        Step {
            timeout: Some(Duration::from_secs(50)),
            ..step(Action::Exec {
                program: crate::script::Program::EchoStdin,
                stdin: Some(Input::Generated(bytes)),
                stdout: None,
                stderr: None,
                exit_status: None,
                echo: true,
            })
        },
    ]
}

/// What the probe of one target found.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub target: String,
    /// Category name → algorithms offered, in the server's order.
    pub offered: Vec<(Category, Vec<String>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Starts each target once to read what it offers, and narrows its description to that, so the
/// runner skips (as "does not offer") every row the live server does not have.
pub async fn prepare(list: &mut [TargetInfo], creds: Option<peer::Credentials>) -> Vec<Probe> {
    let mut out = Vec::new();
    for t in list.iter_mut() {
        let found = match targets::start(t, creds.clone()).await {
            Ok(running) => {
                let opts = peer::Options { source: t.source_address(0, running.addr), ..Default::default() };
                let p = peer::probe::probe(running.addr, &running.creds, &opts).await;
                running.stop().await;
                match p.has_lists() {
                    true => Ok(p),
                    false => Err(p.incomplete.unwrap_or_else(|| "the probe read no KEXINIT".into())),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok(p) => {
                let offered: Vec<(Category, Vec<String>)> = Category::ALL.iter().map(|&c| (c, c.offered(&p))).collect();
                let get =
                    |c: Category| offered.iter().find(|(x, _)| *x == c).map(|(_, v)| v.clone()).unwrap_or_default();
                t.algorithms = Algorithms {
                    kex: get(Category::Kex),
                    host_key: get(Category::HostKey),
                    cipher: get(Category::Cipher),
                    mac: get(Category::Mac),
                    compression: get(Category::Compression),
                };
                out.push(Probe { target: t.name.clone(), offered, error: None });
            }
            // The run itself reports a target that does not start; the matrix says why it is empty.
            Err(e) => out.push(Probe { target: t.name.clone(), offered: Vec::new(), error: Some(e) }),
        }
    }
    out
}

/// One cell: the scenario's outcome, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "cell", content = "detail")]
pub enum Cell {
    Outcome(Outcome),
    NotOffered,
    /// The target offers it; the scripted peer does not speak it.
    NotSpoken,
    Unknown,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Outcome(o) => o.to_string(),
            Cell::NotOffered => "·".into(),
            Cell::NotSpoken => "not spoken".into(),
            Cell::Unknown => "?".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub category: Category,
    pub algorithm: String,
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    pub targets: Vec<String>,
    pub rows: Vec<Row>,
}

impl Matrix {
    pub fn build(probes: &[Probe], results: &[ScenarioResult]) -> Matrix {
        let mut rows = Vec::new();
        for c in Category::ALL {
            let spoken = c.spoken();
            let mut algs: Vec<String> = spoken.iter().map(|s| (*s).to_owned()).collect();
            for p in probes {
                for (_, offered) in p.offered.iter().filter(|(x, _)| *x == c) {
                    for a in offered {
                        if !algs.contains(a) {
                            algs.push(a.clone());
                        }
                    }
                }
            }
            for a in algs {
                let spoken = spoken.contains(&a.as_str());
                let cells = probes
                    .iter()
                    .map(|p| {
                        let offered = p.offered.iter().any(|(x, v)| *x == c && v.contains(&a));
                        let result = results.iter().find(|r| r.target == p.target && r.scenario == id(c, &a));
                        match (spoken, offered, result) {
                            (false, true, _) => Cell::NotSpoken,
                            (_, false, _) if p.error.is_none() => Cell::NotOffered,
                            (_, _, Some(r)) => Cell::Outcome(r.outcome),
                            _ => Cell::Unknown,
                        }
                    })
                    .collect::<Vec<_>>();
                if cells.iter().any(|c| *c != Cell::NotOffered) {
                    rows.push(Row { category: c, algorithm: a, cells });
                }
            }
        }
        Matrix { targets: probes.iter().map(|p| p.target.clone()).collect(), rows }
    }

    /// Every offered algorithm the peer speaks passed.
    pub fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows {
            for (t, c) in self.targets.iter().zip(&r.cells) {
                if !matches!(c, Cell::NotOffered | Cell::Outcome(Outcome::Pass)) {
                    out.push(format!("{t}: {} {} {}", r.category.name(), r.algorithm, c.text()));
                }
            }
        }
        out
    }

    pub fn json(&self) -> String {
        // A matrix is strings and enums only, so serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Algorithm interop matrix\n\nEach cell: the algorithm pinned, the rest at sshspec's defaults; key exchange, \
             publickey login, 1 MiB through `cat` each way checked by SHA-256. `·` = not offered by the target.\n",
        );
        let mut category = None;
        for r in &self.rows {
            if category != Some(r.category) {
                category = Some(r.category);
                s.push_str(&format!(
                    "\n## {}\n\n| algorithm | {} |\n|---|{}\n",
                    r.category.name(),
                    self.targets.join(" | "),
                    "---|".repeat(self.targets.len())
                ));
            }
            let cells: Vec<String> = r.cells.iter().map(Cell::text).collect();
            s.push_str(&format!("| `{}` | {} |\n", r.algorithm, cells.join(" | ")));
        }
        let unspoken: Vec<&Row> = self.rows.iter().filter(|r| r.cells.contains(&Cell::NotSpoken)).collect();
        if !unspoken.is_empty() {
            s.push_str(
                "\n## Not spoken by the scripted peer, and why\n\n| algorithm | offered by | why |\n|---|---|---|\n",
            );
            for r in unspoken {
                let by: Vec<&str> = self
                    .targets
                    .iter()
                    .zip(&r.cells)
                    .filter(|(_, c)| **c == Cell::NotSpoken)
                    .map(|(t, _)| t.as_str())
                    .collect();
                s.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    r.algorithm,
                    by.join(", "),
                    not_spoken_reason(&r.algorithm)
                ));
            }
        }
        s
    }
}

/// Why the scripted peer does not speak an algorithm some target offers.
pub fn not_spoken_reason(algorithm: &str) -> &'static str {
    match algorithm {
        "" => "not an algorithm: an empty name in the target's list (RFC 4251 §5 forbids empty names)",
        a if a.starts_with("umac-") => {
            "no Rust crate implements UMAC; we would rather name the gap than ship an unreviewed implementation"
        }
        "hmac-md5" | "hmac-md5-96" | "hmac-sha1-96" => {
            "truncated and MD5 MACs, OPTIONAL in RFC 4253 and removed by OpenSSH 7.2 (2016): not implemented"
        }
        "curve448-sha512" => "RFC 8731's X448: no vetted X448 crate among the peer's dependencies; not implemented",
        "ecdh-sha2-1.3.132.0.10" => "ECDH on secp256k1 (RFC 5656 OID name), offered by AsyncSSH only: not implemented",
        "rsa2048-sha256" | "rsa1024-sha1" => "RSA key exchange (RFC 4432), offered by AsyncSSH only: not implemented",
        a if a.ends_with("@ssh.com") => {
            "a vendor algorithm of SSH Communications, offered by AsyncSSH only: not implemented"
        }
        _ => "not implemented",
    }
}
