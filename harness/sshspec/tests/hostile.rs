//! The catalogue against a hostile server. Whatever the server does, every scenario must end in
//! FAIL, INCONCLUSIVE (its setup failed) or ERROR with a reason, or SKIP because the probe could
//! not learn what the server offers, within its deadline, without a panic or a hang, and with
//! bounded memory. Each mode below is one way a broken or malicious server behaves.

use rand::RngCore;
use sshspec::report::Reporter;
use sshspec::run::{RunOptions, run};
use sshspec::script::{Action, Expectation, Scenario};
use sshspec::verdict::Outcome;
use sshspec::{peer, script, targets};
use sshspec_wire::msg::{ChannelWindowAdjust, Ignore, KexInit};
use sshspec_wire::{Cookie, Message, NameList};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Mode {
    StallMidPacket,
    TrickleOneBytePerSecond,
    FloodIgnore,
    FloodWindowAdjust,
    Announce4GiBPacket,
    EndlessPreBanner,
    CloseOnAccept,
    CloseMidBanner,
    CloseAfterBanner,
    CloseMidPacket,
    CloseAfterKexinit,
    RandomBytesAfterBanner,
    ReplayOldPacket,
}

const MODES: &[Mode] = &[
    Mode::StallMidPacket,
    Mode::TrickleOneBytePerSecond,
    Mode::FloodIgnore,
    Mode::FloodWindowAdjust,
    Mode::Announce4GiBPacket,
    Mode::EndlessPreBanner,
    Mode::CloseOnAccept,
    Mode::CloseMidBanner,
    Mode::CloseAfterBanner,
    Mode::CloseMidPacket,
    Mode::CloseAfterKexinit,
    Mode::RandomBytesAfterBanner,
    Mode::ReplayOldPacket,
];

const BANNER: &[u8] = b"SSH-2.0-hostile_1.0\r\n";

/// A plaintext packet (RFC 4253 §6) around `payload`.
fn packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut p = ((1 + payload.len() + pad) as u32).to_be_bytes().to_vec();
    p.push(pad as u8);
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0u8, pad));
    p
}

fn kexinit() -> Vec<u8> {
    let l = |v: &[&str]| NameList::new(v.iter().copied());
    packet(
        &Message::KexInit(KexInit {
            cookie: Cookie([7; 16]),
            kex_algorithms: l(&["curve25519-sha256", "kex-strict-s-v00@openssh.com"]),
            server_host_key_algorithms: l(&["ssh-ed25519"]),
            encryption_algorithms_client_to_server: l(&["chacha20-poly1305@openssh.com"]),
            encryption_algorithms_server_to_client: l(&["chacha20-poly1305@openssh.com"]),
            mac_algorithms_client_to_server: l(&["hmac-sha2-256"]),
            mac_algorithms_server_to_client: l(&["hmac-sha2-256"]),
            compression_algorithms_client_to_server: l(&["none"]),
            compression_algorithms_server_to_client: l(&["none"]),
            ..Default::default()
        })
        .encode(),
    )
}

