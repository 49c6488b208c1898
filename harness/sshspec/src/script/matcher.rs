//! Field tests in a `match` table. A field's value is either a plain value, which the received
//! field must equal, or a table of one test:
//!
//! - `contains = X`: a name-list or list holds X, or a string holds X as a substring; a table X
//!   is held by a list element with X's fields (`contains = { name = "no-flow-control" }`);
//! - `any_of = [A, B]`: the field equals one of them, or passes one of them where it is itself a
//!   test (`any_of = [{ not = { regex = "x" } }, { regex = "a.*b" }]`);
//! - `not = X`: the field does not equal X (or does not pass X, if X is itself a test);
//! - `regex = "…"`: a string, or a name-list joined with commas as on the wire, matches;
//! - `at_least = N`, `at_most = M` (alone or together): a number lies in the range;
//! - `bits = { at_least = N, at_most = M }`: a byte string read as an unsigned big-endian number
//!   (an mpint's body: a group exchange's `p`) has a bit length in the range;
//! - `safe_prime = true`: a byte string read so is a safe prime, p = 2q + 1 with p and q prime
//!   (RFC 4419 §3's definition; Miller-Rabin on q, a Pocklington proof for p: `transport::kex::dh`).
//!
//! A table is a test when every key in it is one of these; no message field is named like them
//! (checked by a test in `message`), so a nested message table is never mistaken for one.

use regex::Regex;
use toml::{Table, Value};

pub const KEYS: &[&str] = &["contains", "any_of", "not", "regex", "at_least", "at_most", "bits", "safe_prime"];

/// A test and the field it applies to (`["request", "command"]`).
#[derive(Debug)]
pub struct FieldTest {
    pub path: Vec<String>,
    pub test: Test,
}

#[derive(Debug)]
pub enum Test {
    Contains(Value),
    /// A list holds an element (a table) whose fields equal or pass these.
    ContainsElement(Vec<(String, Alternative)>),
    AnyOf(Vec<Alternative>),
    NotEqual(Value),
    NotPassing(Box<Test>),
    Regex(Regex),
    Range {
        at_least: Option<i64>,
        at_most: Option<i64>,
    },
    /// The bit length of a byte string, tested by a range.
    Bits(Box<Test>),
    /// A byte string holds a safe prime.
    SafePrime,
}

/// One alternative of `any_of`: a value the field may equal, or a test it may pass.
#[derive(Debug)]
pub enum Alternative {
    Equal(Value),
    Passing(Test),
}

pub fn is_test(t: &Table) -> bool {
    !t.is_empty() && t.keys().all(|k| KEYS.contains(&k.as_str()))
}

/// Separates the plain values of a `match` table (compared by equality) from its tests.
pub fn split(matches: &Table) -> Result<(Table, Vec<FieldTest>), String> {
    fn walk(t: &Table, path: &mut Vec<String>, tests: &mut Vec<FieldTest>) -> Result<Table, String> {
        let mut plain = Table::new();
        for (k, v) in t {
            path.push(k.clone());
            match v {
                Value::Table(inner) if is_test(inner) => {
                    let test = parse(inner).map_err(|e| format!("{}: {e}", path.join(".")))?;
                    tests.push(FieldTest { path: path.clone(), test });
                }
                Value::Table(inner) => {
                    let sub = walk(inner, path, tests)?;
                    // A nested table that held only tests constrains nothing by equality.
                    if !sub.is_empty() || inner.is_empty() {
                        plain.insert(k.clone(), Value::Table(sub));
                    }
                }
                other => {
                    plain.insert(k.clone(), other.clone());
                }
            }
            path.pop();
        }
        Ok(plain)
    }
    let mut tests = Vec::new();
    let plain = walk(matches, &mut Vec::new(), &mut tests)?;
    Ok((plain, tests))
}

