//! OpenSSH's host key rotation (PROTOCOL §2.5): the `hostkeys-00@openssh.com` announcement a
//! server sends after login, and the `prove-host-keys` step, which asks the server to prove it
//! holds the keys it announced (`hostkeys-prove-00@openssh.com`) and verifies each proof against
//! the key at the same place in the request.

use super::{Peer, StepFailure, StepResult, UserKeys, fail};
use crate::script::ProofOrder;
use crate::transcript::summarize;
use crate::transport::hostkey;
use sshspec_wire::codec::put_string;
use sshspec_wire::msg::{GlobalRequest, GlobalRequestKind};
use sshspec_wire::{Bool, Bytes, Message, Reader, Rest};
use tokio::time::Instant;

pub(crate) const ANNOUNCE: &[u8] = b"hostkeys-00@openssh.com";
pub(crate) const PROVE: &[u8] = b"hostkeys-prove-00@openssh.com";

/// A `hostkeys-00@openssh.com` request as it came.
#[derive(Clone, Debug)]
pub(super) struct Announcement {
    /// The key blobs, in the server's order; `Err` when the request data is not a list of strings.
    keys: Result<Vec<Vec<u8>>, String>,
    want_reply: bool,
    /// USERAUTH_SUCCESS had been received when it came.
    after_login: bool,
}

impl Announcement {
    pub(super) fn of(g: &GlobalRequest, after_login: bool) -> Option<Self> {
        let GlobalRequestKind::Other { name, data } = &g.request else { return None };
        (name.as_slice() == ANNOUNCE).then(|| Announcement {
            keys: strings(&data.0.0),
            want_reply: g.want_reply.is_true(),
            after_login,
        })
    }
}

/// `string[]`: strings to the end of the data.
fn strings(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.string("a string of the list").map_err(|e| e.to_string())?.to_vec());
    }
    Ok(out)
}

/// The data each proof signs (PROTOCOL §2.5); the fixture signs the same.
pub(crate) fn signed_data(session_id: &[u8], key: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    put_string(&mut d, PROVE);
    put_string(&mut d, session_id);
    put_string(&mut d, key);
    d
}

/// Why `proof` is not a signature by `key` over `data`; `None` when it is. Key types we cannot
/// verify pass with a note: not knowing an algorithm is no evidence against the server.
fn check_proof(key: &[u8], proof: &[u8], data: &[u8], notes: &mut Vec<String>) -> Option<String> {
    let algorithm = match hostkey::key_type(proof) {
        Some(a) => a,
        None => return Some("the proof is not a signature blob (string type, string signature)".into()),
    };
    match hostkey::verify(&algorithm, key, proof, data) {
        Ok(()) => None,
        Err(hostkey::HostKeyError::Unsupported(a)) => {
            notes.push(format!("a proof signed with {a}, which we cannot verify: not judged"));
            None
        }
        Err(e) => Some(e.to_string()),
    }
}

