//! The `server-rekeys` step: judges the target's own rekeying against a stated limit (RFC 4253 §9,
//! RFC 4344 §3). We make the traffic, or stay idle, and the server's KEXINIT must come in time.
//!
//! Servers count "data" differently (payload, packets, cipher blocks), so limits are judged on
//! payload bytes, the smallest measure, which is lenient to the server in both directions.
//!
//! Upload: we send channel data until the payload in the key epoch reaches the limit plus one
//! packet, then stop; a server that counts what it receives must start a rekey with no more data
//! from us. A barrier follows the last packet (a global request the server must answer): once its
//! answer has come, the server has read everything, and its KEXINIT gets [`BARRIER_GRACE`] more,
//! not the rest of a deadline sized for a slow upload. Download: the server's KEXINIT follows its own data in order, so the payload we received
//! before it in the epoch is what it sent. Trickle: one IGNORE every 250 ms, so that a server which
//! checks its clock when a packet comes has a packet to look at; the KEXINIT must come within the
//! time limit plus a second.

use super::{FailureKind, Peer, StepFailure, StepResult, fail};
use crate::script::{ServerLimit, Traffic};
use crate::transcript::summarize;
use sshspec_wire::Bytes;
use sshspec_wire::msg::*;
use std::time::Duration;
use tokio::time::Instant;

/// What "within the limit" allows beyond it: one packet of the largest size RFC 4253 §6.1 requires
/// an implementation to accept, since a server decides between packets.
pub const ONE_PACKET: u64 = 35_000;
/// What a time limit allows beyond it: servers check their clocks between events.
const TIME_SLACK: Duration = Duration::from_secs(1);
/// How long a KEXINIT may trail the answer to a barrier sent after the data that called for it:
/// a server may decide to rekey on its next pass through its loop, not before answering.
pub const BARRIER_GRACE: Duration = Duration::from_secs(5);

