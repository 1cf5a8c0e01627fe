//! Property tests of what parses untrusted input: room names and client
//! frames. Bounded (a few hundred cases each) so they run in every test run.

use proptest::prelude::*;
use roomcast_shared::frame::CLIENT_FRAME_TYPES;
use roomcast_shared::{ClientFrame, Envelope, Position, RoomName, SetStatus};

/// The room-name rule, written independently of `RoomName::new` (another
/// crate's Unicode tables, composition rather than a check). Without the
/// `xid` feature any non-ASCII character passes (the server checks them).
fn is_valid_room_name(s: &str) -> bool {
    use unicode_xid::UnicodeXID;
    let ascii = |c: char| c.is_ascii_alphanumeric() || "_.:@,-".contains(c);
    let unchecked = |c: char| cfg!(not(feature = "xid")) && !c.is_ascii();
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| ascii(c) || unchecked(c) || UnicodeXID::is_xid_start(c) || c.is_numeric());
    (1..=128).contains(&s.len())
        && first_ok
        && s.chars()
            .all(|c| ascii(c) || unchecked(c) || (!c.is_ascii() && UnicodeXID::is_xid_continue(c)))
        && (cfg!(not(feature = "nfc")) || composed(s))
}

fn composed(s: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().eq(s.chars())
}

fn room() -> impl Strategy<Value = RoomName> {
    "[A-Za-z0-9_.:@,-]{1,128}".prop_map(|s| RoomName::new(s).expect("generated from the rule"))
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let text = ".{0,64}";
    prop_oneof![
        text.prop_map(|token| ClientFrame::Auth { token: Some(token) }),
        (
            room(),
            proptest::option::of(("[a-z0-9]{1,12}", any::<u64>())),
            proptest::option::of(0u16..=100),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(room, since, history, member_events)| ClientFrame::Join {
                room,
                since: since.map(|(epoch, offset)| Position { epoch, offset }),
                history,
                member_events,
            }),
        room().prop_map(|room| ClientFrame::Leave { room }),
        (room(), text, text, proptest::option::of(text)).prop_map(
            |(room, content, client_id, note)| ClientFrame::Send {
                room,
                content,
                client_id,
                data: note.map(|note| Box::new(serde_json::json!({ "note": note }))),
            }
        ),
        (room(), text, text, proptest::option::of(text)).prop_map(|(room, id, content, note)| {
            ClientFrame::Edit {
                room,
                id,
                content,
                data: note.map(|note| Box::new(serde_json::json!({ "note": note }))),
            }
        }),
        (room(), text).prop_map(|(room, id)| ClientFrame::Delete { room, id }),
        (room(), any::<bool>())
            .prop_map(|(room, is_typing)| ClientFrame::Typing { room, is_typing }),
        (room(), text).prop_map(|(room, id)| ClientFrame::Read { room, id }),
        (
            prop_oneof![
                Just(SetStatus::Online),
                Just(SetStatus::Away),
                Just(SetStatus::Busy),
                Just(SetStatus::Invisible)
            ],
            proptest::option::of(text)
        )
            .prop_map(|(status, custom)| ClientFrame::Presence { status, custom }),
        (room(), proptest::option::of(any::<u64>()), proptest::option::of(0u16..=100))
            .prop_map(|(room, before, limit)| ClientFrame::History { room, before, limit }),
        (room(), proptest::option::of(text), proptest::option::of(any::<u16>()))
            .prop_map(|(room, cursor, limit)| ClientFrame::Members { room, cursor, limit }),
        Just(ClientFrame::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn room_names_follow_the_rule(
        s in "\\PC{0,140}|[A-Za-z0-9_.:@,-]{0,130}|[\\p{L}\\p{M}\\p{N}\\p{Pc}_.:@,-]{0,50}"
    ) {
        prop_assert_eq!(RoomName::new(s.clone()).is_ok(), is_valid_room_name(&s));
    }

    #[test]
    fn room_names_in_frames_are_checked_when_parsing(s in "\\PC{0,140}") {
        let frame = serde_json::json!({"type": "leave", "room": s});
        let parsed = serde_json::from_value::<Envelope<ClientFrame>>(frame);
        prop_assert_eq!(parsed.is_ok(), is_valid_room_name(&s));
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame(), reference in proptest::option::of(any::<u32>())) {
        let envelope = Envelope::with_ref(reference.map(|r| u64::from(r).into()), frame);
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope<ClientFrame> = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, envelope);
    }

    #[test]
    fn arbitrary_text_never_panics_the_decoder(text in "\\PC{0,200}") {
        let _ = serde_json::from_str::<Envelope<ClientFrame>>(&text);
    }

    #[test]
    fn frames_with_a_known_type_but_random_fields_are_refused_or_well_formed(
        kind in proptest::sample::select(CLIENT_FRAME_TYPES),
        fields in proptest::collection::btree_map("[a-z_]{1,10}", any::<i64>(), 0..5),
    ) {
        let mut frame = serde_json::json!(fields);
        frame["type"] = serde_json::json!(kind);
        if let Ok(parsed) = serde_json::from_value::<Envelope<ClientFrame>>(frame) {
            // Only frames whose required fields could all be numbers parse.
            prop_assert_eq!(parsed.frame.kind(), kind);
        }
    }
}
