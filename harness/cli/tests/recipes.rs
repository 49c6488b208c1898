//! The CI recipes in containers/sshspec/recipes/ checked offline against the schemas of the systems that run
//! them: GitHub's workflow schema and GitLab's CI schema (both as check-jsonschema vendors them)
//! and Kubernetes' OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors). Each
//! check is also shown to fail on a recipe with one key misspelt, so a pass means something.

mod common;

use common::ci;
use std::path::{Path, PathBuf};
use std::process::Command;

const VALIDATORS: &str = "/opt/sshspec-validators/bin";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../containers/sshspec/recipes")
}

/// The command that validates `file`, by kind.
fn validate(file: &Path) -> std::process::Output {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut c = if name.contains("kubernetes") {
        let mut c = Command::new(format!("{VALIDATORS}/kubernetes-validate"));
        c.args(["--strict", "--kubernetes-version", "1.33"]);
        c
    } else {
        let schema = if name.contains("gitlab") { "vendor.gitlab-ci" } else { "vendor.github-workflows" };
        let mut c = Command::new(format!("{VALIDATORS}/check-jsonschema"));
        c.args(["--builtin-schema", schema]);
        c
    };
    c.arg(file).output().expect("the validator runs")
}

#[test]
fn ci_recipes_validate_against_their_systems_schemas() {
    if !Path::new(VALIDATORS).join("check-jsonschema").exists() {
        assert!(!ci(), "the validators must be installed in CI (scripts/install-test-deps.sh)");
        eprintln!("note: skipping: {VALIDATORS} is missing (run scripts/install-test-deps.sh as root)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A key each schema knows, misspelt: the validator must reject the copy.
    let recipes = [
        ("github-actions.yml", "runs-on:", "runs_on:"),
        ("gitlab-ci.yml", "  parallel: 3", "  paralel: 3"),
        ("kubernetes-indexed-job.yaml", "  completions: 3", "  completionz: 3"),
    ];
    for (name, key, typo) in recipes {
        let file = examples().join(name);
        let o = validate(&file);
        assert!(
            o.status.success(),
            "{name} validates: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(key), "{name} has {key:?}");
        let broken = tmp.path().join(name);
        std::fs::write(&broken, text.replacen(key, typo, 1)).unwrap();
        assert!(!validate(&broken).status.success(), "{name} with {typo:?} is rejected: the check can fail");
    }
}

/// The recipes use flags the binary has: a renamed flag must not leave them stale.
#[test]
fn ci_recipes_use_flags_sshspec_has() {
    let help = |sub: &str| {
        let o = Command::new(common::bin()).args([sub, "--help"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (run, merge) = (help("run"), help("merge"));
    for name in ["github-actions.yml", "gitlab-ci.yml", "kubernetes-indexed-job.yaml"] {
        let text = std::fs::read_to_string(examples().join(name)).unwrap();
        for flag in ["--shard", "--report-dir", "--password-env", "--user", "--shard-index"] {
            if text.contains(&format!("{flag} ")) {
                assert!(run.contains(flag), "{name} uses run {flag}");
            }
        }
        assert!(text.contains("sshspec merge") && merge.contains("--report-dir"), "{name} merges");
    }
}
