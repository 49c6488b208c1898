//! `sshspec`: the command line. The engine is the `sshspec` library; this file parses flags,
//! wires the reports and maps the outcome to the documented exit codes.

use clap::{Parser, Subcommand, ValueEnum};
use sshspec::report::{Reporter, console::Console};
use sshspec::run::RunOptions;
use sshspec::script::{self, Scenario};
use sshspec::{exit, peer, targets};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXIT_CODES: &str = "Exit codes:
  0    every scenario passed (or xfailed/skipped)
  1    a target did not conform: a scenario FAILed or XPASSed
  2    bad input: malformed scenario file, unknown target, bad flag
  3    the harness could not judge: a target did not start, or a scenario ended in ERROR
  130  interrupted (SIGINT/SIGTERM); partial reports were written";

#[derive(Parser)]
#[command(
    name = "sshspec",
    version,
    about = "SSH protocol conformance tests: scripted scenarios against real servers, judged clause by clause.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run scenarios against targets and write the reports: report.json, junit.xml, matrix.html and
    /// a certification report per target (cert-<target>.md and .html).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Join the report.json files of shards (`run --shard K/N`) or of runs split by target into one
    /// report, and write every report a run writes from it; exits as one run would have.
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// Explain in plain words why a connection to an SSH server fails: TCP, identification,
    /// algorithms (both sides' lists), host key (against a pinned key), authentication methods.
    #[command(
        after_help = "Exit codes:\n  0  every stage passed\n  1  a stage failed; the output says which and why\n  2  bad input"
    )]
    Diagnose(DiagnoseArgs),
    /// List the scenarios with their id, clause, level and title.
    List {
        #[command(flatten)]
        sel: Selection,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Coverage of the clause registry (scenarios/clauses/) by the scenarios, per document:
    /// server-testable clauses, those cited, MUST-level ones cited, those validated (cited by a
    /// scenario seen to FAIL on a server that breaks the clause), and the ids not cited yet.
    Coverage {
        #[command(flatten)]
        sel: Selection,
        /// Print JSON instead of Markdown.
        #[arg(long)]
        json: bool,
    },
    /// The mutation check of the catalogue: run it against the fixture server (sshspec's own,
    /// in-process) as it is, where every scenario must PASS or SKIP, and once per deviation (the
    /// fixture breaking one named rule), where some scenario citing the broken clause must FAIL.
    /// Prints the mutation score per document, the surviving deviations and the blind scenarios.
    #[command(
        after_help = "Exit codes: 0 the catalogue holds (the conforming fixture passes and the score reaches --min-score), 1 it does not, 2 bad input, 3 harness error."
    )]
    Validate {
        #[command(flatten)]
        sel: Selection,
        /// Only these deviations (repeatable); default: all.
        #[arg(long = "deviation", value_name = "NAME")]
        deviations: Vec<String>,
        /// List the deviations and the clauses each breaks; nothing runs.
        #[arg(long)]
        list: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The least mutation score (percent of deviations caught) that passes.
        #[arg(long, default_value_t = 90.0, value_name = "PERCENT")]
        min_score: f64,
        /// Write which deviations each scenario caught to validated.toml in the scenarios folder
        /// (read by `sshspec coverage`); needs the whole catalogue and every deviation.
        #[arg(long, conflicts_with = "deviations")]
        record: bool,
    },
    /// Check scenario files and target descriptions; nothing runs.
    Check {
        #[command(flatten)]
        sel: Selection,
    },
    /// List the known targets, their server versions and whether they can start here (for
    /// container targets: whether their image is built); with --probe, start one and show what it
    /// offers, as the runner sees it before judging.
    Targets {
        /// Start this target (or reach remote:HOST:PORT) and print its profile: identification,
        /// every KEXINIT list, strict kex and ext-info, the auth methods it lists for USER.
        #[arg(long, value_name = "TARGET")]
        probe: Option<String>,
        /// The user the probe names in its `none` authentication request.
        #[arg(long, value_name = "USER", default_value = "sshspec")]
        user: String,
        /// Print the profile as JSON (the form report.json stores).
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `sshspec completions bash > /etc/bash_completion.d/sshspec`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `sshspec man > sshspec.1; man ./sshspec.1`; each subcommand's
    /// page with `sshspec man run`.
    Man {
        /// A subcommand (run, merge, diagnose, ...); default: the main page.
        subcommand: Option<String>,
    },
    /// Build the container targets' images offline (debootstrap + docker build; needs root).
    Images {
        #[command(subcommand)]
        action: ImagesAction,
    },
}

#[derive(clap::Subcommand)]
enum ImagesAction {
    /// Build the base images and the target images that are missing or out of date; an image
    /// whose inputs have not changed is kept, so a second build takes seconds.
    Build {
        /// Container targets to build (default: all), e.g. openssh-9.2p1.
        targets: Vec<String>,
    },
}

