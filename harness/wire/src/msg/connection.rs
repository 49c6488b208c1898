//! Connection-layer messages: RFC 4254 §4 (global requests), §5 (channels), §6 (session requests).

use super::{named_variants, wire_struct};
use crate::codec::{Codec, DecodeError, Reader};
use crate::enums::{ChannelOpenFailureReason, ExtendedDataType};
use crate::types::{Bool, Bytes, Rest};
use serde::{Deserialize, Serialize};

named_variants! {
    /// The request-specific part of SSH_MSG_GLOBAL_REQUEST (RFC 4254 §4, §7.1; OpenSSH PROTOCOL
    /// §2.4 for Unix-domain sockets).
    pub enum GlobalRequestKind {
        TcpipForward = "tcpip-forward" { address: Bytes, port: u32, },
        CancelTcpipForward = "cancel-tcpip-forward" { address: Bytes, port: u32, },
        StreamlocalForward = "streamlocal-forward@openssh.com" { socket_path: Bytes, },
        CancelStreamlocalForward = "cancel-streamlocal-forward@openssh.com" { socket_path: Bytes, },
    }
}

/// SSH_MSG_GLOBAL_REQUEST (RFC 4254 §4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalRequest {
    pub want_reply: Bool,
    pub request: GlobalRequestKind,
}

impl Codec for GlobalRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        Bytes(self.request.wire_name().to_vec()).encode(out);
        self.want_reply.encode(out);
        self.request.encode_data(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = Bytes::decode(r)?;
        let want_reply = Bool::decode(r)?;
        let request = GlobalRequestKind::decode_data(name.as_slice(), r)?;
        Ok(GlobalRequest { want_reply, request })
    }
}

wire_struct! {
    /// SSH_MSG_REQUEST_SUCCESS (RFC 4254 §4): response-specific data follows (a port, for tcpip-forward).
    pub struct RequestSuccess {
        pub data: Rest,
    }
}

wire_struct! {
    /// SSH_MSG_REQUEST_FAILURE (RFC 4254 §4).
    pub struct RequestFailure {}
}

named_variants! {
    /// The channel-type-specific part of SSH_MSG_CHANNEL_OPEN (RFC 4254 §6.1, §6.3.2, §7.2;
    /// OpenSSH PROTOCOL §2.4, whose reserved fields are kept so that they can be set).
    pub enum ChannelType {
        Session = "session" {},
        X11 = "x11" { originator_address: Bytes, originator_port: u32, },
        ForwardedTcpip = "forwarded-tcpip" {
            address_connected: Bytes, port_connected: u32, originator_address: Bytes, originator_port: u32,
        },
        DirectTcpip = "direct-tcpip" {
            host_to_connect: Bytes, port_to_connect: u32, originator_address: Bytes, originator_port: u32,
        },
        ForwardedStreamlocal = "forwarded-streamlocal@openssh.com" { socket_path: Bytes, reserved: Bytes, },
        DirectStreamlocal = "direct-streamlocal@openssh.com" { socket_path: Bytes, reserved: Bytes, reserved_port: u32, },
    }
}

/// SSH_MSG_CHANNEL_OPEN (RFC 4254 §5.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelOpen {
    pub channel_type: ChannelType,
    pub sender_channel: u32,
    pub initial_window_size: u32,
    pub maximum_packet_size: u32,
}

impl Codec for ChannelOpen {
    fn encode(&self, out: &mut Vec<u8>) {
        Bytes(self.channel_type.wire_name().to_vec()).encode(out);
        self.sender_channel.encode(out);
        self.initial_window_size.encode(out);
        self.maximum_packet_size.encode(out);
        self.channel_type.encode_data(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = Bytes::decode(r)?;
        let sender_channel = u32::decode(r)?;
        let initial_window_size = u32::decode(r)?;
        let maximum_packet_size = u32::decode(r)?;
        let channel_type = ChannelType::decode_data(name.as_slice(), r)?;
        Ok(ChannelOpen { channel_type, sender_channel, initial_window_size, maximum_packet_size })
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_OPEN_CONFIRMATION (RFC 4254 §5.1).
    pub struct ChannelOpenConfirmation {
        pub recipient_channel: u32,
        pub sender_channel: u32,
        pub initial_window_size: u32,
        pub maximum_packet_size: u32,
        pub data: Rest,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_OPEN_FAILURE (RFC 4254 §5.1).
    pub struct ChannelOpenFailure {
        pub recipient_channel: u32,
        pub reason: ChannelOpenFailureReason,
        pub description: Bytes,
        pub language: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_WINDOW_ADJUST (RFC 4254 §5.2).
    pub struct ChannelWindowAdjust {
        pub recipient_channel: u32,
        pub bytes_to_add: u32,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_DATA (RFC 4254 §5.2).
    pub struct ChannelData {
        pub recipient_channel: u32,
        pub data: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_EXTENDED_DATA (RFC 4254 §5.2).
    pub struct ChannelExtendedData {
        pub recipient_channel: u32,
        pub data_type: ExtendedDataType,
        pub data: Bytes,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_EOF (RFC 4254 §5.3).
    pub struct ChannelEof {
        pub recipient_channel: u32,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_CLOSE (RFC 4254 §5.3).
    pub struct ChannelClose {
        pub recipient_channel: u32,
    }
}

named_variants! {
    /// The request-specific part of SSH_MSG_CHANNEL_REQUEST (RFC 4254 §6).
    pub enum ChannelRequestKind {
        PtyReq = "pty-req" {
            term: Bytes, width_chars: u32, height_rows: u32, width_pixels: u32, height_pixels: u32, modes: Bytes,
        },
        Env = "env" { name: Bytes, value: Bytes, },
        Shell = "shell" {},
        Exec = "exec" { command: Bytes, },
        Subsystem = "subsystem" { name: Bytes, },
        WindowChange = "window-change" { width_chars: u32, height_rows: u32, width_pixels: u32, height_pixels: u32, },
        XonXoff = "xon-xoff" { client_can_do: Bool, },
        Signal = "signal" { signal_name: Bytes, },
        ExitStatus = "exit-status" { exit_status: u32, },
        ExitSignal = "exit-signal" { signal_name: Bytes, core_dumped: Bool, error_message: Bytes, language: Bytes, },
    }
}

/// SSH_MSG_CHANNEL_REQUEST (RFC 4254 §5.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelRequest {
    pub recipient_channel: u32,
    pub want_reply: Bool,
    pub request: ChannelRequestKind,
}

impl Codec for ChannelRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.recipient_channel.encode(out);
        Bytes(self.request.wire_name().to_vec()).encode(out);
        self.want_reply.encode(out);
        self.request.encode_data(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let recipient_channel = u32::decode(r)?;
        let name = Bytes::decode(r)?;
        let want_reply = Bool::decode(r)?;
        let request = ChannelRequestKind::decode_data(name.as_slice(), r)?;
        Ok(ChannelRequest { recipient_channel, want_reply, request })
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_SUCCESS (RFC 4254 §5.4).
    pub struct ChannelSuccess {
        pub recipient_channel: u32,
    }
}

wire_struct! {
    /// SSH_MSG_CHANNEL_FAILURE (RFC 4254 §5.4).
    pub struct ChannelFailure {
        pub recipient_channel: u32,
    }
}
