//! Session channels for the high-level steps: `open-session`, `exec` and `bulk` (RFC 4254 §6), with stdin
//! sent within the target's window and packet size (§5.2) and output checked on CLOSE.

use super::channel::Channel;
use super::{Peer, StepFailure, StepResult, fail};
use crate::script::Input;
use crate::transcript::summarize;
use sshspec_wire::msg::*;
use sshspec_wire::{Bool, Bytes, Message};
use tokio::time::Instant;

/// 64 KiB of fixed pseudo-random bytes (xorshift), repeated for generated stdin.
fn pattern() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Peer<'_> {
    pub(super) async fn open_session(
        &mut self,
        window: Option<u32>,
        max_packet: Option<u32>,
        deadline: Instant,
    ) -> StepResult {
        let mut open = self.channels.open_request();
        open.initial_window_size = window.unwrap_or(open.initial_window_size);
        open.maximum_packet_size = max_packet.unwrap_or(open.maximum_packet_size);
        self.send(&Message::ChannelOpen(open)).await?;
        match self.next(deadline, "CHANNEL_OPEN_CONFIRMATION").await? {
            Message::ChannelOpenConfirmation(_) if self.channels.current_remote().is_some() => Ok(()),
            other => Err(fail("CHANNEL_OPEN_CONFIRMATION for our session channel", summarize(&other))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn exec(
        &mut self,
        command: &str,
        stdin: Option<&Input>,
        stdout: Option<&Bytes>,
        stderr: Option<&Bytes>,
        exit_status: Option<u32>,
        echo: bool,
        deadline: Instant,
    ) -> StepResult {
        let Some(remote) = self.channels.current_remote() else {
            return Err(StepFailure::Harness(
                "exec needs an open session channel (add `do = \"open-session\"` first)".into(),
            ));
        };
        self.send(&Message::ChannelRequest(ChannelRequest {
            recipient_channel: remote,
            want_reply: Bool::TRUE,
            request: ChannelRequestKind::Exec { command: command.into() },
        }))
        .await?;
        loop {
            match self.next(deadline, "CHANNEL_SUCCESS for exec").await? {
                Message::ChannelSuccess(_) => break,
                Message::ChannelFailure(_) => {
                    return Err(fail("CHANNEL_SUCCESS for exec", "CHANNEL_FAILURE"));
                }
                Message::ChannelData(_) | Message::ChannelExtendedData(_) | Message::ChannelRequest(_) => {}
                other => return Err(fail("CHANNEL_SUCCESS for exec", summarize(&other))),
            }
        }
        let mut sent_digest = None;
        if let Some(input) = stdin {
            let started = Instant::now();
            sent_digest = self.send_input(input, echo, deadline).await?;
            self.send(&Message::ChannelEof(ChannelEof { recipient_channel: remote })).await?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            self.t.log.note(format!(
                "sent {} bytes of stdin in {:.1} ms ({:.1} MiB/s)",
                input.len(),
                secs * 1000.0,
                input.len() as f64 / secs / (1 << 20) as f64
            ));
        }
        if let Some(local) = self.channels.current().map(|c| c.local) {
            self.until_closed(&[(local, remote)], "the command's output, exit status and CHANNEL_CLOSE", deadline)
                .await?;
        }
        let Some(c) = self.channels.current() else {
            return Ok(());
        };
        if let Some(v) = c.violations.first() {
            return Err(fail("flow control within our window and maximum packet size", v.clone()));
        }
        if let (true, Some(want), Some(input)) = (echo, sent_digest, stdin) {
            echoed(c, input.len(), want, "stdout to equal the stdin")?;
        }
        if let Some(want) = stdout
            && c.stdout != want.as_slice()
        {
            return Err(fail(format!("stdout {want}"), format!("stdout {}", Bytes(c.stdout.clone()))));
        }
        if let Some(want) = stderr
            && c.stderr != want.as_slice()
        {
            return Err(fail(format!("stderr {want}"), format!("stderr {}", Bytes(c.stderr.clone()))));
        }
        if let Some(want) = exit_status
            && c.exit_status != Some(want)
        {
            let got = match (&c.exit_status, &c.exit_signal) {
                (Some(s), _) => format!("exit-status {s}"),
                (None, Some(sig)) => format!("exit-signal {sig}"),
                (None, None) => "no exit-status before CHANNEL_CLOSE".into(),
            };
            return Err(fail(format!("exit-status {want}"), got));
        }
        Ok(())
    }

    /// `channels` session channels, each running `command` and sent `size` bytes at once, round
    /// robin within each channel's window; each must echo exactly what it was sent. Each channel's
    /// data starts at a different offset of the pattern, so data crossing channels is caught.
    pub(super) async fn bulk(&mut self, command: &str, size: u64, channels: u32, deadline: Instant) -> StepResult {
        use sha2::Digest;
        let mut open = Vec::new();
        for _ in 0..channels {
            self.open_session(None, None, deadline).await?;
            let Some(c) = self.channels.current() else {
                return Err(StepFailure::Harness("the opened channel is not recorded".into()));
            };
            open.push((c.local, c.remote.unwrap_or_default()));
        }
        for &(_, remote) in &open {
            self.send(&Message::ChannelRequest(ChannelRequest {
                recipient_channel: remote,
                want_reply: Bool::TRUE,
                request: ChannelRequestKind::Exec { command: command.into() },
            }))
            .await?;
        }
        let mut started = 0;
        while started < open.len() {
            match self.next(deadline, "CHANNEL_SUCCESS for each exec").await? {
                Message::ChannelSuccess(_) => started += 1,
                Message::ChannelData(_) | Message::ChannelExtendedData(_) | Message::ChannelRequest(_) => {}
                other => {
                    return Err(fail(
                        format!("CHANNEL_SUCCESS for {} execs of {command:?}", open.len()),
                        summarize(&other),
                    ));
                }
            }
        }
        let block = pattern();
        let clock = Instant::now();
        // Per channel: bytes sent, where in the pattern it is, the digest of what it was sent.
        let mut state: Vec<(u64, usize, sha2::Sha256)> =
            (0..open.len()).map(|k| (0, (k * 4099) % block.len(), sha2::Sha256::new())).collect();
        // The transport writes without reading meanwhile, so the echo in flight is bounded: a
        // server blocked writing its echo to us may stop reading, and then our writes block too.
        const IN_FLIGHT: u64 = 256 * 1024;
        while state.iter().any(|(sent, ..)| *sent < size) {
            let sent: u64 = state.iter().map(|(s, ..)| s).sum();
            let echoed: u64 = open.iter().filter_map(|(l, _)| self.channels.get(*l)).map(|c| c.stdout_len).sum();
            if sent.saturating_sub(echoed) > IN_FLIGHT {
                let msg = self.recv_any(deadline, "the echo of our data").await?;
                if matches!(msg, Message::ChannelClose(_) | Message::Disconnect(_)) {
                    return Err(fail("the echo of our data", summarize(&msg)));
                }
                continue;
            }
            let mut moved = false;
            for (k, &(local, remote)) in open.iter().enumerate() {
                let (sent, at, digest) = &mut state[k];
                let Some(c) = self.channels.get(local) else { continue };
                let room = c.remote_window.min(u64::from(c.remote_max_packet)).min(size - *sent);
                let take = (room as usize).min(block.len() - *at);
                if take == 0 {
                    continue;
                }
                let chunk = block[*at..*at + take].to_vec();
                digest.update(&chunk);
                *at = (*at + take) % block.len();
                *sent += take as u64;
                self.send(&Message::ChannelData(ChannelData { recipient_channel: remote, data: Bytes(chunk) })).await?;
                moved = true;
            }
            if !moved {
                let msg = self.recv_any(deadline, "CHANNEL_WINDOW_ADJUST").await?;
                if matches!(msg, Message::ChannelClose(_) | Message::Disconnect(_)) {
                    return Err(fail("CHANNEL_WINDOW_ADJUST so our data can go on", summarize(&msg)));
                }
            }
        }
        for &(_, remote) in &open {
            self.send(&Message::ChannelEof(ChannelEof { recipient_channel: remote })).await?;
        }
        self.until_closed(&open, "every channel's echo, exit status and CHANNEL_CLOSE", deadline).await?;
        let secs = clock.elapsed().as_secs_f64().max(1e-9);
        let total = size * open.len() as u64;
        self.t.log.note(format!(
            "bulk: {} channel(s) x {size} bytes echoed in {:.1} ms ({:.1} MiB/s each way)",
            open.len(),
            secs * 1000.0,
            total as f64 / secs / (1 << 20) as f64
        ));
        for (k, &(local, _)) in open.iter().enumerate() {
            let Some(c) = self.channels.get(local) else { continue };
            if let Some(v) = c.violations.first() {
                return Err(fail(format!("flow control within our window on channel {local}"), v.clone()));
            }
            echoed(c, size, state[k].2.clone().finalize().into(), &format!("channel {local} to echo its data"))?;
        }
        Ok(())
    }

    /// Receives the channels' output until the target has closed every one of `open` (local,
    /// remote ids), then answers each CLOSE not yet answered (RFC 4254 §5.3).
    async fn until_closed(&mut self, open: &[(u32, u32)], expecting: &str, deadline: Instant) -> StepResult {
        while open.iter().any(|(l, _)| !self.channels.get(*l).is_some_and(|c| c.close_received)) {
            match self.next(deadline, expecting).await? {
                Message::ChannelData(_)
                | Message::ChannelExtendedData(_)
                | Message::ChannelRequest(_)
                | Message::ChannelEof(_)
                | Message::ChannelClose(_) => {}
                other => return Err(fail("channel data, exit status or CHANNEL_CLOSE", summarize(&other))),
            }
        }
        for &(local, remote) in open {
            if !self.channels.get(local).is_some_and(|c| c.close_sent) {
                self.send(&Message::ChannelClose(ChannelClose { recipient_channel: remote })).await?;
            }
        }
        Ok(())
    }

    /// Sends the input on the current channel; with `digest`, returns the SHA-256 of what was sent
    /// (only echo checks need it, and hashing costs more than encrypting).
    async fn send_input(
        &mut self,
        input: &Input,
        digest: bool,
        deadline: Instant,
    ) -> Result<Option<[u8; 32]>, StepFailure> {
        use sha2::Digest;
        let mut hash = digest.then(sha2::Sha256::new);
        match input {
            Input::Bytes(b) => {
                if let Some(h) = hash.as_mut() {
                    h.update(b.as_slice());
                }
                self.send_data(b.as_slice(), deadline).await?;
            }
            Input::Generated(n) => {
                let block = pattern();
                let (mut left, mut at) = (*n, 0usize);
                while left > 0 {
                    let take = (block.len() - at).min(usize::try_from(left).unwrap_or(usize::MAX));
                    let chunk = &block[at..at + take];
                    if let Some(h) = hash.as_mut() {
                        h.update(chunk);
                    }
                    self.send_data(chunk, deadline).await?;
                    at = (at + take) % block.len();
                    left -= take as u64;
                }
            }
        }
        Ok(hash.map(|h| h.finalize().into()))
    }

    /// Sends data on the current channel until the target's window for it is spent, taking the
    /// adjusts that come meanwhile, so that what follows goes with no window (RFC 4254 §5.3's EOF
    /// and CLOSE). The window counts as spent once it is 0 and no adjust comes for half a second.
    /// A target still granting window after `limit` bytes reads as fast as we send, and the step
    /// fails (as set-up, the scenario is INCONCLUSIVE).
    pub(super) async fn fill_window(&mut self, limit: u64, deadline: Instant) -> StepResult {
        const QUIET: std::time::Duration = std::time::Duration::from_millis(500);
        let block = pattern();
        let mut sent = 0u64;
        let ended =
            |m: &Message| matches!(m, Message::ChannelClose(_) | Message::ChannelEof(_) | Message::Disconnect(_));
        loop {
            while self.deferred.is_empty() && self.t.packet_ready() {
                let msg = self.recv_any(deadline, "CHANNEL_WINDOW_ADJUST").await?;
                if ended(&msg) {
                    return Err(fail("the channel open while its window is spent", summarize(&msg)));
                }
            }
            let c = self.channels.current().ok_or_else(|| StepFailure::Harness("no channel to fill".into()))?;
            let (Some(recipient_channel), window, max_packet) = (c.remote, c.remote_window, c.remote_max_packet) else {
                return Err(StepFailure::Harness("the current channel is not open".into()));
            };
            if window == 0 {
                match self.recv_any(deadline.min(Instant::now() + QUIET), "CHANNEL_WINDOW_ADJUST").await {
                    Ok(msg) if ended(&msg) => {
                        return Err(fail("the channel open while its window is spent", summarize(&msg)));
                    }
                    Ok(_) => continue,
                    Err(StepFailure::Target { kind: super::FailureKind::Timeout, .. }) if Instant::now() < deadline => {
                        self.t.log.note(format!(
                            "the target's window is spent: {sent} bytes sent, none granted for {QUIET:?}"
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            if sent >= limit {
                return Err(fail(
                    format!("the target's window spent within {limit} bytes"),
                    format!("it kept granting window: {sent} bytes sent, {window} still open"),
                ));
            }
            let n = window.min(u64::from(max_packet)).min(block.len() as u64) as usize;
            if n == 0 {
                return Err(fail("a maximum packet size that lets data through", "a maximum packet size of 0"));
            }
            let msg = Message::ChannelData(ChannelData { recipient_channel, data: Bytes(block[..n].to_vec()) });
            self.send(&msg).await?;
            sent += n as u64;
        }
    }

    /// Sends `data` on the current channel, never past the peer's window or maximum packet size
    /// (RFC 4254 §5.2), waiting for WINDOW_ADJUST when the window is spent.
    async fn send_data(&mut self, mut data: &[u8], deadline: Instant) -> StepResult {
        while !data.is_empty() {
            // Window adjusts (and whatever else came) are taken as they arrive, every 8th packet
            // (a read is a system call), so the window is topped up while we send rather than
            // after it runs dry.
            self.sent_packets = self.sent_packets.wrapping_add(1);
            while self.sent_packets.is_multiple_of(8) && self.deferred.is_empty() && self.t.packet_ready() {
                let msg = self.recv_any(deadline, "CHANNEL_WINDOW_ADJUST").await?;
                if matches!(msg, Message::Disconnect(_)) {
                    return Err(fail("CHANNEL_WINDOW_ADJUST so our data can go on", summarize(&msg)));
                }
            }
            let Some(c) = self.channels.current() else {
                return Ok(());
            };
            if c.close_received {
                // The command is gone before reading all its input; what it did is judged on close.
                return Ok(());
            }
            let room = c.remote_window.min(u64::from(c.remote_max_packet)) as usize;
            if room == 0 {
                // Wait for window; data, requests and background messages may come meanwhile.
                let msg = self.recv_any(deadline, "CHANNEL_WINDOW_ADJUST").await?;
                if matches!(msg, Message::ChannelClose(_) | Message::ChannelEof(_) | Message::Disconnect(_)) {
                    return Err(fail("CHANNEL_WINDOW_ADJUST so our data can go on", summarize(&msg)));
                }
                continue;
            }
            let n = room.min(data.len());
            let Some(recipient_channel) = c.remote else {
                return Ok(());
            };
            let mut buf = std::mem::take(&mut self.data_buf);
            buf.clear();
            buf.extend_from_slice(&data[..n]);
            let msg = Message::ChannelData(ChannelData { recipient_channel, data: Bytes(buf) });
            let sent = self.send(&msg).await;
            if let Message::ChannelData(d) = msg {
                self.data_buf = d.data.0;
            }
            sent?;
            data = &data[n..];
        }
        Ok(())
    }
}

/// Whether the channel's stdout is exactly the `len` bytes whose SHA-256 is `want`.
fn echoed(c: &Channel, len: u64, want: [u8; 32], what: &str) -> StepResult {
    use sha2::Digest;
    let got: [u8; 32] = c.stdout_digest.clone().finalize().into();
    if c.stdout_len != len || got != want {
        return Err(fail(
            format!("{what}: {len} bytes (sha256 {})", hex::encode(want)),
            format!("{} bytes (sha256 {})", c.stdout_len, hex::encode(got)),
        ));
    }
    Ok(())
}