impl Peer<'_> {
    /// The `prove-host-keys` step. A server that announced no host keys by the time it answers a
    /// barrier sent after login does not implement the extension: SKIP, not FAIL.
    pub(super) async fn prove_host_keys(&mut self, order: ProofOrder, stranger: bool, deadline: Instant) -> StepResult {
        if self.hostkeys.is_none() {
            let mine = self.send_barrier().await?;
            let expecting = "hostkeys-00@openssh.com, or the answer to our global request";
            while self.hostkeys.is_none() && !matches!(self.barrier_answered, Some((id, _)) if id == mine) {
                let msg = self.t.recv(deadline).await.map_err(|e| StepFailure::from_transport(expecting, e))?;
                self.after_recv(&msg).await?;
                // A server that knows no global requests has no host keys extension either, even
                // when its UNIMPLEMENTED names another packet than our request (tinysshd's does).
                if let Message::Unimplemented(u) = &msg {
                    self.t.log.note(format!(
                        "our global request was answered with UNIMPLEMENTED (sequence number {})",
                        u.sequence_number
                    ));
                    break;
                }
                // The barrier's answer is ours; anything else is left for the steps after this one.
                if !std::mem::take(&mut self.swallow)
                    && !matches!(msg, Message::GlobalRequest(_) | Message::Ignore(_) | Message::Debug(_))
                {
                    self.deferred.push_back(msg);
                }
            }
        }
        let Some(a) = self.hostkeys.clone() else {
            return Err(StepFailure::Unsupported(
                "the server announced no host keys (hostkeys-00@openssh.com) after login: an OpenSSH extension (PROTOCOL §2.5)".into(),
            ));
        };
        let keys = a
            .keys
            .map_err(|why| fail("hostkeys-00@openssh.com carrying a list of host key blobs (PROTOCOL §2.5)", why))?;
        if !a.after_login {
            return Err(fail(
                "hostkeys-00@openssh.com only after user authentication has completed (PROTOCOL §2.5)",
                "it came before USERAUTH_SUCCESS",
            ));
        }
        if a.want_reply {
            return Err(fail("hostkeys-00@openssh.com with want-reply 0 (PROTOCOL §2.5)", "want-reply 1"));
        }
        if let Some(k) = keys.iter().find(|k| hostkey::key_type(k).is_none_or(|t| t.is_empty())) {
            return Err(fail(
                "every announced host key a public key blob (PROTOCOL §2.5)",
                format!("{} byte(s) that do not start with a key type", k.len()),
            ));
        }
        let kex_key = self.t.kex.host_key.clone().unwrap_or_default();
        if !keys.contains(&kex_key) {
            return Err(fail(
                "the host key of the key exchange among the announced ones (PROTOCOL §2.5: all its host keys)",
                format!("{} announced key(s), not {}", keys.len(), hostkey::openssh_line(&kex_key)),
            ));
        }
        let mut asked = keys;
        if order == ProofOrder::Reversed {
            asked.reverse();
        }
        if stranger {
            asked = vec![UserKeys::generate().blob(super::KeyKind::Ed25519)];
        }
        let mut data = Vec::new();
        for k in &asked {
            put_string(&mut data, k);
        }
        let request = GlobalRequestKind::Other { name: Bytes(PROVE.to_vec()), data: Rest(Bytes(data)) };
        self.send(&Message::GlobalRequest(GlobalRequest { want_reply: Bool::TRUE, request })).await?;
        let reply = self.next(deadline, "the answer to hostkeys-prove-00@openssh.com").await?;
        let proofs = match (reply, stranger) {
            (Message::RequestFailure(_), true) => return Ok(()),
            (other, true) => {
                return Err(fail(
                    "REQUEST_FAILURE: the key asked about is not one of the server's (PROTOCOL §2.5)",
                    summarize(&other),
                ));
            }
            (Message::RequestSuccess(s), false) => strings(&s.data.0.0)
                .map_err(|why| fail("REQUEST_SUCCESS carrying a list of signatures (PROTOCOL §2.5)", why))?,
            (other, false) => {
                return Err(fail(
                    format!("REQUEST_SUCCESS with a proof for each of the {} host keys it announced", asked.len()),
                    summarize(&other),
                ));
            }
        };
        if proofs.len() != asked.len() {
            return Err(fail(
                format!("{} signatures, one per key asked about (PROTOCOL §2.5)", asked.len()),
                format!("{} signature(s)", proofs.len()),
            ));
        }
        let session_id = self.t.kex.session_id.clone().unwrap_or_default();
        let mut notes = Vec::new();
        for (i, (key, proof)) in asked.iter().zip(&proofs).enumerate() {
            let Some(why) = check_proof(key, proof, &signed_data(&session_id, key), &mut notes) else { continue };
            // Name the likely mistake: a proof in another place than its key's.
            let elsewhere = asked.iter().position(|k| {
                k != key && check_proof(k, proof, &signed_data(&session_id, k), &mut Vec::new()).is_none()
            });
            let actual = match elsewhere {
                Some(j) => format!(
                    "proof {} is by the key asked about at place {}: the order of the request was not kept",
                    i + 1,
                    j + 1
                ),
                None => format!("proof {} does not verify: {why}", i + 1),
            };
            return Err(fail(
                "each proof a signature by the key at its place in the request, over the name, the session identifier and the key (PROTOCOL §2.5)",
                actual,
            ));
        }
        for n in notes {
            self.t.log.note(n);
        }
        self.t.log.note(format!("{} host key proof(s) verified", proofs.len()));
        Ok(())
    }
}