/// Holds the connection open, reading and discarding, until the client goes away.
async fn hold(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn misbehave(mode: Mode, mut s: TcpStream) -> std::io::Result<()> {
    let k = kexinit();
    match mode {
        Mode::CloseOnAccept => return Ok(()),
        Mode::CloseMidBanner => {
            s.write_all(&BANNER[..8]).await?;
            return Ok(());
        }
        Mode::EndlessPreBanner => {
            for n in 0u64.. {
                s.write_all(format!("welcome line {n}\r\n").as_bytes()).await?;
            }
        }
        _ => s.write_all(BANNER).await?,
    }
    match mode {
        Mode::StallMidPacket => {
            s.write_all(&k[..k.len() / 2]).await?;
            hold(&mut s).await;
        }
        Mode::TrickleOneBytePerSecond => {
            for b in &k {
                s.write_all(&[*b]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            hold(&mut s).await;
        }
        Mode::FloodIgnore => {
            s.write_all(&k).await?;
            let p = packet(&Message::Ignore(Ignore { data: vec![0x55; 1024].into() }).encode());
            let burst: Vec<u8> = p.iter().copied().cycle().take(p.len() * 64).collect();
            loop {
                s.write_all(&burst).await?;
            }
        }
        Mode::FloodWindowAdjust => {
            s.write_all(&k).await?;
            let p = packet(
                &Message::ChannelWindowAdjust(ChannelWindowAdjust { recipient_channel: 0, bytes_to_add: u32::MAX })
                    .encode(),
            );
            let burst: Vec<u8> = p.iter().copied().cycle().take(p.len() * 512).collect();
            loop {
                s.write_all(&burst).await?;
            }
        }
        Mode::Announce4GiBPacket => {
            s.write_all(&[0xff, 0xff, 0xff, 0xff, 4, 20]).await?;
            hold(&mut s).await;
        }
        Mode::CloseMidPacket => s.write_all(&k[..k.len() / 2]).await?,
        Mode::CloseAfterKexinit => {
            s.write_all(&k).await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Mode::RandomBytesAfterBanner => {
            let mut junk = vec![0u8; 4096];
            rand::thread_rng().fill_bytes(&mut junk);
            s.write_all(&junk).await?;
            hold(&mut s).await;
        }
        Mode::ReplayOldPacket => {
            for _ in 0..3 {
                s.write_all(&k).await?;
            }
            hold(&mut s).await;
        }
        _ => {}
    }
    Ok(())
}

async fn serve(mode: Mode) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(misbehave(mode, s));
        }
    });
    (addr, task)
}

