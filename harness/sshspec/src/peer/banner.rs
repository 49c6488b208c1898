//! Judging the server's identification string against RFC 4253 §4.2:
//! `SSH-protoversion-softwareversion SP comments CR LF`, at most 255 characters with CR LF, the
//! version fields printable US-ASCII without whitespace or '-'. In SSH-1 compatibility mode
//! (protoversion 1.99) §5.1 asks for LF alone, so either ending is right there.

use crate::script::matcher;
use crate::transport::{ServerVersion, printable};
use toml::{Table, Value};

pub struct Parsed {
    pub protoversion: String,
    pub softwareversion: String,
    pub comments: String,
}

/// Every way the line breaks §4.2, and its fields.
pub fn check(line: &[u8]) -> (Vec<String>, Parsed) {
    let mut problems = Vec::new();
    let compat = line.starts_with(b"SSH-1.99-") && line.ends_with(b"\n");
    if !line.ends_with(b"\r\n") && !compat {
        problems.push("it is not terminated by CR LF".to_owned());
    }
    if line.len() > 255 {
        problems.push(format!("it is {} characters long including CR LF; the limit is 255", line.len()));
    }
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.contains(&0) {
        problems.push("it contains a NUL byte".to_owned());
    }
    let text = String::from_utf8_lossy(body);
    let rest = text.strip_prefix("SSH-").unwrap_or(&text);
    let (versions, comments) = match rest.split_once(' ') {
        Some((v, c)) => (v, c),
        None => (rest, ""),
    };
    let (proto, software) = versions.split_once('-').unwrap_or((versions, ""));
    let field_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'-');
    if !field_ok(proto) {
        problems.push(format!("protoversion {proto:?} is not printable US-ASCII without '-' or spaces"));
    }
    if !field_ok(software) {
        problems.push(format!("softwareversion {software:?} is empty or holds characters other than printable US-ASCII without '-' or spaces"));
    }
    (
        problems,
        Parsed { protoversion: proto.to_owned(), softwareversion: software.to_owned(), comments: comments.to_owned() },
    )
}

/// How many of the lines before the identification `bad` holds for (RFC 4253 §4.2: each SHOULD end
/// in CR LF and be UTF-8).
fn count(lines: &[Vec<u8>], bad: impl Fn(&[u8]) -> bool) -> Value {
    Value::Integer(lines.iter().filter(|l| bad(l)).count() as i64)
}

/// The line's form (§4.2) and then its fields against `matches`.
pub fn judge(v: &ServerVersion, matches: &Table) -> Result<(), String> {
    let (problems, p) = check(&v.line);
    if !problems.is_empty() {
        return Err(format!("identification {}: {}", printable(&v.line), problems.join("; ")));
    }
    fields_against(v, p, matches)
}

/// Only the fields against `matches`, whatever the line's form: whether the line is the kind a
/// scenario applies to.
pub fn fields_match(v: &ServerVersion, matches: &Table) -> Result<(), String> {
    fields_against(v, check(&v.line).1, matches)
}

fn fields_against(v: &ServerVersion, p: Parsed, matches: &Table) -> Result<(), String> {
    let line_end = match () {
        _ if v.line.ends_with(b"\r\n") => "CR LF",
        _ if v.line.ends_with(b"\n") => "LF",
        _ => "none",
    };
    let actual = Table::from_iter([
        ("protoversion".to_owned(), Value::String(p.protoversion)),
        ("softwareversion".to_owned(), Value::String(p.softwareversion)),
        ("comments".to_owned(), Value::String(p.comments)),
        ("pre_banner_lines".to_owned(), Value::Integer(v.pre_banner.len() as i64)),
        ("pre_banner_without_crlf".to_owned(), count(&v.pre_banner, |l| !l.ends_with(b"\r\n"))),
        ("pre_banner_not_utf8".to_owned(), count(&v.pre_banner, |l| std::str::from_utf8(l).is_err())),
        ("line_end".to_owned(), Value::String(line_end.to_owned())),
    ]);
    let (plain, tests) = matcher::split(matches)?;
    let line = printable(&v.line);
    for (k, want) in &plain {
        match actual.get(k) {
            Some(got) if got != want => return Err(format!("identification {line}: {k} is {got}, not {want}")),
            _ => {}
        }
    }
    for f in &tests {
        let Some(got) = matcher::get(&actual, &f.path) else { continue };
        if !f.test.passes(got, &|want| want == got) {
            let (k, test) = (f.path.join("."), matches.get(&f.path[0]).map(|t| t.to_string()).unwrap_or_default());
            return Err(format!("identification {line}: {k} is {got}, which does not pass {test}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_banners_conform() {
        for b in
            ["SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n", "SSH-2.0-dropbear_2022.83\r\n", "SSH-2.0-russh_0.65.1\r\n"]
        {
            assert!(check(b.as_bytes()).0.is_empty(), "{b}");
        }
    }

    #[test]
    fn each_breach_is_named() {
        assert_eq!(check(b"SSH-2.0-x\n").0.len(), 1);
        assert!(check(b"SSH-1.99-x\n").0.is_empty(), "RFC 4253 §5.1: LF alone in compatibility mode");
        assert_eq!(check(b"SSH-2.0-bad-name\r\n").0.len(), 1);
        let long = format!("SSH-2.0-{}\r\n", "a".repeat(300));
        assert_eq!(check(long.as_bytes()).0.len(), 1);
    }
}
