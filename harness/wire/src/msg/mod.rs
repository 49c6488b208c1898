//! Every SSH message as a typed struct, grouped by layer, and [`Message`], their union.
//!
//! Message numbers 30-49 and 60-79 mean different things depending on the negotiated key exchange
//! and the authentication method in progress, so decoding takes a [`DecodeContext`].

pub mod connection;
pub mod transport;
pub mod userauth;

use crate::codec::{Codec, DecodeError, Reader};
use crate::enums::MsgType;
use crate::types::Rest;
use serde::{Deserialize, Serialize};

pub use connection::*;
pub use transport::*;
pub use userauth::*;

/// Declares a message struct whose fields are encoded in order, each with its own [`Codec`].
macro_rules! wire_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty,)* }

        impl $crate::codec::Codec for $name {
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                #[allow(unused_imports)]
                use $crate::codec::Codec as _;
                $(self.$field.encode(out);)*
            }
            #[allow(unused_variables)]
            fn decode(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok($name { $($field: <$ty as $crate::codec::Codec>::decode(r)?,)* })
            }
        }
    };
}
pub(crate) use wire_struct;

/// Which key-exchange family owns message numbers 30-49 (RFC 4253 §7, RFC 5656 §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KexFamily {
    #[default]
    Ecdh,
    Dh,
    /// Group exchange (RFC 4419): 30-34.
    Gex,
}

/// Which authentication method owns message numbers 60-79 (RFC 4252 §7-8, RFC 4256).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthFamily {
    #[default]
    Unset,
    Publickey,
    Password,
    KeyboardInteractive,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeContext {
    pub kex: KexFamily,
    pub auth: AuthFamily,
}

/// A message whose number we do not know (or cannot place in this context): kept whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Unknown {
    pub msg_type: u8,
    pub body: Rest,
}

macro_rules! messages {
    ($($variant:ident($ty:ty) = $num:ident, $name:literal;)*) => {
        /// Any SSH message. Scenario files name a variant by its snake-case RFC name (`kexinit`,
        /// `channel_open`), and may set any of its fields.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "msg")]
        pub enum Message {
            $(#[serde(rename = $name)] $variant($ty),)*
            #[serde(rename = "unknown")]
            Unknown(Unknown),
        }

        impl Message {
            /// Every message name accepted in scenario files.
            pub const NAMES: &'static [&'static str] = &[$($name,)* "unknown"];

            pub fn msg_type(&self) -> MsgType {
                match self {
                    $(Message::$variant(_) => MsgType::$num,)*
                    Message::Unknown(u) => MsgType(u.msg_type),
                }
            }

            /// The snake-case name used in scenario files and transcripts.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Message::$variant(_) => $name,)*
                    Message::Unknown(_) => "unknown",
                }
            }

            /// The payload: message number, then the body.
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode_into(&mut out);
                out
            }

            /// Appends the payload to `out` (so a packet can be built in one buffer).
            pub fn encode_into(&self, out: &mut Vec<u8>) {
                out.push(self.msg_type().0);
                match self {
                    $(Message::$variant(m) => m.encode(out),)*
                    Message::Unknown(u) => u.body.encode(out),
                }
            }
        }

        $(impl From<$ty> for Message {
            fn from(m: $ty) -> Message { Message::$variant(m) }
        })*
    };
}