fn parse(t: &Table) -> Result<Test, String> {
    let int = |k: &str| -> Result<Option<i64>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::Integer(n)) => Ok(Some(*n)),
            Some(v) => Err(format!("`{k}` takes a number, not {v}")),
        }
    };
    if t.contains_key("at_least") || t.contains_key("at_most") {
        if let Some(k) = t.keys().find(|k| !matches!(k.as_str(), "at_least" | "at_most")) {
            return Err(format!("`{k}` cannot be combined with a range; write the tests on separate fields"));
        }
        let (at_least, at_most) = (int("at_least")?, int("at_most")?);
        if let (Some(l), Some(m)) = (at_least, at_most)
            && l > m
        {
            return Err(format!("the range is empty: at_least = {l} is more than at_most = {m}"));
        }
        return Ok(Test::Range { at_least, at_most });
    }
    let mut keys = t.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(format!("one test per field: {} given; known tests: {}", t.len(), KEYS.join(", ")));
    };
    let v = &t[key];
    Ok(match key.as_str() {
        "contains" => match v {
            Value::String(_) | Value::Integer(_) => Test::Contains(v.clone()),
            // An element's field may be held to a test of its own (`value = { regex = "…" }`).
            Value::Table(t) if !is_test(t) => Test::ContainsElement(
                t.iter()
                    .map(|(k, v)| match v {
                        Value::Table(inner) if is_test(inner) => parse(inner)
                            .map(|t| (k.clone(), Alternative::Passing(t)))
                            .map_err(|e| format!("contains.{k}: {e}")),
                        other => Ok((k.clone(), Alternative::Equal(other.clone()))),
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => return Err(format!("`contains` takes a string, a number or a table, not {other}")),
        },
        "any_of" => match v {
            Value::Array(a) if !a.is_empty() => Test::AnyOf(
                a.iter()
                    .map(|v| match v {
                        Value::Table(inner) if is_test(inner) => parse(inner).map(Alternative::Passing),
                        other => Ok(Alternative::Equal(other.clone())),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err("`any_of` takes a non-empty list of values or tests".into()),
        },
        "not" => match v {
            Value::Table(inner) if is_test(inner) => Test::NotPassing(Box::new(parse(inner)?)),
            other => Test::NotEqual(other.clone()),
        },
        "regex" => match v {
            // Linear-time matching and a size limit: a pattern in a scenario file cannot stall a run.
            Value::String(p) => Test::Regex(
                regex::RegexBuilder::new(p).size_limit(1 << 20).build().map_err(|e| format!("bad regex: {e}"))?,
            ),
            other => return Err(format!("`regex` takes a string, not {other}")),
        },
        "bits" => match v {
            Value::Table(inner) if inner.contains_key("at_least") || inner.contains_key("at_most") => {
                Test::Bits(Box::new(parse(inner)?))
            }
            other => return Err(format!("`bits` takes a range, `{{ at_least = N, at_most = M }}`, not {other}")),
        },
        "safe_prime" => match v {
            Value::Boolean(true) => Test::SafePrime,
            other => return Err(format!("`safe_prime` takes `true` (negate it with `not`), not {other}")),
        },
        _ => unreachable!("is_test admits only KEYS"),
    })
}

impl Test {
    /// Values of the field's own type that the test mentions, for checks at load time: the test is
    /// well typed when, for every inner list, one of its values is a valid value of the field.
    pub fn probes(&self) -> Vec<Vec<Value>> {
        match self {
            Test::Contains(x) => vec![vec![Value::Array(vec![x.clone()]), x.clone()]],
            Test::ContainsElement(fields) => {
                // Each field that holds a test stands in as a value of the kind the test takes.
                let x = Value::Table(
                    fields
                        .iter()
                        .filter_map(|(k, f)| match f {
                            Alternative::Equal(v) => Some((k.clone(), v.clone())),
                            Alternative::Passing(t) => {
                                Some((k.clone(), t.probes().into_iter().next()?.into_iter().next()?))
                            }
                        })
                        .collect(),
                );
                vec![vec![Value::Array(vec![x.clone()]), x]]
            }
            Test::AnyOf(vs) => vs
                .iter()
                .flat_map(|v| match v {
                    Alternative::Equal(v) => vec![vec![v.clone()]],
                    Alternative::Passing(t) => t.probes(),
                })
                .collect(),
            Test::NotEqual(v) => vec![vec![v.clone()]],
            Test::NotPassing(t) => t.probes(),
            Test::Regex(_) => vec![vec![Value::String(String::new()), Value::Array(Vec::new())]],
            Test::Range { at_least, at_most } => {
                [at_least, at_most].into_iter().flatten().map(|n| vec![Value::Integer(*n)]).collect()
            }
            Test::Bits(_) | Test::SafePrime => vec![vec![Value::String(String::new())]],
        }
    }

    /// Whether `actual` passes. `equal` compares the field with a value the way a plain match
    /// does (after normalisation: a reason code equals its name).
    pub fn passes(&self, actual: &Value, equal: &dyn Fn(&Value) -> bool) -> bool {
        match self {
            Test::Contains(x) => match actual {
                Value::Array(a) => a.contains(x),
                Value::String(s) => x.as_str().is_some_and(|x| s.contains(x)),
                _ => false,
            },
            Test::ContainsElement(fields) => match actual {
                Value::Array(a) => a.iter().any(|e| {
                    e.as_table().is_some_and(|e| {
                        fields.iter().all(|(k, f)| match (f, e.get(k)) {
                            (Alternative::Equal(want), got) => got == Some(want),
                            (Alternative::Passing(t), Some(got)) => t.passes(got, &|w| w == got),
                            (Alternative::Passing(_), None) => false,
                        })
                    })
                }),
                _ => false,
            },
            Test::AnyOf(vs) => vs.iter().any(|v| match v {
                Alternative::Equal(v) => equal(v),
                Alternative::Passing(t) => t.passes(actual, equal),
            }),
            Test::NotEqual(v) => !equal(v),
            Test::NotPassing(t) => !t.passes(actual, equal),
            Test::Regex(r) => match actual {
                Value::String(s) => r.is_match(s),
                Value::Array(a) => {
                    let names: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                    names.is_some_and(|n| r.is_match(&n.join(",")))
                }
                _ => false,
            },
            Test::Range { at_least, at_most } => match actual {
                Value::Integer(n) => at_least.is_none_or(|l| *n >= l) && at_most.is_none_or(|m| *n <= m),
                _ => false,
            },
            Test::Bits(range) => bit_length(actual).is_some_and(|bits| range.passes(&Value::Integer(bits), &|_| false)),
            Test::SafePrime => bytes(actual).is_some_and(|b| crate::transport::kex::is_safe_prime(&b)),
        }
    }
}

/// The bit length of a bytes field read as an unsigned big-endian number (an mpint's body).
pub fn bit_length(v: &Value) -> Option<i64> {
    let b = bytes(v)?;
    let bits = b.iter().position(|x| *x != 0).map_or(0, |i| (b.len() - i) * 8 - b[i].leading_zeros() as usize);
    i64::try_from(bits).ok()
}

/// A bytes field's value as the message table holds it: text, or `{ hex = "..." }`.
fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Table(t) => t.get("hex").and_then(Value::as_str).and_then(|h| hex::decode(h).ok()),
        _ => None,
    }
}

/// The value at `path` in `t`, if the table has that field.
pub fn get<'a>(t: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut here = t;
    for p in parents {
        here = here.get(p)?.as_table()?;
    }
    here.get(last)
}

/// `{a = {b = v}}` for the path `["a", "b"]`.
pub fn at(path: &[String], v: Value) -> Table {
    let mut value = v;
    for p in path.iter().rev() {
        value = Value::Table(Table::from_iter([(p.clone(), value)]));
    }
    match value {
        Value::Table(t) => t,
        _ => Table::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Table {
        s.parse().unwrap()
    }

    #[test]
    fn tests_are_split_from_plain_values_at_any_depth() {
        let (plain, tests) =
            split(&t("a = 1\nr = { type = \"exec\", command = { contains = \"x\" } }\nn = { at_least = 3 }")).unwrap();
        assert_eq!(plain, t("a = 1\nr = { type = \"exec\" }"));
        let mut paths: Vec<String> = tests.iter().map(|f| f.path.join(".")).collect();
        paths.sort();
        assert_eq!(paths, ["n", "r.command"]);
    }

    #[test]
    fn each_test_passes_and_fails() {
        fn eq(a: &Value) -> impl Fn(&Value) -> bool + '_ {
            move |v| v == a
        }
        let list = Value::Array(vec!["a".into(), "b".into()]);
        let one = |s: &str| split(&t(&format!("f = {s}"))).unwrap().1.remove(0).test;
        assert!(one("{ contains = \"b\" }").passes(&list, &eq(&list)));
        assert!(!one("{ contains = \"c\" }").passes(&list, &eq(&list)));
        assert!(one("{ contains = \"ell\" }").passes(&"hello".into(), &|_| false));
        let ext = Value::Array(vec![Value::Table(t(
            "name = \"server-sig-algs\"\nvalue = \"ssh-ed25519,ecdsa-sha2-nistp256\"",
        ))]);
        assert!(
            one("{ contains = { name = \"server-sig-algs\", value = { regex = \"ecdsa\" } } }")
                .passes(&ext, &|_| false)
        );
        assert!(
            !one("{ contains = { name = \"server-sig-algs\", value = { regex = \"rsa-sha2\" } } }")
                .passes(&ext, &|_| false)
        );
        assert!(one("{ regex = \"^a,b$\" }").passes(&list, &|_| false));
        assert!(!one("{ regex = \"^b\" }").passes(&list, &|_| false));
        let n = Value::Integer(32768);
        assert!(one("{ at_least = 32768 }").passes(&n, &eq(&n)));
        assert!(!one("{ at_least = 1, at_most = 100 }").passes(&n, &eq(&n)));
        assert!(one("{ any_of = [1, 32768] }").passes(&n, &eq(&n)));
        assert!(!one("{ not = 32768 }").passes(&n, &eq(&n)));
        assert!(one("{ not = { at_most = 5 } }").passes(&n, &eq(&n)));
        let either = "{ any_of = [{ not = { regex = \"x\" } }, { regex = \"^x,y$\" }] }";
        assert!(one(either).passes(&list, &|_| false), "passes the first test");
        assert!(one(either).passes(&Value::Array(vec!["x".into(), "y".into()]), &|_| false), "the second");
        assert!(!one(either).passes(&Value::Array(vec!["x".into()]), &|_| false), "neither");
        assert!(one("{ any_of = [7, { at_least = 100 }] }").passes(&n, &eq(&n)));
        let p = Value::Table(t("hex = \"00ff01\""));
        assert!(one("{ bits = { at_least = 16, at_most = 16 } }").passes(&p, &|_| false), "0x00ff01 has 16 bits");
        assert!(!one("{ bits = { at_least = 17 } }").passes(&p, &|_| false));
        assert!(one("{ bits = { at_most = 0 } }").passes(&"".into(), &|_| false), "zero has no bits");
        let safe =
            |n: u64| Value::Table(Table::from_iter([("hex".to_owned(), Value::String(hex::encode(n.to_be_bytes())))]));
        assert!(one("{ safe_prime = true }").passes(&safe(23), &|_| false), "23 = 2 * 11 + 1");
        assert!(one("{ safe_prime = true }").passes(&safe(2_147_483_783), &|_| false), "a 32-bit safe prime");
        assert!(!one("{ safe_prime = true }").passes(&safe(29), &|_| false), "29 is prime, 14 is not");
        assert!(!one("{ safe_prime = true }").passes(&safe(561), &|_| false), "a Carmichael number");
        assert!(!one("{ safe_prime = true }").passes(&safe(2), &|_| false), "2 is prime but not safe");
    }

    #[test]
    fn bad_tests_say_why() {
        for (text, says) in [
            ("f = { at_least = 5, at_most = 1 }", "empty"),
            ("f = { contains = \"a\", regex = \"b\" }", "one test per field"),
            ("f = { at_least = \"5\" }", "takes a number"),
            ("f = { regex = \"(\" }", "bad regex"),
            ("f = { any_of = [] }", "non-empty"),
            ("f = { bits = 5 }", "`bits` takes a range"),
            ("g = { f = { at_most = 1, contains = 2 } }", "g.f: `contains` cannot be combined"),
        ] {
            let e = split(&t(text)).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
