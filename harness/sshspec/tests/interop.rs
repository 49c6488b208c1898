//! Interop of the scripted peer's transport with the real servers: the algorithm matrix over every
//! target, and a rekey the server starts in the middle of a transfer.
//!
//! A process target that cannot start here is a visible skip outside CI and a failure under
//! `CI=true`, as in the conformance trials.

use sshspec::matrix::{self, Cell, Matrix};
use sshspec::peer::Credentials;
use sshspec::run::{self, RunOptions};
use sshspec::script::{Level, Pins, Requires, Scenario, Tier};
use sshspec::targets::{self, TargetInfo};
use sshspec::verdict::Outcome;
use std::time::Duration;

/// What the peer does not speak, by design, and the targets offer: named in the README's gaps.
const KNOWN_GAPS: &[&str] = &[
    "openssh: mac umac-64-etm@openssh.com not spoken",
    "openssh: mac umac-128-etm@openssh.com not spoken",
    "openssh: mac umac-64@openssh.com not spoken",
    "openssh: mac umac-128@openssh.com not spoken",
    "openssh-legacy: mac umac-64-etm@openssh.com not spoken",
    "openssh-legacy: mac umac-128-etm@openssh.com not spoken",
    "openssh-legacy: mac umac-64@openssh.com not spoken",
    "openssh-legacy: mac umac-128@openssh.com not spoken",
    // Dropbear's private marker for its guessing variant; not an algorithm a client negotiates.
    "dropbear: kex kexguess2@matt.ucc.asn.au not spoken",
];

/// The library targets' matrix (`library_targets_carry_a_session_with_every_algorithm_they_offer`):
/// the libraries' deviations found through it, each explained in the README. (What the peer does
/// not speak is allowed where `matrix::not_spoken_reason` names why.)
const LIBRARY_GAPS: &[&str] = &[
    // Paramiko lists group exchange in its KEXINIT but, with no moduli loaded (a server that does
    // not call load_server_moduli), negotiates without it: "no acceptable kex algorithm", close.
    "paramiko-2.12.0: kex diffie-hellman-group-exchange-sha256 FAIL",
    "paramiko-2.12.0: kex diffie-hellman-group-exchange-sha1 FAIL",
    "paramiko-3.5.1: kex diffie-hellman-group-exchange-sha256 FAIL",
    "paramiko-3.5.1: kex diffie-hellman-group-exchange-sha1 FAIL",
];

/// Deviations that show only when connections overlap, so they may or may not show in a run.
/// AsyncSSH shares one key object among connections and sets its signature algorithm when each
/// connection chooses (connection.py choose_server_host_key → set_sig_algorithm) and signs the
/// exchange hash later, so a connection that negotiated rsa-sha2-512 can sign with another's
/// rsa-sha2-256 (RFC 8332 §3): "signature is of type rsa-sha2-256, but rsa-sha2-512 was
/// negotiated". Seen in 2.20.0 and, in one CI rehearsal of two, in 2.10.1 (the code is the same;
/// 2.18's await before signing widens the window).
const LIBRARY_RACES: &[&str] = &[
    "asyncssh-2.20.0: host-key rsa-sha2-512 FAIL",
    "asyncssh-2.20.0: host-key rsa-sha2-256 FAIL",
    "asyncssh-2.20.0: host-key ssh-rsa FAIL",
    "asyncssh-2.10.1: host-key rsa-sha2-512 FAIL",
    "asyncssh-2.10.1: host-key rsa-sha2-256 FAIL",
    "asyncssh-2.10.1: host-key ssh-rsa FAIL",
];