messages! {
    Disconnect(Disconnect) = DISCONNECT, "disconnect";
    Ignore(Ignore) = IGNORE, "ignore";
    Unimplemented(Unimplemented) = UNIMPLEMENTED, "unimplemented";
    Debug(Debug) = DEBUG, "debug";
    ServiceRequest(ServiceRequest) = SERVICE_REQUEST, "service_request";
    ServiceAccept(ServiceAccept) = SERVICE_ACCEPT, "service_accept";
    ExtInfo(ExtInfo) = EXT_INFO, "ext_info";
    KexInit(KexInit) = KEXINIT, "kexinit";
    NewKeys(NewKeys) = NEWKEYS, "newkeys";
    KexEcdhInit(KexEcdhInit) = KEX_ECDH_INIT, "kex_ecdh_init";
    KexEcdhReply(KexEcdhReply) = KEX_ECDH_REPLY, "kex_ecdh_reply";
    KexdhInit(KexdhInit) = KEXDH_INIT, "kexdh_init";
    KexdhReply(KexdhReply) = KEXDH_REPLY, "kexdh_reply";
    KexDhGexRequestOld(KexDhGexRequestOld) = KEX_DH_GEX_REQUEST_OLD, "kex_dh_gex_request_old";
    KexDhGexGroup(KexDhGexGroup) = KEX_DH_GEX_GROUP, "kex_dh_gex_group";
    KexDhGexInit(KexDhGexInit) = KEX_DH_GEX_INIT, "kex_dh_gex_init";
    KexDhGexReply(KexDhGexReply) = KEX_DH_GEX_REPLY, "kex_dh_gex_reply";
    KexDhGexRequest(KexDhGexRequest) = KEX_DH_GEX_REQUEST, "kex_dh_gex_request";
    UserauthRequest(UserauthRequest) = USERAUTH_REQUEST, "userauth_request";
    UserauthFailure(UserauthFailure) = USERAUTH_FAILURE, "userauth_failure";
    UserauthSuccess(UserauthSuccess) = USERAUTH_SUCCESS, "userauth_success";
    UserauthBanner(UserauthBanner) = USERAUTH_BANNER, "userauth_banner";
    UserauthPkOk(UserauthPkOk) = USERAUTH_PK_OK, "userauth_pk_ok";
    UserauthPasswdChangereq(UserauthPasswdChangereq) = USERAUTH_PASSWD_CHANGEREQ, "userauth_passwd_changereq";
    UserauthInfoRequest(UserauthInfoRequest) = USERAUTH_INFO_REQUEST, "userauth_info_request";
    UserauthInfoResponse(UserauthInfoResponse) = USERAUTH_INFO_RESPONSE, "userauth_info_response";
    GlobalRequest(GlobalRequest) = GLOBAL_REQUEST, "global_request";
    RequestSuccess(RequestSuccess) = REQUEST_SUCCESS, "request_success";
    RequestFailure(RequestFailure) = REQUEST_FAILURE, "request_failure";
    ChannelOpen(ChannelOpen) = CHANNEL_OPEN, "channel_open";
    ChannelOpenConfirmation(ChannelOpenConfirmation) = CHANNEL_OPEN_CONFIRMATION, "channel_open_confirmation";
    ChannelOpenFailure(ChannelOpenFailure) = CHANNEL_OPEN_FAILURE, "channel_open_failure";
    ChannelWindowAdjust(ChannelWindowAdjust) = CHANNEL_WINDOW_ADJUST, "channel_window_adjust";
    ChannelData(ChannelData) = CHANNEL_DATA, "channel_data";
    ChannelExtendedData(ChannelExtendedData) = CHANNEL_EXTENDED_DATA, "channel_extended_data";
    ChannelEof(ChannelEof) = CHANNEL_EOF, "channel_eof";
    ChannelClose(ChannelClose) = CHANNEL_CLOSE, "channel_close";
    ChannelRequest(ChannelRequest) = CHANNEL_REQUEST, "channel_request";
    ChannelSuccess(ChannelSuccess) = CHANNEL_SUCCESS, "channel_success";
    ChannelFailure(ChannelFailure) = CHANNEL_FAILURE, "channel_failure";
}

fn body<T: Codec>(r: &mut Reader<'_>, what: &'static str) -> Result<T, DecodeError> {
    let v = T::decode(r)?;
    r.finish(what)?;
    Ok(v)
}

