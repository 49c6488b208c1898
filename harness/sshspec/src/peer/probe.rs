//! The probe: one harmless connection that learns what a target offers before anything is judged.
//! It reads the server's identification and KEXINIT (every list, and the strict-kex and ext-info
//! markers), completes a key exchange offering every algorithm the peer speaks, and asks
//! USERAUTH with method `none`, which lists the methods that can continue (RFC 4252 §5.2).
//!
//! The result is the target's [`Profile`]: scenarios' `requires` are checked against it, and the
//! peer's offers and login method follow it, so no verdict rests on something the server never offered.

use super::{Credentials, Options, Peer};
use crate::transcript::{Transcript, summarize};
use crate::transport::{Transport, cipher, compress, hostkey, kex, negotiate};
use serde::Serialize;
use sshspec_wire::msg::*;
use sshspec_wire::{Message, NameList};
use std::net::SocketAddr;
use tokio::time::Instant;

/// What a target was seen to offer.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Profile {
    /// The identification line, without CR LF.
    pub banner: String,
    /// Key exchange methods, markers removed.
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher_c2s: Vec<String>,
    pub cipher_s2c: Vec<String>,
    pub mac_c2s: Vec<String>,
    pub mac_s2c: Vec<String>,
    pub compression_c2s: Vec<String>,
    pub compression_s2c: Vec<String>,
    /// The server lists `kex-strict-s-v00@openssh.com` (OpenSSH PROTOCOL §1.10).
    pub strict_kex: bool,
    /// The server lists `ext-info-s` (RFC 8308 §2.1).
    pub ext_info: bool,
    /// The extensions of the server's first EXT_INFO (RFC 8308), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// The methods USERAUTH_FAILURE listed for `none`; `None` when the probe did not get that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<Vec<String>>,
    /// From the TCP connection to our NEWKEYS: the target's own handshake latency, under the load
    /// of the moment.
    pub handshake_ms: u64,
    /// Whether `exec` runs POSIX `sh -c` command lines (the programs' default commands); `None`
    /// when the probe could not log in to try.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posix_shell: Option<bool>,
    /// What the shell probe saw, when it was not a POSIX shell or could not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell_note: Option<String>,
    /// Where the probe stopped, when it did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// The algorithms the peer speaks but leaves out of its default offers (SHA-1 host key signatures,
/// CBC, compression), named so the profile can add them back for a server that needs them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    pub host_key: Vec<String>,
    pub cipher: Vec<String>,
    pub compression: Vec<String>,
}

impl Profile {
    /// The categories where our default offer and the server's list have nothing in common but
    /// something the peer speaks does: those algorithms are added after our defaults. A server that
    /// speaks only ssh-rsa or CBC is reached; every other negotiation is unchanged, since the
    /// client's order decides and the additions come last.
    pub fn extra_offers(&self) -> Extra {
        fn needed(defaults: &[&str], all: &[&str], server: &[&Vec<String>]) -> Vec<String> {
            let lists = || server.iter().filter(|l| !l.is_empty());
            if lists().all(|l| l.iter().any(|n| defaults.contains(&n.as_str()))) {
                return Vec::new();
            }
            all.iter()
                .filter(|a| !defaults.contains(a) && lists().any(|l| l.iter().any(|n| n == *a)))
                .map(|a| (*a).to_owned())
                .collect()
        }
        Extra {
            host_key: needed(hostkey::HOST_KEY_ALGORITHMS, hostkey::ALL, &[&self.host_key]),
            cipher: needed(cipher::CIPHERS, cipher::ALL_CIPHERS, &[&self.cipher_c2s, &self.cipher_s2c]),
            compression: needed(&[compress::NONE], compress::METHODS, &[&self.compression_c2s, &self.compression_s2c]),
        }
    }

    /// Whether the server lists `name` in the category `requires` names it under.
    pub fn offers(&self, category: &str, name: &str) -> bool {
        let has = |l: &[String]| l.iter().any(|n| n == name);
        match category {
            "kex" => {
                has(&self.kex)
                    || (name == kex::KEX_STRICT_S && self.strict_kex)
                    || (name == "ext-info-s" && self.ext_info)
            }
            "host_key" => has(&self.host_key),
            "cipher" => has(&self.cipher_c2s) && has(&self.cipher_s2c),
            "mac" => has(&self.mac_c2s) && has(&self.mac_s2c),
            "compression" => has(&self.compression_c2s) && has(&self.compression_s2c),
            _ => false,
        }
    }

