//! Transport-layer messages: RFC 4253 §7-§11, RFC 5656 §4 (ECDH), RFC 8308 §2.3 (EXT_INFO).

use super::wire_struct;
use crate::enums::DisconnectReason;
use crate::types::{Bool, Bytes, Cookie, NameList};

wire_struct! {
    /// SSH_MSG_DISCONNECT (RFC 4253 §11.1).
    pub struct Disconnect {
        pub reason: DisconnectReason,
        pub description: Bytes,
        pub language: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_IGNORE (RFC 4253 §11.2).
    pub struct Ignore {
        pub data: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_UNIMPLEMENTED (RFC 4253 §11.4): names the sequence number of the packet it rejects.
    pub struct Unimplemented {
        pub sequence_number: u32,
    }
}

wire_struct! {
    /// SSH_MSG_DEBUG (RFC 4253 §11.3).
    pub struct Debug {
        pub always_display: Bool,
        pub message: Bytes,
        pub language: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_SERVICE_REQUEST (RFC 4253 §10).
    pub struct ServiceRequest {
        pub service: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_SERVICE_ACCEPT (RFC 4253 §10).
    pub struct ServiceAccept {
        pub service: Bytes,
    }
}

wire_struct! {
    /// One extension of SSH_MSG_EXT_INFO.
    pub struct Extension {
        pub name: Bytes,
        pub value: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_EXT_INFO (RFC 8308 §2.3).
    pub struct ExtInfo {
        pub extensions: Vec<Extension>,
    }
}

impl ExtInfo {
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.extensions.iter().find(|e| e.name.as_slice() == name.as_bytes()).map(|e| &e.value)
    }
}

wire_struct! {
    /// SSH_MSG_KEXINIT (RFC 4253 §7.1).
    pub struct KexInit {
        pub cookie: Cookie,
        pub kex_algorithms: NameList,
        pub server_host_key_algorithms: NameList,
        pub encryption_algorithms_client_to_server: NameList,
        pub encryption_algorithms_server_to_client: NameList,
        pub mac_algorithms_client_to_server: NameList,
        pub mac_algorithms_server_to_client: NameList,
        pub compression_algorithms_client_to_server: NameList,
        pub compression_algorithms_server_to_client: NameList,
        pub languages_client_to_server: NameList,
        pub languages_server_to_client: NameList,
        pub first_kex_packet_follows: Bool,
        pub reserved: u32,
    }
}

wire_struct! {
    /// SSH_MSG_NEWKEYS (RFC 4253 §7.3).
    pub struct NewKeys {}
}

wire_struct! {
    /// SSH_MSG_KEX_ECDH_INIT (RFC 5656 §4; also curve25519-sha256, RFC 8731).
    pub struct KexEcdhInit {
        pub q_c: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_ECDH_REPLY (RFC 5656 §4).
    pub struct KexEcdhReply {
        pub k_s: Bytes,
        pub q_s: Bytes,
        pub signature: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEXDH_INIT (RFC 4253 §8). `e` is an mpint, kept as its raw wire bytes.
    pub struct KexdhInit {
        pub e: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEXDH_REPLY (RFC 4253 §8).
    pub struct KexdhReply {
        pub k_s: Bytes,
        pub f: Bytes,
        pub signature: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_DH_GEX_REQUEST (RFC 4419 §3): the group sizes, in bits, we accept and prefer.
    pub struct KexDhGexRequest {
        pub min: u32,
        pub n: u32,
        pub max: u32,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_DH_GEX_REQUEST_OLD (RFC 4419 §5): the preferred size alone.
    pub struct KexDhGexRequestOld {
        pub n: u32,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_DH_GEX_GROUP (RFC 4419 §3). `p` and `g` are mpints, kept as their raw wire bytes.
    pub struct KexDhGexGroup {
        pub p: Bytes,
        pub g: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_DH_GEX_INIT (RFC 4419 §3).
    pub struct KexDhGexInit {
        pub e: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_KEX_DH_GEX_REPLY (RFC 4419 §3).
    pub struct KexDhGexReply {
        pub k_s: Bytes,
        pub f: Bytes,
        pub signature: Bytes,
    }
}