impl Message {
    /// Decodes a payload (message number first). Numbers that mean nothing in `ctx` decode as
    /// [`Message::Unknown`]; a known number with a malformed body is an error.
    pub fn decode(payload: &[u8], ctx: DecodeContext) -> Result<Message, DecodeError> {
        let mut r = Reader::new(payload);
        let t = MsgType(r.u8("message number").map_err(|_| DecodeError::Empty)?);
        let r = &mut r;
        Ok(match t {
            MsgType::DISCONNECT => Message::Disconnect(body(r, "disconnect")?),
            MsgType::IGNORE => Message::Ignore(body(r, "ignore")?),
            MsgType::UNIMPLEMENTED => Message::Unimplemented(body(r, "unimplemented")?),
            MsgType::DEBUG => Message::Debug(body(r, "debug")?),
            MsgType::SERVICE_REQUEST => Message::ServiceRequest(body(r, "service_request")?),
            MsgType::SERVICE_ACCEPT => Message::ServiceAccept(body(r, "service_accept")?),
            MsgType::EXT_INFO => Message::ExtInfo(body(r, "ext_info")?),
            MsgType::KEXINIT => Message::KexInit(body(r, "kexinit")?),
            MsgType::NEWKEYS => Message::NewKeys(body(r, "newkeys")?),
            MsgType(30) if ctx.kex == KexFamily::Ecdh => Message::KexEcdhInit(body(r, "kex_ecdh_init")?),
            MsgType(31) if ctx.kex == KexFamily::Ecdh => Message::KexEcdhReply(body(r, "kex_ecdh_reply")?),
            MsgType(30) if ctx.kex == KexFamily::Gex => Message::KexDhGexRequestOld(body(r, "kex_dh_gex_request_old")?),
            MsgType(31) if ctx.kex == KexFamily::Gex => Message::KexDhGexGroup(body(r, "kex_dh_gex_group")?),
            MsgType(32) if ctx.kex == KexFamily::Gex => Message::KexDhGexInit(body(r, "kex_dh_gex_init")?),
            MsgType(33) if ctx.kex == KexFamily::Gex => Message::KexDhGexReply(body(r, "kex_dh_gex_reply")?),
            MsgType(34) if ctx.kex == KexFamily::Gex => Message::KexDhGexRequest(body(r, "kex_dh_gex_request")?),
            MsgType(30) => Message::KexdhInit(body(r, "kexdh_init")?),
            MsgType(31) => Message::KexdhReply(body(r, "kexdh_reply")?),
            MsgType::USERAUTH_REQUEST => Message::UserauthRequest(body(r, "userauth_request")?),
            MsgType::USERAUTH_FAILURE => Message::UserauthFailure(body(r, "userauth_failure")?),
            MsgType::USERAUTH_SUCCESS => Message::UserauthSuccess(body(r, "userauth_success")?),
            MsgType::USERAUTH_BANNER => Message::UserauthBanner(body(r, "userauth_banner")?),
            MsgType(60) if ctx.auth == AuthFamily::Publickey => Message::UserauthPkOk(body(r, "userauth_pk_ok")?),
            MsgType(60) if ctx.auth == AuthFamily::Password => {
                Message::UserauthPasswdChangereq(body(r, "userauth_passwd_changereq")?)
            }
            MsgType(60) if ctx.auth == AuthFamily::KeyboardInteractive => {
                Message::UserauthInfoRequest(body(r, "userauth_info_request")?)
            }
            MsgType(61) if ctx.auth == AuthFamily::KeyboardInteractive => {
                Message::UserauthInfoResponse(body(r, "userauth_info_response")?)
            }
            MsgType::GLOBAL_REQUEST => Message::GlobalRequest(body(r, "global_request")?),
            MsgType::REQUEST_SUCCESS => Message::RequestSuccess(body(r, "request_success")?),
            MsgType::REQUEST_FAILURE => Message::RequestFailure(body(r, "request_failure")?),
            MsgType::CHANNEL_OPEN => Message::ChannelOpen(body(r, "channel_open")?),
            MsgType::CHANNEL_OPEN_CONFIRMATION => {
                Message::ChannelOpenConfirmation(body(r, "channel_open_confirmation")?)
            }
            MsgType::CHANNEL_OPEN_FAILURE => Message::ChannelOpenFailure(body(r, "channel_open_failure")?),
            MsgType::CHANNEL_WINDOW_ADJUST => Message::ChannelWindowAdjust(body(r, "channel_window_adjust")?),
            MsgType::CHANNEL_DATA => Message::ChannelData(body(r, "channel_data")?),
            MsgType::CHANNEL_EXTENDED_DATA => Message::ChannelExtendedData(body(r, "channel_extended_data")?),
            MsgType::CHANNEL_EOF => Message::ChannelEof(body(r, "channel_eof")?),
            MsgType::CHANNEL_CLOSE => Message::ChannelClose(body(r, "channel_close")?),
            MsgType::CHANNEL_REQUEST => Message::ChannelRequest(body(r, "channel_request")?),
            MsgType::CHANNEL_SUCCESS => Message::ChannelSuccess(body(r, "channel_success")?),
            MsgType::CHANNEL_FAILURE => Message::ChannelFailure(body(r, "channel_failure")?),
            MsgType(n) => Message::Unknown(Unknown { msg_type: n, body: Rest::decode(r)? }),
        })
    }
}

/// Counted lists (`uint32 count` then the elements), as in EXT_INFO and keyboard-interactive.
/// Elements are read one by one, never pre-allocated from the count, so a lying count costs nothing.
impl<T: Codec> Codec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        for v in self {
            v.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.u32("count")?;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(T::decode(r)?);
        }
        Ok(out)
    }
}

/// Declares the type-specific part of a message whose layout depends on a name on the wire
/// (an auth method, a channel type, a request type). Unknown names keep their data as raw bytes.
macro_rules! named_variants {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal { $($field:ident : $ty:ty,)* },)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant { $(#[serde(default)] $field: $ty,)* },)*
            /// Any other name, its data kept as raw bytes.
            #[serde(rename = "other")]
            Other {
                #[serde(default)] name: $crate::types::Bytes,
                #[serde(default)] data: $crate::types::Rest,
            },
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Other { name: Default::default(), data: Default::default() }
            }
        }

        impl $name {
            /// The name as sent on the wire.
            pub fn wire_name(&self) -> &[u8] {
                match self {
                    $($name::$variant { .. } => $wire.as_bytes(),)*
                    $name::Other { name, .. } => name.as_slice(),
                }
            }

            #[allow(unused_variables)]
            pub fn encode_data(&self, out: &mut Vec<u8>) {
                use $crate::codec::Codec;
                match self {
                    $($name::$variant { $($field,)* } => { $($field.encode(out);)* })*
                    $name::Other { data, .. } => data.encode(out),
                }
            }

            pub fn decode_data(name: &[u8], r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                use $crate::codec::Codec;
                $(if name == $wire.as_bytes() {
                    return Ok($name::$variant { $($field: <$ty>::decode(r)?,)* });
                })*
                Ok($name::Other { name: $crate::types::Bytes(name.to_vec()), data: $crate::types::Rest::decode(r)? })
            }
        }
    };
}
pub(crate) use named_variants;
