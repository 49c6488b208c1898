//! The `authenticate` step: the service request and one attempt of a method (RFC 4252 §5, §7, §8;
//! RFC 4256 for keyboard-interactive), judged against the outcome the scenario expects. Every
//! USERAUTH_FAILURE is also held to the rules that apply to all of them: `none` never listed
//! (RFC 4252 §4) and partial success FALSE unless the request succeeded (§5.1).

use super::userkey::{SignedMethod, signed_request};
use super::{KeyKind, Peer, StepResult, UserKeys, fail, random_password};
use crate::script::{AuthKind, AuthOutcome, AuthStep, ResponseCount, Tamper};
use crate::transcript::summarize;
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Message};
use tokio::time::Instant;

/// What a keyboard-interactive prompt asks for, read from its text as PAM and others word it.
enum Asks {
    NewPassword,
    OldPassword,
    Password,
}

fn asks(prompt: &[u8]) -> Asks {
    let p = String::from_utf8_lossy(prompt).to_lowercase();
    if p.contains("new") {
        Asks::NewPassword
    } else if p.contains("current") || p.contains("old") {
        Asks::OldPassword
    } else {
        Asks::Password
    }
}

impl Peer<'_> {
    pub(super) async fn authenticate(&mut self, a: &AuthStep, deadline: Instant) -> StepResult {
        let login;
        let a = if a.method == AuthKind::Login {
            login = AuthStep { method: self.opts.login, key: self.opts.login_key, ..a.clone() };
            &login
        } else {
            a
        };
        if !self.service_accepted {
            self.send(&Message::ServiceRequest(ServiceRequest { service: "ssh-userauth".into() })).await?;
            match self.next(deadline, "SERVICE_ACCEPT").await? {
                Message::ServiceAccept(s) if s.service.as_slice() == b"ssh-userauth" => self.service_accepted = true,
                other => return Err(fail("SERVICE_ACCEPT for ssh-userauth", summarize(&other))),
            }
        }
        let user: Bytes = a.user.as_deref().unwrap_or(&self.creds.user).into();
        let request = |method| {
            Message::UserauthRequest(UserauthRequest { user: user.clone(), service: "ssh-connection".into(), method })
        };
        let password = a.password.clone().unwrap_or_else(|| self.creds.password.as_str().into());
        let reply = match a.method {
            AuthKind::None => {
                self.send(&request(AuthMethod::None {})).await?;
                self.next(deadline, "USERAUTH_SUCCESS or USERAUTH_FAILURE").await?
            }
            AuthKind::Password => {
                self.send(&request(AuthMethod::Password {
                    change: Bool::FALSE,
                    password: password.clone(),
                    new_password: None,
                }))
                .await?;
                let reply = self.next(deadline, "USERAUTH_SUCCESS, USERAUTH_FAILURE or PASSWD_CHANGEREQ").await?;
                match (&reply, a.change_requested) {
                    (Message::UserauthPasswdChangereq(_), true) => {
                        // RFC 4252 §8: the client answers with the old password and a new one.
                        let old = a.old_password.clone().unwrap_or(password);
                        let new_password = Some(Bytes::from(random_password().as_str()));
                        self.send(&request(AuthMethod::Password { change: Bool::TRUE, password: old, new_password }))
                            .await?;
                        self.next(deadline, "USERAUTH_SUCCESS or USERAUTH_FAILURE after the change").await?
                    }
                    (_, true) => {
                        return Err(fail(
                            "USERAUTH_PASSWD_CHANGEREQ for the expired password (RFC 4252 §8)",
                            summarize(&reply),
                        ));
                    }
                    _ => reply,
                }
            }
            AuthKind::Publickey | AuthKind::PublickeyHostbound => match self.publickey(a, &user, deadline).await? {
                Some(reply) => reply,
                None => return Ok(()),
            },
            AuthKind::Hostbased => {
                self.send(&request(self.hostbased(a, &user)?)).await?;
                self.next(deadline, "USERAUTH_SUCCESS or USERAUTH_FAILURE").await?
            }
            AuthKind::KeyboardInteractive => self.keyboard_interactive(a, &request, &password, deadline).await?,
            AuthKind::Login => return Err(super::StepFailure::Harness("no login method for this target".into())),
        };
        self.judge_auth(a, reply)
    }

    /// The session identifier a signature covers: this connection's, or with `tamper =
    /// "session-id"` another connection's (same length, one bit different).
    fn signed_session_id(&self, a: &AuthStep) -> Vec<u8> {
        let mut session_id = self.t.kex.session_id.clone().unwrap_or_default();
        if a.tamper == Some(Tamper::SessionId)
            && let Some(b) = session_id.first_mut()
        {
            *b ^= 1;
        }
        session_id
    }

    /// A hostbased request (RFC 4252 §9): the run's user key of `a.key` as the host key of
    /// `a.client_host`, vouching for the same user name there, signed over the request.
    fn hostbased(&self, a: &AuthStep, user: &Bytes) -> Result<AuthMethod, super::StepFailure> {
        let keys = &self.creds.keys;
        let algorithm: Bytes = a.algorithm.as_deref().unwrap_or(a.key.default_algorithm()).into();
        let host_key = Bytes(keys.blob(a.key));
        let client_host: Bytes = a.client_host.as_str().into();
        let method = SignedMethod::Hostbased {
            algorithm: algorithm.as_slice(),
            host_key: host_key.as_slice(),
            client_host: client_host.as_slice(),
            client_user: user.as_slice(),
        };
        let data = signed_request(&self.signed_session_id(a), user.as_slice(), b"ssh-connection", method);
        let signature = sign(keys, a, &algorithm, &data)?;
        Ok(AuthMethod::Hostbased {
            algorithm,
            host_key,
            client_host,
            client_user: user.clone(),
            signature: Bytes(signature),
        })
    }

    /// A publickey attempt (or its host-bound form); `None` when a query was refused, or the
    /// connection ended at a request the scenario expects refused.
    async fn publickey(
        &mut self,
        a: &AuthStep,
        user: &Bytes,
        deadline: Instant,
    ) -> Result<Option<Message>, super::StepFailure> {
        let stranger;
        let keys = if a.unknown_key {
            stranger = UserKeys::generate();
            &stranger
        } else {
            &self.creds.keys
        };
        let key = Bytes(keys.blob(a.key));
        let algorithm: Bytes = a.algorithm.as_deref().unwrap_or(a.key.default_algorithm()).into();
        let service: Bytes = "ssh-connection".into();
        let hostbound = a.method == AuthKind::PublickeyHostbound;
        // The method this step speaks is version "0" of the extension (PROTOCOL §3.1).
        if hostbound
            && let Some(v) = self.t.kex.server_ext_info.as_ref().and_then(|e| e.get("publickey-hostbound@openssh.com"))
            && v.as_slice() != b"0"
        {
            return Err(fail(
                "publickey-hostbound@openssh.com advertised with version \"0\" (PROTOCOL §3.1)",
                format!("version {:?}", String::from_utf8_lossy(v.as_slice())),
            ));
        }
        // PROTOCOL §3.1: the host key of the initial key exchange, or on purpose another one.
        let host_key = match a.tamper {
            Some(Tamper::HostKey) => Bytes(UserKeys::generate().blob(crate::peer::KeyKind::Ed25519)),
            _ => Bytes(self.t.kex.host_key.clone().unwrap_or_default()),
        };
        let request = |signed, signature| {
            let (algorithm, key) = (algorithm.clone(), key.clone());
            let method = if hostbound {
                AuthMethod::PublickeyHostbound { signed, algorithm, key, host_key: host_key.clone(), signature }
            } else {
                AuthMethod::Publickey { signed, algorithm, key, signature }
            };
            Message::UserauthRequest(UserauthRequest { user: user.clone(), service: service.clone(), method })
        };
        // Only a forgery can be signed with the e = 3 key, and refusing it proves nothing unless
        // the server would take the key: it must say so first, and a server that will not (small
        // exponents refused, a remote target where we could not authorize it) is not judged.
        let premise = a.key == KeyKind::RsaE3;
        if a.query || premise {
            self.send(&request(Bool::FALSE, None)).await?;
            match self.next(deadline, "USERAUTH_PK_OK").await? {
                Message::UserauthPkOk(ok) if ok.algorithm == algorithm && ok.key == key => {}
                ok @ Message::UserauthPkOk(_) => {
                    return Err(fail("USERAUTH_PK_OK echoing our algorithm and key (RFC 4252 §7)", summarize(&ok)));
                }
                Message::UserauthFailure(_) if premise => {
                    return Err(super::StepFailure::Unsupported(format!(
                        "the target does not take the 3072-bit RSA key with e = 3 under {} (USERAUTH_FAILURE to \
                         the query): there is no forgery to refuse",
                        String::from_utf8_lossy(algorithm.as_slice())
                    )));
                }
                other @ Message::UserauthFailure(_)
                    if matches!(a.outcome, AuthOutcome::Failure | AuthOutcome::Refused) =>
                {
                    self.judge_auth(a, other)?;
                    return Ok(None);
                }
                other => return Err(fail("USERAUTH_PK_OK", summarize(&other))),
            }
        }
        let method = SignedMethod::Publickey {
            algorithm: algorithm.as_slice(),
            key: key.as_slice(),
            host_key: hostbound.then_some(host_key.as_slice()),
        };
        let data = signed_request(&self.signed_session_id(a), user.as_slice(), service.as_slice(), method);
        let signature = sign(keys, a, &algorithm, &data)?;
        self.send(&request(Bool::TRUE, Some(Bytes(signature)))).await?;
        match self.next(deadline, "USERAUTH_SUCCESS or USERAUTH_FAILURE").await {
            Err(super::StepFailure::Target { kind: super::FailureKind::Close, actual, .. })
                if a.outcome == AuthOutcome::Refused =>
            {
                self.t.log.note(format!("refused by ending the connection: {actual}"));
                Ok(None)
            }
            reply => Ok(Some(reply?)),
        }
    }

    /// RFC 4256 §3.2: any number of INFO_REQUEST rounds, zero-prompt ones included, each answered
    /// with one response per prompt (unless the scenario says otherwise); every prompt must be
    /// non-empty (§3.2). Returns the message that ends the exchange.
    async fn keyboard_interactive(
        &mut self,
        a: &AuthStep,
        request: &(dyn Fn(AuthMethod) -> Message + Sync),
        password: &Bytes,
        deadline: Instant,
    ) -> Result<Message, super::StepFailure> {
        self.send(&request(AuthMethod::KeyboardInteractive { language: "".into(), submethods: "".into() })).await?;
        let new_password: Bytes = random_password().as_str().into();
        let (mut asked_change, mut miscounted) = (false, a.responses.is_none());
        for _round in 0..16 {
            let r = match self.next(deadline, "USERAUTH_INFO_REQUEST, SUCCESS or FAILURE").await? {
                Message::UserauthInfoRequest(r) => r,
                other => {
                    if a.change_requested && !asked_change && matches!(other, Message::UserauthSuccess(_)) {
                        return Err(fail(
                            "a prompt for a new password before SUCCESS: the password has expired (RFC 4252 §8)",
                            "USERAUTH_SUCCESS with no such prompt",
                        ));
                    }
                    return Ok(other);
                }
            };
            if let Some(i) = r.prompts.iter().position(|p| p.prompt.is_empty()) {
                return Err(fail(
                    "no empty prompt field (RFC 4256 §3.2)",
                    format!("prompt {} of {} is empty", i + 1, r.prompts.len()),
                ));
            }
            let mut responses: Vec<Bytes> = r
                .prompts
                .iter()
                .map(|p| match asks(p.prompt.as_slice()) {
                    Asks::NewPassword => {
                        asked_change = true;
                        new_password.clone()
                    }
                    Asks::OldPassword => {
                        asked_change = true;
                        a.old_password.clone().unwrap_or_else(|| password.clone())
                    }
                    Asks::Password => password.clone(),
                })
                .collect();
            if !miscounted && !r.prompts.is_empty() {
                miscounted = true;
                match a.responses {
                    Some(ResponseCount::OneMore) => responses.push(password.clone()),
                    Some(ResponseCount::OneFewer) => {
                        responses.pop();
                    }
                    None => {}
                }
            }
            self.send(&Message::UserauthInfoResponse(UserauthInfoResponse { responses })).await?;
        }
        Err(fail("keyboard-interactive to end within 16 rounds", "more rounds"))
    }

    /// The outcome the step expects; `advertised` becomes success or failure by `server-sig-algs`.
    fn expected_outcome(&mut self, a: &AuthStep) -> AuthOutcome {
        if a.outcome != AuthOutcome::Advertised {
            return a.outcome;
        }
        let algorithm = a.algorithm.as_deref().unwrap_or(a.key.default_algorithm());
        let listed = self.server_sig_algs.as_ref().is_some_and(|l| l.iter().any(|x| x == algorithm));
        self.t.log.note(format!(
            "server-sig-algs {}: {algorithm} {}",
            self.server_sig_algs.as_ref().map_or("not sent".into(), |l| l.join(",")),
            if listed { "listed, so it must log in" } else { "not listed, so it must be refused" }
        ));
        if listed { AuthOutcome::Success } else { AuthOutcome::Failure }
    }

    fn judge_auth(&mut self, a: &AuthStep, reply: Message) -> StepResult {
        let method = a.method.name();
        let outcome = self.expected_outcome(a);
        if let Message::UserauthFailure(f) = &reply {
            if f.methods.iter().any(|m| m == "none") {
                return Err(fail(
                    "USERAUTH_FAILURE not listing none (RFC 4252 §4)",
                    format!("methods that can continue: {}", f.methods.joined()),
                ));
            }
            let partial = f.partial_success.is_true();
            return match (outcome, partial) {
                (AuthOutcome::Partial, true) if f.methods.iter().any(|m| m == method) => Err(fail(
                    format!("the methods that can continue without {method}, which just succeeded (RFC 4252 §5.1)"),
                    format!("methods that can continue: {}", f.methods.joined()),
                )),
                (AuthOutcome::Failure | AuthOutcome::Refused, false) | (AuthOutcome::Partial, true) => Ok(()),
                (AuthOutcome::Failure | AuthOutcome::Refused, true) => Err(fail(
                    format!("USERAUTH_FAILURE with partial success FALSE for the refused {method} (RFC 4252 §5.1)"),
                    "partial success TRUE",
                )),
                (AuthOutcome::Partial, false) => Err(fail(
                    format!("USERAUTH_FAILURE with partial success TRUE: {method} succeeded, more is needed"),
                    format!("partial success FALSE; methods that can continue: {}", f.methods.joined()),
                )),
                (AuthOutcome::Success | AuthOutcome::Advertised, _) => Err(fail(
                    format!("USERAUTH_SUCCESS for {method}"),
                    format!(
                        "USERAUTH_FAILURE (partial success {partial}); methods that can continue: {}",
                        f.methods.joined()
                    ),
                )),
            };
        }
        match (outcome, &reply) {
            (AuthOutcome::Success, Message::UserauthSuccess(_)) => Ok(()),
            (AuthOutcome::Success | AuthOutcome::Advertised, _) => {
                Err(fail(format!("USERAUTH_SUCCESS for {method}"), summarize(&reply)))
            }
            (AuthOutcome::Refused, Message::Disconnect(_)) => Ok(()),
            (AuthOutcome::Failure, _) => Err(fail(format!("USERAUTH_FAILURE for {method}"), summarize(&reply))),
            (AuthOutcome::Refused, _) => {
                Err(fail(format!("USERAUTH_FAILURE or the end of the connection for {method}"), summarize(&reply)))
            }
            (AuthOutcome::Partial, _) => {
                Err(fail(format!("USERAUTH_FAILURE with partial success TRUE for {method}"), summarize(&reply)))
            }
        }
    }
}

/// A signature blob over `data` by the key of `a.key`, labelled `algorithm`; with `tamper =
/// "signature"` its last byte flipped.
fn sign(keys: &UserKeys, a: &AuthStep, algorithm: &Bytes, data: &[u8]) -> Result<Vec<u8>, super::StepFailure> {
    let mut signature =
        keys.sign(a.key, &String::from_utf8_lossy(algorithm.as_slice()), data).map_err(super::StepFailure::Harness)?;
    if a.tamper == Some(Tamper::Signature)
        && let Some(b) = signature.last_mut()
    {
        *b ^= 1;
    }
    Ok(signature)
}
