//! The reports of a real run against three targets (builtin russh, OpenSSH and Dropbear as local
//! processes), checked as their readers meet them: report.json against the checked-in schema,
//! junit.xml's counts, the certification reports' rates, a baseline comparison, and the HTML pages
//! rendered in headless Chromium (screenshots kept under the test's target tmpdir, assertions on
//! what is visible, not on the HTML text).
//!
//! OpenSSH runs with its expected failures removed, so its known deviations show as real FAILs with
//! evidence. A missing target or browser fails the test in CI and is a visible skip elsewhere.

mod cdp;

use sshspec::peer::Credentials;
use sshspec::report::{self, baseline, cert};
use sshspec::run::{self, RunOptions, Summary};
use sshspec::script;
use sshspec::targets::{self, TargetInfo};
use sshspec::verdict::Outcome;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn skip_or_fail(what: &str) -> bool {
    if ci() {
        panic!("{what} is unavailable in CI");
    }
    eprintln!("note: skipping: {what} is unavailable here (run scripts/install-test-deps.sh as root)");
    true
}

fn targets() -> Option<Vec<TargetInfo>> {
    let mut out = Vec::new();
    for name in ["builtin", "openssh", "dropbear"] {
        let mut t = targets::find(name).expect("a known target");
        let a = targets::availability(&t);
        if !a.starts_with("ready") {
            skip_or_fail(&format!("target {name} ({a})"));
            return None;
        }
        if name == "openssh" {
            t.expected_failures.clear();
        }
        out.push(t);
    }
    Some(out)
}

/// Scenarios where OpenSSH deviates (so FAILs show), plus passes and skips on every target.
fn scenarios() -> Vec<script::Scenario> {
    let all = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")).expect("catalogue");
    let pick = [
        "sanity/",
        "transport/version/",
        "auth/password/",
        "auth/keyboard-interactive/",
        "auth/channel-open-before-login-disconnects",
        "auth/requests-after-success-are-ignored",
        "connection/channel/",
        "connection/unknown-channel-type",
    ]
    .map(String::from)
    .to_vec();
    let picked = script::select(all, &pick, false).expect("selection");
    assert!(picked.len() >= 15, "only {} scenarios picked", picked.len());
    picked
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports-test");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("report dir");
    d
}

async fn real_run() -> Option<(Summary, PathBuf)> {
    let list = targets()?;
    let opts = RunOptions {
        ci: ci(),
        creds: Some(Credentials::generate(targets::TEST_USER)),
        run_timeout: Some(Duration::from_secs(300)),
        ..Default::default()
    };
    let summary = run::run(&list, &scenarios(), &opts, &mut Vec::new()).await;
    let dir = out_dir();
    report::write_all(&dir, &summary, None).expect("reports written");
    Some((summary, dir))
}

