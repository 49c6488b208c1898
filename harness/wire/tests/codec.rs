//! Property tests of the wire codec: every message type round-trips byte-exactly, and decoding
//! arbitrary bytes (in every context) returns a value or an error, never a panic.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use sshspec_wire::msg::*;
use sshspec_wire::*;

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(Bytes)
}
fn text() -> impl Strategy<Value = Bytes> {
    "[ -~]{0,20}".prop_map(Bytes::from)
}
fn names() -> impl Strategy<Value = NameList> {
    prop::collection::vec("[a-z0-9@.+-]{1,16}", 0..5).prop_map(NameList)
}
fn boolean() -> impl Strategy<Value = Bool> {
    any::<u8>().prop_map(Bool)
}
fn other_name() -> impl Strategy<Value = Bytes> {
    "x-[a-z]{1,8}@sshspec.invalid".prop_map(Bytes::from)
}
fn rest() -> impl Strategy<Value = Rest> {
    bytes().prop_map(Rest)
}

const ECDH: DecodeContext = DecodeContext { kex: KexFamily::Ecdh, auth: AuthFamily::Unset };
const DH: DecodeContext = DecodeContext { kex: KexFamily::Dh, auth: AuthFamily::Unset };
const GEX: DecodeContext = DecodeContext { kex: KexFamily::Gex, auth: AuthFamily::Unset };
fn auth(a: AuthFamily) -> DecodeContext {
    DecodeContext { kex: KexFamily::Ecdh, auth: a }
}

fn arm<S: Strategy<Value = Message> + 'static>(s: S, ctx: DecodeContext) -> BoxedStrategy<(Message, DecodeContext)> {
    s.prop_map(move |m| (m, ctx)).boxed()
}