#[derive(clap::Args)]
struct Selection {
    /// Scenario ids, id prefixes or globs (`transport/kex/*`), or files; default: all.
    scenarios: Vec<String>,
    /// The folder of scenario files.
    #[arg(long, value_name = "DIR")]
    scenarios_dir: Option<PathBuf>,
    /// Only the smoke tier (a handful of scenarios, seconds).
    #[arg(long)]
    smoke: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    sel: Selection,
    /// Target to run against (repeatable): a name from `sshspec targets` (builtin, openssh,
    /// libssh-0.11.5, ...), a pattern over those names ('paramiko-*'), `all` for every one of them
    /// side by side (the interop matrix), or remote:HOST:PORT. Default: builtin, unless
    /// --targets-file names the hosts.
    #[arg(short, long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// A fleet audit: every host of this inventory as a remote target, side by side within
    /// --max-connections, each paced as remote targets are. One HOST[:PORT] per line, or a .toml
    /// file with [defaults] and [[host]] tables (name, address, port, user, password-env,
    /// identity, host-keys: SHA256:... or SSHFP `<alg> 2 <hex>`, host-keys-from: which of
    /// inventory, flags, known-hosts, directory pin it). A host whose key does not match
    /// its pinned one stops alone. Writes fleet.html.
    #[arg(long, value_name = "FILE")]
    targets_file: Option<PathBuf>,
    /// Pin each inventory host to the keys an LDAP directory holds for it: entries with the
    /// OpenSSH-LPK `sshPublicKey` attribute, found by the host's name (see --ldap-filter).
    /// ldap://HOST:PORT or ldapi://; anonymous bind.
    #[arg(long, value_name = "URL", requires_all = ["ldap_base", "targets_file"])]
    host_keys_ldap: Option<String>,
    /// The directory's search base for --host-keys-ldap, e.g. ou=hosts,dc=example,dc=org.
    #[arg(long = "base", value_name = "DN")]
    ldap_base: Option<String>,
    /// The search filter for a host's entry; {name} is the inventory name.
    #[arg(long, value_name = "FILTER", default_value = sshspec::fleet::DEFAULT_LDAP_FILTER)]
    ldap_filter: String,
    /// Write reports into this folder (default: reports/<UTC time>/, with reports/latest pointing at it).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Write no report files, only the console.
    #[arg(long)]
    no_report: bool,
    /// Scenarios run at once per target (default: the target's own limit; 1 = serial).
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// Deadline for each step's expectations, e.g. 5s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    step_timeout: String,
    /// Deadline for each scenario, replacing the scenario file's own (default 60s).
    #[arg(long, value_name = "DURATION")]
    scenario_timeout: Option<String>,
    /// Deadline for the whole run; scenarios unfinished by then end in ERROR.
    #[arg(long, value_name = "DURATION")]
    run_timeout: Option<String>,
    /// Print every result (-v), and failing transcripts; -vv also streams each exchange as it happens.
    #[arg(short, action = clap::ArgAction::Count)]
    verbose: u8,
    /// For remote targets: the user to log in as.
    #[arg(long, value_name = "USER", default_value = "sshspec")]
    user: String,
    /// For remote targets: the environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// For remote targets: an unencrypted OpenSSH private key (ed25519, ECDSA P-256 or RSA) to log in with.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// For remote targets: a description in the target description format (server, version,
    /// features, expected-failures with their evidence, unjudged); algorithms and auth methods are
    /// probed. See containers/thirdparty/*.toml.
    #[arg(long, value_name = "FILE")]
    describe: Option<PathBuf>,
    /// Scenarios running at once over all targets together (default: 12 per core, at least 24).
    /// Each target's own limit applies within it.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// For remote targets: the host key's SHA256 fingerprint (repeatable). A different key stops the run
    /// before anything authenticates.
    #[arg(long = "host-key", value_name = "SHA256:...")]
    host_keys: Vec<String>,
    /// For remote targets: pin the host key to the entries of this known_hosts file.
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// For remote targets: least time between two connections (default 200ms).
    #[arg(long, value_name = "DURATION")]
    connect_interval: Option<String>,
    /// Let scenarios marked destructive (floods, exhaustion) run against remote targets.
    #[arg(long)]
    allow_destructive: bool,
    /// Compare with a saved report.json: list newly failing and newly passing scenarios, and exit
    /// non-zero only for regressions (a scenario fine in the baseline that FAILs, XPASSes or ERRORs now).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write a pcap of every connection and a key log Wireshark decrypts it with, under
    /// <report dir>/captures/<target>/.
    #[arg(long)]
    capture: bool,
    /// Run only part K of N of the (target, scenario) pairs, counting K from 1 (a CI matrix's
    /// job, GitLab's CI_NODE_INDEX/CI_NODE_TOTAL); the N parts, split by expected cost, hold every
    /// pair once. Join their reports with `sshspec merge`.
    #[arg(long, value_name = "K/N", conflicts_with_all = ["shard_index", "matrix"])]
    shard: Option<String>,
    /// As --shard, counting I from 0: Kubernetes Indexed Jobs' JOB_COMPLETION_INDEX
    /// (`--shard-index $(JOB_COMPLETION_INDEX)/3`). Not with --matrix: the algorithm matrix is
    /// built from every target's probe and results in one process.
    #[arg(long, value_name = "I/N", conflicts_with = "matrix")]
    shard_index: Option<String>,
    /// Run the algorithm interop matrix instead of the scenario files: every algorithm each target
    /// advertises, one at a time, with a login and 1 MiB each way. Writes matrix.md and matrix.json.
    #[arg(long)]
    matrix: bool,
}