fn schema_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports/schema/report.v2.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("json");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_gives_every_report_and_each_reads_right() {
    let Some((summary, dir)) = real_run().await else { return };
    let t = summary.tally();
    assert!(t.pass >= 20 && t.fail >= 1 && t.skip >= 1, "a run with passes, failures and skips: {t:?}");

    // report.json: valid against the schema; and the validator is not vacuous.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let v = schema_validator();
    let errors: Vec<String> =
        v.iter_errors(&json).map(|e| format!("{} at {}", e, e.instance_path())).take(10).collect();
    assert!(errors.is_empty(), "report.json breaks its schema: {errors:#?}");
    let mut broken = json.clone();
    broken["results"][0]["outcome"] = "MAYBE".into();
    assert!(!v.is_valid(&broken), "the schema must reject an unknown outcome");
    let mut extra = json.clone();
    extra["targets"][0]["surprise"] = 1.into();
    assert!(!v.is_valid(&extra), "the schema must reject fields it does not describe");
    assert_eq!(json["scenario_set"]["digest"].as_str().unwrap().len(), 64);

    // junit.xml: one testsuite per target, with the counts CI systems read.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    for ts in &summary.targets {
        let head = junit.split(&format!("<testsuite name=\"{}\"", ts.name)).nth(1).expect("a testsuite per target");
        let head = &head[..head.find('>').unwrap()];
        let attr = |a: &str| -> usize {
            let v = head.split(&format!(" {a}=\"")).nth(1).unwrap();
            v[..v.find('"').unwrap()].parse().unwrap()
        };
        assert_eq!(attr("tests"), ts.tally.total(), "{}: tests", ts.name);
        assert_eq!(attr("failures"), ts.tally.fail + ts.tally.xpass, "{}: failures", ts.name);
        assert_eq!(attr("errors"), ts.tally.error, "{}: errors", ts.name);
        // quick-junit counts skipped cases as `disabled`, as nextest does.
        assert_eq!(attr("disabled"), ts.tally.skip + ts.tally.inconclusive, "{}: skipped", ts.name);
    }
    assert!(junit.contains("<skipped message="), "skips carry their reason");
    assert!(junit.contains("<system-out>"), "transcripts are in system-out");

    // Certification reports: the rates in the files are the ones the clauses give.
    for ts in &summary.targets {
        let c = cert::Certificate::new(&summary, ts);
        let stem = dir.join(cert::file_stem(&ts.name));
        let md = std::fs::read_to_string(stem.with_extension("md")).unwrap();
        let must = &c.levels[&script::Level::Must];
        assert!(must.conforms + must.deviates > 0, "{}: MUST clauses judged", ts.name);
        let rate = must.rate().map(|r| format!("{r:.1}%")).unwrap();
        assert!(
            md.contains(&format!(
                "| MUST | {} | {} | {} | {rate} |",
                must.conforms + must.deviates,
                must.conforms,
                must.deviates
            )),
            "{md}"
        );
        assert!(md.contains(&summary.scenario_set.digest), "the set digest is stated");
        for (alg, fp) in &ts.identity.host_keys {
            assert!(md.contains(&format!("{alg} {fp}")), "{}: host key {alg}", ts.name);
        }
        let deviations = ts.tally.fail + ts.tally.xfail + ts.tally.xpass + ts.tally.error;
        assert_eq!(c.deviations.len(), deviations);
        assert!(md.contains(&format!("## Deviations ({deviations})")));
        assert!(stem.with_extension("html").is_file());
    }
    let openssh = summary.targets.iter().find(|t| t.name == "openssh").unwrap();
    assert!(openssh.tally.fail >= 1, "OpenSSH without its expected failures must FAIL somewhere: {:?}", openssh.tally);

    // A baseline: the same run compares clean; a pass turned failure is a regression and fails the
    // exit code, a failure turned pass is listed as fixed and does not.
    let base = baseline::Baseline::load(&dir.join("report.json")).expect("baseline");
    let same = baseline::Comparison::new(&base, &summary);
    assert!(same.regressions.is_empty() && same.fixed.is_empty() && !same.set_differs);
    assert_eq!(same.exit_code(&summary), sshspec::exit::OK, "known failures do not fail a baseline run");
    let mut later = summary.clone();
    let p = later.results.iter().position(|r| r.outcome == Outcome::Pass).unwrap();
    let f = later.results.iter().position(|r| r.outcome == Outcome::Fail).unwrap();
    later.results[p].outcome = Outcome::Fail;
    later.results[f].outcome = Outcome::Pass;
    let diff = baseline::Comparison::new(&base, &later);
    assert_eq!(diff.regressions.len(), 1);
    assert_eq!(diff.fixed.len(), 1);
    assert_eq!(diff.exit_code(&later), sshspec::exit::NONCONFORMING);
    let md = diff.markdown();
    assert!(md.contains(&format!("`{}`: PASS → FAIL", later.results[p].scenario)), "{md}");

    // The pages, rendered.
    if cdp::chromium().is_none() && skip_or_fail("chromium") {
        return;
    }
    check_pages(&summary, &dir).await;
}

