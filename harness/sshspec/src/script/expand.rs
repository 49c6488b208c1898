//! Load-time expansion of scenario text: a file's parameters turn it into several scenarios, and a
//! fragment's arguments fill its slots. Both write `${name}` in the text and both are expanded here,
//! on the text itself, so every later error still names a line of the file: a value is written
//! inline and never adds a line (columns after it on that line shift by its length).
//!
//! `"${name}"` (the whole quoted string) becomes the value in TOML form, so a parameter can be a
//! number, a list or a table; `${name}` inside a longer string becomes its text.

use std::collections::BTreeMap;
use toml::{Table, Value};

/// Values by parameter name.
pub type Values = BTreeMap<String, Value>;

/// One scenario a file expands into: the id suffix (`algorithm=kex`, or a case's own `id`) and the
/// values its `${name}` slots take. A file without parameters is one case with no suffix.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub suffix: Option<String>,
    pub values: Values,
}

/// Keys of a scenario file that declare its cases; they are read here and ignored after.
pub const PARAMETERS: &str = "parameters";
pub const CASE: &str = "case";

/// The cases `doc` declares: `[parameters]` (each key a list of values; one case per combination,
/// ids `key=value,key=value` in key order) or `[[case]]` (one table per case, each with an `id`
/// and the same keys).
pub fn cases(doc: &Table) -> Result<Vec<Case>, String> {
    match (doc.get(PARAMETERS), doc.get(CASE)) {
        (None, None) => Ok(vec![Case { suffix: None, values: Values::new() }]),
        (Some(_), Some(_)) => Err("a file has `[parameters]` or `[[case]]`, not both".into()),
        (Some(p), None) => product(p),
        (None, Some(c)) => rows(c),
    }
}

fn product(p: &Value) -> Result<Vec<Case>, String> {
    let Value::Table(p) = p else {
        return Err("`parameters` is a table: name = [value, ...]".into());
    };
    if p.is_empty() {
        return Err("`[parameters]` names no parameter".into());
    }
    let mut out = vec![(Vec::<String>::new(), Values::new())];
    for (name, list) in p {
        check_name(name)?;
        let Value::Array(list) = list else {
            return Err(format!("parameter `{name}` needs a list of values"));
        };
        if list.is_empty() {
            return Err(format!("parameter `{name}` has no values"));
        }
        let mut next = Vec::with_capacity(out.len() * list.len());
        for (ids, values) in &out {
            for v in list {
                let mut ids = ids.clone();
                ids.push(format!("{name}={}", slug(v)?));
                let mut values = values.clone();
                values.insert(name.clone(), v.clone());
                next.push((ids, values));
            }
        }
        out = next;
    }
    unique(out.into_iter().map(|(ids, values)| Case { suffix: Some(ids.join(",")), values }).collect())
}

fn rows(c: &Value) -> Result<Vec<Case>, String> {
    let Value::Array(rows) = c else {
        return Err("`case` is a list of tables: [[case]] id = \"...\" ...".into());
    };
    if rows.is_empty() {
        return Err("`[[case]]` lists no case".into());
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut keys: Option<Vec<String>> = None;
    for (i, row) in rows.iter().enumerate() {
        let Value::Table(row) = row else {
            return Err(format!("case {} is not a table", i + 1));
        };
        let id = match row.get("id") {
            Some(Value::String(s)) => slug(&Value::String(s.clone()))?,
            _ => return Err(format!("case {} needs `id = \"...\"` (its scenario is FILE/ID)", i + 1)),
        };
        let values: Values = row.iter().filter(|(k, _)| *k != "id").map(|(k, v)| (k.clone(), v.clone())).collect();
        for k in values.keys() {
            check_name(k)?;
        }
        let these: Vec<String> = values.keys().cloned().collect();
        match &keys {
            None => keys = Some(these),
            Some(k) if *k != these => {
                return Err(format!(
                    "case {id:?} sets {} but the first case sets {}: every case sets the same parameters",
                    these.join(", "),
                    k.join(", ")
                ));
            }
            Some(_) => {}
        }
        out.push(Case { suffix: Some(id), values });
    }
    unique(out)
}

fn unique(cases: Vec<Case>) -> Result<Vec<Case>, String> {
    let mut seen = std::collections::BTreeSet::new();
    for c in &cases {
        if let Some(s) = &c.suffix
            && !seen.insert(s.clone())
        {
            return Err(format!("two cases have the id {s:?}"));
        }
    }
    Ok(cases)
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(()) } else { Err(format!("parameter name {name:?}: use lower case letters, digits and _")) }
}

/// A value as it appears in an id; only plain values make ids.
fn slug(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Boolean(b) => b.to_string(),
        _ => return Err(format!("{v} cannot name a case: give the cases ids ([[case]] id = \"...\")")),
    };
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c));
    if ok { Ok(s) } else { Err(format!("{s:?} cannot be part of an id: use letters, digits and - _ . @ +")) }
}

