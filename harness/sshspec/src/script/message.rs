//! One mechanism for both sending and expecting: a message is a TOML table (`msg` names it, the
//! other keys are its fields). To send, the conversation's defaults are overlaid with the step's
//! `with`; to expect, the received message is overlaid with the step's `match`, and it matches
//! if the overlay changed nothing. Both go through the typed [`Message`], so values are checked.

use super::matcher;
use sshspec_wire::Message;
use toml::{Table, Value};

/// Overlays `top` onto `base`, recursing into tables so a matcher can name one nested field.
pub fn overlay(base: &mut Table, top: &Table) {
    for (k, v) in top {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(t)) => overlay(b, t),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

pub fn to_table(m: &Message) -> Result<Table, String> {
    Table::try_from(m).map_err(|e| format!("cannot represent {}: {e}", m.name()))
}

fn from_table(t: Table) -> Result<Message, String> {
    Value::Table(t).try_into::<Message>().map_err(|e| e.message().trim().to_owned())
}

/// `base` (or the message's defaults) with `with` overlaid.
pub fn build(name: &str, base: Option<&Message>, with: &Table) -> Result<Message, String> {
    if !Message::NAMES.contains(&name) {
        return Err(format!("unknown message {name:?}; known: {}", Message::NAMES.join(", ")));
    }
    let mut t = match base {
        Some(m) => to_table(m)?,
        None => Table::new(),
    };
    t.insert("msg".into(), Value::String(name.to_owned()));
    overlay(&mut t, with);
    from_table(t).map_err(|e| format!("{name}: {e}"))
}

/// Checks at load time that `name` is a message and `fields` are fields of it with valid values.
pub fn build_check(name: &str, fields: &Table) -> Result<(), String> {
    if fields.contains_key("msg") {
        return Err("`msg` is set by the step's action, not in its table".into());
    }
    build(name, None, fields).map(|_| ())
}

/// Whether `msg` is `name` and carries the values in `matches`, and its fields pass the tests
/// there (`contains`, `any_of`, ...: see [`matcher`]).
pub fn matches(msg: &Message, name: &str, matches: &Table) -> Result<bool, String> {
    if msg.name() != name {
        return Ok(false);
    }
    let actual = to_table(msg)?;
    let (plain, tests) = matcher::split(matches)?;
    if !carries(&actual, &plain) {
        return Ok(false);
    }
    Ok(tests.iter().all(|f| match matcher::get(&actual, &f.path) {
        Some(value) => f.test.passes(value, &|v| carries(&actual, &matcher::at(&f.path, v.clone()))),
        // A test on a field the message lacks (another request type) does not pass.
        None => false,
    }))
}

/// Whether overlaying `plain` on the received message's table changes nothing, after both went
/// through the typed message: a reason code then equals its name.
fn carries(actual: &Table, plain: &Table) -> bool {
    let mut merged = actual.clone();
    overlay(&mut merged, plain);
    // The matcher was checked against the message's shape at load time, so an overlay that no
    // longer decodes means the received value has another shape (an `exit-status` request where
    // `exit-signal` was expected): a mismatch, not a harness error.
    from_table(merged).ok().and_then(|m| to_table(&m).ok()).is_some_and(|m| &m == actual)
}

/// Variables a `with` or `match` table may use as a value, bound when the step runs, and what they
/// stand for.
pub const VARIABLES: &[(&str, &str)] = &[
    ("$sent_seq", "the sequence number of the last packet we sent (what UNIMPLEMENTED must echo)"),
    ("$user", "the target's test user"),
    ("$user_other_case", "the test user's name with the case of its ASCII letters swapped (sshspec: SSHSPEC)"),
    ("$password", "the test user's password"),
    ("$ssh_host", "the target's SSH service as the target itself reaches it (127.0.0.1 in a container)"),
    ("$ssh_port", "its port, likewise (22 in a container)"),
    ("$bound_port", "the port in the last REQUEST_SUCCESS (what tcpip-forward to port 0 was given)"),
    ("$socket_path", "a Unix-domain socket path under /tmp on the target, new for each run of a scenario"),
    ("$absent_socket_path", "another such path, which nothing listens on"),
    ("$program NAME [ARGUMENT]", "the target's command line for that program (scenarios/README.md, Programs)"),
    (
        "$earlier.MESSAGE.FIELD",
        "a field of the server's last MESSAGE (kexinit, kex_ecdh_reply, kexdh_reply, kex_dh_gex_group, kex_dh_gex_reply) on the connection before a `reconnect`",
    ),
    (
        "$earlier_bits.MESSAGE.FIELD",
        "the bit length of such a field, a byte string read as an unsigned number (a group exchange's p)",
    ),
];

fn variable_names() -> String {
    VARIABLES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A stand-in of the variable's type, for checks at load time.
fn placeholder(name: &str) -> Option<Value> {
    match name {
        "$user" | "$user_other_case" | "$password" | "$ssh_host" | "$socket_path" | "$absent_socket_path" => {
            Some(Value::String("x".into()))
        }
        n if n.starts_with(super::PROGRAM_VARIABLE) => {
            super::Program::parse(&n[super::PROGRAM_VARIABLE.len()..]).ok().map(|_| Value::String("x".into()))
        }
        n if n.starts_with(super::EARLIER) => {
            let (message, field) = n[super::EARLIER.len()..].split_once('.')?;
            if !super::EARLIER_MESSAGES.contains(&message) {
                return None;
            }
            to_table(&build(message, None, &Table::new()).ok()?).ok()?.get(field).cloned()
        }
        n if n.starts_with(super::EARLIER_BITS) => {
            // The field's own stand-in, which only a byte string has a bit length of.
            let earlier = format!("{}{}", super::EARLIER, &n[super::EARLIER_BITS.len()..]);
            matcher::bit_length(&placeholder(&earlier)?).map(|_| Value::Integer(2048))
        }
        n if VARIABLES.iter().any(|(v, _)| *v == n) => Some(Value::Integer(0)),
        _ => None,
    }
}

/// Replaces variable values (`"$name"`) in `t` with what `value` gives for them.
pub fn bind(t: &Table, value: &dyn Fn(&str) -> Option<Value>) -> Result<Table, String> {
    fn walk(v: &Value, value: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) if s.starts_with('$') => {
                value(s).ok_or_else(|| match s.strip_prefix(super::PROGRAM_VARIABLE) {
                    Some(p) => format!(
                        "{s:?}: {}",
                        super::Program::parse(p).err().unwrap_or_else(|| "no command for it".into())
                    ),
                    None if s.starts_with(super::EARLIER) || s.starts_with(super::EARLIER_BITS) => format!(
                        "{s:?}: `$earlier.MESSAGE.FIELD` names a field of one of {} as the server sent it on the connection before a `reconnect` step",
                        super::EARLIER_MESSAGES.join(", ")
                    ),
                    None if VARIABLES.iter().any(|(v, _)| v == s) => {
                        format!("{s:?} has no value for this target (a user name without letters has no other case)")
                    }
                    None => format!("unknown variable {s:?}; known: {}", variable_names()),
                })?
            }
            Value::Table(t) => {
                Value::Table(t.iter().map(|(k, v)| Ok((k.clone(), walk(v, value)?))).collect::<Result<_, String>>()?)
            }
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, value)).collect::<Result<_, _>>()?),
            other => other.clone(),
        })
    }
    t.iter().map(|(k, v)| Ok((k.clone(), walk(v, value)?))).collect()
}

