//! Channel bookkeeping for the scripted peer (RFC 4254 §5): ids, both windows, what arrived.
//!
//! Our window is topped up when half is spent, so a target never stalls on us; the target's window
//! and maximum packet size bound what we send. Data the target sends past our window or packet
//! size is written into the transcript as a violation, unless both sides turned flow control off
//! (RFC 8308 §3.3, `no-flow-control`), when windows mean nothing.

use crate::transcript::Transcript;
use sshspec_wire::Message;
use sshspec_wire::msg::*;

/// The window we offer on channels we open.
pub const LOCAL_WINDOW: u32 = 2 * 1024 * 1024;
/// The maximum packet size we offer.
pub const LOCAL_MAX_PACKET: u32 = 32768;
/// Output kept per channel for checks; beyond this only the count grows.
const KEEP_OUTPUT: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
pub struct Channel {
    pub local: u32,
    pub remote: Option<u32>,
    pub remote_window: u64,
    pub remote_max_packet: u32,
    pub local_window: u64,
    /// The window we announced when opening; top-ups refill to it.
    pub initial_window: u64,
    pub local_max_packet: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub received_bytes: u64,
    /// SHA-256 of everything received on stdout, for integrity checks of any size.
    pub stdout_digest: sha2::Sha256,
    pub stdout_len: u64,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub eof_received: bool,
    pub close_received: bool,
    pub close_sent: bool,
    /// Flow-control rules the target broke on this channel (RFC 4254 §5.2), in order.
    pub violations: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Channels {
    list: Vec<Channel>,
    next_local: u32,
    current: Option<usize>,
    /// The `no-flow-control` values (RFC 8308 §3.3) our EXT_INFO and the server's carried.
    no_flow_control: (Option<Vec<u8>>, Option<Vec<u8>>),
}

impl Channels {
    /// A CHANNEL_OPEN for a session with our next id and default window.
    pub fn open_request(&self) -> ChannelOpen {
        ChannelOpen {
            channel_type: ChannelType::Session {},
            sender_channel: self.next_local,
            initial_window_size: LOCAL_WINDOW,
            maximum_packet_size: LOCAL_MAX_PACKET,
        }
    }

    pub fn current(&self) -> Option<&Channel> {
        self.current.and_then(|i| self.list.get(i))
    }

    pub fn get(&self, local: u32) -> Option<&Channel> {
        self.list.iter().find(|c| c.local == local)
    }

    /// Whether `no-flow-control` is in effect: "This extension MUST be sent by both parties" and
    /// "at least one party MUST have sent the value 'p'" (RFC 8308 §3.3).
    pub fn flow_control_off(&self) -> bool {
        match &self.no_flow_control {
            (Some(ours), Some(theirs)) => ours.as_slice() == b"p" || theirs.as_slice() == b"p",
            _ => false,
        }
    }

    /// Flow-control violations seen so far, over all channels.
    pub fn violation_count(&self) -> usize {
        self.list.iter().map(|c| c.violations.len()).sum()
    }

    /// The most recent flow-control violation, if any.
    pub fn last_violation(&self) -> Option<&str> {
        self.list.iter().filter_map(|c| c.violations.last()).next_back().map(String::as_str)
    }

    /// Channels the target confirmed and neither side has closed.
    pub fn open_count(&self) -> usize {
        self.list.iter().filter(|c| c.remote.is_some() && !c.close_sent && !c.close_received).count()
    }

    pub fn current_remote(&self) -> Option<u32> {
        self.current().and_then(|c| c.remote)
    }

    fn by_local(&mut self, local: u32) -> Option<&mut Channel> {
        self.list.iter_mut().find(|c| c.local == local)
    }

    fn by_remote(&mut self, remote: u32) -> Option<&mut Channel> {
        self.list.iter_mut().find(|c| c.remote == Some(remote))
    }

    pub fn on_sent(&mut self, msg: &Message) {
        match msg {
            Message::ExtInfo(e) => {
                if let Some(v) = e.get("no-flow-control") {
                    self.no_flow_control.0 = Some(v.0.clone());
                }
            }
            Message::ChannelOpen(o) => {
                self.next_local = self.next_local.max(o.sender_channel.wrapping_add(1));
                self.list.push(Channel {
                    local: o.sender_channel,
                    local_window: u64::from(o.initial_window_size),
                    initial_window: u64::from(o.initial_window_size),
                    local_max_packet: o.maximum_packet_size,
                    ..Default::default()
                });
            }
            Message::ChannelData(d) => {
                if let Some(c) = self.by_remote(d.recipient_channel) {
                    c.remote_window = c.remote_window.saturating_sub(d.data.len() as u64);
                }
            }
            Message::ChannelClose(m) => {
                if let Some(c) = self.by_remote(m.recipient_channel) {
                    c.close_sent = true;
                }
            }
            Message::ChannelWindowAdjust(m) => {
                if let Some(c) = self.by_remote(m.recipient_channel) {
                    c.local_window += u64::from(m.bytes_to_add);
                }
            }
            _ => {}
        }
    }

