//! Programs: what a scenario asks the server to run, named as a capability rather than a shell
//! line. A scenario says `program = "exit 3"`; each target maps the capability to its own command
//! (a POSIX shell by default, or a description's `[programs]` table), or lacks it, and the scenario
//! SKIPs. A server without `/bin/sh` is then judged on what it has, never on our shell habits.

use std::collections::BTreeMap;
use std::fmt;

/// A capability with its argument. The argument vocabulary is narrow on purpose: words of
/// `[A-Za-z0-9._-]` and numbers, so a template never needs quoting on any command interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// Copy stdin to stdout until EOF, then exit 0.
    EchoStdin,
    /// Read stdin to EOF, print nothing, exit 0.
    DiscardStdin,
    /// Exit 0 at once, printing nothing.
    Succeed,
    /// Print the words and a newline on stdout, exit 0.
    Print(String),
    /// Print the words and a newline on stderr, exit 0.
    Stderr(String),
    /// Exit with this status, printing nothing.
    Exit(u32),
    /// Kill itself with this signal (`TERM`, `KILL`, ...), so the server reports exit-signal.
    Signal(String),
    /// Print this many zero bytes on stdout, exit 0: how a scenario makes any server send more
    /// than a window or a maximum packet.
    Zeros(u64),
    /// Leave stdin unread for this many seconds, then read it to EOF, print `eof` and exit 0: how
    /// a scenario spends the server's window and then sees whether its EOF arrived.
    ReadStdinAfter(u64),
    /// A literal command line, never written in a scenario: the probe's own test of the shell.
    Literal(String),
}

/// Each capability: its name, the argument it takes, what it does, and its POSIX `sh` command.
/// `{}` in a command stands for the argument.
pub const CAPABILITIES: &[(&str, &str, &str, &str)] = &[
    ("echo-stdin", "", "copies stdin to stdout until EOF", "cat"),
    ("discard-stdin", "", "reads stdin to EOF and prints nothing", "cat >/dev/null"),
    ("succeed", "", "exits 0 at once", "true"),
    ("print", "WORDS", "prints the words and a newline on stdout", "echo {}"),
    ("stderr", "WORDS", "prints the words and a newline on stderr", "echo {} >&2"),
    ("exit", "STATUS", "exits with this status", "exit {}"),
    ("signal", "NAME", "kills itself with this signal (TERM, KILL, ...)", "kill -s {} $$"),
    ("zeros", "COUNT", "prints this many zero bytes", "head -c {} /dev/zero"),
    (
        "read-stdin-after",
        "SECONDS",
        "leaves stdin unread for SECONDS, then reads it to EOF and prints eof",
        "sleep {}; cat >/dev/null; echo eof",
    ),
];

