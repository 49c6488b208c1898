//! Sharded runs and `sshspec merge`, as CI matrices use them: N shards run as separate processes
//! (and one in sshspec's own image), their reports merged, must give the verdicts of one run.

mod common;

use common::{assert_schema_valid, bin, ci};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn sshspec(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("sshspec runs")
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json parses")
}

/// (target, scenario) → outcome.
fn verdicts(r: &Value) -> BTreeMap<(String, String), String> {
    r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap_or_default().to_owned();
            ((s("target"), s("scenario")), s("outcome"))
        })
        .collect()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Whether the local servers are here; in CI their absence fails the test.
fn servers_present() -> bool {
    let present = Path::new("/usr/sbin/sshd").exists() && Path::new("/usr/sbin/dropbear").exists();
    if !present {
        assert!(!ci(), "OpenSSH and Dropbear must be installed in CI (scripts/install-test-deps.sh)");
        eprintln!("note: skipping: sshd or dropbear is not installed here (run scripts/install-test-deps.sh as root)");
    }
    present
}

#[test]
fn three_shards_merged_give_one_runs_verdicts() {
    if !servers_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| tmp.path().join(n);
    let targets = ["-t", "builtin", "-t", "openssh", "-t", "dropbear"];
    let single_dir = dir("single");
    let mut args = vec!["run", "--report-dir", single_dir.to_str().unwrap()];
    args.extend(targets);
    let single = sshspec(&args);
    let whole = report(&single_dir);

    let mut pairs = 0;
    let mut shard_files = Vec::new();
    for k in 1..=3 {
        let d = dir(&format!("shard-{k}"));
        let spec = format!("{k}/3");
        let mut args = vec!["run", "--shard", &spec, "--report-dir", d.to_str().unwrap()];
        args.extend(targets);
        let o = sshspec(&args);
        assert!(matches!(o.status.code(), Some(0 | 1)), "shard {k}: {}", text(&o));
        assert!(text(&o).contains(&format!("shard {k}/3:")), "the console names the shard: {}", text(&o));
        let r = report(&d);
        assert_eq!(r["shard"]["index"], k - 1, "report.json records the shard");
        assert_schema_valid(&r);
        let n = verdicts(&r).len();
        assert!(n > 0, "shard {k} ran something");
        pairs += n;
        shard_files.push(d.join("report.json"));
    }
    assert_eq!(pairs, verdicts(&whole).len(), "the shards together hold every pair once");

    let merged_dir = dir("merged");
    let mut args: Vec<&str> = vec!["merge", "--report-dir", merged_dir.to_str().unwrap()];
    args.extend(shard_files.iter().map(|p| p.to_str().unwrap()));
    let merged = sshspec(&args);
    assert_eq!(merged.status.code(), single.status.code(), "the merge exits as the run did: {}", text(&merged));
    let m = report(&merged_dir);
    assert_schema_valid(&m);
    assert_eq!(verdicts(&m), verdicts(&whole), "merged verdicts equal one run's");
    assert_eq!(m["scenario_set"], whole["scenario_set"]);
    assert_eq!(m["merged_shards"].as_array().map(Vec::len), Some(3));
    let names = |r: &Value| -> Vec<String> {
        r["targets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&m), names(&whole), "one summary per target, in the run's order");
    for t in m["targets"].as_array().unwrap() {
        let w = whole["targets"].as_array().unwrap().iter().find(|w| w["name"] == t["name"]).unwrap();
        assert_eq!(t["tally"], w["tally"], "{}: tallies recomputed from the merged results", t["name"]);
        assert_eq!(t["identity"]["host_keys"].as_object().map(|o| o.is_empty()), Some(false));
    }
    for f in ["junit.xml", "matrix.html", "cert-builtin.md", "cert-openssh.html", "cert-dropbear.md"] {
        assert!(merged_dir.join(f).is_file(), "merge writes {f}");
    }
    let junit = std::fs::read_to_string(merged_dir.join("junit.xml")).unwrap();
    assert!(junit.contains(&format!("tests=\"{}\"", verdicts(&whole).len())), "junit counts every pair");
}

#[test]
fn merge_refuses_reports_that_do_not_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let d = tmp.path().join(name);
        let mut args = vec!["run", "-t", "builtin", "--report-dir", d.to_str().unwrap()];
        args.extend(extra);
        let o = sshspec(&args);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{name}: {}", text(&o));
        d.join("report.json")
    };
    let sanity = ["sanity/*"];
    let a = run("a", &[&["--shard", "1/2"][..], &sanity].concat());
    let b = run("b", &[&["--shard-index", "1/2"][..], &sanity].concat());
    let other = run("other", &["--shard", "2/2", "sanity/password-session"]);
    let merge = |files: &[&Path]| {
        let out = tmp.path().join("merged");
        let mut args = vec!["merge", "--report-dir", out.to_str().unwrap()];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        sshspec(&args)
    };

    let ok = merge(&[&a, &b]);
    assert_eq!(ok.status.code(), Some(0), "1/2 and 2/2 (from 0: 1/2) fit: {}", text(&ok));
    for (files, want) in [
        (vec![a.as_path(), &other], "ran other scenario files"),
        (vec![a.as_path()], "shard(s) 2/2 missing"),
        (vec![a.as_path(), &a], "is in both"),
    ] {
        let o = merge(&files);
        assert_eq!(o.status.code(), Some(2), "refused as bad input: {}", text(&o));
        assert!(text(&o).contains(want), "says {want:?}: {}", text(&o));
    }
    // A report of another sshspec: a version that is not this one.
    let text_a = std::fs::read_to_string(&a).unwrap();
    let older = tmp.path().join("older.json");
    let mut v: Value = serde_json::from_str(&text_a).unwrap();
    v["sshspec_version"] = "0.0.1".into();
    std::fs::write(&older, v.to_string()).unwrap();
    let o = merge(&[&older, &b]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("sshspec 0.0.1"), "{}", text(&o));
    for bad in [
        &["--shard", "0/3"][..],
        &["--shard", "4/3"],
        &["--shard-index", "3/3"],
        &["--shard", "x"],
        &["--shard", "1/2", "--matrix"],
        &["--shard", "1/2", "--shard-index", "0/2"],
    ] {
        let o = sshspec(&[&["run", "-t", "builtin", "--no-report"][..], bad].concat());
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
    }
}

