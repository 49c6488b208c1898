//! The `sshspec` binary as a user meets it: exit codes, error locations, and the report files.

use std::path::Path;
use std::process::{Command, Output};

fn sshspec(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sshspec")).args(args).current_dir(cwd).output().unwrap()
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn run_against_builtin_writes_json_and_junit() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("r");
    let o = sshspec(&["run", "--report-dir", dir.to_str().unwrap(), "sanity"], repo());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("passed"), "{stdout}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema_version"], 2);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        assert_eq!(r["target"], "builtin");
        assert_eq!(r["outcome"], "PASS");
        assert!(r["scenario"].as_str().unwrap().starts_with("sanity/"));
        assert!(!r["transcript"].as_array().unwrap().is_empty());
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"builtin\""), "{junit}");
    assert!(junit.contains("sanity/password-session"));
}

#[test]
fn a_malformed_scenario_names_file_line_and_column_and_nothing_runs() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("scenarios/x")).unwrap();
    std::fs::write(
        d.path().join("scenarios/x/bad.toml"),
        "title = \"t\"\nspec = \"s\"\nclauses = [\"c\"]\nlevel = \"must\"\nrequirement = \"r\"\n\n[[step]]\nsend = \"kexinit\"\nwith = { kex = [\"a\"] }\n",
    )
    .unwrap();
    let o = sshspec(&["run", "--no-report"], d.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.toml:9:8"), "{stderr}");
    assert!(stderr.contains("unknown field `kex`"), "{stderr}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("target builtin"), "nothing may run");
}

#[test]
fn an_unknown_target_is_a_usage_error() {
    let o = sshspec(&["run", "--no-report", "--target", "nosuch"], repo());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown target \"nosuch\""));
}

#[test]
fn a_failing_target_exits_1_with_evidence() {
    // A scenario every conforming server fails: it demands protoversion 1.99.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("scenarios")).unwrap();
    std::fs::write(
        d.path().join("scenarios/wrong-banner.toml"),
        "title = \"t\"\nspec = \"RFC 4253 §4.2\"\nclauses = [\"4253-4.2-c\"]\nlevel = \"must\"\nrequirement = \"r\"\n\n\
         [[step]]\ndo = \"version-exchange\"\n\n[[step]]\nexpect = \"banner\"\nmatch = { protoversion = \"1.99\" }\n",
    )
    .unwrap();
    let o = sshspec(&["run", "--no-report"], d.path());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  builtin wrong-banner"), "{stdout}");
    assert!(stdout.contains("protoversion is \"2.0\", not \"1.99\""), "{stdout}");
}

#[test]
fn list_and_check_work_on_the_catalogue() {
    let o = sshspec(&["check"], repo());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sshspec(&["list"], repo());
    assert!(String::from_utf8_lossy(&o.stdout).contains("transport/kex/no-common-kex-algorithm"));
}

#[test]
fn unreadable_key_files_and_bad_flags_are_usage_errors() {
    let o =
        sshspec(&["run", "--no-report", "-t", "remote:127.0.0.1:9", "--identity", "/nonexistent/id_ed25519"], repo());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read key file /nonexistent/id_ed25519"), "{stderr}");
    let o = sshspec(&["run", "--no-report", "--step-timeout", "soon"], repo());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad duration \"soon\""));
    let o = sshspec(&["run", "--no-such-flag"], repo());
    assert_eq!(o.status.code(), Some(2));
    let o = sshspec(&["run", "--no-report", "nothing/matches/this"], repo());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no scenario matches"));
}

/// Every clause a scenario cites exists in the inventory (shared/CLAUSES.md, beside the project
/// root), so that coverage can be counted. Skipped, visibly, where the inventory is not present.
#[test]
fn cited_clauses_exist_in_the_inventory() {
    let inventory = repo().join("../shared/CLAUSES.md");
    let Ok(text) = std::fs::read_to_string(&inventory) else {
        eprintln!("note: {} not found; clause ids not checked", inventory.display());
        return;
    };
    let known: std::collections::HashSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("| ")?.split(" |").next()).map(str::trim).collect();
    let o = sshspec(&["list", "--format", "markdown"], repo());
    let list = String::from_utf8_lossy(&o.stdout);
    let mut unknown = Vec::new();
    for row in list.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = row.split(" | ").collect();
        for c in cols[2].split(", ") {
            if !known.contains(c.trim()) {
                unknown.push(format!("{} cites {c}", cols[0]));
            }
        }
    }
    assert!(unknown.is_empty(), "{unknown:?}");
}

#[test]
fn a_baseline_run_lists_changes_and_a_bad_baseline_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("a");
    let o = sshspec(&["run", "--report-dir", first.to_str().unwrap(), "sanity"], repo());
    assert_eq!(o.status.code(), Some(0));
    let base = first.join("report.json");
    let second = out.path().join("b");
    let o = sshspec(
        &["run", "--report-dir", second.to_str().unwrap(), "--baseline", base.to_str().unwrap(), "sanity"],
        repo(),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 regression(s), 0 fixed"), "{stdout}");
    assert!(
        second.join("baseline.md").is_file()
            && second.join("matrix.html").is_file()
            && second.join("cert-builtin.md").is_file()
    );
    let o = sshspec(&["run", "--no-report", "--baseline", "/nonexistent/report.json", "sanity"], repo());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--baseline"), "names the flag");
}

/// `sshspec targets | head -1`: a reader that goes away ends the output quietly, as with other Unix
/// tools: no panic, no backtrace, a clean exit. The pipe's read end is closed before the program
/// starts, so every write meets it closed, whatever the pipe's buffer size.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    for args in [&["targets"][..], &["list"], &["man"], &["completions", "bash"], &["run", "--no-report", "sanity/*"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_sshspec"))
            .args(args)
            .current_dir(repo())
            .env("RUST_BACKTRACE", "1")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} exits cleanly: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?} is quiet: {stderr}");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_flags() {
    let o = sshspec(&["completions", "bash"], repo());
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for word in ["merge", "--shard", "--targets-file", "--host-keys-ldap"] {
        assert!(script.contains(word), "the bash completion knows {word}");
    }
    let o = sshspec(&["man", "run"], repo());
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && page.contains(".TH sshspec-run 1") && page.contains("shard"), "{page}");
    let o = sshspec(&["man", "nosuch"], repo());
    assert_eq!(o.status.code(), Some(2));
}