/// Checks a `match` table at load time, with every variable standing in for a value of its type.
pub fn match_check(name: &str, matches: &Table) -> Result<(), String> {
    let (plain, tests) = matcher::split(&bind(matches, &placeholder)?)?;
    build_check(name, &plain)?;
    // Each test's values must be values of its field: `at_least = 32768` on a number, `contains`
    // on a list or a string of what the list holds.
    for f in &tests {
        for one_of in f.test.probes() {
            let mut last = String::new();
            let fits = one_of.into_iter().any(|v| {
                let mut t = plain.clone();
                overlay(&mut t, &matcher::at(&f.path, v));
                build_check(name, &t).map_err(|e| last = e).is_ok()
            });
            if !fits {
                return Err(format!("{}: the test does not fit the field: {last}", f.path.join(".")));
            }
        }
    }
    Ok(())
}

/// Checks a `send` step's `with` table at load time, likewise.
pub fn with_check(name: &str, with: &Table) -> Result<(), String> {
    build_check(name, &bind(with, &placeholder)?)
}

/// Fields of the server identification line a scenario can match (RFC 4253 §4.2).
pub const BANNER_FIELDS: &[&str] = &[
    "protoversion",
    "softwareversion",
    "comments",
    "pre_banner_lines",
    "pre_banner_without_crlf",
    "pre_banner_not_utf8",
    "line_end",
];