#[derive(clap::Args)]
struct MergeArgs {
    /// The report.json files to join: every shard of one split, or runs of different targets.
    #[arg(required = true, value_name = "REPORT.json")]
    reports: Vec<PathBuf>,
    /// Write the merged reports into this folder (default: reports/<UTC time>/).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Compare the merged run with a saved report.json, as `run --baseline` does.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DiagnoseArgs {
    /// The server: HOST or HOST:PORT (default port 22).
    server: String,
    /// The user to try to log in as.
    #[arg(long, value_name = "USER", default_value = "root")]
    user: String,
    /// The environment variable holding the password to try.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// An unencrypted OpenSSH private key (ed25519, ECDSA P-256 or RSA) to try.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// The host key's expected SHA256 fingerprint (repeatable).
    #[arg(long = "host-key", value_name = "SHA256:...")]
    host_keys: Vec<String>,
    /// Expect the host key recorded for this server in a known_hosts file.
    #[arg(long, value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// How long to wait at each stage.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    timeout: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Markdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(a) => run(a),
        Command::Merge(a) => merge(a),
        Command::Diagnose(a) => diagnose(a),
        Command::List { sel, format } => list(&sel, format),
        Command::Check { sel } => check(&sel),
        Command::Coverage { sel, json } => coverage(&sel, json),
        Command::Validate { sel, deviations, list, json, min_score, record } => {
            validate(&sel, &deviations, list, json, min_score, record)
        }
        Command::Targets { probe: None, .. } => show_targets(),
        Command::Targets { probe: Some(name), user, json } => probe_target(&name, &user, json),
        Command::Images { action: ImagesAction::Build { targets } } => build_images(&targets),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "sshspec", &mut buf);
            out_text(&String::from_utf8_lossy(&buf));
            exit::OK
        }
        Command::Man { subcommand } => man(subcommand.as_deref()),
    };
    ExitCode::from(code)
}

/// Writes to stdout. A closed pipe (`sshspec targets | head -3`) ends the output quietly, as other
/// Unix tools do, instead of panicking; the work goes on (a run still writes its reports and stops
/// its targets), only unseen.
fn out_text(text: &str) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

fn out(line: &str) {
    out_text(&format!("{line}\n"));
}

macro_rules! outln {
    ($($arg:tt)*) => { out(&format!($($arg)*)) };
}

macro_rules! outs {
    ($($arg:tt)*) => { out_text(&format!($($arg)*)) };
}

/// The async runtime every command that connects runs on; failing to start it is our problem (exit 3).
fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::HARNESS
    })
}

