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
        "padding-below-four-accepted",
        "padding-below-four-is-refused is blind: under chacha20-poly1305 the length field is outside the aligned part, so its 1+8+3 = 12 bytes are misaligned too, and a server that takes short padding still closes for the alignment; the scenario needs a 7-byte IGNORE (1+12+3 = 16), to be checked against every target first",
    ),
    (
        "server-kex-preference",
        "client-kex-preference-wins offers curve25519-sha256@libssh.org before curve25519-sha256: the two names compute the same exchange, so a server choosing its own first name is indistinguishable",
    ),
    (
        "data-during-own-rekey",
        "download-256k-repeatedly stops granting window once the server's rekey is due, so the deviant server has no window to send data in during its own exchange",
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
    let survived: BTreeSet<&str> = v.survivors().map(|m| m.deviation).collect();
    let known: BTreeSet<&str> = SURVIVORS.iter().map(|(n, _)| *n).collect();
    assert_eq!(survived, known, "surviving deviations changed");
    assert!(v.score() >= 90.0, "mutation score {:.1}%", v.score());
    // Each caught deviation was caught by a scenario citing one of its clauses.
    for m in v.mutants.iter().filter(|m| m.killed()) {
        for id in &m.killed_by {
            let s = scenarios.iter().find(|s| &s.id == id).expect("a catalogue scenario");
            // By construction a deviant runs only scenarios citing its clauses; this keeps it so.
            assert!(s.clauses.iter().any(|c| m.clauses.contains(&c.as_str())), "{} caught by {id}", m.deviation);
        }
    }
}
