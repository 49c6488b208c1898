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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// From us to the target.
    Sent,
    /// From the target to us.
    Received,
    /// Something we concluded (negotiated algorithms, a verdict on a step).
    Note,
}

impl Dir {
    /// How text transcripts mark the direction: `->` sent, `<-` received, `==` our conclusion.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::Sent => "->",
            Dir::Received => "<-",
            Dir::Note => "==",
        }
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
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
            let seq = seq.map(|s| format!(" #{s}")).unwrap_or_default();
            eprintln!("    {}{seq} {text}", dir.arrow());
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

/// The transcript as text without what changes from run to run: times, random bytes (cookies,
/// ephemeral keys, signatures, host keys, fingerprints), ports and padding-dependent byte counts.
/// Two runs of a scenario against the same server give the same text, so it can be snapshotted
/// and diffed.
pub fn stable_text(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let seq = e.seq.map(|q| format!(" #{q}")).unwrap_or_default();
        out.push_str(&format!("{}{seq} {}\n", e.dir.arrow(), stabilize(&e.text)));
    }
    out
}

fn stabilize(text: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = |pred: &dyn Fn(char) -> bool| chars[i..].iter().take_while(|c| pred(**c)).count();
        let starts_word = i == 0 || !is_b64(chars[i - 1]);
        let (hex, b64) = (run(&is_hex), run(&is_b64));
        if starts_word && b64 >= 40 && b64 > hex {
            out.push_str("<base64>");
            i += b64;
        } else if starts_word && hex >= 16 {
            out.push_str("<hex>");
            i += hex;
        } else if starts_word && chars[i].is_ascii_digit() {
            let n = run(&|c: char| c.is_ascii_digit());
            let rest: String = chars[i + n..].iter().take(9).collect();
            let before: String = chars[..i].iter().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
            // Ports, and counts that depend on random padding.
            if before.ends_with("127.0.0.1:") || rest.starts_with(" byte(s)") || rest.starts_with(" block(s)") {
                out.push('N');
            } else {
                out.extend(&chars[i..i + n]);
            }
            i += n;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
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
    fn stable_text_hides_what_changes_between_runs() {
        let e = |text: &str| Entry { at_ms: 7, dir: Dir::Note, seq: None, text: text.into() };
        let a = stable_text(&[
            e("scenario x against 127.0.0.1:43963"),
            e(r#"kexinit {"cookie":"84e7aa56ca48ce69a019d3134a23d28f","first":false}"#),
            e("host key SHA256:FKSNe9sry2raiDZk0+6suKMYtqQoGnVGAnEFROGz6bQ verified"),
            e("epoch ended after 3 packet(s), 1208 byte(s), 151 block(s)"),
            e("channel 0 window 2097152"),
        ]);
        assert_eq!(
            a,
            "== scenario x against 127.0.0.1:N\n\
             == kexinit {\"cookie\":\"<hex>\",\"first\":false}\n\
             == host key SHA256:<base64> verified\n\
             == epoch ended after 3 packet(s), N byte(s), N block(s)\n\
             == channel 0 window 2097152\n"
        );
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