/// Peak resident memory of this process since the last reset (Linux: VmHWM, reset by clear_refs 5).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Quiet;
impl Reporter for Quiet {
    fn on_event(&mut self, _: &sshspec::report::Event<'_>) {}
}

/// The scenarios a mode may skip, and why: an identification line that arrived whole, announcing
/// 2.0, is right to SKIP what judges only a server in SSH-1 compatibility mode (1.99).
fn may_skip(mode: Mode, s: &Scenario) -> bool {
    let first_reads_the_banner = matches!(s.steps.first().map(|st| &st.action), Some(Action::Expect(alts))
        if alts.iter().any(|a| matches!(a, Expectation::BannerUnsupported { .. })));
    banner_sent(mode) && first_reads_the_banner
}

/// Whether the mode sends its identification line whole.
fn banner_sent(mode: Mode) -> bool {
    !matches!(mode, Mode::EndlessPreBanner | Mode::CloseOnAccept | Mode::CloseMidBanner)
}

/// The scenarios a mode may pass, and why: the part of the exchange they judge is still conforming.
fn may_pass(mode: Mode, s: &Scenario) -> bool {
    // A scenario whose verdict is "the server closes the connection" is right to pass against a
    // server that closes it, once its banner is out.
    // Whether the scenario's last step accepts this kind of answer.
    let ends_accepting = |kind: fn(&Expectation) -> bool| matches!(s.steps.last().map(|st| &st.action), Some(Action::Expect(alts)) if alts.iter().any(kind));
    let ends_in_close = ends_accepting(|a| matches!(a, Expectation::Close));
    let closes = matches!(mode, Mode::CloseAfterBanner | Mode::CloseMidPacket | Mode::CloseAfterKexinit);
    // The banner and KEXINIT are well formed; IGNORE may come at any time, window adjusts and
    // replays come after the KEXINIT the scenario checks.
    let identification_ok =
        matches!(mode, Mode::FloodIgnore | Mode::FloodWindowAdjust | Mode::ReplayOldPacket | Mode::CloseAfterKexinit);
    // A bare-LF identification is judged by whether the server goes on (KEXINIT) or refuses; the
    // KEXINIT's form and lists are judged on their own.
    let judges_identification = [
        "transport/version/server-identification",
        "transport/version/bare-lf-client-identification",
        "transport/kex/server-languages-are-empty",
    ];
    // (Twice, over a reconnection: the same KEXINIT on both connections is a right PASS.)
    let reads_only_the_kexinit = s.steps.iter().all(|st| match &st.action {
        Action::VersionExchange { .. } | Action::Reconnect => true,
        Action::Expect(alts) => alts.iter().all(|a| match a {
            Expectation::WellFormedKexinit => true,
            Expectation::Message { name, .. } => name == "kexinit",
            _ => false,
        }),
        _ => false,
    });
    // A flood of IGNOREs is no message: a scenario that gets as far as its last step with only the
    // KEXINIT (CVE-2025-32433's probe) and there accepts silence is right to pass. Whether it gets
    // there before the deadline depends on how fast the flood is read, so FAIL is right as well.
    let ends_in_nothing = ends_accepting(|a| matches!(a, Expectation::Nothing));
    // A scenario that judges only the identification (and the lines before it) is right to pass
    // whenever the whole line arrived, whatever comes after it.
    let reads_only_the_banner = s.steps.iter().all(|st| match &st.action {
        Action::VersionExchange { .. } => true,
        Action::Expect(alts) => alts.iter().all(|a| matches!(a, Expectation::Banner { .. })),
        _ => false,
    });
    (banner_sent(mode) && reads_only_the_banner)
        || (closes && ends_in_close)
        || (identification_ok && (judges_identification.contains(&s.id.as_str()) || reads_only_the_kexinit))
        || (matches!(mode, Mode::FloodIgnore) && ends_in_nothing)
}

const STEP: Duration = Duration::from_millis(1500);
const SCENARIO: Duration = Duration::from_secs(3);

#[test]
fn every_mode_ends_every_scenario_in_fail_or_error_within_its_deadline() {
    let mut scenarios = script::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")).unwrap();
    // Configuration variants need a server we can reconfigure; a hostile one has none, so those
    // scenarios are (rightly) skipped rather than run.
    scenarios.retain(|s| s.requires.variant.is_none());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut table = Vec::new();
    let mut problems = Vec::new();
    for &mode in MODES {
        let (addr, server) = rt.block_on(serve(mode));
        let mut t = targets::find(&format!("remote:{addr}")).unwrap();
        t.connect_interval = Duration::ZERO;
        t.max_jobs = 16;
        t.auth = ["none", "password", "publickey", "keyboard-interactive"].map(String::from).to_vec();
        t.user_keys = targets::all_user_keys();
        let opts = RunOptions {
            peer: peer::Options { step_timeout: STEP, scenario_timeout: Some(SCENARIO), ..Default::default() },
            run_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        reset_peak_rss();
        let started = Instant::now();
        let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Quiet)];
        let summary = rt.block_on(run(&[t], &scenarios, &opts, &mut reporters));
        let wall = started.elapsed();
        let peak = peak_rss_kib();
        server.abort();
        let mut worst = 0;
        let mut fails = 0;
        let mut errors = 0;
        let mut passes = 0;
        for r in &summary.results {
            worst = worst.max(r.duration_ms);
            match r.outcome {
                Outcome::Fail | Outcome::Inconclusive => fails += 1,
                Outcome::Error => errors += 1,
                // What needs an algorithm cannot be judged against a server whose KEXINIT was not
                // read, nor one the server's KEXINIT does not list.
                Outcome::Skip
                    if r.reason.as_deref().is_some_and(|w| w.starts_with("not probed") || w.starts_with("probed:")) =>
                {
                    continue;
                }
                Outcome::Skip if scenarios.iter().any(|s| s.id == r.scenario && may_skip(mode, s)) => continue,
                Outcome::Pass if scenarios.iter().any(|s| s.id == r.scenario && may_pass(mode, s)) => {
                    passes += 1;
                    continue;
                }
                other => problems.push(format!("{mode:?}: {} ended {other}", r.scenario)),
            }
            let reason = r.evidence.as_ref().map(|e| e.actual.clone()).or(r.reason.clone()).unwrap_or_default();
            if reason.is_empty() {
                problems.push(format!("{mode:?}: {} has no reason", r.scenario));
            }
            // A deadline miss is run again alone (up to three per target) before it is reported.
            let attempts = if r.first_attempt.is_some() { 2 } else { 1 };
            if r.duration_ms > (SCENARIO + Duration::from_millis(1500)).as_millis() as u64 * attempts {
                problems.push(format!("{mode:?}: {} took {} ms", r.scenario, r.duration_ms));
            }
        }
        let sample =
            summary.results.iter().find_map(|r| r.evidence.as_ref().map(|e| e.actual.clone())).unwrap_or_default();
        table.push(format!(
            "{:<24} {:>2} FAIL {:>2} ERROR {:>2} PASS  slowest {:>5} ms  run {:>5} ms  peak RSS {:>6} KiB  e.g. {}",
            format!("{mode:?}"),
            fails,
            errors,
            passes,
            worst,
            wall.as_millis(),
            peak,
            sample.chars().take(110).collect::<String>()
        ));
        // Every result keeps its transcript (at most 1500 entries) until the report is written, so
        // the flood modes' peak grows with the catalogue: 111 MiB at 309 scenarios (21 MiB in the
        // modes without a flood). The bound catches a leak or an unbounded buffer, not that growth.
        if peak > 160 * 1024 {
            problems.push(format!("{mode:?}: peak RSS {peak} KiB exceeds 160 MiB"));
        }
    }
    eprintln!("hostile modes ({} scenarios each):\n{}", scenarios.len(), table.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A server whose KEXINIT breaks its form (an empty name, an empty MAC list, a reserved field of 1)
/// but is otherwise readable: the well-formedness scenario FAILs citing each problem, which shows
/// the check can fail; it PASSes against OpenSSH, Dropbear and russh in the conformance trials.
#[test]
fn a_malformed_server_kexinit_fails_the_well_formed_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let s = script::load_file(&dir, &dir.join("transport/kex/server-kexinit-is-well-formed.toml")).unwrap().remove(0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let run = rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let l = |v: &[&str]| NameList::new(v.iter().copied());
            let k = KexInit {
                cookie: Cookie([7; 16]),
                kex_algorithms: l(&["curve25519-sha256", "", "ext-info-s"]),
                server_host_key_algorithms: l(&["ssh-ed25519"]),
                encryption_algorithms_client_to_server: l(&["aes128-ctr"]),
                encryption_algorithms_server_to_client: l(&["aes128-ctr"]),
                mac_algorithms_client_to_server: l(&["hmac-sha2-256"]),
                compression_algorithms_client_to_server: l(&["none"]),
                compression_algorithms_server_to_client: l(&["none"]),
                reserved: 1,
                ..Default::default()
            };
            s.write_all(BANNER).await.unwrap();
            s.write_all(&packet(&Message::KexInit(k).encode())).await.unwrap();
            hold(&mut s).await;
        });
        let creds = peer::Credentials::generate("sshspec");
        let run = peer::run(&s, addr, &creds, &peer::Options::default()).await;
        server.abort();
        run
    });
    let peer::Judgement::Fail(e) = &run.judgement else { panic!("expected FAIL, got {:?}", run.judgement) };
    for problem in ["an empty name", "mac_algorithms_server_to_client is empty", "the reserved field is 1"] {
        assert!(e.actual.contains(problem), "{problem:?} missing from {}", e.actual);
    }
}