/// The matrix at the interop run's size: this run's real results spread over 22 targets of 11
/// implementations and 170 scenarios. The page must stay under 10 MB, and its header row and
/// scenario column must stay in view when the table is scrolled both ways.
fn check_large_matrix(b: &mut cdp::Browser, summary: &Summary, dir: &Path) {
    let mut big = summary.clone();
    big.targets.clear();
    big.results.clear();
    let ids: Vec<String> = {
        let mut v: Vec<String> = summary.results.iter().map(|r| r.scenario.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    for n in 0..22 {
        let from = &summary.targets[n % summary.targets.len()];
        let mut t = from.clone();
        t.name = format!("{}-{n}", from.name);
        t.server = format!("implementation-{}", n / 2);
        for copy in 0..170usize.div_ceil(ids.len()) {
            for r in summary.results.iter().filter(|r| r.target == from.name) {
                let mut r = r.clone();
                r.target = t.name.clone();
                r.scenario = format!("{}/copy{copy}", r.scenario);
                big.results.push(r);
            }
        }
        big.targets.push(t);
    }
    let out = dir.join("large");
    std::fs::create_dir_all(&out).unwrap();
    report::write_all(&out, &big, None).unwrap();
    let size = std::fs::metadata(out.join("matrix.html")).unwrap().len();
    let rows = ids.len() * 170usize.div_ceil(ids.len());
    println!("matrix.html for 22 targets × {rows} scenarios: {:.1} MB", size as f64 / 1e6);
    assert!(size < 10_000_000, "matrix.html for 22 targets is {size} bytes");
    let page = b.open(&out.join("matrix.html")).expect("the large matrix loads");
    let stuck = b
        .eval(
            &page,
            "(s => { s.scrollTop = 3000; s.scrollLeft = 3000; const box = s.getBoundingClientRect(); \
              const head = document.querySelector('#matrix thead').getBoundingClientRect(); \
              const below = document.elementFromPoint(box.left + s.clientLeft + 5, head.bottom + 8); \
              const cell = below && below.closest('td, th'); \
              return [s.scrollTop > 0, s.scrollLeft > 0, Math.round(head.top - box.top - s.clientTop), \
                      cell ? cell.className : String(below)]; })(document.querySelector('.scroll'))",
        )
        .unwrap();
    assert_eq!(
        stuck,
        serde_json::json!([true, true, 0, "mono sc"]),
        "scrolled both ways: the header at the top, the scenario column at the left edge"
    );
    b.screenshot(&page, &out.join("matrix-scrolled.png")).expect("screenshot");
}

async fn check_pages(summary: &Summary, dir: &Path) {
    let mut b = cdp::Browser::launch(dir).expect("chromium starts");
    let page = b.open(&dir.join("matrix.html")).expect("matrix.html loads");
    b.screenshot(&page, &dir.join("matrix.png")).expect("screenshot");
    let rows: Vec<String> = {
        let mut ids: Vec<&str> = summary.results.iter().map(|r| r.scenario.as_str()).collect();
        ids.sort();
        ids.dedup();
        ids.into_iter().map(String::from).collect()
    };
    let visible_rows = b
        .eval(
            &page,
            "[...document.querySelectorAll('#matrix tr.row')].filter(r => r.getBoundingClientRect().height > 0).length",
        )
        .unwrap();
    assert_eq!(visible_rows.as_u64(), Some(rows.len() as u64), "one visible row per scenario");
    let heads =
        b.eval(&page, "[...document.querySelectorAll('th.target')].map(t => t.innerText.split('\\n')[0])").unwrap();
    let names: Vec<&str> = summary.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(heads, serde_json::json!(names), "a column per target, in order");
    let fetched = b.eval(&page, "performance.getEntriesByType('resource').length").unwrap();
    assert_eq!(fetched.as_u64(), Some(0), "the page is self-contained: it fetched {fetched}");
    // Colours as rendered: a FAIL cell is reddish, a PASS cell greenish.
    let colour = |cls: &str| format!("getComputedStyle(document.querySelector('#matrix td.{cls}')).backgroundColor");
    assert_eq!(b.eval(&page, &colour("FAIL")).unwrap(), "rgb(247, 198, 198)");
    assert_eq!(b.eval(&page, &colour("PASS")).unwrap(), "rgb(217, 242, 217)");
    // No panel is visible until a cell is clicked.
    let shown = "[...document.querySelectorAll('section.detail')].filter(s => getComputedStyle(s).display !== 'none').map(s => s.id)";
    assert_eq!(b.eval(&page, shown).unwrap(), serde_json::json!([]));
    // Click the first FAIL cell: its panel shows, with the evidence and the transcript.
    let fail = summary.results.iter().find(|r| r.outcome == Outcome::Fail && r.target == "openssh").unwrap();
    let anchor = report::html::anchor(&fail.target, &fail.scenario);
    b.eval(&page, &format!("document.querySelector('#matrix a[href=\"#{anchor}\"]').click(); 0")).unwrap();
    assert_eq!(b.eval(&page, shown).unwrap(), serde_json::json!([anchor]), "exactly the clicked result's panel");
    let text = b.eval(&page, &format!("document.getElementById('{anchor}').innerText")).unwrap();
    let text = text.as_str().unwrap();
    let ev = fail.evidence.as_ref().unwrap();
    assert!(text.contains(&format!("step {} (line {})", ev.step, ev.line)), "{text}");
    assert!(
        text.contains("kexinit {\"cookie\"") && text.contains("server log"),
        "the transcript and the server log are in the panel: {text}"
    );
    let rect = b
        .eval(
            &page,
            &format!("(r => [r.width, r.height])(document.getElementById('{anchor}').getBoundingClientRect())"),
        )
        .unwrap();
    assert!(
        rect[0].as_f64().unwrap() > 600.0 && rect[1].as_f64().unwrap() > 300.0,
        "the panel is large on screen: {rect}"
    );
    b.screenshot(&page, &dir.join("matrix-detail.png")).expect("screenshot");

    // A passing cell links to its own page beside the matrix, which holds its transcript.
    let pass = summary.results.iter().find(|r| r.outcome == Outcome::Pass).unwrap();
    let side =
        dir.join(report::html::SIDE_DIR).join(format!("{}.html", report::html::anchor(&pass.target, &pass.scenario)));
    let side_page = b.open(&side).expect("a passing result's page loads");
    let text = b.eval(&side_page, "document.body.innerText").unwrap();
    assert!(text.as_str().unwrap().contains("PASS") && text.as_str().unwrap().contains("kexinit"), "{text}");

    // The filter: only scenarios with something other than PASS and SKIP stay.
    let page = b.open(&dir.join("matrix.html")).expect("matrix.html loads");
    let notable = rows
        .iter()
        .filter(|id| {
            summary.results.iter().any(|r| &r.scenario == *id && !matches!(r.outcome, Outcome::Pass | Outcome::Skip))
        })
        .count();
    assert!(notable > 0 && notable < rows.len(), "{notable} of {}", rows.len());
    b.eval(&page, "document.getElementById('only-notable').click(); 0").unwrap();
    let visible =
        "[...document.querySelectorAll('#matrix tr.row')].filter(r => r.getBoundingClientRect().height > 0).length";
    assert_eq!(b.eval(&page, visible).unwrap().as_u64(), Some(notable as u64), "the filter leaves the notable rows");
    // The summary: a row per implementation.
    let impls = b
        .eval(&page, "[...document.querySelectorAll('#summary tbody tr')].map(r => r.dataset.implementation)")
        .unwrap();
    let mut servers: Vec<&str> = Vec::new();
    for t in &summary.targets {
        if !servers.contains(&t.server.as_str()) {
            servers.push(&t.server);
        }
    }
    assert_eq!(impls, serde_json::json!(servers));

    check_large_matrix(&mut b, summary, dir);

    // A certification page: the MUST rate as a person reads it.
    let ts = summary.targets.iter().find(|t| t.name == "openssh").unwrap();
    let c = cert::Certificate::new(summary, ts);
    let page = b.open(&dir.join(format!("{}.html", cert::file_stem(&ts.name)))).expect("cert page loads");
    b.screenshot(&page, &dir.join("cert-openssh.png")).expect("screenshot");
    let must = b.eval(&page, "document.querySelector('#levels tr[data-level=MUST] .rate').innerText").unwrap();
    let want = c.levels[&script::Level::Must].rate().map(|r| format!("{r:.1}%")).unwrap();
    assert_eq!(must.as_str(), Some(want.as_str()));
    let devs = b.eval(&page, "document.querySelectorAll('#deviations tr').length - 1").unwrap();
    assert_eq!(devs.as_u64(), Some(c.deviations.len() as u64));
    for png in ["matrix.png", "matrix-detail.png", "cert-openssh.png"] {
        let bytes = std::fs::read(dir.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{png}: {} bytes", bytes.len());
    }
    println!("reports and screenshots in {}", dir.display());
}
