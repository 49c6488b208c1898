//! The RFC 4251 §5 value types as open containers: each holds whatever bytes were on the wire,
//! valid or not, so a scenario can send a malformed value and evidence can print one exactly.

use crate::codec::{Codec, DecodeError, Reader, put_string};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An SSH `string`: arbitrary bytes. Shown as text when it is printable UTF-8, else as hex.
///
/// In scenario files it is written as `"text"` or `{ hex = "00ff" }`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, if they are printable UTF-8 (tab, CR and LF allowed).
    pub fn as_text(&self) -> Option<&str> {
        let s = std::str::from_utf8(&self.0).ok()?;
        s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n')).then_some(s)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}
impl From<String> for Bytes {
    fn from(s: String) -> Self {
        Bytes(s.into_bytes())
    }
}
impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}
impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "hex:{}", hex::encode(&self.0)),
        }
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Codec for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, &self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Bytes(r.string("string")?.to_vec()))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_text() {
            Some(t) => s.serialize_str(t),
            None => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("hex", &hex::encode(&self.0))?;
                m.end()
            }
        }
    }
}

/// The keys of a bytes value written as a table: the bytes (`hex` or `text`) repeated `repeat`
/// times, or `random` bytes from `seed`. Scenario files stay short and say what the bytes are.
const GENERATOR_KEYS: &[&str] = &["hex", "text", "repeat", "random", "seed"];
/// No value a scenario builds needs more: an SSH packet is at most 256 KiB in practice.
const MAX_GENERATED: usize = 16 * 1024 * 1024;

/// `n` bytes from splitmix64 seeded with `seed`: the same bytes on every machine and run.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, or a table { hex = \"...\" }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bytes, A::Error> {
                let (mut unit, mut repeat, mut random, mut seed) = (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "hex" => {
                            let h: String = map.next_value()?;
                            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
                            let b = hex::decode(&clean).map_err(|e| de::Error::custom(format!("bad hex: {e}")))?;
                            if unit.replace(b).is_some() {
                                return Err(de::Error::custom("bytes: `hex` or `text`, not both"));
                            }
                        }
                        "text" => {
                            if unit.replace(map.next_value::<String>()?.into_bytes()).is_some() {
                                return Err(de::Error::custom("bytes: `hex` or `text`, not both"));
                            }
                        }
                        "repeat" => repeat = Some(map.next_value::<usize>()?),
                        "random" => random = Some(map.next_value::<usize>()?),
                        "seed" => seed = Some(map.next_value::<u64>()?),
                        other => return Err(de::Error::unknown_field(other, GENERATOR_KEYS)),
                    }
                }
                let size = match (&unit, random) {
                    (Some(u), None) => u.len().checked_mul(repeat.unwrap_or(1)),
                    (None, Some(n)) => Some(n),
                    _ => Some(0),
                };
                if size.is_none_or(|n| n > MAX_GENERATED) {
                    return Err(de::Error::custom(format!("over the {MAX_GENERATED} bytes a value may hold")));
                }
                let out = match (unit, random) {
                    (Some(u), None) => u.repeat(repeat.unwrap_or(1)),
                    (None, Some(n)) if repeat.is_none() => pseudo_random(n, seed.unwrap_or(0)),
                    _ => {
                        return Err(de::Error::custom(
                            "bytes as a table: { hex = \"..\" } or { text = \"..\" }, each with an optional repeat = N, or { random = N, seed = S }",
                        ));
                    }
                };
                if seed.is_some() && random.is_none() {
                    return Err(de::Error::custom("`seed` goes with `random`"));
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `name-list`: comma-separated names. Kept as the list of names so that empty names,
/// embedded commas or non-ASCII names can be sent; `encode` joins them with commas.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NameList(pub Vec<String>);

impl NameList {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        NameList(names.into_iter().map(Into::into).collect())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn joined(&self) -> String {
        self.0.join(",")
    }
}

impl fmt::Debug for NameList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.joined())
    }
}