impl Peer<'_> {
    pub(super) async fn server_rekeys(
        &mut self,
        traffic: Traffic,
        limit: ServerLimit,
        times: u32,
        deadline: Instant,
    ) -> StepResult {
        if self.t.kex.completed == 0 {
            return Err(StepFailure::Harness("`server-rekeys` needs a completed `key-exchange` first".into()));
        }
        if traffic == Traffic::Upload && self.channels.current_remote().is_none() {
            return Err(StepFailure::Harness(
                "`server-rekeys` with traffic = \"upload\" needs an open channel whose command reads stdin".into(),
            ));
        }
        for round in 1..=times {
            let before = self.t.kex.completed;
            let seen = match traffic {
                Traffic::Upload => self.upload_until_rekey(limit, deadline).await?,
                Traffic::Download | Traffic::Trickle => self.await_server_kexinit(traffic, limit, deadline).await?,
            };
            self.t.log.note(format!("server rekey {round} of {times}: its KEXINIT came after {seen}"));
            self.finish_kex(before, deadline).await?;
        }
        Ok(())
    }

    /// Sends data up to the limit plus one packet, then waits; returns when the server's KEXINIT
    /// has arrived (and been answered).
    async fn upload_until_rekey(&mut self, limit: ServerLimit, deadline: Instant) -> Result<String, StepFailure> {
        let ServerLimit::Bytes(bytes) = limit else {
            return Err(StepFailure::Harness("upload traffic needs a byte limit".into()));
        };
        let cap = bytes + ONE_PACKET;
        let block = vec![0x5a_u8; 32 * 1024];
        // The barrier of this round: an answer to an earlier one proves nothing about this data.
        let mut barrier: Option<u64> = None;
        loop {
            if self.t.kex.theirs.is_some() {
                return Ok(format!(
                    "at most {} payload bytes we sent in the key epoch (limit {bytes})",
                    self.t.tx.payload
                ));
            }
            let full = self.t.tx.payload >= cap;
            if full && barrier.is_none() {
                barrier = Some(self.send_barrier().await?);
            }
            let Some(c) = self.channels.current() else {
                return Err(fail("an open channel to send on", "the channel is gone"));
            };
            let room = c.remote_window.min(u64::from(c.remote_max_packet)).min(block.len() as u64);
            if room == 0 || full {
                let sent = self.t.tx.payload;
                let expected = format!(
                    "a KEXINIT from the server once it received {bytes} bytes (+{ONE_PACKET} for one packet) in a key epoch; we had sent {sent} payload bytes and stopped"
                );
                let grace = match (barrier, self.barrier_answered) {
                    (Some(mine), Some((answered, at))) if answered == mine => {
                        Some(at + BARRIER_GRACE + self.opts.latency_allowance)
                    }
                    _ => None,
                };
                let wait = grace.map_or(deadline, |g| g.min(deadline));
                let msg = match self.t.recv(wait).await {
                    Err(crate::transport::TransportError::Timeout { .. }) if wait < deadline => {
                        return Err(StepFailure::Target {
                            expected,
                            actual: format!(
                                "no KEXINIT: the server answered a global request we sent after our last data, and sent nothing in the {:?} after it",
                                BARRIER_GRACE + self.opts.latency_allowance
                            ),
                            // Judged like a missed deadline: a normal run re-runs it alone.
                            kind: FailureKind::Timeout,
                        });
                    }
                    other => other.map_err(|e| StepFailure::from_transport(&expected, e))?,
                };
                self.after_recv(&msg).await?;
                if matches!(msg, Message::ChannelClose(_) | Message::ChannelEof(_) | Message::Disconnect(_)) {
                    return Err(fail(expected, summarize(&msg)));
                }
                continue;
            }
            let Some(recipient_channel) = c.remote else {
                return Err(fail("an open channel to send on", "the channel has no remote id"));
            };
            let data = Bytes(block[..room as usize].to_vec());
            self.send_framed(&Message::ChannelData(ChannelData { recipient_channel, data }), &[], &Default::default())
                .await?;
        }
    }

    /// Receives (topping our window up) until the server's KEXINIT; checks how much it sent, or
    /// how long it waited, since the last key exchange.
    async fn await_server_kexinit(
        &mut self,
        traffic: Traffic,
        limit: ServerLimit,
        deadline: Instant,
    ) -> Result<String, StepFailure> {
        let describe = |limit: ServerLimit| match limit {
            ServerLimit::Bytes(b) => format!(
                "a KEXINIT from the server within {b} bytes (+{ONE_PACKET} for one packet) of its data in a key epoch"
            ),
            ServerLimit::Time(t) => {
                format!("a KEXINIT from the server within {t:?} (+{TIME_SLACK:?}) of the last key exchange")
            }
        };
        let tick = Duration::from_millis(250);
        loop {
            let wait = if traffic == Traffic::Trickle { deadline.min(Instant::now() + tick) } else { deadline };
            let msg = match self.t.recv(wait).await {
                Err(crate::transport::TransportError::Timeout { .. }) if wait < deadline => {
                    let ignore = Message::Ignore(Ignore { data: Bytes(b"sshspec: trickle".to_vec()) });
                    self.send_framed(&ignore, &[], &Default::default()).await?;
                    continue;
                }
                other => other.map_err(|e| StepFailure::from_transport(&describe(limit), e))?,
            };
            if let Message::KexInit(_) = msg
                && self.t.kex.ours.is_none()
            {
                let seen = match limit {
                    ServerLimit::Bytes(b) => {
                        // The KEXINIT itself is counted; it is part of the one packet's slack.
                        let got = self.t.rx.payload;
                        if got > b + ONE_PACKET {
                            return Err(fail(describe(limit), format!("its KEXINIT came after {got} payload bytes")));
                        }
                        format!("{got} payload bytes it sent in the key epoch (limit {b})")
                    }
                    ServerLimit::Time(t) => {
                        let waited = self.t.kex.completed_at.map(|at| at.elapsed()).unwrap_or_default();
                        if waited > t + TIME_SLACK {
                            // A rekey that came after the time limit missed a deadline: on a
                            // saturated machine (an in-process server shares our CPU) that can be
                            // ours, so it is judged like a timeout and run again alone.
                            return Err(StepFailure::Target {
                                expected: describe(limit),
                                actual: format!("its KEXINIT came after {waited:?}"),
                                kind: FailureKind::Timeout,
                            });
                        }
                        format!("{waited:.2?} (limit {t:?})")
                    }
                };
                self.after_recv(&msg).await?;
                return Ok(seen);
            }
            self.after_recv(&msg).await?;
            match &msg {
                Message::ChannelClose(_) | Message::ChannelEof(_) | Message::Disconnect(_) => {
                    let got = self.t.rx.payload;
                    return Err(fail(
                        describe(limit),
                        format!("{} after {got} payload bytes in the key epoch, with no KEXINIT", summarize(&msg)),
                    ));
                }
                Message::ChannelData(_) | Message::ChannelExtendedData(_) if traffic == Traffic::Trickle => {
                    return Err(StepFailure::Harness(
                        "traffic = \"trickle\" expects no channel data: run a command that prints nothing".into(),
                    ));
                }
                _ => {}
            }
        }
    }
}
