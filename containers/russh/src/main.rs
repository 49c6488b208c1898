//! `sshspec-russh-server`: the russh target as a standalone server, for containers and manual runs.
//!
//! Usage: sshspec-russh-server ADDR:PORT USER PASSWORD [ED25519_PUBLIC_KEY_HEX]... [-o LINE]...
//! where each LINE is a settings line (`RekeyLimit 262144`, `MaxAuthTries 2`; see `Settings`).

use std::process::ExitCode;

const USAGE: &str = "usage: sshspec-russh-server ADDR:PORT USER PASSWORD [ED25519_PUBLIC_KEY_HEX]... [-o LINE]...";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = Vec::new();
    let mut lines = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "-o" {
            let Some(line) = it.next() else {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            };
            lines.push(line);
        } else {
            args.push(a);
        }
    }
    let [bind, user, password, keys @ ..] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let settings = match sshspec_russh_target::Settings::parse(&lines) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Ok(bind) = bind.parse() else {
        eprintln!("not an address: {bind}");
        return ExitCode::from(2);
    };
    let mut authorized_ed25519 = Vec::new();
    for k in keys {
        match hex_key(k) {
            Some(k) => authorized_ed25519.push(k),
            None => {
                eprintln!("not a 32-byte hex ed25519 public key: {k}");
                return ExitCode::from(2);
            }
        }
    }
    let creds =
        sshspec_russh_target::Credentials { user: user.clone(), password: password.clone(), authorized_ed25519 };
    match sshspec_russh_target::start_with(bind, creds, settings).await {
        Ok(t) => {
            eprintln!("listening on {} as {}", t.addr, t.banner);
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hex_key(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
