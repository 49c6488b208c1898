//! `sshspec-russh-server`: the russh target as a standalone server, for containers and manual runs.
//!
//! Usage: sshspec-russh-server ADDR:PORT USER PASSWORD [AUTHORIZED_KEYS]... [-o LINE]...
//! where AUTHORIZED_KEYS is `authorized_keys` text (one key per line; several lines in one argument
//! are fine) and each LINE is a settings line (`RekeyLimit 262144`, `MaxAuthTries 2`; see `Settings`).

use std::process::ExitCode;

const USAGE: &str = "usage: sshspec-russh-server ADDR:PORT USER PASSWORD [AUTHORIZED_KEYS]... [-o LINE]...";

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
    let mut authorized_keys = Vec::new();
    for line in keys.iter().flat_map(|k| k.lines()).filter(|l| !l.trim().is_empty()) {
        if let Err(e) = russh::keys::PublicKey::from_openssh(line) {
            eprintln!("not an authorized_keys line ({e}): {line}");
            return ExitCode::from(2);
        }
        authorized_keys.push(line.to_owned());
    }
    let creds = sshspec_russh_target::Credentials { user: user.clone(), password: password.clone(), authorized_keys };
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
