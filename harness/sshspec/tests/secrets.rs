//! Secrets never reach an output: after a full run against every available target with known
//! credentials, the console, report.json and junit.xml are searched for the password and the
//! private key in every encoding we can think of.

use base64::Engine;
use sshspec::peer::Credentials;
use sshspec::report::Reporter;
use sshspec::report::console::Console;
use sshspec::run::{RunOptions, run};
use sshspec::verdict::Outcome;
use sshspec::{script, targets};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);
impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_output_of_a_full_run_contains_a_secret() {
    let scenarios = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")).unwrap();
    let creds = Credentials::generate(targets::TEST_USER);
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let mut infos = vec![targets::find("builtin").unwrap()];
    for name in ["openssh", "dropbear"] {
        let t = targets::find(name).unwrap();
        if targets::availability(&t).starts_with("ready") {
            infos.push(t);
        } else {
            assert!(!ci, "{name} unavailable in CI");
            eprintln!("note: {name} unavailable here; checking the others");
        }
    }
    let console = Buffer::default();
    let opts = RunOptions { ci, creds: Some(creds.clone()), ..Default::default() };
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Console::to(2, Box::new(console.clone())))];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let summary = rt.block_on(run(&infos, &scenarios, &opts, &mut reporters));
    let bad: Vec<_> = summary
        .results
        .iter()
        .filter(|r| r.outcome.is_failure() || r.outcome == Outcome::Error)
        .map(|r| format!("{} {} {}", r.target, r.scenario, r.outcome))
        .collect();
    assert!(bad.is_empty(), "the run itself must conform: {bad:?}");

    let dir = tempfile::tempdir().unwrap();
    // Every report file a run writes: report.json, junit.xml, matrix.html, cert-*.md and .html.
    let files = sshspec::report::write_all(dir.path(), &summary, None).unwrap();
    assert!(files.len() >= 5, "{files:?}");
    let mut outputs = vec![("console".to_owned(), console.0.lock().unwrap().clone())];
    for f in files {
        outputs.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }

    let seed = creds.keys.ed25519.to_bytes();
    let keypair = creds.keys.ed25519.to_keypair_bytes();
    let b64 = base64::engine::general_purpose::STANDARD;
    let secrets = [
        ("password", creds.password.clone()),
        ("password as hex", hex::encode(creds.password.as_bytes())),
        ("private key as hex", hex::encode(seed)),
        ("private key as base64", b64.encode(seed)),
        ("keypair as hex", hex::encode(keypair)),
        ("keypair as base64", b64.encode(keypair)),
    ];
    let mut leaks = Vec::new();
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for (what, s) in &secrets {
            if text.contains(s.as_str()) {
                leaks.push(format!("{what} found in {name}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:?}");
    // The check means something only if the logins were recorded, redacted.
    let report = String::from_utf8_lossy(&outputs[1].1);
    assert!(report.contains("<redacted>"), "password logins should appear in the transcripts, redacted");
    assert!(report.contains("userauth_request"));
    eprintln!(
        "searched {} outputs ({} bytes) of {} results for {} secret forms",
        outputs.len(),
        outputs.iter().map(|o| o.1.len()).sum::<usize>(),
        summary.results.len(),
        secrets.len()
    );
}