    /// Records what a received message means for our channels. With `top_up`, returns a
    /// WINDOW_ADJUST to send when our window for that channel is half spent; low-level steps pass
    /// false, because a scenario that shapes the window must be the only one to adjust it.
    pub fn on_received(&mut self, msg: &Message, top_up: bool, log: &mut Transcript) -> Option<Message> {
        match msg {
            Message::ExtInfo(e) => {
                if let Some(v) = e.get("no-flow-control") {
                    self.no_flow_control.1 = Some(v.0.clone());
                }
                None
            }
            Message::ChannelOpenConfirmation(m) => {
                let idx = self.list.iter().position(|c| c.local == m.recipient_channel)?;
                let c = &mut self.list[idx];
                c.remote = Some(m.sender_channel);
                c.remote_window = u64::from(m.initial_window_size);
                c.remote_max_packet = m.maximum_packet_size;
                self.current = Some(idx);
                None
            }
            Message::ChannelWindowAdjust(m) => {
                let c = self.by_local(m.recipient_channel)?;
                c.remote_window += u64::from(m.bytes_to_add);
                if c.remote_window > u64::from(u32::MAX) {
                    let v = format!("window adjusted to {} bytes, beyond 2^32-1 (RFC 4254 §5.2)", c.remote_window);
                    log.note(format!("violation: {v}"));
                    c.violations.push(v);
                }
                None
            }
            Message::ChannelData(m) => self.data(m.recipient_channel, m.data.as_slice(), false, top_up, log),
            Message::ChannelExtendedData(m) => self.data(m.recipient_channel, m.data.as_slice(), true, top_up, log),
            Message::ChannelRequest(r) => {
                let c = self.by_local(r.recipient_channel)?;
                match &r.request {
                    ChannelRequestKind::ExitStatus { exit_status } => c.exit_status = Some(*exit_status),
                    ChannelRequestKind::ExitSignal { signal_name, .. } => c.exit_signal = Some(signal_name.to_string()),
                    _ => {}
                }
                None
            }
            Message::ChannelEof(m) => {
                self.by_local(m.recipient_channel)?.eof_received = true;
                None
            }
            Message::ChannelClose(m) => {
                self.by_local(m.recipient_channel)?.close_received = true;
                None
            }
            _ => None,
        }
    }

    fn data(&mut self, local: u32, data: &[u8], extended: bool, top_up: bool, log: &mut Transcript) -> Option<Message> {
        let windowless = self.flow_control_off();
        let c = self.by_local(local)?;
        let n = data.len() as u64;
        let mut broke = Vec::new();
        if c.eof_received {
            broke.push(format!("{n} bytes of data after the target's CHANNEL_EOF (RFC 4254 §5.3)"));
        }
        if n > c.local_window && !windowless {
            broke.push(format!("{n} bytes of data with only {} left in our window (RFC 4254 §5.2)", c.local_window));
        }
        if data.len() > c.local_max_packet as usize {
            broke.push(format!(
                "{n} bytes of data in one message, above our maximum packet size {} (RFC 4254 §5.2)",
                c.local_max_packet
            ));
        }
        for v in broke {
            log.note(format!("violation: {v}"));
            c.violations.push(v);
        }
        c.local_window = c.local_window.saturating_sub(n);
        c.received_bytes += n;
        if !extended {
            use sha2::Digest;
            c.stdout_digest.update(data);
            c.stdout_len += n;
        }
        let out = if extended { &mut c.stderr } else { &mut c.stdout };
        let keep = KEEP_OUTPUT.saturating_sub(out.len()).min(data.len());
        out.extend_from_slice(&data[..keep]);
        if top_up && !windowless && c.local_window < c.initial_window / 2 && !c.close_received {
            // The window grows when the adjust is sent (`on_sent`), as for a scenario's own adjusts.
            let bytes_to_add = u32::try_from(c.initial_window - c.local_window).unwrap_or(u32::MAX);
            return Some(Message::ChannelWindowAdjust(ChannelWindowAdjust {
                recipient_channel: c.remote?,
                bytes_to_add,
            }));
        }
        None
    }
}