impl Program {
    /// Parses `NAME [ARGUMENT]` as written in a scenario.
    pub fn parse(s: &str) -> Result<Program, String> {
        let (name, arg) = match s.trim().split_once(' ') {
            Some((n, a)) => (n, Some(a.trim())),
            None => (s.trim(), None),
        };
        let words = |a: Option<&str>| -> Result<String, String> {
            let a = a.filter(|a| !a.is_empty()).ok_or(format!("program {name:?} needs words to print"))?;
            if a.chars().all(|c| c.is_ascii_alphanumeric() || " ._-".contains(c)) {
                Ok(a.to_string())
            } else {
                Err(format!("program {name:?}: the words may hold only letters, digits, spaces and . _ -; got {a:?}"))
            }
        };
        let number = |a: Option<&str>| -> Result<u64, String> {
            a.and_then(|a| a.parse().ok()).ok_or(format!("program {name:?} needs a number, got {:?}", a.unwrap_or("")))
        };
        let none = |p: Program| match arg {
            None => Ok(p),
            Some(a) => Err(format!("program {name:?} takes no argument, got {a:?}")),
        };
        match name {
            "echo-stdin" => none(Program::EchoStdin),
            "discard-stdin" => none(Program::DiscardStdin),
            "succeed" => none(Program::Succeed),
            "print" => Ok(Program::Print(words(arg)?)),
            "stderr" => Ok(Program::Stderr(words(arg)?)),
            "exit" => match u32::try_from(number(arg)?) {
                Ok(n) if n <= 255 => Ok(Program::Exit(n)),
                _ => Err(format!("program \"exit\": a status is 0 to 255, got {:?}", arg.unwrap_or(""))),
            },
            "signal" => match arg {
                Some(a) if !a.is_empty() && a.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) => {
                    Ok(Program::Signal(a.to_string()))
                }
                _ => Err(format!("program \"signal\" needs a signal name such as TERM, got {:?}", arg.unwrap_or(""))),
            },
            "zeros" => Ok(Program::Zeros(number(arg)?)),
            "read-stdin-after" => Ok(Program::ReadStdinAfter(number(arg)?)),
            other => Err(format!(
                "unknown program {other:?}; known: {}",
                CAPABILITIES.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The capability's name (a target's `[programs]` key); `None` for a literal.
    pub fn capability(&self) -> Option<&'static str> {
        Some(match self {
            Program::EchoStdin => "echo-stdin",
            Program::DiscardStdin => "discard-stdin",
            Program::Succeed => "succeed",
            Program::Print(_) => "print",
            Program::Stderr(_) => "stderr",
            Program::Exit(_) => "exit",
            Program::Signal(_) => "signal",
            Program::Zeros(_) => "zeros",
            Program::ReadStdinAfter(_) => "read-stdin-after",
            Program::Literal(_) => return None,
        })
    }

    fn argument(&self) -> String {
        match self {
            Program::Print(w) | Program::Stderr(w) | Program::Signal(w) => w.clone(),
            Program::Exit(n) => n.to_string(),
            Program::Zeros(n) | Program::ReadStdinAfter(n) => n.to_string(),
            _ => String::new(),
        }
    }

    /// The command line a target runs for this program: its template with the argument filled in.
    pub fn command(&self, programs: &Programs) -> Result<String, String> {
        if let Program::Literal(c) = self {
            return Ok(c.clone());
        }
        let name = self.capability().unwrap_or_default();
        let template =
            programs.get(name).ok_or_else(|| format!("the target has no command for the program {name:?}"))?;
        Ok(template.replace("{}", &self.argument()))
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.capability()) {
            (Program::Literal(c), _) => write!(f, "{c:?}"),
            (_, Some(name)) if self.argument().is_empty() => f.write_str(name),
            (_, Some(name)) => write!(f, "{name} {}", self.argument()),
            (_, None) => Ok(()),
        }
    }
}

/// A target's commands, by capability name.
pub type Programs = BTreeMap<String, String>;

/// The commands of a POSIX shell (`sh -c`), which every server under `exec` is assumed to run
/// unless its description or the probe says otherwise.
pub fn posix() -> Programs {
    CAPABILITIES.iter().map(|(n, _, _, c)| (n.to_string(), c.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_parse_and_map_to_posix_commands() {
        let p = posix();
        let cases = [
            ("echo-stdin", "cat"),
            ("exit 3", "exit 3"),
            ("print hello sshspec", "echo hello sshspec"),
            ("stderr to-stderr", "echo to-stderr >&2"),
            ("signal TERM", "kill -s TERM $$"),
            ("zeros 8388608", "head -c 8388608 /dev/zero"),
            ("read-stdin-after 5", "sleep 5; cat >/dev/null; echo eof"),
        ];
        for (written, command) in cases {
            let program = Program::parse(written).unwrap();
            assert_eq!(program.command(&p).unwrap(), command);
            assert_eq!(program.to_string(), written);
        }
    }

    #[test]
    fn bad_programs_say_why() {
        for (bad, says) in [
            ("cat", "unknown program"),
            ("print", "needs words"),
            ("print a;rm", "only letters"),
            ("exit 256", "0 to 255"),
            ("exit x", "needs a number"),
            ("signal term", "signal name"),
            ("succeed now", "takes no argument"),
        ] {
            let e = Program::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_capability_is_named() {
        let mut p = posix();
        p.remove("signal");
        let e = Program::parse("signal TERM").unwrap().command(&p).unwrap_err();
        assert!(e.contains("\"signal\""), "{e}");
    }
}