fn scenarios_dir(sel: &Selection) -> PathBuf {
    if let Some(d) = &sel.scenarios_dir {
        return d.clone();
    }
    let here = PathBuf::from("scenarios");
    if here.is_dir() {
        return here;
    }
    // Running from elsewhere in the source tree: the catalogue this binary was built with.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// Loads and selects scenarios, printing every problem (file:line:column) if there are any.
/// Arguments that are files or folders outside the catalogue are a user's own scenarios: they are
/// loaded as they are (ids relative to their folder) and run alone, or beside the catalogue
/// scenarios the other arguments select.
fn load(sel: &Selection) -> Result<Vec<Scenario>, u8> {
    let dir = scenarios_dir(sel);
    if !dir.is_dir() {
        eprintln!("error: scenario folder {} not found (use --scenarios-dir)", dir.display());
        return Err(exit::USAGE);
    }
    let catalogue = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let (own, patterns): (Vec<&String>, Vec<&String>) = sel.scenarios.iter().partition(|p| {
        let path = Path::new(p.as_str());
        path.exists() && !path.canonicalize().is_ok_and(|c| c.starts_with(&catalogue))
    });
    let report = |errs: Vec<script::LoadError>| {
        for e in &errs {
            eprintln!("error: {e}");
        }
        eprintln!("{} malformed scenario file(s); nothing was run", errs.len());
        exit::USAGE
    };
    let mut errs = Vec::new();
    let mut mine = Vec::new();
    for p in &own {
        let path = Path::new(p.as_str());
        if path.is_dir() {
            match script::load_dir(path) {
                Ok(s) => mine.extend(s),
                Err(e) => errs.extend(e),
            }
        } else {
            match script::load_file(path.parent().unwrap_or(Path::new(".")), path) {
                Ok(s) => mine.extend(s),
                Err(e) => errs.push(e),
            }
        }
    }
    let mut selected = if own.is_empty() || !patterns.is_empty() {
        let all = match script::load_dir(&dir) {
            Ok(all) => all,
            Err(e) => {
                errs.extend(e);
                Vec::new()
            }
        };
        if !errs.is_empty() {
            return Err(report(errs));
        }
        let patterns: Vec<String> = patterns.into_iter().cloned().collect();
        script::select(all, &patterns, sel.smoke).map_err(|e| {
            eprintln!("error: {e}");
            exit::USAGE
        })?
    } else {
        Vec::new()
    };
    if !errs.is_empty() {
        return Err(report(errs));
    }
    for s in mine.into_iter().filter(|s| !sel.smoke || s.tier == script::Tier::Smoke) {
        if let Some(twin) = selected.iter().find(|c| c.id == s.id) {
            eprintln!(
                "error: {} and {} both have the id {:?}: rename one (ids are paths relative to their folder)",
                s.path.display(),
                twin.path.display(),
                s.id
            );
            return Err(exit::USAGE);
        }
        selected.push(s);
    }
    Ok(selected)
}

fn run(a: RunArgs) -> u8 {
    let loaded = if a.matrix {
        script::select(sshspec::matrix::scenarios(), &a.sel.scenarios, false).map_err(|e| {
            eprintln!("error: {e}");
            exit::USAGE
        })
    } else {
        load(&a.sel)
    };
    let scenarios = match loaded {
        Ok(s) => s,
        Err(code) => return code,
    };
    let duration = |flag: &str, v: &Option<String>| -> Result<Option<std::time::Duration>, u8> {
        v.as_deref().map(script::parse_duration_arg).transpose().map_err(|e| {
            eprintln!("error: {flag}: {e}");
            exit::USAGE
        })
    };
    let (step_timeout, scenario_timeout, run_timeout, connect_interval) = match (
        duration("--step-timeout", &Some(a.step_timeout.clone())),
        duration("--scenario-timeout", &a.scenario_timeout),
        duration("--run-timeout", &a.run_timeout),
        duration("--connect-interval", &a.connect_interval),
    ) {
        (Ok(Some(s)), Ok(sc), Ok(r), Ok(c)) => (s, sc, r, c),
        _ => return exit::USAGE,
    };
    let fleet = match a.targets_file.as_deref().map(sshspec::fleet::load_inventory).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: --targets-file: {e}");
            return exit::USAGE;
        }
    };
    let given = if a.targets.is_empty() && fleet.is_empty() { vec!["builtin".to_owned()] } else { a.targets.clone() };
    let names = match targets::expand(&given) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut infos = Vec::new();
    for name in &names {
        let mut t = match targets::find(name) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        };
        if let Some(addr) = t.address {
            t.pinned_host_keys = a.host_keys.clone();
            match known_hosts(a.known_hosts.as_deref(), addr) {
                Ok(fps) => t.pinned_host_keys.extend(fps),
                Err(code) => return code,
            }
            if let Err(code) = remote_settings(&mut t, &a, connect_interval) {
                return code;
            }
        }
        infos.push(t);
    }
    match fleet_targets(&fleet, &a, connect_interval) {
        Ok(hosts) => infos.extend(hosts),
        Err(code) => return code,
    }
    if a.jobs == Some(0) {
        eprintln!("error: --jobs must be at least 1");
        return exit::USAGE;
    }
    let creds = if a.password_env.is_some() || a.identity.is_some() {
        match login_credentials(&a.user, a.password_env.as_deref(), a.identity.as_deref()) {
            Ok((c, key)) => {
                // What a remote target can be logged in to with: what was given. The probe then
                // keeps the methods the server lists.
                for t in
                    infos.iter_mut().filter(|t| t.backend == targets::BackendKind::Remote && t.credentials.is_none())
                {
                    if a.password_env.is_some() {
                        t.auth.extend(["password".to_owned(), "keyboard-interactive".to_owned()]);
                    }
                    if let Some(k) = key {
                        t.auth.push("publickey".into());
                        t.user_keys.push(k.key_type().into());
                    }
                }
                Some(c)
            }
            Err(code) => return code,
        }
    } else {
        None
    };
    let shard = match (&a.shard, &a.shard_index) {
        (Some(k), _) => Some(sshspec::shard::Shard::parse(k)),
        (None, Some(i)) => Some(sshspec::shard::Shard::parse_index(i)),
        (None, None) => None,
    };
    let shard = match shard.transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if a.max_connections == Some(0) {
        eprintln!("error: --max-connections must be at least 1");
        return exit::USAGE;
    }
    let report_dir = if a.no_report {
        None
    } else {
        match make_report_dir(a.report_dir.as_deref()) {
            Ok(d) => Some(d),
            Err(code) => return code,
        }
    };
    let baseline = match load_baseline(a.baseline.as_deref()) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if a.capture && report_dir.is_none() {
        eprintln!("error: --capture writes into the report folder; drop --no-report");
        return exit::USAGE;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let echo = a.verbose >= 2;
    let opts = RunOptions {
        // Streamed transcripts are only readable one scenario at a time.
        jobs: if echo { Some(1) } else { a.jobs },
        peer: peer::Options {
            step_timeout,
            scenario_timeout,
            echo,
            capture: if a.capture { report_dir.as_ref().map(|d| d.join("captures")) } else { None },
            ..Default::default()
        },
        ci: is_ci(),
        creds,
        cancel,
        run_timeout,
        budget: a.max_connections,
        shard,
        select: None,
        retry_alone: true,
    };
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Console::new(a.verbose))];
    let matrix_creds = opts.creds.clone();
    let (summary, probes) = rt.block_on(async {
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let term = async {
                match term.as_mut() {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            eprintln!("\ninterrupted: stopping targets and writing partial reports");
            let _ = cancel_tx.send(true);
        });
        let probes = if a.matrix { Some(sshspec::matrix::prepare(&mut infos, matrix_creds).await) } else { None };
        (sshspec::run::run(&infos, &scenarios, &opts, &mut reporters).await, probes)
    });
    let matrix = probes.map(|p| sshspec::matrix::Matrix::build(&p, &summary.results));
    if let Some(m) = &matrix {
        out(&format!("\n{}", m.markdown()));
    }
    finish(&summary, baseline.as_ref(), report_dir.as_deref(), matrix.as_ref(), a.capture)
}

/// The man page of the command or of one subcommand (`sshspec-run(1)`), from the clap definitions.
fn man(subcommand: Option<&str>) -> u8 {
    let cmd = <Cli as clap::CommandFactory>::command();
    let page = match subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone().name(format!("sshspec-{name}")).version(env!("CARGO_PKG_VERSION")),
            None => {
                let known: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!("error: no subcommand {name:?}; known: {}", known.join(", "));
                return exit::USAGE;
            }
        },
    };
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut buf) {
        eprintln!("error: rendering the man page: {e}");
        return exit::HARNESS;
    }
    out_text(&String::from_utf8_lossy(&buf));
    exit::OK
}

