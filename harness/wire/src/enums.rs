//! Wire enumerations as open newtypes (after rustls): every value can be held, sent and printed,
//! named ones by their RFC name and others in hex. Scenario files may write either form.

use crate::codec::{Codec, DecodeError, Reader};

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident($ty:ident) { $($(#[$vmeta:meta])* $konst:ident = $val:expr,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $ty);

        #[allow(dead_code)]
        impl $name {
            $($(#[$vmeta])* pub const $konst: $name = $name($val);)*
            /// Every named value with its RFC name.
            pub const KNOWN: &'static [($name, &'static str)] = &[$(($name($val), stringify!($konst)),)*];

            pub fn name(self) -> Option<&'static str> {
                Self::KNOWN.iter().find(|(v, _)| *v == self).map(|(_, n)| *n)
            }

            pub fn from_name(s: &str) -> Option<Self> {
                Self::KNOWN.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)).map(|(v, _)| *v)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}(0x{:x})", stringify!($name), self.0),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self, f)
            }
        }

        impl Codec for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                self.0.encode(out)
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                $ty::decode(r).map($name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.name() {
                    Some(n) => s.serialize_str(n),
                    None => s.serialize_u64(u64::from(self.0)),
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a {} name ({}) or a number", stringify!($name),
                            $name::KNOWN.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $ty::try_from(v).map($name).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        $ty::try_from(v).map($name).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

open_enum! {
    /// Message numbers (RFC 4250 §4.1). 30-49 and 60-79 are reused by methods, so several names share a number.
    MsgType(u8) {
        DISCONNECT = 1,
        IGNORE = 2,
        UNIMPLEMENTED = 3,
        DEBUG = 4,
        SERVICE_REQUEST = 5,
        SERVICE_ACCEPT = 6,
        EXT_INFO = 7,
        NEWCOMPRESS = 8,
        KEXINIT = 20,
        NEWKEYS = 21,
        KEX_ECDH_INIT = 30,
        KEX_ECDH_REPLY = 31,
        USERAUTH_REQUEST = 50,
        USERAUTH_FAILURE = 51,
        USERAUTH_SUCCESS = 52,
        USERAUTH_BANNER = 53,
        USERAUTH_PK_OK = 60,
        USERAUTH_INFO_RESPONSE = 61,
        GLOBAL_REQUEST = 80,
        REQUEST_SUCCESS = 81,
        REQUEST_FAILURE = 82,
        CHANNEL_OPEN = 90,
        CHANNEL_OPEN_CONFIRMATION = 91,
        CHANNEL_OPEN_FAILURE = 92,
        CHANNEL_WINDOW_ADJUST = 93,
        CHANNEL_DATA = 94,
        CHANNEL_EXTENDED_DATA = 95,
        CHANNEL_EOF = 96,
        CHANNEL_CLOSE = 97,
        CHANNEL_REQUEST = 98,
        CHANNEL_SUCCESS = 99,
        CHANNEL_FAILURE = 100,
    }
}

impl MsgType {
    /// The other names of the shared numbers, which `KNOWN` cannot list twice.
    pub const KEXDH_INIT: MsgType = MsgType(30);
    pub const KEXDH_REPLY: MsgType = MsgType(31);
    /// RFC 4419 §5: group exchange.
    pub const KEX_DH_GEX_REQUEST_OLD: MsgType = MsgType(30);
    pub const KEX_DH_GEX_GROUP: MsgType = MsgType(31);
    pub const KEX_DH_GEX_INIT: MsgType = MsgType(32);
    pub const KEX_DH_GEX_REPLY: MsgType = MsgType(33);
    pub const KEX_DH_GEX_REQUEST: MsgType = MsgType(34);
    pub const USERAUTH_PASSWD_CHANGEREQ: MsgType = MsgType(60);
    pub const USERAUTH_INFO_REQUEST: MsgType = MsgType(60);

    /// RFC 4253 §7.1 and §11: the transport layer's own messages, which may flow during a key exchange.
    pub fn is_transport(self) -> bool {
        (1..=49).contains(&self.0)
    }
}

open_enum! {
    /// SSH_MSG_DISCONNECT reason codes (RFC 4253 §11.1).
    DisconnectReason(u32) {
        HOST_NOT_ALLOWED_TO_CONNECT = 1,
        PROTOCOL_ERROR = 2,
        KEY_EXCHANGE_FAILED = 3,
        RESERVED = 4,
        MAC_ERROR = 5,
        COMPRESSION_ERROR = 6,
        SERVICE_NOT_AVAILABLE = 7,
        PROTOCOL_VERSION_NOT_SUPPORTED = 8,
        HOST_KEY_NOT_VERIFIABLE = 9,
        CONNECTION_LOST = 10,
        BY_APPLICATION = 11,
        TOO_MANY_CONNECTIONS = 12,
        AUTH_CANCELLED_BY_USER = 13,
        NO_MORE_AUTH_METHODS_AVAILABLE = 14,
        ILLEGAL_USER_NAME = 15,
    }
}

open_enum! {
    /// SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1).
    ChannelOpenFailureReason(u32) {
        ADMINISTRATIVELY_PROHIBITED = 1,
        CONNECT_FAILED = 2,
        UNKNOWN_CHANNEL_TYPE = 3,
        RESOURCE_SHORTAGE = 4,
    }
}

open_enum! {
    /// SSH_MSG_CHANNEL_EXTENDED_DATA type codes (RFC 4254 §5.2).
    ExtendedDataType(u32) {
        STDERR = 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_print_in_hex_and_round_trip() {
        let r = DisconnectReason(0x99);
        assert_eq!(format!("{r:?}"), "DisconnectReason(0x99)");
        assert_eq!(DisconnectReason::decode(&mut Reader::new(&r.to_bytes())).ok(), Some(r));
        assert_eq!(format!("{:?}", DisconnectReason::KEY_EXCHANGE_FAILED), "KEY_EXCHANGE_FAILED");
        assert_eq!(DisconnectReason::from_name("key_exchange_failed"), Some(DisconnectReason(3)));
    }
}