/// A cell the peer does not speak is allowed where matrix.md names a specific reason for it.
fn explained_gap(m: &Matrix, gap: &str) -> bool {
    m.rows.iter().any(|r| {
        matrix::not_spoken_reason(&r.algorithm) != "not implemented"
            && gap.ends_with(&format!(": {} {} not spoken", r.category.name(), r.algorithm))
    })
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The targets that can start here; an unavailable one fails the test in CI.
fn available(names: &[&str]) -> Vec<TargetInfo> {
    let mut out = Vec::new();
    for name in names {
        let t = targets::find(name).expect("a known target");
        let a = targets::availability(&t);
        if a.starts_with("ready") {
            out.push(t);
        } else if ci() {
            panic!("target {name} is unavailable in CI: {a}");
        } else {
            eprintln!("note: skipping target {name}: {a} (run scripts/install-test-deps.sh as root)");
        }
    }
    out
}

/// One set of credentials for every test here: they run side by side, and the process targets
/// share one system user (its password and Dropbear's authorized_keys are per user, not per run).
fn creds() -> Credentials {
    static CREDS: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();
    CREDS.get_or_init(|| Credentials::generate(targets::TEST_USER)).clone()
}

/// The tests here run one at a time: each starts servers and pushes data, and timing-sensitive
/// results should not depend on what else the test binary does.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(creds: &Credentials) -> RunOptions {
    RunOptions {
        ci: ci(),
        creds: Some(creds.clone()),
        run_timeout: Some(Duration::from_secs(600)),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_offered_algorithm_carries_a_session() {
    let _one_at_a_time = SERIAL.lock().await;
    let mut list = available(&["builtin", "openssh", "openssh-legacy", "dropbear"]);
    let creds = creds();
    let probes = matrix::prepare(&mut list, Some(creds.clone())).await;
    for p in &probes {
        assert!(p.error.is_none(), "probing {}: {:?}", p.target, p.error);
    }
    let summary = run::run(&list, &matrix::scenarios(), &options(&creds), &mut Vec::new()).await;
    let m = Matrix::build(&probes, &summary.results);
    println!("{}", m.markdown());
    let gaps = m.gaps();
    let unexpected: Vec<_> = gaps.iter().filter(|g| !KNOWN_GAPS.contains(&g.as_str())).collect();
    let evidence: Vec<String> = summary
        .results
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Pass | Outcome::Skip))
        .map(|r| format!("{} {}: {:?} {:?}", r.target, r.scenario, r.reason, r.evidence))
        .collect();
    assert!(unexpected.is_empty(), "cells that did not pass: {unexpected:#?}\n{evidence:#?}");
    // The matrix must have run something for every target: a probe that saw nothing would pass vacuously.
    for (i, t) in m.targets.iter().enumerate() {
        let passed = m.rows.iter().filter(|r| r.cells[i] == Cell::Outcome(Outcome::Pass)).count();
        assert!(passed >= 15, "{t}: only {passed} algorithms passed");
    }
}

/// The same matrix over the library targets (two Debian versions each of Paramiko, AsyncSSH,
/// Erlang/OTP ssh, libssh and Go x/crypto/ssh, in containers): every algorithm each offers that the
/// peer speaks carries a session, but for the deviations listed in `LIBRARY_GAPS`.
#[tokio::test(flavor = "multi_thread")]
async fn library_targets_carry_a_session_with_every_algorithm_they_offer() {
    let _one_at_a_time = SERIAL.lock().await;
    let mut list = available(&[
        "paramiko-2.12.0",
        "paramiko-3.5.1",
        "asyncssh-2.10.1",
        "asyncssh-2.20.0",
        "erlang-otp-25.2.3",
        "erlang-otp-27.3.4",
        "libssh-0.10.6",
        "libssh-0.11.5",
        "go-x-crypto-0.4.0",
        "go-x-crypto-0.25.0",
    ]);
    if list.is_empty() {
        return;
    }
    let creds = creds();
    let probes = matrix::prepare(&mut list, Some(creds.clone())).await;
    for p in &probes {
        assert!(p.error.is_none(), "probing {}: {:?}", p.target, p.error);
    }
    let scenarios = matrix::scenarios();
    let summary = run::run(&list, &scenarios, &options(&creds), &mut Vec::new()).await;
    let m = Matrix::build(&probes, &summary.results);
    println!("{}", m.markdown());
    let unexpected: Vec<String> = m
        .gaps()
        .into_iter()
        .filter(|g| {
            !LIBRARY_GAPS.contains(&g.as_str()) && !LIBRARY_RACES.contains(&g.as_str()) && !explained_gap(&m, g)
        })
        .collect();
    assert!(unexpected.is_empty(), "cells that did not pass: {unexpected:#?}");
    // Each listed deviation must still show, or the list is stale.
    let gaps = m.gaps();
    let stale: Vec<&&str> = LIBRARY_GAPS
        .iter()
        .filter(|g| list.iter().any(|t| g.starts_with(&format!("{}:", t.name))) && !gaps.iter().any(|x| x == **g))
        .collect();
    assert!(stale.is_empty(), "listed deviations that no longer show: {stale:#?}");
    for (i, t) in m.targets.iter().enumerate() {
        let passed = m.rows.iter().filter(|r| r.cells[i] == Cell::Outcome(Outcome::Pass)).count();
        assert!(passed >= 15, "{t}: only {passed} algorithms passed");
    }
}