    /// Whether the key exchange lists were read (a probe that stopped before KEXINIT knows nothing).
    pub fn has_lists(&self) -> bool {
        !self.kex.is_empty()
    }
}

/// Probes the server at `addr`. Never fails: what could not be learned is left empty and the
/// reason is in `incomplete`.
pub async fn probe(addr: SocketAddr, creds: &Credentials, opts: &Options) -> Profile {
    let started = Instant::now();
    // Two step deadlines: enough for a connection, an exchange and one login round trip, and a
    // stalled server does not hold the run up longer than one scenario step would.
    let deadline = started + opts.step_timeout * 2;
    let mut profile = Profile::default();
    let mut log = Transcript::default();
    log.echo = opts.echo;
    let t = match Transport::connect(addr, opts.source, deadline, log).await {
        Ok(t) => t,
        Err(e) => {
            profile.incomplete = Some(e.to_string());
            return profile;
        }
    };
    let mut peer = Peer::new(t, creds, opts, addr);
    // Everything the peer speaks, so the lists we read are the server's whole offer.
    peer.extra = Extra {
        host_key: hostkey::ALL.iter().map(|s| (*s).to_owned()).collect(),
        cipher: cipher::ALL_CIPHERS.iter().map(|s| (*s).to_owned()).collect(),
        compression: compress::METHODS.iter().map(|s| (*s).to_owned()).collect(),
    };
    if let Err(why) = peer.probe_into(&mut profile, started, deadline).await {
        profile.incomplete = Some(why);
    }
    peer.t.shutdown().await;
    profile
}

/// The command line the shell probe runs, and what a POSIX shell prints for it: the arithmetic
/// expansion proves `sh` parsed the line, not a program that echoes its arguments.
pub const SHELL_PROBE: (&str, &str) = ("echo sshspec $((6*7))", "sshspec 42\n");

/// Logs in with the run's method and runs [`SHELL_PROBE`]: whether the programs' POSIX commands
/// (`script::program::posix`) will run on this target. `opts` carries the login method and offers
/// the profile chose. Returns `(None, why)` when the probe did not get as far as the command.
pub async fn probe_shell(addr: SocketAddr, creds: &Credentials, opts: &Options) -> (Option<bool>, Option<String>) {
    use crate::script::{Action, AuthKind, AuthOutcome, AuthStep, Pins, Program, Scenario};
    let scenario = Scenario::internal(
        "shell-probe",
        opts.step_timeout * 2,
        vec![
            Action::VersionExchange { banner: None, pre_banner: Vec::new() },
            Action::KeyExchange { pins: Pins::default(), with: toml::Table::new(), rekey: None, guess: false },
            Action::Authenticate(Box::new(AuthStep::new(AuthKind::Login, AuthOutcome::Success))),
            Action::OpenSession { window: None, max_packet: None },
            Action::Exec {
                program: Program::Literal(SHELL_PROBE.0.into()),
                stdin: None,
                stdout: Some(SHELL_PROBE.1.into()),
                stderr: None,
                exit_status: Some(0),
                echo: false,
            },
        ],
    );
    let run = super::run(&scenario, addr, creds, &Options { echo: false, ..opts.clone() }).await;
    match run.judgement {
        super::Judgement::Pass => (Some(true), None),
        super::Judgement::Fail(e) => (Some(false), Some(format!("`{}` gave {}", SHELL_PROBE.0, e.actual))),
        super::Judgement::Unsupported(why) => (Some(false), Some(format!("`{}`: {why}", SHELL_PROBE.0))),
        super::Judgement::Inconclusive(e) | super::Judgement::Error(e) => {
            (None, Some(format!("the shell probe stopped at step {}: {}", e.step, e.actual)))
        }
    }
}