fn make_report_dir(given: Option<&Path>) -> Result<PathBuf, u8> {
    let made = match given {
        Some(d) => std::fs::create_dir_all(d).map(|_| d.to_owned()),
        None => sshspec::report::new_report_dir(Path::new("reports")),
    };
    made.map_err(|e| {
        eprintln!("error: cannot create the report folder: {e}");
        exit::USAGE
    })
}

fn load_baseline(file: Option<&Path>) -> Result<Option<sshspec::report::baseline::Baseline>, u8> {
    file.map(sshspec::report::baseline::Baseline::load).transpose().map_err(|e| {
        eprintln!("error: --baseline: {e}");
        exit::USAGE
    })
}

/// After a run or a merge: the baseline comparison, every report file, and the exit code.
fn finish(
    summary: &sshspec::run::Summary,
    baseline: Option<&sshspec::report::baseline::Baseline>,
    report_dir: Option<&Path>,
    matrix: Option<&sshspec::matrix::Matrix>,
    capture: bool,
) -> u8 {
    let comparison = baseline.map(|b| sshspec::report::baseline::Comparison::new(b, summary));
    if let Some(c) = &comparison {
        out(&format!("\n{}", c.markdown().trim_end()));
    }
    if let Some(dir) = report_dir {
        let written = sshspec::report::write_all(dir, summary, comparison.as_ref()).and_then(|files| match matrix {
            Some(m) => std::fs::write(dir.join("matrix.md"), m.markdown())
                .and_then(|_| std::fs::write(dir.join("matrix.json"), m.json()))
                .map(|_| files),
            None => Ok(files),
        });
        match written {
            Ok(files) => {
                // The passing results' pages (matrix/) are many: named as a folder, with their count.
                let (top, side): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(|f| f.parent() == Some(dir));
                let mut names: Vec<String> =
                    top.iter().filter_map(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
                if !side.is_empty() {
                    names.push(format!("{}/ ({} pages)", sshspec::report::html::SIDE_DIR, side.len()));
                }
                out(&format!("reports in {}/: {}", dir.display(), names.join(", ")));
                if capture {
                    out(&format!(
                        "captures in {}/captures/ (open a .pcap in Wireshark with its .keylog; see README)",
                        dir.display()
                    ));
                }
            }
            Err(e) => {
                eprintln!("error: writing reports to {}: {e}", dir.display());
                return exit::HARNESS;
            }
        }
    }
    match &comparison {
        Some(c) => c.exit_code(summary),
        None => summary.exit_code(),
    }
}

fn merge(a: MergeArgs) -> u8 {
    use sshspec::report::merge;
    let mut inputs = Vec::new();
    for f in &a.reports {
        match merge::load(f) {
            Ok(i) => inputs.push(i),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    }
    let summary = match merge::merge(inputs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let baseline = match load_baseline(a.baseline.as_deref()) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let dir = match make_report_dir(a.report_dir.as_deref()) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let t = summary.tally();
    let shards = if summary.merged_shards.is_empty() {
        String::new()
    } else {
        format!(" ({} shards)", summary.merged_shards.len())
    };
    out(&format!(
        "merged {} report(s){shards}: {} result(s) over {} target(s): {} passed, {} failed, {} xfailed, {} xpassed, {} skipped, {} inconclusive, {} errors",
        a.reports.len(),
        summary.results.len(),
        summary.targets.len(),
        t.pass,
        t.fail,
        t.xfail,
        t.xpass,
        t.skip,
        t.inconclusive,
        t.error
    ));
    finish(&summary, baseline.as_ref(), Some(&dir), None, false)
}

/// What every remote target takes from the flags: pacing, destructive scenarios, a description.
fn remote_settings(t: &mut targets::TargetInfo, a: &RunArgs, interval: Option<std::time::Duration>) -> Result<(), u8> {
    if let Some(i) = interval {
        t.connect_interval = i;
    }
    t.allow_destructive = a.allow_destructive;
    if let Some(file) = &a.describe {
        match targets::load_description(file) {
            Ok(d) => t.describe(d),
            Err(e) => {
                eprintln!("error: --describe: {e}");
                return Err(exit::USAGE);
            }
        }
    }
    Ok(())
}

/// The inventory's hosts as remote targets: each with its own login (the host's user, password
/// variable and identity, else the flags') and its pinned keys (the inventory's, --host-key,
/// known_hosts, the directory). A host with a key source but no key there stops alone at start.
fn fleet_targets(
    fleet: &[sshspec::fleet::Host],
    a: &RunArgs,
    interval: Option<std::time::Duration>,
) -> Result<Vec<targets::TargetInfo>, u8> {
    let directory = match &a.host_keys_ldap {
        None => None,
        Some(url) => {
            let dir = sshspec::fleet::Directory {
                url: url.clone(),
                base: a.ldap_base.clone().unwrap_or_default(),
                filter: a.ldap_filter.clone(),
            };
            let names: Vec<String> = fleet.iter().map(|h| h.name.clone()).collect();
            let rt = runtime()?;
            match rt.block_on(dir.host_keys(&names)) {
                Ok(keys) => Some((dir, keys)),
                Err(e) => {
                    eprintln!("error: --host-keys-ldap: {e}");
                    return Err(exit::USAGE);
                }
            }
        }
    };
    use sshspec::fleet::KeySource;
    // A host missing from known_hosts stops alone; a file that cannot be read is the user's mistake.
    if let Some(file) = &a.known_hosts
        && let Err(e) = std::fs::File::open(file)
    {
        eprintln!("error: --known-hosts: {}: {e}", file.display());
        return Err(exit::USAGE);
    }
    let mut out = Vec::new();
    for h in fleet {
        if h.host_keys_from.contains(&KeySource::Directory) && directory.is_none() {
            eprintln!(
                "error: --targets-file: host {} takes its keys from the directory: give --host-keys-ldap",
                h.name
            );
            return Err(exit::USAGE);
        }
        if h.host_keys_from.contains(&KeySource::KnownHosts) && a.known_hosts.is_none() {
            eprintln!("error: --targets-file: host {} takes its keys from known_hosts: give --known-hosts", h.name);
            return Err(exit::USAGE);
        }
        let mut t = targets::find(&format!("remote:{}", h.addr)).map_err(|e| {
            eprintln!("error: --targets-file: {e}");
            exit::USAGE
        })?;
        t.name = h.name.clone();
        t.description = format!("{} at {} (fleet inventory)", h.name, h.addr);
        remote_settings(&mut t, a, interval)?;
        let mut sources = Vec::new();
        let mut pin = |fps: Vec<String>, source: String| {
            t.pinned_host_keys.extend(fps);
            sources.push(source);
        };
        if !h.host_keys.is_empty() && h.uses(KeySource::Inventory) {
            pin(h.host_keys.clone(), "the inventory".into());
        }
        if !a.host_keys.is_empty() && h.uses(KeySource::Flags) {
            pin(a.host_keys.clone(), "--host-key".into());
        }
        if let Some(file) = a.known_hosts.as_ref().filter(|_| h.uses(KeySource::KnownHosts)) {
            // A host missing from the file stops alone, as a host missing from the directory does.
            let fps = sshspec::keys::known_host_fingerprints(file, h.addr).unwrap_or_default();
            pin(fps, format!("known_hosts {}", file.display()));
        }
        if let Some((dir, keys)) = directory.as_ref().filter(|_| h.uses(KeySource::Directory)) {
            pin(keys.get(&h.name).cloned().unwrap_or_default(), format!("the directory {} ({})", dir.url, dir.base));
        }
        if !sources.is_empty() {
            t.host_key_source = Some(sources.join(", "));
        }
        let user = h.user.as_deref().unwrap_or(&a.user);
        let password_env = h.password_env.as_deref().or(a.password_env.as_deref());
        let identity = h.identity.as_deref().or(a.identity.as_deref());
        if password_env.is_some() || identity.is_some() {
            let (c, key) = login_credentials(user, password_env, identity)?;
            if password_env.is_some() {
                t.auth.extend(["password".to_owned(), "keyboard-interactive".to_owned()]);
            }
            if let Some(k) = key {
                t.auth.push("publickey".into());
                t.user_keys.push(k.key_type().into());
            }
            t.credentials = Some(c);
        }
        out.push(t);
    }
    Ok(out)
}

/// The credentials to log in with: the password from `password_env`, the key from `identity` (and
/// its kind), fresh random ones for what is not given. Usage errors are printed; `Err` is the exit code.
fn login_credentials(
    user: &str,
    password_env: Option<&str>,
    identity: Option<&Path>,
) -> Result<(peer::Credentials, Option<peer::KeyKind>), u8> {
    let mut c = peer::Credentials::generate(user);
    if let Some(var) = password_env {
        c.password = std::env::var(var).map_err(|_| {
            eprintln!("error: --password-env {var}: the variable is not set");
            exit::USAGE
        })?;
    }
    let mut kind = None;
    if let Some(file) = identity {
        let key = sshspec::keys::load_identity(file).map_err(|e| {
            eprintln!("error: --identity: {e}");
            exit::USAGE
        })?;
        kind = Some(key.kind());
        key.install(&mut c.keys);
    }
    Ok((c, kind))
}

/// The fingerprints a known_hosts file records for `addr` (none without a file).
fn known_hosts(file: Option<&Path>, addr: std::net::SocketAddr) -> Result<Vec<String>, u8> {
    let Some(file) = file else { return Ok(Vec::new()) };
    sshspec::keys::known_host_fingerprints(file, addr).map_err(|e| {
        eprintln!("error: --known-hosts: {e}");
        exit::USAGE
    })
}

fn diagnose(a: DiagnoseArgs) -> u8 {
    use sshspec::peer::diagnose::{Offer, diagnose};
    let timeout = match script::parse_duration_arg(&a.timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --timeout: {e}");
            return exit::USAGE;
        }
    };
    let with_port =
        if a.server.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !a.server.ends_with(']') {
            a.server.clone()
        } else {
            format!("{}:22", a.server)
        };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HARNESS;
        }
    };
    let addr = match rt.block_on(tokio::net::lookup_host(&with_port)).map(|mut i| i.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            outln!("FAIL  dns             cannot resolve {:?}: check the name", a.server);
            return exit::NONCONFORMING;
        }
    };
    let (creds, key) = match login_credentials(&a.user, a.password_env.as_deref(), a.identity.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let offer = Offer { password: a.password_env.is_some(), publickey: key.is_some(), key: key.unwrap_or_default() };
    let mut pinned = a.host_keys.clone();
    match known_hosts(a.known_hosts.as_deref(), addr) {
        Ok(fps) if fps.is_empty() && a.known_hosts.is_some() => {
            let file = a.known_hosts.as_deref().map(|f| f.display().to_string()).unwrap_or_default();
            eprintln!("error: --known-hosts: {file} has no entry for {addr}");
            return exit::USAGE;
        }
        Ok(fps) => pinned.extend(fps),
        Err(code) => return code,
    }
    outln!("sshspec diagnose {addr} as {}", a.user);
    let d = rt.block_on(diagnose(addr, &creds, &offer, &pinned, timeout));
    outs!("{}", d.render(&addr.to_string()));
    if d.problem.is_some() { exit::NONCONFORMING } else { exit::OK }
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn list(sel: &Selection, format: ListFormat) -> u8 {
    let scenarios = match load(sel) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match format {
        ListFormat::Text => {
            for s in &scenarios {
                outln!("{:<52} {:<16} {:<6} {}", s.id, s.spec, s.level.to_string(), s.title);
            }
            outln!("{} scenario(s)", scenarios.len());
        }
        ListFormat::Markdown => {
            outs!("{}", script::catalogue_markdown(&scenarios));
            match coverage_rows(sel, &scenarios) {
                Ok(rows) => outs!("\n## Clause coverage\n\n{}", script::clauses::coverage_markdown(&rows)),
                Err(code) => return code,
            }
        }
    }
    exit::OK
}

/// Coverage of the registry by `scenarios`. A scenario counts as validated once it has been seen
/// to FAIL: on a real server (the shipped descriptions' expected failures) or on a deviant
/// fixture (validated.toml, `sshspec validate --record`).
fn coverage_rows(sel: &Selection, scenarios: &[Scenario]) -> Result<Vec<script::clauses::Coverage>, u8> {
    let catalog = targets::catalog().map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })?;
    let mut validated: std::collections::BTreeSet<String> =
        catalog.iter().flat_map(|t| t.expected_failures.keys().cloned()).collect();
    let record = sshspec::validate::read_record(&scenarios_dir(sel)).map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })?;
    validated.extend(record.into_keys());
    let registry = script::clauses::Registry::builtin().map_err(|e| {
        eprintln!("error: {e}");
        exit::HARNESS
    })?;
    Ok(registry.coverage(scenarios, &validated))
}

