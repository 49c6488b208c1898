//! sshspec-wire: the SSH wire format with no I/O.
//!
//! RFC 4251 §5 data types ([`codec`], [`types`]), wire enumerations as open newtypes ([`enums`]) and
//! every message of RFC 4253, 4252, 4254, 4256 and 8308 as a typed struct ([`msg`]). Every field is
//! public and every value representable, so the scripted peer can send what no normal client would.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod codec;
pub mod enums;
pub mod msg;
pub mod types;

pub use codec::{Codec, DecodeError, Reader};
pub use enums::{ChannelOpenFailureReason, DisconnectReason, ExtendedDataType, MsgType};
pub use msg::{DecodeContext, Message};
pub use types::{Bool, Bytes, Cookie, NameList, Rest};