/// A login and 4 MiB through `cat`, with a key exchange pinned by `pins` and our own rekey
/// thresholds (if any).
fn bulk_scenario(id: &str, pins: Pins, rekey: Option<sshspec::script::RekeyPolicy>) -> Scenario {
    Scenario {
        id: id.into(),
        path: Default::default(),
        title: id.into(),
        spec: "RFC 4253 §9".into(),
        clauses: vec!["4253-9-a".into()],
        level: Level::Must,
        requirement: "Either party may initiate the re-exchange".into(),
        tier: Tier::Full,
        requires: Requires::default(),
        destructive: false,
        timeout: Duration::from_secs(60),
        steps: matrix::session_steps(pins, rekey, 4 << 20),
        digest: String::new(),
    }
}

/// OpenSSH with `RekeyLimit 256K` starts rekeys of its own while 4 MiB flow each way; the peer
/// answers each one with data in flight, and every byte arrives intact.
#[tokio::test(flavor = "multi_thread")]
async fn server_initiated_rekeys_mid_transfer_keep_the_data_intact() {
    let _one_at_a_time = SERIAL.lock().await;
    let mut list = available(&["openssh"]);
    let Some(t) = list.first_mut() else { return };
    t.name = "openssh-rekeylimit".into();
    t.config.push("RekeyLimit 256K".into());
    let creds = creds();
    for cipher in ["chacha20-poly1305@openssh.com", "aes128-ctr"] {
        let pins = Pins { cipher: Some(cipher.into()), ..Default::default() };
        let s = bulk_scenario("rekey/server-initiated", pins, None);
        let summary = run::run(&list, &[s], &options(&creds), &mut Vec::new()).await;
        let r = &summary.results[0];
        let text = serde_json::to_string(&r.transcript).expect("a transcript serializes");
        assert_eq!(r.outcome, Outcome::Pass, "{cipher}: {:?}\n{text}", r.reason);
        let answered = text.matches("the server started a key exchange").count();
        assert!(answered >= 4, "{cipher}: only {answered} server-initiated rekeys in 8 MiB with a 256K limit");
    }
}

/// Our own rekey thresholds: every 512 KiB and every 20 packets, with strict kex resetting the
/// sequence numbers at each NEWKEYS; against every target.
#[tokio::test(flavor = "multi_thread")]
async fn client_initiated_rekeys_by_threshold_on_every_target() {
    let _one_at_a_time = SERIAL.lock().await;
    let list = available(&["builtin", "openssh", "dropbear"]);
    let creds = creds();
    let policies = [
        sshspec::script::RekeyPolicy { bytes: Some(512 << 10), ..Default::default() },
        sshspec::script::RekeyPolicy { packets: Some(20), ..Default::default() },
    ];
    let scenarios: Vec<Scenario> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| bulk_scenario(&format!("rekey/client-threshold-{i}"), Pins::default(), Some(p.clone())))
        .collect();
    let summary = run::run(&list, &scenarios, &options(&creds), &mut Vec::new()).await;
    assert_eq!(summary.results.len(), list.len() * scenarios.len());
    for r in &summary.results {
        let text = serde_json::to_string(&r.transcript).expect("a transcript serializes");
        assert_eq!(r.outcome, Outcome::Pass, "{} {}: {:?}\n{text}", r.target, r.scenario, r.reason);
        let ours = text.matches("rekey threshold reached").count();
        assert!(ours >= 4, "{} {}: only {ours} rekeys of our own", r.target, r.scenario);
        assert!(text.contains("sequence number reset to 0 (strict kex)"), "{}: strict kex was not in force", r.target);
    }
}