fn validate(sel: &Selection, names: &[String], list: bool, json: bool, min_score: f64, record: bool) -> u8 {
    if record && !sel.scenarios.is_empty() {
        eprintln!("error: --record validates the whole catalogue; name no scenarios");
        return exit::USAGE;
    }
    use sshspec::server::{DEVIATIONS, deviation};
    let picked: Vec<&'static sshspec::server::Deviation> = if names.is_empty() {
        DEVIATIONS.iter().collect()
    } else {
        let mut v = Vec::new();
        for n in names {
            match deviation::find(n) {
                Some(d) => v.push(d),
                None => {
                    eprintln!("error: no deviation {n:?}; `sshspec validate --list` shows them");
                    return exit::USAGE;
                }
            }
        }
        v
    };
    if list {
        for d in &picked {
            outln!("{:<36} {:<40} {}", d.name, d.clauses.join(","), d.what);
        }
        return exit::OK;
    }
    let scenarios = match load(sel) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    eprintln!(
        "validating {} scenario(s) against the conforming fixture and {} deviant one(s), in-process",
        scenarios.len(),
        picked.len()
    );
    let opts = RunOptions { ci: is_ci(), retry_alone: false, ..Default::default() };
    let v = match rt.block_on(sshspec::validate::validate(&scenarios, &picked, &opts, &mut [])) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::HARNESS;
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        outs!("{}", v.text());
        outln!("validated in {:.1} s", v.duration_ms as f64 / 1000.0);
    }
    if record {
        let path = scenarios_dir(sel).join(sshspec::validate::RECORD_FILE);
        let kills = v.kills();
        if let Err(e) = std::fs::write(&path, sshspec::validate::record_text(&kills)) {
            eprintln!("error: {}: {e}", path.display());
            return exit::HARNESS;
        }
        eprintln!("recorded {} scenario(s) that caught a deviation in {}", kills.len(), path.display());
    }
    if v.conforming_failures.is_empty() && v.score() >= min_score { exit::OK } else { exit::NONCONFORMING }
}