pub fn check_banner_matchers(m: &Table) -> Result<(), String> {
    let (_, tests) = matcher::split(m)?;
    for f in &tests {
        if f.path.len() > 1 {
            return Err(format!("banner field {:?} has no fields of its own", f.path[0]));
        }
    }
    for k in m.keys() {
        if !BANNER_FIELDS.contains(&k.as_str()) {
            return Err(format!("unknown banner field {k:?}; known: {}", BANNER_FIELDS.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sshspec_wire::DisconnectReason;
    use sshspec_wire::msg::Disconnect;

    fn t(s: &str) -> Table {
        s.parse().unwrap()
    }

    #[test]
    fn matchers_normalise_names_and_numbers() {
        let m = Message::Disconnect(Disconnect {
            reason: DisconnectReason(3),
            description: "x".into(),
            language: "".into(),
        });
        assert!(matches(&m, "disconnect", &t("reason = 3")).unwrap());
        assert!(matches(&m, "disconnect", &t("reason = \"KEY_EXCHANGE_FAILED\"")).unwrap());
        assert!(!matches(&m, "disconnect", &t("reason = \"PROTOCOL_ERROR\"")).unwrap());
        assert!(!matches(&m, "ignore", &Table::new()).unwrap());
    }

    #[test]
    fn nested_fields_match_partially() {
        let m = build(
            "channel_request",
            None,
            &t("recipient_channel = 1\nrequest = { type = \"exit-status\", exit_status = 0 }"),
        )
        .unwrap();
        assert!(matches(&m, "channel_request", &t("request = { type = \"exit-status\" }")).unwrap());
        assert!(!matches(&m, "channel_request", &t("request = { exit_status = 1 }")).unwrap());
        // Another request type is another shape: no match, not an error.
        assert!(
            !matches(&m, "channel_request", &t("request = { type = \"exit-signal\", signal_name = \"TERM\" }"))
                .unwrap()
        );
    }

    #[test]
    fn no_message_field_is_named_like_a_test() {
        fn keys(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Table(t) => t.iter().for_each(|(k, v)| {
                    out.push(k.clone());
                    keys(v, out)
                }),
                Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        for name in Message::NAMES {
            keys(&Value::Table(to_table(&build(name, None, &Table::new()).unwrap()).unwrap()), &mut all);
        }
        assert!(all.len() > 100);
        assert!(all.iter().all(|k| !matcher::KEYS.contains(&k.as_str())));
    }

    #[test]
    fn tests_match_fields_after_normalisation() {
        let m = Message::Disconnect(Disconnect {
            reason: DisconnectReason(3),
            description: "key exchange failed: no common cipher".into(),
            language: "".into(),
        });
        let ok = |s: &str| matches(&m, "disconnect", &t(s)).unwrap();
        assert!(ok("reason = { any_of = [\"PROTOCOL_ERROR\", \"KEY_EXCHANGE_FAILED\"] }"));
        assert!(!ok("reason = { any_of = [\"PROTOCOL_ERROR\", 4] }"));
        assert!(ok("reason = { not = \"PROTOCOL_ERROR\" }"));
        assert!(ok("description = { regex = \"(?i)no common\" }"));
        assert!(!ok("description = { contains = \"mac\" }"));
        let c = build("channel_open_confirmation", None, &t("maximum_packet_size = 32759")).unwrap();
        assert!(matches(&c, "channel_open_confirmation", &t("maximum_packet_size = { at_least = 16384 }")).unwrap());
        assert!(!matches(&c, "channel_open_confirmation", &t("maximum_packet_size = { at_least = 32768 }")).unwrap());
        assert!(match_check("disconnect", &t("reason = { at_least = 2 }")).is_ok());
        assert!(match_check("disconnect", &t("description = { contains = 2 }")).is_err());
        assert!(match_check("kexinit", &t("kex_algorithms = { contains = \"x\" }")).is_ok());
        assert!(match_check("kexinit", &t("cookie = { at_least = 1 }")).is_err());
    }

    #[test]
    fn every_message_name_builds_from_defaults_and_round_trips() {
        for name in Message::NAMES {
            let m = build(name, None, &Table::new()).unwrap();
            assert_eq!(m.name(), *name);
            assert_eq!(build(name, Some(&m), &Table::new()).unwrap(), m);
        }
    }
}