/// A close counts only if it follows the stimulus: against a server that closes right after its
/// identification, a scenario expecting the close after a stimulus of its own is INCONCLUSIVE
/// (the connection was gone before the stimulus went out), never a PASS that credits the server.
/// The FIN can trail the identification on a busy machine, so the check has a few tries, and a
/// try where it had not arrived may PASS; a FAIL or ERROR never may.
#[test]
fn a_close_before_the_stimulus_is_not_evidence() {
    let text = "title = \"t\"\nspec = \"RFC 4253 §6\"\nclauses = [\"4253-6-a\"]\nlevel = \"must\"\nrequirement = \"r\"\n\
                [[step]]\ndo = \"version-exchange\"\n[[step]]\nsend_bytes = \"00000000\"\n[[step]]\nexpect = \"close\"\n";
    let s = script::parse("t", Path::new("t.toml"), text).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (addr, server) = rt.block_on(serve(Mode::CloseAfterBanner));
    let mut inconclusive = 0;
    for _ in 0..5 {
        let run = rt.block_on(async {
            let creds = peer::Credentials::generate("sshspec");
            peer::run(&s, addr, &creds, &peer::Options::default()).await
        });
        match &run.judgement {
            peer::Judgement::Inconclusive(e) => {
                assert!(e.actual.contains("already closed"), "{}", e.actual);
                inconclusive += 1;
            }
            peer::Judgement::Pass => {}
            other => panic!("expected INCONCLUSIVE, got {other:?}"),
        }
    }
    server.abort();
    assert!(inconclusive >= 1, "the close before the stimulus was never seen in 5 tries");
}
