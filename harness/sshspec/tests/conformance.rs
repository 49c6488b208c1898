//! The catalogue as `cargo test` trials: one per scenario × target, named `<target>::<scenario-id>`,
//! filterable as usual (`cargo test --test conformance -- openssh::sanity`).
//!
//! The targets are the builtin russh server, OpenSSH and Dropbear as local processes, and every
//! container target (OpenSSH, Dropbear and tinysshd from three Debian suites, russh, and the ten
//! library targets: Paramiko, AsyncSSH, Erlang/OTP ssh, libssh and Go x/crypto/ssh from two).
//!
//! Skips are decided while listing, not at run time, so every runner shows them as skipped. A target
//! that cannot start here is a visible skip with its reason, except under `CI=true`, where each of
//! its trials fails instead: CI must never pass by not running something.

use libtest_mimic::{Arguments, Failed, Trial};
use sshspec::peer;
use sshspec::run::result_of;
use sshspec::script::{self, Scenario};
use sshspec::targets::{self, Running, TargetInfo};
use sshspec::verdict::Outcome;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// The local targets; every container target in the catalogue runs too.
const LOCAL_TARGETS: &[&str] = &["builtin", "openssh", "dropbear"];

/// One instance of a target, started on first use.
type Instance = Arc<OnceCell<Result<Running, String>>>;

/// A target and its instances: the plain one and each configuration variant a scenario asks for,
/// each started once, on first use.
struct Target {
    info: TargetInfo,
    creds: peer::Credentials,
    instances: Mutex<BTreeMap<Option<String>, Instance>>,
}

impl Target {
    fn instance(&self, variant: &Option<String>) -> Instance {
        let mut m = self.instances.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(variant.clone()).or_default().clone()
    }
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Trials mostly wait on servers and deadlines, not on the CPU. Four at a time stays within every
    // target's own limit (Dropbear behind Docker's port proxy admits 5 unauthenticated connections).
    args.test_threads.get_or_insert(4);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let scenarios = match script::load_dir(&root) {
        Ok(s) => s,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("error: no tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut trials = Vec::new();
    let mut all_targets = Vec::new();
    // One set of credentials for every instance: the process targets share one system user.
    let creds = peer::Credentials::generate(targets::TEST_USER);
    let containers = match targets::catalog() {
        Ok(c) => c.into_iter().filter(|t| t.backend == targets::BackendKind::Container).map(|t| t.name),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<String> = LOCAL_TARGETS.iter().map(|n| n.to_string()).chain(containers).collect();
    for name in &names {
        let info = match targets::find(name) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let availability = targets::availability(&info);
        let unavailable = !availability.starts_with("ready");
        if unavailable && !ci {
            eprintln!("note: skipping every {name} trial: {availability} (run scripts/install-test-deps.sh as root)");
        }
        let target = Arc::new(Target { info, creds: creds.clone(), instances: Mutex::new(BTreeMap::new()) });
        all_targets.push(target.clone());
        for s in &scenarios {
            let trial_name = format!("{name}::{}", s.id);
            if unavailable && !ci {
                trials.push(Trial::test(trial_name, || Ok(())).with_ignored_flag(true));
                continue;
            }
            if unavailable {
                let why = format!("target {name} is unavailable in CI: {availability}");
                trials.push(Trial::test(trial_name, move || Err(Failed::from(why))));
                continue;
            }
            if target.info.unmet(s).is_some() {
                trials.push(Trial::test(trial_name, || Ok(())).with_ignored_flag(true));
                continue;
            }
            let (rt, target, s) = (rt.clone(), target.clone(), s.clone());
            trials.push(Trial::test(trial_name, move || rt.block_on(trial(&target, &s))));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let stops = Mutex::new(Vec::new());
    for t in all_targets {
        let Ok(t) = Arc::try_unwrap(t) else { continue };
        let instances = t.instances.into_inner().unwrap_or_else(|e| e.into_inner());
        for cell in instances.into_values() {
            if let Ok(cell) = Arc::try_unwrap(cell)
                && let Some(Ok(r)) = cell.into_inner()
                && let Ok(mut v) = stops.lock()
            {
                v.push(r);
            }
        }
    }
    rt.block_on(async {
        let v = stops.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        for r in v {
            r.stop().await;
        }
    });
    conclusion.exit_code()
}

async fn trial(target: &Target, s: &Scenario) -> Result<(), Failed> {
    let variant = &s.requires.variant;
    let cell = target.instance(&TargetInfo::instance_key(s));
    let running = cell
        .get_or_init(|| async {
            let info = target.info.with_variant(variant.as_deref())?;
            targets::start(&info, Some(target.creds.clone())).await.map_err(|e| e.to_string())
        })
        .await
        .as_ref()
        .map_err(|e| Failed::from(format!("target {} ({variant:?}) did not start: {e}", target.info.name)))?;
    let opts =
        peer::Options { login: target.info.login_method(), ssh_inner: running.inner, ..peer::Options::default() };
    // A result that may be the machine's fault (a missed deadline, or a server at its connection
    // limit closing before its identification: Dropbear counts our dropped connections until it
    // reaps them) is run once more, after a pause that lets the server catch up, before it stands.
    // The runner re-runs such results alone; trials have no run to hold back, so they pause.
    let mut run = peer::run(s, running.addr, &running.creds, &opts).await;
    // As in the runner, a scenario the target is expected to fail is an XFAIL either way.
    let expected = target.info.expected_failures.contains_key(&s.id);
    if !expected && sshspec::run::may_be_load(s, &run.judgement) {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        run = peer::run(s, running.addr, &running.creds, &opts).await;
    }
    let r = result_of(&target.info, &running.version(), s, run, Vec::new());
    match r.outcome {
        Outcome::Pass | Outcome::Xfail | Outcome::Skip => Ok(()),
        _ => {
            let mut msg = format!("{}: {} {}", r.outcome, s.spec, s.title);
            if let Some(e) = &r.evidence {
                msg.push_str(&format!(
                    "\nstep {} (line {}): expected {}\ngot {}",
                    e.step, e.line, e.expected, e.actual
                ));
            }
            if let Some(reason) = &r.reason {
                msg.push_str(&format!("\n{reason}"));
            }
            msg.push_str("\ntranscript:\n");
            msg.push_str(&sshspec::report::transcript_text(&r));
            Err(Failed::from(msg))
        }
    }
}