/// One shard in sshspec's own image (containers/sshspec/), the other on the host: the merge is
/// one run's verdicts, so the image is the same sshspec.
#[test]
fn a_shard_in_the_sshspec_image_merges_with_one_on_the_host() {
    let image = "sshspec/sshspec";
    let present = Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|o| o.status.success());
    if !present {
        assert!(!ci(), "the {image} image must be built in CI (scripts/build-images.sh)");
        eprintln!("note: skipping: image {image} is not built here (scripts/build-images.sh sshspec)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = |n: &str| tmp.path().join(n);
    let single = sshspec(&["run", "-t", "builtin", "--report-dir", d("single").to_str().unwrap()]);
    assert!(matches!(single.status.code(), Some(0 | 1)), "{}", text(&single));
    let host = sshspec(&["run", "-t", "builtin", "--shard", "2/2", "--report-dir", d("host").to_str().unwrap()]);
    assert!(matches!(host.status.code(), Some(0 | 1)), "{}", text(&host));
    std::fs::create_dir_all(d("image")).unwrap();
    let volume = format!("{}:/sshspec/reports", d("image").display());
    let o = Command::new("docker")
        .args(["run", "--rm", "-v", &volume, image, "run", "-t", "builtin", "--shard", "1/2"])
        .args(["--report-dir", "reports/shard-1"])
        .output()
        .expect("docker runs");
    assert!(matches!(o.status.code(), Some(0 | 1)), "the image runs a shard: {}", text(&o));
    let from_image = d("image").join("shard-1/report.json");
    let merged = sshspec(&[
        "merge",
        "--report-dir",
        d("merged").to_str().unwrap(),
        from_image.to_str().unwrap(),
        d("host").join("report.json").to_str().unwrap(),
    ]);
    assert!(matches!(merged.status.code(), Some(0 | 1)), "{}", text(&merged));
    assert_eq!(verdicts(&report(&d("merged"))), verdicts(&report(&d("single"))));
}
