//! The directory-keys variant with a real OpenLDAP slapd: OpenSSH 9.2p1 finds the test user's keys
//! only by asking the directory (AuthorizedKeysCommand), so taking the keys out of the directory
//! between two runs of the same scenario turns its PASS into a FAIL, and putting them back turns it
//! into a PASS again. A missing image fails in CI and skips, visibly, elsewhere.

use sshspec::peer::{self, Credentials, Judgement};
use sshspec::script;
use sshspec::targets::{self, StartError};
use std::path::Path;
use std::process::Command;

const TARGET: &str = "openssh-9.2p1";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn scenario(id: &str) -> script::Scenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    script::load_file(&dir, &dir.join(format!("{id}.toml"))).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

/// `sshspec-serve directory add|remove` inside the container: the keys go in or out of slapd.
fn directory(container: &str, action: &str) {
    let out = Command::new("docker").args(["exec", container, "sshspec-serve", "directory", action]).output().unwrap();
    assert!(out.status.success(), "directory {action}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_added_to_and_removed_from_the_directory_decide_the_login() {
    let target = targets::find(TARGET).unwrap().with_variant(Some("directory-keys")).unwrap();
    let creds = Credentials::generate(targets::TEST_USER);
    let running = match targets::start(&target, Some(creds.clone())).await {
        Ok(r) => r,
        Err(StartError::Missing(m)) if !ci() => {
            eprintln!("note: skipping: {TARGET} unavailable: {m}");
            return;
        }
        Err(e) => panic!("{TARGET} with directory-keys did not start: {e}"),
    };
    let container = running.container_id().expect("a container target").to_owned();
    let login = scenario("auth/publickey/directory-key-logs-in");
    let opts = peer::Options { ssh_inner: running.inner, ..peer::Options::default() };
    let verdict = |run: peer::Run| match run.judgement {
        Judgement::Pass => Ok(()),
        Judgement::Fail(e) => Err(format!("FAIL: expected {}; got {}", e.expected, e.actual)),
        Judgement::Error(e) | Judgement::Inconclusive(e) => panic!("not judged: {}", e.actual),
        Judgement::Unsupported(why) => panic!("not judged: {why}"),
    };

    let first = verdict(peer::run(&login, running.addr, &creds, &opts).await);
    directory(&container, "remove");
    let removed = verdict(peer::run(&login, running.addr, &creds, &opts).await);
    directory(&container, "add");
    let again = verdict(peer::run(&login, running.addr, &creds, &opts).await);
    let logs =
        running.logs.between(std::time::Instant::now() - std::time::Duration::from_secs(60), std::time::Instant::now());
    running.stop().await;

    assert_eq!(first, Ok(()), "with the keys in the directory; server log:\n{logs:?}");
    let refused = removed.expect_err("with the keys removed from the directory, the login must fail");
    assert!(refused.to_lowercase().contains("userauth_failure"), "refused for the wrong reason: {refused}");
    assert_eq!(again, Ok(()), "with the keys added back; server log:\n{logs:?}");
}