impl Peer<'_> {
    async fn probe_into(&mut self, p: &mut Profile, started: Instant, deadline: Instant) -> Result<(), String> {
        let describe = super::StepFailure::describe;
        self.version_exchange(None, &[], deadline).await.map_err(describe)?;
        p.banner =
            self.t.server.as_ref().map(|s| String::from_utf8_lossy(&s.line).trim_end().to_owned()).unwrap_or_default();
        self.send_kexinit().await.map_err(describe)?;
        while self.t.kex.theirs.is_none() {
            match self.t.recv(deadline).await.map_err(|e| format!("waiting for the server's KEXINIT: {e}"))? {
                Message::KexInit(_) | Message::Ignore(_) | Message::Debug(_) => {}
                other => return Err(format!("expected the server's KEXINIT; got {}", summarize(&other))),
            }
        }
        if let Some((theirs, _)) = &self.t.kex.theirs {
            read_lists(p, theirs);
        }
        self.send_kex_init_if_ready().await.map_err(describe)?;
        self.finish_kex(0, deadline).await.map_err(describe)?;
        p.handshake_ms = started.elapsed().as_millis() as u64;
        self.send(&Message::ServiceRequest(ServiceRequest { service: "ssh-userauth".into() }))
            .await
            .map_err(describe)?;
        match self.next(deadline, "SERVICE_ACCEPT").await.map_err(describe)? {
            Message::ServiceAccept(_) => {}
            other => return Err(format!("expected SERVICE_ACCEPT; got {}", summarize(&other))),
        }
        // EXT_INFO comes right after the server's NEWKEYS (RFC 8308 §2.4), so before this answer.
        p.extensions = self.server_extensions.clone();
        let none = UserauthRequest {
            user: self.creds.user.as_str().into(),
            service: "ssh-connection".into(),
            method: AuthMethod::None {},
        };
        self.send(&Message::UserauthRequest(none)).await.map_err(describe)?;
        match self.next(deadline, "USERAUTH_FAILURE").await.map_err(describe)? {
            Message::UserauthFailure(f) => p.auth_methods = Some(f.methods.0.clone()),
            Message::UserauthSuccess(_) => p.auth_methods = Some(vec!["none".into()]),
            other => return Err(format!("expected USERAUTH_FAILURE to `none`; got {}", summarize(&other))),
        }
        Ok(())
    }
}

fn read_lists(p: &mut Profile, k: &KexInit) {
    let v = |l: &NameList| l.iter().map(str::to_owned).collect::<Vec<_>>();
    p.kex = k.kex_algorithms.iter().filter(|n| !negotiate::is_marker(n)).map(str::to_owned).collect();
    p.strict_kex = k.kex_algorithms.contains(kex::KEX_STRICT_S);
    p.ext_info = k.kex_algorithms.contains("ext-info-s");
    p.host_key = v(&k.server_host_key_algorithms);
    p.cipher_c2s = v(&k.encryption_algorithms_client_to_server);
    p.cipher_s2c = v(&k.encryption_algorithms_server_to_client);
    p.mac_c2s = v(&k.mac_algorithms_client_to_server);
    p.mac_s2c = v(&k.mac_algorithms_server_to_client);
    p.compression_c2s = v(&k.compression_algorithms_client_to_server);
    p.compression_s2c = v(&k.compression_algorithms_server_to_client);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(host_key: &[&str], cipher: &[&str]) -> Profile {
        let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Profile {
            kex: v(&["curve25519-sha256"]),
            host_key: v(host_key),
            cipher_c2s: v(cipher),
            cipher_s2c: v(cipher),
            compression_c2s: v(&["none"]),
            compression_s2c: v(&["none"]),
            ..Profile::default()
        }
    }

    #[test]
    fn legacy_algorithms_are_added_only_where_needed() {
        let modern = profile(&["ssh-ed25519", "ssh-rsa"], &["aes128-ctr", "aes128-cbc"]);
        assert_eq!(modern.extra_offers(), Extra::default());
        let old = profile(&["ssh-rsa"], &["aes128-cbc", "3des-cbc", "blowfish-cbc"]);
        let extra = old.extra_offers();
        assert_eq!(extra.host_key, ["ssh-rsa"]);
        assert_eq!(extra.cipher, ["aes128-cbc", "3des-cbc"]);
        assert!(extra.compression.is_empty());
    }

    #[test]
    fn markers_are_read_as_flags() {
        let mut p = Profile::default();
        let k = KexInit {
            kex_algorithms: NameList::new(["curve25519-sha256", "ext-info-s", kex::KEX_STRICT_S]),
            ..KexInit::default()
        };
        read_lists(&mut p, &k);
        assert_eq!(p.kex, ["curve25519-sha256"]);
        assert!(p.strict_kex && p.ext_info);
        assert!(p.offers("kex", kex::KEX_STRICT_S));
    }
}