impl Codec for NameList {
    fn encode(&self, out: &mut Vec<u8>) {
        put_string(out, self.joined().as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let raw = r.string("name-list")?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::Invalid {
            what: "name-list",
            offset,
            why: format!("not US-ASCII: {}", hex::encode(raw)),
        })?;
        if s.is_empty() {
            return Ok(NameList(Vec::new()));
        }
        Ok(NameList(s.split(',').map(str::to_owned).collect()))
    }
}

/// An SSH `boolean`, as the byte on the wire. RFC 4251 §5: any non-zero value is TRUE, but only
/// 0 and 1 may be sent; keeping the byte lets us send 2 and see whether a peer sent one.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Bool(pub u8);

impl Bool {
    pub const FALSE: Bool = Bool(0);
    pub const TRUE: Bool = Bool(1);

    pub fn is_true(self) -> bool {
        self.0 != 0
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Self {
        Bool(b as u8)
    }
}

impl fmt::Debug for Bool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("false"),
            1 => f.write_str("true"),
            n => write!(f, "bool(0x{n:02x})"),
        }
    }
}

impl Codec for Bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Bool(r.u8("boolean")?))
    }
}

impl Serialize for Bool {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            0 => s.serialize_bool(false),
            1 => s.serialize_bool(true),
            n => s.serialize_u8(n),
        }
    }
}

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a byte value 0-255")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool::from(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bool, E> {
                u8::try_from(v).map(Bool).map_err(|_| E::custom("boolean byte out of range 0-255"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bool, E> {
                u8::try_from(v).map(Bool).map_err(|_| E::custom("boolean byte out of range 0-255"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The 16 random bytes that open a KEXINIT (RFC 4253 §7.1).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Cookie(pub [u8; 16]);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl Codec for Cookie {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut c = [0u8; 16];
        c.copy_from_slice(r.take(16, "cookie")?);
        Ok(Cookie(c))
    }
}

impl Serialize for Cookie {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Cookie {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(de::Error::custom)?;
        let a: [u8; 16] = v.try_into().map_err(|_| de::Error::custom("a cookie is 16 bytes (32 hex digits)"))?;
        Ok(Cookie(a))
    }
}

/// Bytes that run to the end of the payload with no length prefix (request-specific data of an
/// unknown request type, or the body of an unknown message).
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rest(pub Bytes);

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Codec for Rest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Rest(Bytes(r.rest().to_vec())))
    }
}

impl<T: Codec> Codec for Option<T> {
    /// Present only if bytes remain: the shape of RFC fields that exist "if" a flag is set.
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(v) = self {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.is_empty() { Ok(None) } else { T::decode(r).map(Some) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(toml_value: &str) -> Result<Bytes, String> {
        #[derive(Deserialize)]
        struct T {
            v: Bytes,
        }
        toml::from_str::<T>(&format!("v = {toml_value}")).map(|t| t.v).map_err(|e| e.to_string())
    }

    #[test]
    fn generated_bytes() {
        assert_eq!(bytes(r#"{ hex = "00ff", repeat = 3 }"#).unwrap().0, [0, 255, 0, 255, 0, 255]);
        assert_eq!(bytes(r#"{ text = "x", repeat = 4 }"#).unwrap().0, b"xxxx");
        let r = bytes("{ random = 100, seed = 7 }").unwrap().0;
        assert_eq!(r.len(), 100);
        assert_eq!(r, bytes("{ random = 100, seed = 7 }").unwrap().0, "the same seed gives the same bytes");
        assert_ne!(r, bytes("{ random = 100, seed = 8 }").unwrap().0);
        assert!(bytes(r#"{ hex = "00", repeat = 100000000000 }"#).unwrap_err().contains("over the"));
        assert!(bytes(r#"{ hex = "00", text = "x" }"#).unwrap_err().contains("not both"));
        assert!(bytes(r#"{ random = 3, repeat = 2 }"#).is_err());
        assert!(bytes(r#"{ text = "x", seed = 2 }"#).unwrap_err().contains("seed"));
        assert!(bytes(r#"{ size = 2 }"#).unwrap_err().contains("unknown field"));
    }
}
