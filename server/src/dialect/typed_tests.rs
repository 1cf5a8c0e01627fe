//! The typed chat events codec against the golden samples: native frames
//! in, envelopes out, and each client envelope into native frames.

use std::collections::VecDeque;
use std::path::PathBuf;

use roomcast_shared::{ClientFrame, Envelope as NativeEnvelope, SetStatus};
use serde_json::Value;

use super::*;
use crate::dialect::testing::golden;

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn typed(side: &str, name: &str) -> String {
    golden(&format!("dialects/typed/{side}/{name}.json"))
}

/// The native sample `name` with the original's integer ids: room
/// `general` is 456, alice 123 and bob 124.
fn native_with_ids(name: &str) -> String {
    golden(&format!("server/{name}.json"))
        .replace(r#""room": "general""#, r#""room": "456""#)
        .replace(r#""id": "alice""#, r#""id": "123""#)
        .replace(r#""id": "bob""#, r#""id": "124""#)
}

/// What a fresh encoder makes of `native`, with each `timestamp` the
/// writer stamped (checked to be RFC 3339) replaced by the sample's.
fn encode(native: String, stamp: &str) -> Vec<Value> {
    let frames = VecDeque::from([Outbound::Frame(native.into())]);
    Encoder
        .encode(frames)
        .iter()
        .map(|frame| {
            let Outbound::Frame(text) = frame else { panic!("a control frame: {frame:?}") };
            let mut value = json_of(text.as_str());
            let timestamp = value["timestamp"].as_str().expect("a timestamp").to_owned();
            OffsetDateTime::parse(&timestamp, &Rfc3339).expect("an RFC 3339 timestamp");
            if value["data"]["last_seen"] == timestamp.as_str() {
                value["data"]["last_seen"] = stamp.into();
            }
            if !["message", "pong"].contains(&value["type"].as_str().unwrap_or("")) {
                value["timestamp"] = stamp.into();
            }
            value
        })
        .collect()
}

const STAMP: &str = "2026-11-22T10:15:02.250Z";

fn sample(name: &str) -> Value {
    json_of(&typed("server", name))
}

#[test]
fn native_samples_become_the_typed_samples() {
    let cases: &[(&str, &[&str])] = &[
        ("message", &["message"]),
        ("typing", &["typing"]),
        // Leaves first, as a diff is applied: Dave, then Carol's arrival
        // and Bob's change.
        ("presence_diff", &["user_status_offline", "user_status_online", "user_status_away"]),
        ("error", &["error"]),
        ("pong", &["pong"]),
    ];
    for (native, expected) in cases {
        let expected: Vec<Value> = expected.iter().map(|name| sample(name)).collect();
        assert_eq!(encode(native_with_ids(native), STAMP), expected, "native {native}");
    }
}

#[test]
fn frames_without_a_typed_form_are_dropped() {
    for name in [
        "ready",
        "joined",
        "left",
        "ack",
        "event",
        "history",
        "members",
        "message_deleted",
        "message_updated",
        "notification",
        "occupancy",
        "read",
    ] {
        assert_eq!(encode(golden(&format!("server/{name}.json")), STAMP), Vec::<Value>::new());
    }
}

#[test]
fn string_ids_stay_strings() {
    let [message] = &encode(golden("server/message.json"), STAMP)[..] else { panic!("one") };
    assert_eq!(message["room_id"], "general");
    assert_eq!(message["data"]["chat"], "general");
    assert_eq!(message["data"]["sender"], "alice");
    assert_eq!(message["data"]["sender_info"]["id"], "alice");
}

#[test]
fn only_integers_javascript_holds_exactly_are_numbers() {
    assert_eq!(id_value("0"), Value::from(0));
    assert_eq!(id_value("456"), Value::from(456));
    assert_eq!(id_value("9007199254740991"), Value::from(9_007_199_254_740_991_u64));
    for string in ["9007199254740992", "0456", "-1", "1.5", "", "4a", "dm:1,2", "+4"] {
        assert_eq!(id_value(string), Value::from(string), "{string}");
    }
}

/// The one native frame `decoder` makes of `text`.
fn decode_one(decoder: &mut Decoder, text: &str) -> ClientFrame {
    let Decoded::Frames(frames) = decoder.decode(text) else { panic!("refused: {text}") };
    let [frame] = &frames[..] else { panic!("one frame of {text}: {frames:?}") };
    let native: NativeEnvelope<ClientFrame> = serde_json::from_str(frame).expect("a native frame");
    native.frame
}

fn signed_in() -> Decoder {
    let (mut decoder, _) = codec();
    assert!(matches!(decoder.on_open("123"), Decoded::Frames(frames) if frames.is_empty()));
    decoder
}

#[test]
fn the_client_samples_become_native_frames() {
    let mut decoder = signed_in();
    let sample = |name: &str| typed("client", name);
    let ClientFrame::Join { room, since, history, member_events } =
        decode_one(&mut decoder, &sample("join_room"))
    else {
        panic!("a join");
    };
    assert_eq!((room.as_str(), since, history, member_events), ("456", None, Some(0), Some(true)));
    let ClientFrame::Leave { room } = decode_one(&mut decoder, &sample("leave_room")) else {
        panic!("a leave");
    };
    assert_eq!(room.as_str(), "456");
    let ClientFrame::Send { room, content, client_id, data } =
        decode_one(&mut decoder, &sample("message"))
    else {
        panic!("a send");
    };
    assert_eq!((room.as_str(), content.as_str(), data), ("456", "Hello world!", None));
    assert!(client_id.starts_with("typed-"), "{client_id}");
    let ClientFrame::Send { client_id: again, .. } = decode_one(&mut decoder, &sample("message"))
    else {
        panic!("a send");
    };
    assert_ne!(client_id, again, "each frame is a new message, under a key of its own");
    let ClientFrame::Typing { room, is_typing } = decode_one(&mut decoder, &sample("typing"))
    else {
        panic!("typing");
    };
    assert_eq!((room.as_str(), is_typing), ("456", true));
    let ClientFrame::Presence { status, custom } = decode_one(&mut decoder, &sample("user_status"))
    else {
        panic!("presence");
    };
    assert_eq!((status, custom), (SetStatus::Online, None));
    assert!(matches!(decode_one(&mut decoder, &sample("ping")), ClientFrame::Ping));
    let ClientFrame::Auth { token } = decode_one(&mut decoder, &sample("auth")) else {
        panic!("auth");
    };
    assert!(token.is_some_and(|t| t.starts_with("eyJ")));
}

#[test]
fn offline_is_invisible_and_room_ids_may_be_strings() {
    let mut decoder = signed_in();
    let status = r#"{"type": "user_status", "data": {"status": "offline"}}"#;
    let ClientFrame::Presence { status, .. } = decode_one(&mut decoder, status) else {
        panic!("presence");
    };
    assert_eq!(status, SetStatus::Invisible);
    // A string room id, and the envelope's `room_id` when `data` has none.
    for text in [
        r#"{"type": "join_room", "data": {"room_id": "genel_sohbet"}}"#,
        r#"{"type": "join_room", "data": {}, "room_id": "genel_sohbet"}"#,
    ] {
        let ClientFrame::Join { room, .. } = decode_one(&mut decoder, text) else { panic!() };
        assert_eq!(room.as_str(), "genel_sohbet");
    }
}

/// Whether `decoded` refuses with `bad_request` (the connection stays).
fn is_bad_request(decoded: &Decoded) -> bool {
    matches!(decoded, Decoded::Refused(err) if err.close().is_none() && err.code() == roomcast_shared::ErrorCode::BadRequest)
}

/// Whether `decoded` refuses and closes with 4001.
fn closes_unauthorized(decoded: &Decoded) -> bool {
    matches!(decoded, Decoded::Refused(err) if err.close().is_some_and(|(code, _)| code == roomcast_shared::CloseCode::UNAUTHORIZED))
}

#[test]
fn bad_envelopes_are_refused_and_the_connection_stays() {
    let mut decoder = signed_in();
    for bad in [
        "not json",
        "[]",
        "{}",
        r#"{"type": 5}"#,
        r#"{"type": "dance", "data": {}}"#,
        r#"{"type": "join_room", "data": 5}"#,
        r#"{"type": "join_room", "data": {}}"#,
        r#"{"type": "join_room", "data": {"room_id": null}}"#,
        r#"{"type": "join_room", "data": {"room_id": -1}}"#,
        r#"{"type": "join_room", "data": {"room_id": 4.5}}"#,
        r#"{"type": "join_room", "data": {"room_id": true}}"#,
        r#"{"type": "join_room", "data": {"room_id": ""}}"#,
        r#"{"type": "join_room", "data": {"room_id": "a b"}}"#,
        r#"{"type": "message", "data": {"room_id": 1}}"#,
        r#"{"type": "message", "data": {"room_id": 1, "content": 5}}"#,
        r#"{"type": "typing", "data": {"room_id": 1, "is_typing": "yes"}}"#,
        r#"{"type": "user_status", "data": {"status": "dancing"}}"#,
        r#"{"type": "user_status", "data": {}}"#,
        r#"{"type": "auth", "data": {"token": 5}}"#,
    ] {
        assert!(is_bad_request(&decoder.decode(bad)), "{bad}");
    }
    let long = format!(r#"{{"type": "join_room", "data": {{"room_id": "{}"}}}}"#, "x".repeat(200));
    assert!(is_bad_request(&decoder.decode(&long)));
    // An `auth` without a token on a signed-in connection does nothing.
    let auth = r#"{"type": "auth", "data": {"user_id": 123}}"#;
    assert!(matches!(decoder.decode(auth), Decoded::Frames(frames) if frames.is_empty()));
}

#[test]
fn an_anonymous_connection_must_send_auth_with_a_token_first() {
    for first in [
        typed("client", "join_room"),
        typed("client", "ping"),
        r#"{"type": "auth", "data": {"user_id": 123}}"#.to_owned(),
        r#"{"type": "auth"}"#.to_owned(),
        r#"{"type": "auth", "data": {"token": null}}"#.to_owned(),
        "not json".to_owned(),
    ] {
        let (mut decoder, _) = codec();
        assert!(closes_unauthorized(&decoder.decode(&first)), "{first}");
    }
    let (mut decoder, _) = codec();
    let ClientFrame::Auth { token } = decode_one(&mut decoder, &typed("client", "auth")) else {
        panic!("auth");
    };
    assert!(token.is_some());
    // Signed in from here on (a refused token closes the connection).
    assert!(matches!(decode_one(&mut decoder, &typed("client", "ping")), ClientFrame::Ping));
}

#[test]
fn control_frames_keep_their_place() {
    crate::dialect::testing::control_frames_keep_their_place(
        &mut Encoder,
        golden("server/ack.json"),
        golden("server/message.json"),
    );
}

#[test]
fn the_typed_golden_dir_holds_nothing_untested() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden/dialects");
    let mut files = Vec::new();
    for side in ["client", "server"] {
        let dir = root.join("typed").join(side);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.expect("an entry").file_name().into_string().expect("UTF-8");
            files.push(format!("{side}/{name}"));
        }
    }
    files.sort();
    // Each one is read by a test of this file.
    let expected = [
        "client/auth.json",
        "client/join_room.json",
        "client/leave_room.json",
        "client/message.json",
        "client/ping.json",
        "client/typing.json",
        "client/user_status.json",
        "server/error.json",
        "server/message.json",
        "server/pong.json",
        "server/typing.json",
        "server/user_status_away.json",
        "server/user_status_offline.json",
        "server/user_status_online.json",
    ];
    assert_eq!(files, expected);
}