/// The slots (`${name}`) of `text`, with their byte offsets.
pub fn slots(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("${") {
        let start = from + i;
        let Some(len) = text[start + 2..].find('}') else { break };
        out.push((start, &text[start + 2..start + 2 + len]));
        from = start + 2 + len + 1;
    }
    out
}

/// `text` with every slot filled from `values`. A slot with no value is an error at its offset.
pub fn substitute(text: &str, values: &Values) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (at, name) in slots(text) {
        let Some(v) = values.get(name) else {
            let known: Vec<&str> = values.keys().map(String::as_str).collect();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err((at, format!("`${{{name}}}` has no value here (parameters: {known})")));
        };
        let end = at + name.len() + 3;
        let whole = at > 0 && text[..at].ends_with('"') && text[end..].starts_with('"');
        if whole {
            out.push_str(&text[from..at - 1]);
            out.push_str(&inline(v));
            from = end + 1;
        } else {
            out.push_str(&text[from..at]);
            match v {
                Value::String(s) => out.push_str(&escape(s)),
                Value::Integer(_) | Value::Float(_) | Value::Boolean(_) => out.push_str(&v.to_string()),
                _ => {
                    return Err((
                        at,
                        format!("`${{{name}}}` is a list or table: it can only stand alone, as \"${{{name}}}\""),
                    ));
                }
            }
            from = end;
        }
    }
    out.push_str(&text[from..]);
    Ok(out)
}

/// A value in TOML's inline form, always on one line.
pub fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", escape(s)),
        Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Table(t) => {
            let fields: Vec<String> = t.iter().map(|(k, v)| format!("\"{}\" = {}", escape(k), inline(v))).collect();
            if fields.is_empty() { "{}".into() } else { format!("{{ {} }}", fields.join(", ")) }
        }
        other => other.to_string(),
    }
}

/// `s` as the inside of a TOML basic string.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Table {
        s.parse().unwrap()
    }

    #[test]
    fn no_parameters_is_one_case() {
        assert_eq!(cases(&doc("title = \"t\"")).unwrap(), vec![Case { suffix: None, values: Values::new() }]);
    }

    #[test]
    fn parameters_multiply_in_key_order() {
        let c = cases(&doc("[parameters]\nb = [1, 2]\na = [\"x\", \"y\"]")).unwrap();
        let ids: Vec<_> = c.iter().map(|c| c.suffix.clone().unwrap()).collect();
        assert_eq!(ids, ["a=x,b=1", "a=x,b=2", "a=y,b=1", "a=y,b=2"]);
        assert_eq!(c[3].values["b"], Value::Integer(2));
    }

    #[test]
    fn cases_need_ids_and_the_same_keys() {
        let c = cases(&doc("[[case]]\nid = \"one\"\nv = 1\n[[case]]\nid = \"two\"\nv = [2]")).unwrap();
        assert_eq!(c[1].suffix.as_deref(), Some("two"));
        assert!(cases(&doc("[[case]]\nv = 1")).unwrap_err().contains("needs `id"));
        assert!(cases(&doc("[[case]]\nid = \"a\"\nv = 1\n[[case]]\nid = \"b\"\nw = 1")).unwrap_err().contains("same"));
        assert!(cases(&doc("[[case]]\nid = \"a\"\n[[case]]\nid = \"a\"")).unwrap_err().contains("two cases"));
        assert!(cases(&doc("[parameters]\nv = [[1]]")).unwrap_err().contains("cannot name"));
        assert!(cases(&doc("[parameters]\nv = [\"a/b\"]")).unwrap_err().contains("part of an id"));
    }

    #[test]
    fn slots_take_values_in_their_own_type_or_as_text() {
        let v: Values = [
            ("n".to_owned(), Value::Integer(7)),
            ("list".to_owned(), Value::Array(vec![Value::String("a\"b".into())])),
            ("t".to_owned(), Value::Table(doc("x = 1\ny = { z = \"w\" }"))),
            ("s".to_owned(), Value::String("cipher".into())),
        ]
        .into();
        let text = "a = \"${n}\"\nb = \"${list}\"\nc = \"${t}\"\nd = \"no ${s} here, ${n} times\"\n\"${s}\" = 1\n";
        let out = substitute(text, &v).unwrap();
        assert_eq!(out.lines().count(), text.lines().count());
        let back = doc(&out);
        assert_eq!(back["a"], Value::Integer(7));
        assert_eq!(back["b"], v["list"]);
        assert_eq!(back["c"], v["t"]);
        assert_eq!(back["d"], Value::String("no cipher here, 7 times".into()));
        assert_eq!(back["cipher"], Value::Integer(1));
    }

    #[test]
    fn a_slot_without_a_value_is_located() {
        let (at, m) = substitute("a = 1\nb = \"${nope}\"", &Values::new()).unwrap_err();
        assert_eq!(at, 11);
        assert!(m.contains("nope"), "{m}");
        let v: Values = [("l".to_owned(), Value::Array(vec![]))].into();
        assert!(substitute("a = \"x ${l}\"", &v).unwrap_err().1.contains("stand alone"));
    }
}