fn coverage(sel: &Selection, json: bool) -> u8 {
    let scenarios = match load(sel) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rows = match coverage_rows(sel, &scenarios) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        outs!("{}", script::clauses::coverage_markdown(&rows));
    }
    exit::OK
}

fn check(sel: &Selection) -> u8 {
    let scenarios = match load(sel) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let catalog = match targets::catalog() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut stale = 0;
    let registry = match script::clauses::Registry::builtin() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::HARNESS;
        }
    };
    for (s, id) in registry.unknown_citations(&scenarios) {
        eprintln!(
            "error: {}: cites clause {id:?}, which is not in the clause registry (scenarios/clauses/)",
            s.path.display()
        );
        stale += 1;
    }
    // Stale entries are a question for the catalogue the descriptions were written against, whole:
    // a folder of one's own, or a selection, holds only some of those scenarios.
    if sel.scenarios.is_empty() && sel.scenarios_dir.is_none() {
        for t in &catalog {
            let listed = t.expected_failures.keys().map(|id| ("expected failure", id));
            for (what, id) in listed.chain(t.unjudged.keys().map(|id| ("unjudged scenario", id))) {
                if !scenarios.iter().any(|s| &s.id == id) {
                    eprintln!("error: target {}: {what} {id:?} matches no scenario", t.name);
                    stale += 1;
                }
            }
        }
    }
    if stale > 0 {
        return exit::USAGE;
    }
    let files: std::collections::BTreeSet<&Path> = scenarios.iter().map(|s| s.path.as_path()).collect();
    outln!(
        "{} scenario(s) from {} file(s) and {} target description(s) are valid",
        scenarios.len(),
        files.len(),
        catalog.len()
    );
    exit::OK
}