fn any_message() -> impl Strategy<Value = (Message, DecodeContext)> {
    let auth_method = prop_oneof![
        Just(AuthMethod::None {}),
        (boolean(), bytes(), prop::option::of(bytes()))
            .prop_map(|(change, password, new_password)| AuthMethod::Password { change, password, new_password }),
        (boolean(), text(), bytes(), prop::option::of(bytes())).prop_map(|(signed, algorithm, key, signature)| {
            AuthMethod::Publickey { signed, algorithm, key, signature }
        }),
        (text(), text()).prop_map(|(language, submethods)| AuthMethod::KeyboardInteractive { language, submethods }),
        (other_name(), rest()).prop_map(|(name, data)| AuthMethod::Other { name, data }),
    ];
    let channel_type = prop_oneof![
        Just(ChannelType::Session {}),
        (bytes(), any::<u32>()).prop_map(|(originator_address, originator_port)| {
            ChannelType::X11 { originator_address, originator_port }
        }),
        (bytes(), any::<u32>(), bytes(), any::<u32>()).prop_map(|(a, b, c, d)| {
            ChannelType::DirectTcpip {
                host_to_connect: a,
                port_to_connect: b,
                originator_address: c,
                originator_port: d,
            }
        }),
        (bytes(), any::<u32>(), bytes(), any::<u32>()).prop_map(|(a, b, c, d)| {
            ChannelType::ForwardedTcpip {
                address_connected: a,
                port_connected: b,
                originator_address: c,
                originator_port: d,
            }
        }),
        (other_name(), rest()).prop_map(|(name, data)| ChannelType::Other { name, data }),
    ];
    let channel_request = prop_oneof![
        (text(), any::<[u32; 4]>(), bytes()).prop_map(|(term, d, modes)| {
            ChannelRequestKind::PtyReq {
                term,
                width_chars: d[0],
                height_rows: d[1],
                width_pixels: d[2],
                height_pixels: d[3],
                modes,
            }
        }),
        (text(), bytes()).prop_map(|(name, value)| ChannelRequestKind::Env { name, value }),
        Just(ChannelRequestKind::Shell {}),
        bytes().prop_map(|command| ChannelRequestKind::Exec { command }),
        text().prop_map(|name| ChannelRequestKind::Subsystem { name }),
        any::<[u32; 4]>().prop_map(|d| ChannelRequestKind::WindowChange {
            width_chars: d[0],
            height_rows: d[1],
            width_pixels: d[2],
            height_pixels: d[3]
        }),
        boolean().prop_map(|client_can_do| ChannelRequestKind::XonXoff { client_can_do }),
        text().prop_map(|signal_name| ChannelRequestKind::Signal { signal_name }),
        any::<u32>().prop_map(|exit_status| ChannelRequestKind::ExitStatus { exit_status }),
        (text(), boolean(), text(), text()).prop_map(|(signal_name, core_dumped, error_message, language)| {
            ChannelRequestKind::ExitSignal { signal_name, core_dumped, error_message, language }
        }),
        (other_name(), rest()).prop_map(|(name, data)| ChannelRequestKind::Other { name, data }),
    ];
    let global = prop_oneof![
        (bytes(), any::<u32>()).prop_map(|(address, port)| GlobalRequestKind::TcpipForward { address, port }),
        (bytes(), any::<u32>()).prop_map(|(address, port)| GlobalRequestKind::CancelTcpipForward { address, port }),
        (other_name(), rest()).prop_map(|(name, data)| GlobalRequestKind::Other { name, data }),
    ];
    let kexinit =
        (any::<[u8; 16]>(), prop::collection::vec(names(), 10), boolean(), any::<u32>()).prop_map(|(c, l, f, r)| {
            Message::KexInit(KexInit {
                cookie: Cookie(c),
                kex_algorithms: l[0].clone(),
                server_host_key_algorithms: l[1].clone(),
                encryption_algorithms_client_to_server: l[2].clone(),
                encryption_algorithms_server_to_client: l[3].clone(),
                mac_algorithms_client_to_server: l[4].clone(),
                mac_algorithms_server_to_client: l[5].clone(),
                compression_algorithms_client_to_server: l[6].clone(),
                compression_algorithms_server_to_client: l[7].clone(),
                languages_client_to_server: l[8].clone(),
                languages_server_to_client: l[9].clone(),
                first_kex_packet_follows: f,
                reserved: r,
            })
        });
    let unknown_type = prop_oneof![22u8..=29, 101u8..=255];
    let arms: Vec<BoxedStrategy<(Message, DecodeContext)>> = vec![
        arm(
            (any::<u32>(), text(), text())
                .prop_map(|(r, d, l)| Disconnect { reason: DisconnectReason(r), description: d, language: l }.into()),
            ECDH,
        ),
        arm(bytes().prop_map(|data| Ignore { data }.into()), ECDH),
        arm(any::<u32>().prop_map(|sequence_number| Unimplemented { sequence_number }.into()), ECDH),
        arm(
            (boolean(), text(), text())
                .prop_map(|(a, m, l)| Debug { always_display: a, message: m, language: l }.into()),
            ECDH,
        ),
        arm(text().prop_map(|service| ServiceRequest { service }.into()), ECDH),
        arm(text().prop_map(|service| ServiceAccept { service }.into()), ECDH),
        arm(
            prop::collection::vec((text(), bytes()).prop_map(|(name, value)| Extension { name, value }), 0..4)
                .prop_map(|extensions| ExtInfo { extensions }.into()),
            ECDH,
        ),
        arm(kexinit, ECDH),
        arm(Just(NewKeys {}.into()), ECDH),
        arm(bytes().prop_map(|q_c| KexEcdhInit { q_c }.into()), ECDH),
        arm(
            (bytes(), bytes(), bytes()).prop_map(|(k_s, q_s, signature)| KexEcdhReply { k_s, q_s, signature }.into()),
            ECDH,
        ),
        arm(bytes().prop_map(|e| KexdhInit { e }.into()), DH),
        arm((bytes(), bytes(), bytes()).prop_map(|(k_s, f, signature)| KexdhReply { k_s, f, signature }.into()), DH),
        arm(any::<u32>().prop_map(|n| KexDhGexRequestOld { n }.into()), GEX),
        arm(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(min, n, max)| KexDhGexRequest { min, n, max }.into()),
            GEX,
        ),
        arm((bytes(), bytes()).prop_map(|(p, g)| KexDhGexGroup { p, g }.into()), GEX),
        arm(bytes().prop_map(|e| KexDhGexInit { e }.into()), GEX),
        arm(
            (bytes(), bytes(), bytes()).prop_map(|(k_s, f, signature)| KexDhGexReply { k_s, f, signature }.into()),
            GEX,
        ),
        arm(
            (text(), text(), auth_method)
                .prop_map(|(user, service, method)| UserauthRequest { user, service, method }.into()),
            ECDH,
        ),
        arm(
            (names(), boolean())
                .prop_map(|(methods, partial_success)| UserauthFailure { methods, partial_success }.into()),
            ECDH,
        ),
        arm(Just(UserauthSuccess {}.into()), ECDH),
        arm((text(), text()).prop_map(|(message, language)| UserauthBanner { message, language }.into()), ECDH),
        arm(
            (text(), bytes()).prop_map(|(algorithm, key)| UserauthPkOk { algorithm, key }.into()),
            auth(AuthFamily::Publickey),
        ),
        arm(
            (text(), text()).prop_map(|(prompt, language)| UserauthPasswdChangereq { prompt, language }.into()),
            auth(AuthFamily::Password),
        ),
        arm(
            (
                text(),
                text(),
                text(),
                prop::collection::vec((text(), boolean()).prop_map(|(prompt, echo)| Prompt { prompt, echo }), 0..4),
            )
                .prop_map(|(name, instruction, language, prompts)| {
                    UserauthInfoRequest { name, instruction, language, prompts }.into()
                }),
            auth(AuthFamily::KeyboardInteractive),
        ),
        arm(
            prop::collection::vec(bytes(), 0..4).prop_map(|responses| UserauthInfoResponse { responses }.into()),
            auth(AuthFamily::KeyboardInteractive),
        ),
        arm((boolean(), global).prop_map(|(want_reply, request)| GlobalRequest { want_reply, request }.into()), ECDH),
        arm(rest().prop_map(|data| RequestSuccess { data }.into()), ECDH),
        arm(Just(RequestFailure {}.into()), ECDH),
        arm(
            (channel_type, any::<[u32; 3]>()).prop_map(|(channel_type, d)| {
                ChannelOpen { channel_type, sender_channel: d[0], initial_window_size: d[1], maximum_packet_size: d[2] }
                    .into()
            }),
            ECDH,
        ),
        arm(
            (any::<[u32; 4]>(), rest()).prop_map(|(d, data)| {
                ChannelOpenConfirmation {
                    recipient_channel: d[0],
                    sender_channel: d[1],
                    initial_window_size: d[2],
                    maximum_packet_size: d[3],
                    data,
                }
                .into()
            }),
            ECDH,
        ),
        arm(
            (any::<u32>(), any::<u32>(), text(), text()).prop_map(|(c, r, d, l)| {
                ChannelOpenFailure {
                    recipient_channel: c,
                    reason: ChannelOpenFailureReason(r),
                    description: d,
                    language: l,
                }
                .into()
            }),
            ECDH,
        ),
        arm(
            any::<[u32; 2]>().prop_map(|d| ChannelWindowAdjust { recipient_channel: d[0], bytes_to_add: d[1] }.into()),
            ECDH,
        ),
        arm(
            (any::<u32>(), bytes())
                .prop_map(|(recipient_channel, data)| ChannelData { recipient_channel, data }.into()),
            ECDH,
        ),
        arm(
            (any::<u32>(), any::<u32>(), bytes()).prop_map(|(c, t, data)| {
                ChannelExtendedData { recipient_channel: c, data_type: ExtendedDataType(t), data }.into()
            }),
            ECDH,
        ),
        arm(any::<u32>().prop_map(|recipient_channel| ChannelEof { recipient_channel }.into()), ECDH),
        arm(any::<u32>().prop_map(|recipient_channel| ChannelClose { recipient_channel }.into()), ECDH),
        arm(
            (any::<u32>(), boolean(), channel_request).prop_map(|(recipient_channel, want_reply, request)| {
                ChannelRequest { recipient_channel, want_reply, request }.into()
            }),
            ECDH,
        ),
        arm(any::<u32>().prop_map(|recipient_channel| ChannelSuccess { recipient_channel }.into()), ECDH),
        arm(any::<u32>().prop_map(|recipient_channel| ChannelFailure { recipient_channel }.into()), ECDH),
        arm((unknown_type, rest()).prop_map(|(msg_type, body)| Message::Unknown(Unknown { msg_type, body })), ECDH),
    ];
    Union::new(arms)
}

