//! Transcripts as snapshots (insta): a few scenarios against the in-process russh target, with
//! what changes between runs redacted by `transcript::stable_text`. A change in what the peer sends,
//! in what russh answers, or in how transcripts read shows up as a snapshot diff in review.
//! Under CI=true a snapshot that does not match fails; `cargo insta review` accepts a new one.

use sshspec::peer::{self, Credentials, Judgement};
use sshspec::script;
use sshspec::targets;
use sshspec::transcript::stable_text;
use std::path::Path;

const SNAPSHOTTED: &[&str] = &[
    "sanity/password-session",
    "transport/version/server-identification",
    "auth/wrong-password-fails",
    "connection/channel/eof-comes-before-close",
];

#[tokio::test(flavor = "multi_thread")]
async fn transcripts_read_the_same_run_after_run() {
    let all = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")).expect("catalogue");
    let builtin = targets::find("builtin").unwrap();
    let running =
        targets::start(&builtin, Some(Credentials::generate(targets::TEST_USER))).await.expect("builtin starts");
    for id in SNAPSHOTTED {
        let s = all.iter().find(|s| s.id == *id).unwrap_or_else(|| panic!("no scenario {id}"));
        let run = peer::run(s, running.addr, &running.creds, &peer::Options::default()).await;
        assert_eq!(run.judgement, Judgement::Pass, "{id}");
        let text = stable_text(&run.transcript);
        assert!(!text.contains(&running.creds.password), "no password in a transcript");
        insta::assert_snapshot!(id.replace('/', "__"), text);
    }
    running.stop().await;
}