/// Runs the project's image build script, which needs the source tree (the Dockerfiles).
fn build_images(names: &[String]) -> u8 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images.sh");
    if !script.is_file() {
        eprintln!("error: {} not found: images are built from a source checkout of sshspec", script.display());
        return exit::HARNESS;
    }
    let catalog = match targets::catalog() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let containers: Vec<&targets::TargetInfo> =
        catalog.iter().filter(|t| t.backend == targets::BackendKind::Container).collect();
    let mut folders = Vec::new();
    for t in &containers {
        if names.is_empty() || names.contains(&t.name) {
            // The script takes folders: image sshspec/<folder> is built from containers/<folder>/.
            folders.push(t.image.as_deref().unwrap_or_default().trim_start_matches("sshspec/"));
        }
    }
    if let Some(bad) = names.iter().find(|n| !containers.iter().any(|t| &t.name == *n)) {
        let known: Vec<&str> = containers.iter().map(|t| t.name.as_str()).collect();
        eprintln!("error: {bad:?} is not a container target; known: {}", known.join(", "));
        return exit::USAGE;
    }
    run_build_script(&script, &folders)
}

fn run_build_script(script: &Path, names: &[&str]) -> u8 {
    match std::process::Command::new("bash").arg(script).args(names).status() {
        Ok(s) if s.success() => exit::OK,
        Ok(s) => {
            eprintln!("error: image build failed ({s})");
            exit::HARNESS
        }
        Err(e) => {
            eprintln!("error: cannot run {}: {e}", script.display());
            exit::HARNESS
        }
    }
}

/// `sshspec targets --probe NAME`: starts the target, probes it, prints the profile, stops it.
fn probe_target(name: &str, user: &str, json: bool) -> u8 {
    let t = match targets::find(name) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let creds = peer::Credentials::generate(user);
    let profile = rt.block_on(async {
        let running = targets::start(&t, (t.backend == targets::BackendKind::Remote).then(|| creds.clone())).await?;
        let mut p = peer::probe::probe(running.addr, &running.creds, &peer::Options::default()).await;
        // Our own targets' credentials are known, so the shell can be tried too.
        if t.backend != targets::BackendKind::Remote && p.incomplete.is_none() {
            let t = targets::TargetInfo { profile: Some(p.clone()), ..t.clone() };
            let opts = peer::Options {
                login: t.login_method(),
                login_key: t.login_key(),
                extra: p.extra_offers(),
                ..Default::default()
            };
            (p.posix_shell, p.shell_note) = peer::probe::probe_shell(running.addr, &running.creds, &opts).await;
        }
        running.stop().await;
        Ok::<_, targets::StartError>(p)
    });
    let p = match profile {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {name}: {e}");
            return exit::HARNESS;
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
    } else {
        let lists = [
            ("kex", &p.kex),
            ("host key", &p.host_key),
            ("cipher c2s", &p.cipher_c2s),
            ("cipher s2c", &p.cipher_s2c),
            ("mac c2s", &p.mac_c2s),
            ("mac s2c", &p.mac_s2c),
            ("compression c2s", &p.compression_c2s),
            ("compression s2c", &p.compression_s2c),
        ];
        outln!("{:<16} {}", "identification", p.banner);
        for (what, l) in lists {
            outln!("{what:<16} {}", l.join(","));
        }
        outln!("{:<16} {}", "strict kex", p.strict_kex);
        outln!("{:<16} {}", "ext-info", p.ext_info);
        let methods = p.auth_methods.as_ref().map_or("(not reached)".to_owned(), |m| m.join(","));
        outln!("{:<16} {methods}", "auth methods");
        outln!("{:<16} {} ms", "handshake", p.handshake_ms);
        let shell = match (p.posix_shell, &p.shell_note) {
            (Some(true), _) => "POSIX sh (the programs' default commands run)".to_owned(),
            (Some(false), note) => format!("not POSIX sh: {}", note.as_deref().unwrap_or("")),
            (None, Some(note)) => format!("not probed: {note}"),
            (None, None) => "not probed (no login for a remote target here; `sshspec run` probes it)".to_owned(),
        };
        outln!("{:<16} {shell}", "shell");
        let extra = p.extra_offers();
        let extra: Vec<&String> = extra.host_key.iter().chain(&extra.cipher).chain(&extra.compression).collect();
        if !extra.is_empty() {
            outln!("{:<16} {}", "legacy offered", extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
        }
        if let Some(why) = &p.incomplete {
            outln!("{:<16} {why}", "incomplete");
        }
    }
    if p.incomplete.is_some() { exit::NONCONFORMING } else { exit::OK }
}

fn show_targets() -> u8 {
    let catalog = match targets::catalog() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    outln!("{:<18} {:<9} {:<9} {:<44} availability", "name", "version", "backend", "auth");
    for t in &catalog {
        outln!(
            "{:<18} {:<9} {:<9} {:<44} {}",
            t.name,
            t.version.as_deref().unwrap_or("(host)"),
            format!("{:?}", t.backend).to_lowercase(),
            t.auth.join(","),
            targets::availability(t),
        );
    }
    outln!("remote:HOST:PORT  any SSH server you name (password auth via --password-env)");
    exit::OK
}