fn contexts() -> [DecodeContext; 6] {
    [ECDH, DH, GEX, auth(AuthFamily::Publickey), auth(AuthFamily::Password), auth(AuthFamily::KeyboardInteractive)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_message_round_trips((m, ctx) in any_message()) {
        let wire = m.encode();
        let back = Message::decode(&wire, ctx);
        prop_assert_eq!(back.as_ref(), Ok(&m));
        prop_assert_eq!(back.map(|b| b.encode()).ok(), Some(wire));
    }

    #[test]
    fn arbitrary_bytes_never_panic(payload in prop::collection::vec(any::<u8>(), 0..300)) {
        for ctx in contexts() {
            if let Ok(m) = Message::decode(&payload, ctx) {
                // Whatever decodes re-encodes to exactly the bytes it came from.
                prop_assert_eq!(m.encode(), payload.clone());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_known_type_never_panic(t in 0u8..=101, body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut payload = vec![t];
        payload.extend(body);
        for ctx in contexts() {
            let _ = Message::decode(&payload, ctx);
        }
    }
}

/// Every variant of `Message` is produced by the strategy above: a new message type must be added there.
#[test]
fn the_strategy_covers_every_message_name() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut seen = std::collections::BTreeSet::new();
    let mut runner = TestRunner::deterministic();
    let s = any_message();
    for _ in 0..20_000 {
        let (m, _) = s.new_tree(&mut runner).unwrap().current();
        seen.insert(m.name());
    }
    let missing: Vec<_> = Message::NAMES.iter().filter(|n| !seen.contains(*n)).collect();
    assert!(missing.is_empty(), "no strategy for {missing:?}");
}

#[test]
fn a_lying_count_does_not_allocate() {
    // INFO_RESPONSE claiming 2^32-1 responses with none present: an error, at once.
    let payload = [61u8, 0xff, 0xff, 0xff, 0xff];
    assert!(Message::decode(&payload, auth(AuthFamily::KeyboardInteractive)).is_err());
}
