//! The record of one conversation: every line, packet and decision, in order, with times and
//! sequence numbers. It is the evidence attached to each verdict, so secrets are redacted here.

use serde::Serialize;
use sshspec_wire::Message;
use sshspec_wire::msg::AuthMethod;
use std::time::Instant;

/// At most this many entries are kept; a flood of messages cannot grow memory without bound. A run
/// keeps every result's transcript, so this bounds a run too: 81 flooded scenarios at 4000 entries
/// each reached 100 MiB (tests/hostile.rs); 1500 entries are still far more than a verdict needs.
const MAX_ENTRIES: usize = 1500;
/// Notes past that limit that are still kept: a long transfer's conclusions (its rate, the verdict)
/// come after the messages that filled the transcript.
const LATE_NOTES: usize = 64;
/// Byte strings longer than this are shortened in summaries.
const MAX_FIELD: usize = 96;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From us to the target.
    Sent,
    /// From the target to us.
    Received,
    /// Something we concluded (negotiated algorithms, a verdict on a step).
    Note,
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub at_ms: u64,
    pub dir: Dir,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    pub text: String,
}

#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    entries: Vec<Entry>,
    dropped: usize,
    /// Print entries to stderr as they happen (`-vv`).
    pub echo: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript { start: Instant::now(), entries: Vec::new(), dropped: 0, echo: false }
    }
}

impl Transcript {
    pub fn push(&mut self, dir: Dir, seq: Option<u32>, text: String) {
        if self.echo {
            let arrow = match dir {
                Dir::Sent => "->",
                Dir::Received => "<-",
                Dir::Note => "==",
            };
            let seq = seq.map(|s| format!(" #{s}")).unwrap_or_default();
            eprintln!("    {arrow}{seq} {text}");
        }
        let limit = if dir == Dir::Note { MAX_ENTRIES + LATE_NOTES } else { MAX_ENTRIES };
        if self.entries.len() >= limit {
            self.dropped += 1;
            return;
        }
        let at_ms = self.start.elapsed().as_millis() as u64;
        self.entries.push(Entry { at_ms, dir, seq, text });
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Dir::Note, None, text.into());
    }

    pub fn message(&mut self, dir: Dir, seq: u32, msg: &Message) {
        if self.echo || self.entries.len() < MAX_ENTRIES {
            self.push(dir, Some(seq), summarize(msg));
        } else {
            self.dropped += 1;
        }
    }

    /// The entries, with a closing note if some were dropped.
    pub fn into_entries(mut self) -> Vec<Entry> {
        if self.dropped > 0 {
            let at_ms = self.start.elapsed().as_millis() as u64;
            let text = format!("... {} more entries not kept", self.dropped);
            self.entries.push(Entry { at_ms, dir: Dir::Note, seq: None, text });
        }
        self.entries
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// One line for a message: its name and fields, secrets redacted, long strings shortened.
pub fn summarize(msg: &Message) -> String {
    let full = match msg {
        Message::ChannelData(d) => Some(d.data.len()),
        Message::ChannelExtendedData(d) => Some(d.data.len()),
        _ => None,
    };
    let redacted;
    let msg = match redact(msg) {
        Some(r) => {
            redacted = r;
            &redacted
        }
        None => msg,
    };
    let mut v = serde_json::to_value(msg).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.shift_remove("msg");
    }
    shorten(&mut v);
    match full {
        Some(n) if n > MAX_FIELD => format!("{} {} ({n} bytes of data, first {MAX_FIELD} shown)", msg.name(), v),
        _ => format!("{} {}", msg.name(), v),
    }
}

const REDACTED: &str = "<redacted>";

/// Passwords and keyboard-interactive answers never reach a transcript; bulk data is cut before
/// it is serialised, so summarising a 32 KiB data packet costs what summarising 96 bytes does.
fn redact(msg: &Message) -> Option<Message> {
    let cut = |b: &sshspec_wire::Bytes| sshspec_wire::Bytes(b.as_slice()[..MAX_FIELD.min(b.len())].to_vec());
    match msg {
        Message::ChannelData(d) if d.data.len() > MAX_FIELD => {
            Some(Message::ChannelData(sshspec_wire::msg::ChannelData {
                recipient_channel: d.recipient_channel,
                data: cut(&d.data),
            }))
        }
        Message::ChannelExtendedData(d) if d.data.len() > MAX_FIELD => {
            Some(Message::ChannelExtendedData(sshspec_wire::msg::ChannelExtendedData {
                data: cut(&d.data),
                ..d.clone()
            }))
        }
        Message::UserauthRequest(r) => match &r.method {
            AuthMethod::Password { change, new_password, .. } => {
                let mut r = r.clone();
                r.method = AuthMethod::Password {
                    change: *change,
                    password: REDACTED.into(),
                    new_password: new_password.as_ref().map(|_| REDACTED.into()),
                };
                Some(Message::UserauthRequest(r))
            }
            _ => None,
        },
        Message::UserauthInfoResponse(r) => {
            let mut r = r.clone();
            r.responses = r.responses.iter().map(|_| REDACTED.into()).collect();
            Some(Message::UserauthInfoResponse(r))
        }
        _ => None,
    }
}

fn shorten(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.len() > MAX_FIELD => {
            let total = s.len();
            let mut cut = MAX_FIELD;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str(&format!("...({total} chars)"));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(shorten),
        serde_json::Value::Object(m) => m.values_mut().for_each(shorten),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sshspec_wire::msg::UserauthRequest;

    #[test]
    fn bulk_data_is_cut_and_its_length_kept() {
        let m = Message::ChannelData(sshspec_wire::msg::ChannelData {
            recipient_channel: 0,
            data: vec![b'a'; 32768].into(),
        });
        let s = summarize(&m);
        assert!(s.len() < 300, "{s}");
        assert!(s.contains("32768 bytes of data"), "{s}");
    }

    #[test]
    fn passwords_are_redacted() {
        let m = Message::UserauthRequest(UserauthRequest {
            user: "u".into(),
            service: "ssh-connection".into(),
            method: AuthMethod::Password { change: false.into(), password: "hunter2".into(), new_password: None },
        });
        let s = summarize(&m);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains(REDACTED));
    }
}
