//! Authentication-layer messages: RFC 4252 §5-§8 and RFC 4256 §3 (keyboard-interactive).

use super::{named_variants, wire_struct};
use crate::codec::{Codec, DecodeError, Reader};
use crate::types::{Bool, Bytes, NameList};
use serde::{Deserialize, Serialize};

named_variants! {
    /// The method-specific part of SSH_MSG_USERAUTH_REQUEST.
    pub enum AuthMethod {
        None = "none" {},
        /// RFC 4252 §8: `new_password` is present when `change` is TRUE.
        Password = "password" { change: Bool, password: Bytes, new_password: Option<Bytes>, },
        /// RFC 4252 §7: `signature` is present when `signed` is TRUE.
        Publickey = "publickey" { signed: Bool, algorithm: Bytes, key: Bytes, signature: Option<Bytes>, },
        /// OpenSSH PROTOCOL §3.1: publickey with the server host key of the initial key exchange
        /// after the key, inside the signed data as well.
        PublickeyHostbound = "publickey-hostbound-v00@openssh.com" {
            signed: Bool, algorithm: Bytes, key: Bytes, host_key: Bytes, signature: Option<Bytes>,
        },
        /// RFC 4252 §9: the client host's key vouches for the user on that host.
        Hostbased = "hostbased" {
            algorithm: Bytes, host_key: Bytes, client_host: Bytes, client_user: Bytes, signature: Bytes,
        },
        /// RFC 4256 §3.1.
        KeyboardInteractive = "keyboard-interactive" { language: Bytes, submethods: Bytes, },
    }
}

/// SSH_MSG_USERAUTH_REQUEST (RFC 4252 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserauthRequest {
    pub user: Bytes,
    pub service: Bytes,
    pub method: AuthMethod,
}

impl Codec for UserauthRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.user.encode(out);
        self.service.encode(out);
        Bytes(self.method.wire_name().to_vec()).encode(out);
        self.method.encode_data(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let user = Bytes::decode(r)?;
        let service = Bytes::decode(r)?;
        let name = Bytes::decode(r)?;
        let method = AuthMethod::decode_data(name.as_slice(), r)?;
        Ok(UserauthRequest { user, service, method })
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_FAILURE (RFC 4252 §5.1).
    pub struct UserauthFailure {
        pub methods: NameList,
        pub partial_success: Bool,
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_SUCCESS (RFC 4252 §5.1).
    pub struct UserauthSuccess {}
}

wire_struct! {
    /// SSH_MSG_USERAUTH_BANNER (RFC 4252 §5.4).
    pub struct UserauthBanner {
        pub message: Bytes,
        pub language: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_PK_OK (RFC 4252 §7): the key in a query is acceptable.
    pub struct UserauthPkOk {
        pub algorithm: Bytes,
        pub key: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_PASSWD_CHANGEREQ (RFC 4252 §8).
    pub struct UserauthPasswdChangereq {
        pub prompt: Bytes,
        pub language: Bytes,
    }
}

wire_struct! {
    /// One prompt of a keyboard-interactive round.
    pub struct Prompt {
        pub prompt: Bytes,
        pub echo: Bool,
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 §3.2).
    pub struct UserauthInfoRequest {
        pub name: Bytes,
        pub instruction: Bytes,
        pub language: Bytes,
        pub prompts: Vec<Prompt>,
    }
}

wire_struct! {
    /// SSH_MSG_USERAUTH_INFO_RESPONSE (RFC 4256 §3.4).
    pub struct UserauthInfoResponse {
        pub responses: Vec<Bytes>,
    }
}
