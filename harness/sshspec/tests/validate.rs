//! The mutation check of the catalogue (`sshspec validate`): the conforming fixture server passes
//! every scenario it can serve, and the deviations the catalogue catches stay caught. The known
//! survivors are listed with why; a new survivor (a scenario gone blind) or one newly caught
//! (update the list) fails the test.

use sshspec::run::RunOptions;
use sshspec::server::DEVIATIONS;
use std::collections::BTreeSet;

/// Deviations no scenario catches yet, and why.
const SURVIVORS: &[(&str, &str)] = &[
    (
        "data-during-own-rekey",
        "download-256k-repeatedly stops granting window once the server's rekey is due, so the deviant server has no window to send data in during its own exchange; a scenario that keeps the window open through the server's rekey would see it. Now and then data already in the window's last bytes goes out after the deviant's KEXINIT and the scenario catches it (1 run in 6 on 2026-11-28): see validate::SOMETIMES_CAUGHT",
    ),
    (
        "client-data-during-own-kexinit-fatal",
        "no scenario has our data in flight when the server starts a rekey: upload-256k-repeatedly stops sending at the limit and waits for the server's KEXINIT; sending on past the limit would put data in flight across it",
    ),
    (
        "small-maximum-packet",
        "data-at-the-maximum-packet-size-is-accepted sends chunks of the size the server advertises, whatever it is; judging the advertised size against 32768 needs a range matcher (language v2)",
    ),
];

#[test]
fn the_catalogue_catches_the_fixtures_deviations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let scenarios = sshspec::script::load_dir(&dir).expect("the catalogue loads");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let deviations: Vec<_> = DEVIATIONS.iter().collect();
    let opts = RunOptions { retry_alone: false, ..Default::default() };
    let v = rt.block_on(sshspec::validate::validate(&scenarios, &deviations, &opts, &mut [])).expect("validate runs");
    println!("{}", v.text());
    assert!(v.conforming_failures.is_empty(), "the conforming fixture: {:?}", v.conforming_failures);
    assert!(v.conforming_passed > 150, "{} passed", v.conforming_passed);
    // Every SKIP has its reason.
    assert!(v.conforming_skipped.iter().all(|(_, why)| !why.is_empty()));
    // Whether a survivor that is caught now and then by timing was caught is not checked.
    let steady = |d: &&str| !sshspec::validate::SOMETIMES_CAUGHT.contains(d);
    let survived: BTreeSet<&str> = v.survivors().map(|m| m.deviation).filter(steady).collect();
    let known: BTreeSet<&str> = SURVIVORS.iter().map(|(n, _)| *n).filter(steady).collect();
    assert_eq!(survived, known, "surviving deviations changed");
    assert!(v.score() >= 95.0, "mutation score {:.1}%", v.score());
    // Each caught deviation was caught by a scenario citing one of its clauses.
    for m in v.mutants.iter().filter(|m| m.killed()) {
        for id in &m.killed_by {
            let s = scenarios.iter().find(|s| &s.id == id).expect("a catalogue scenario");
            // By construction a deviant runs only scenarios citing its clauses; this keeps it so.
            assert!(s.clauses.iter().any(|c| m.clauses.contains(&c.as_str())), "{} caught by {id}", m.deviation);
        }
    }
    // The record coverage reads (validated.toml) names the deviations caught now, each by at least
    // one of the scenarios it lists. A scenario of the record that did not catch its deviation
    // this time is noted, not failed: one deviation is often caught several ways.
    let record = sshspec::validate::read_record(&dir).expect("validated.toml reads");
    let now = v.kills();
    let by_deviation = |r: &sshspec::validate::Record| {
        let mut m: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for (id, devs) in r {
            for d in devs {
                m.entry(d.clone()).or_default().insert(id.clone());
            }
        }
        m
    };
    let (recorded, seen) = (by_deviation(&record), by_deviation(&now));
    let stale = "scenarios/validated.toml is stale: run `sshspec validate --record`";
    assert_eq!(recorded.keys().collect::<Vec<_>>(), seen.keys().collect::<Vec<_>>(), "{stale}");
    for (d, ids) in &recorded {
        assert!(ids.iter().any(|id| seen[d].contains(id)), "{d}: none of {ids:?} caught it now; {stale}");
        for id in ids.difference(&seen[d]) {
            println!("note: {id} did not catch {d} this time");
        }
    }
}
