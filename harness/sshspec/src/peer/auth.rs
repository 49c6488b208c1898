//! The `authenticate` step: the service request and one attempt of a method (RFC 4252 §5, §7, §8;
//! RFC 4256 for keyboard-interactive), judged against the outcome the scenario expects.

use super::{Peer, StepResult, ed25519_blob, fail};
use crate::script::{AuthKind, AuthOutcome};
use crate::transcript::summarize;
use crate::transport::hostkey;
use ed25519_dalek::Signer;
use sshspec_wire::codec::put_string;
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Message};
use tokio::time::Instant;

impl Peer<'_> {
    pub(super) async fn authenticate(
        &mut self,
        method: AuthKind,
        outcome: AuthOutcome,
        query: bool,
        password: Option<&Bytes>,
        deadline: Instant,
    ) -> StepResult {
        if !self.service_accepted {
            self.send(&Message::ServiceRequest(ServiceRequest { service: "ssh-userauth".into() })).await?;
            match self.next(deadline, "SERVICE_ACCEPT").await? {
                Message::ServiceAccept(a) if a.service.as_slice() == b"ssh-userauth" => self.service_accepted = true,
                other => return Err(fail("SERVICE_ACCEPT for ssh-userauth", summarize(&other))),
            }
        }
        let user: Bytes = self.creds.user.as_str().into();
        let service: Bytes = "ssh-connection".into();
        let request =
            |method| Message::UserauthRequest(UserauthRequest { user: user.clone(), service: service.clone(), method });
        let password = password.cloned().unwrap_or_else(|| self.creds.password.as_str().into());
        match method {
            AuthKind::None => self.send(&request(AuthMethod::None {})).await?,
            AuthKind::Password => {
                self.send(&request(AuthMethod::Password { change: Bool::FALSE, password, new_password: None })).await?
            }
            AuthKind::Publickey => {
                let key = Bytes(ed25519_blob(&self.creds.public_key()));
                let algorithm: Bytes = hostkey::SSH_ED25519.into();
                if query {
                    self.send(&request(AuthMethod::Publickey {
                        signed: Bool::FALSE,
                        algorithm: algorithm.clone(),
                        key: key.clone(),
                        signature: None,
                    }))
                    .await?;
                    match self.next(deadline, "USERAUTH_PK_OK").await? {
                        Message::UserauthPkOk(ok) if ok.algorithm == algorithm && ok.key == key => {}
                        Message::UserauthPkOk(ok) => {
                            return Err(fail(
                                "USERAUTH_PK_OK echoing our algorithm and key (RFC 4252 §7)",
                                format!("{ok:?}"),
                            ));
                        }
                        other if outcome == AuthOutcome::Failure && matches!(other, Message::UserauthFailure(_)) => {
                            return Ok(());
                        }
                        other => return Err(fail("USERAUTH_PK_OK", summarize(&other))),
                    }
                }
                let session_id = self.t.kex.session_id.clone().unwrap_or_default();
                let mut data = Vec::new();
                put_string(&mut data, &session_id);
                data.push(50);
                put_string(&mut data, user.as_slice());
                put_string(&mut data, service.as_slice());
                put_string(&mut data, b"publickey");
                data.push(1);
                put_string(&mut data, algorithm.as_slice());
                put_string(&mut data, key.as_slice());
                let sig = self.creds.key.sign(&data).to_bytes();
                let mut blob = Vec::new();
                put_string(&mut blob, algorithm.as_slice());
                put_string(&mut blob, &sig);
                self.send(&request(AuthMethod::Publickey {
                    signed: Bool::TRUE,
                    algorithm,
                    key,
                    signature: Some(Bytes(blob)),
                }))
                .await?;
            }
            AuthKind::KeyboardInteractive => {
                self.send(&request(AuthMethod::KeyboardInteractive { language: "".into(), submethods: "".into() }))
                    .await?;
                // RFC 4256 §3.2: any number of INFO_REQUEST rounds, including zero-prompt ones.
                for _round in 0..16 {
                    match self.next(deadline, "USERAUTH_INFO_REQUEST, SUCCESS or FAILURE").await? {
                        Message::UserauthInfoRequest(r) => {
                            let responses = r.prompts.iter().map(|_| password.clone()).collect();
                            self.send(&Message::UserauthInfoResponse(UserauthInfoResponse { responses })).await?;
                        }
                        other => return self.judge_auth(method, outcome, other),
                    }
                }
                return Err(fail("keyboard-interactive to end within 16 rounds", "more rounds"));
            }
        }
        let reply = self.next(deadline, "USERAUTH_SUCCESS or USERAUTH_FAILURE").await?;
        self.judge_auth(method, outcome, reply)
    }

    fn judge_auth(&mut self, method: AuthKind, outcome: AuthOutcome, reply: Message) -> StepResult {
        match (outcome, &reply) {
            (AuthOutcome::Success, Message::UserauthSuccess(_)) => Ok(()),
            (AuthOutcome::Failure, Message::UserauthFailure(_)) => Ok(()),
            (AuthOutcome::Success, Message::UserauthFailure(f)) => Err(fail(
                format!("USERAUTH_SUCCESS for {}", method.name()),
                format!("USERAUTH_FAILURE; methods that can continue: {}", f.methods.joined()),
            )),
            (AuthOutcome::Success, _) => {
                Err(fail(format!("USERAUTH_SUCCESS for {}", method.name()), summarize(&reply)))
            }
            (AuthOutcome::Failure, _) => {
                Err(fail(format!("USERAUTH_FAILURE for {}", method.name()), summarize(&reply)))
            }
        }
    }
}
