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
    assert!(String::from_utf8_lossy(&o.stdout).contains("transport/kex/no-common/kex-algorithm"));
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

/// Every clause a scenario cites is in the project's registry (scenarios/clauses/), and `check`
/// refuses a scenario that cites an id the registry does not have.
#[test]
fn cited_clauses_exist_in_the_registry() {
    let o = sshspec(&["check"], repo());
    assert!(o.status.success(), "the catalogue cites only registered clauses: {}", String::from_utf8_lossy(&o.stderr));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    let good = std::fs::read_to_string(repo().join("scenarios/sanity/password-session.toml")).unwrap();
    let cited = good.lines().find(|l| l.starts_with("clauses")).expect("a clauses line").to_owned();
    std::fs::write(&file, good.replace(&cited, "clauses = [\"4253-99-z\"]")).unwrap();
    let o = sshspec(&["check", "--scenarios-dir", dir.path().to_str().unwrap()], repo());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("typo.toml") && err.contains("4253-99-z") && err.contains("registry"), "{err}");
}

#[test]
fn coverage_counts_the_registry_per_document() {
    let o = sshspec(&["coverage", "--json"], repo());
    assert!(o.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 16, "the nine first documents and the seven added with issue 21");
    let sum = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("testable"), 346, "349 until RFC 9142 superseded three of RFC 4253's");
    assert!(
        sum("cited") >= 310,
        "at least the clauses cited once SSH-1 compatibility mode, reconnections, the guess flag and Unix-domain forwarding had scenarios"
    );
    assert!(sum("validated") > 0 && sum("validated") <= sum("cited"));
    let md = String::from_utf8_lossy(&sshspec(&["coverage"], repo()).stdout).into_owned();
    assert!(md.contains("| RFC 4253 |") && md.contains("not cited yet"), "{md}");
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

/// A vendor's own scenarios, in a folder of their own, work as the catalogue's do: checked and
/// run alone, or beside catalogue scenarios, with no complaint about the shipped descriptions'
/// entries for scenarios that folder does not hold.
#[test]
fn scenarios_of_ones_own_are_checked_and_run_like_the_catalogues() {
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("vendor");
    std::fs::create_dir_all(own.join("login")).unwrap();
    let text = std::fs::read_to_string(repo().join("scenarios/sanity/password-session.toml")).unwrap();
    let file = own.join("login/our-password-login.toml");
    std::fs::write(&file, text.replace("tier = \"smoke\"\n", "")).unwrap();
    let (f, d) = (file.to_str().unwrap(), own.to_str().unwrap());

    let o = sshspec(&["check", f], repo());
    assert!(o.status.success(), "check FILE: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("1 scenario(s) from 1 file(s)"));
    let o = sshspec(&["check", "--scenarios-dir", d], repo());
    assert!(o.status.success(), "check --scenarios-dir: {}", String::from_utf8_lossy(&o.stderr));

    let o = sshspec(&["run", "-t", "builtin", "--no-report", d, "sanity/password-session"], repo());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("2 scenario(s)") && out.contains("2 passed"), "{out}");
    // An own file with a catalogue scenario's id is refused, not silently merged.
    let twin = dir.path().join("sanity");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::write(twin.join("password-session.toml"), &text).unwrap();
    let o = sshspec(
        &["run", "-t", "builtin", "--no-report", dir.path().to_str().unwrap(), "sanity/password-session"],
        repo(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("both have the id"));
}

/// Bad fleet input is a usage error that names the file, before anything connects.
#[test]
fn a_bad_inventory_is_a_usage_error_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("fleet.toml");
    std::fs::write(&inv, "[[host]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nhost-keys = [\"4 1 abcd\"]\n").unwrap();
    let f = inv.to_str().unwrap();
    let o = sshspec(&["run", "--no-report", "--targets-file", f], repo());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("fleet.toml") && err.contains("SHA-1"), "{err}");
    std::fs::write(&inv, "[[host]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n").unwrap();
    let o = sshspec(&["run", "--no-report", "--targets-file", f, "--known-hosts", "/nonexistent/known_hosts"], repo());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = sshspec(&["run", "--no-report", "--targets-file", f, "--host-keys-ldap", "ldap://127.0.0.1:1"], repo());
    assert_eq!(o.status.code(), Some(2), "--base is required: {}", String::from_utf8_lossy(&o.stderr));
    let o = sshspec(
        &["run", "--no-report", "--targets-file", f, "--host-keys-ldap", "ldap://127.0.0.1:1", "--base", "dc=x"],
        repo(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "an unreachable directory: {err}");
    assert!(err.contains("ldap://127.0.0.1:1"), "{err}");
}
