//! The Socket.IO codec against the golden samples: each native server
//! sample into the events named for it, and each client sample into a
//! native client frame.

use std::path::PathBuf;

use roomcast_shared::{ClientFrame, Envelope};

use super::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden")
}

fn golden(path: &str) -> Value {
    let file = golden_dir().join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The event each native sample becomes, if any (its file in
/// `dialects/socketio/server/` is named after it).
const SERVER: &[(&str, Option<&str>)] = &[
    ("message", Some("new_message")),
    ("message_updated", Some("message_updated")),
    ("message_deleted", Some("message_deleted")),
    ("read", Some("message_read")),
    ("typing", Some("user_typing")),
    ("notification", Some("notification")),
    ("event", Some("order.shipped")),
    ("error", Some("error")),
    ("ready", None),
    ("presence_diff", None),
    ("occupancy", None),
    ("members", None),
    ("history", None),
    ("pong", None),
];

#[test]
fn native_samples_become_the_socketio_samples() {
    for (native, event) in SERVER {
        // Without its `ref`: an error answering an event is that event's
        // answer (see below), one without is an `error` event.
        let mut frame = golden(&format!("server/{native}.json"));
        frame.as_object_mut().expect("an object").remove("ref");
        let text = frame.to_string();
        let emitted: Vec<_> = encode(&text)
            .into_iter()
            .filter_map(|out| match out {
                Out::Emit(name, data) => Some((name, data)),
                Out::Seen(..) => None,
                Out::Answer(..) => panic!("{native}: an answer without a ref"),
            })
            .collect();
        match event {
            Some(event) => {
                let expected = golden(&format!("dialects/socketio/server/{event}.json"));
                assert_eq!(emitted, [(event.to_string(), expected)], "{native}");
            }
            None => assert!(emitted.is_empty(), "{native}: {emitted:?}"),
        }
    }
}

#[test]
fn every_socketio_server_sample_is_checked() {
    let dir = golden_dir().join("dialects/socketio/server");
    for entry in std::fs::read_dir(&dir).expect("the samples' directory") {
        let name = entry.expect("a sample").file_name().into_string().expect("UTF-8 name");
        let event = name.strip_suffix(".json").expect("a .json sample");
        assert!(SERVER.iter().any(|(_, e)| *e == Some(event)), "{name} is checked by no test");
    }
}

#[test]
fn a_message_is_remembered_for_mark_read() {
    let text = golden("server/message.json").to_string();
    let seen: Vec<_> = encode(&text)
        .into_iter()
        .filter_map(|out| match out {
            Out::Seen(id, room) => Some((id, room)),
            _ => None,
        })
        .collect();
    assert_eq!(seen, [("0198f3a3-1b7e-7f02-b4c8-5a2e9d3f1c45".into(), "general".into())]);
}

#[test]
fn answers_go_to_the_event_of_their_ref() {
    let ack = r#"{"ref":7,"type":"ack","id":"m1","offset":3,"client_id":"sio-x-7"}"#;
    assert_eq!(
        encode(ack),
        [Out::Answer(7, Answer::Done(json!({"ok": true, "id": "m1", "offset": 3})))]
    );
    let joined = r#"{"ref":2,"type":"joined","room":"conversation:9","epoch":"e","offset":0,"count":1,"members":[],"messages":[]}"#;
    assert_eq!(encode(joined), [Out::Answer(2, Answer::Done(json!({"ok": true})))]);
    let refused = r#"{"ref":3,"type":"error","code":"rate_limited","message":"slow down","retry_after_ms":250}"#;
    let [Out::Answer(3, answer)] = &encode(refused)[..] else { panic!("one answer") };
    assert_eq!(
        answer,
        &Answer::Refused(
            json!({"code": "rate_limited", "message": "slow down", "retryAfterMs": 250})
        )
    );
}

/// The client samples, with the native frame type each becomes.
const CLIENT: &[(&str, &str)] = &[
    ("join_conversation", "join"),
    ("leave_conversation", "leave"),
    ("send_message", "send"),
    ("typing", "typing"),
    ("mark_read", "read"),
];

#[test]
fn client_samples_become_native_client_frames() {
    for (event, native) in CLIENT {
        let data = golden(&format!("dialects/socketio/client/{event}.json"));
        let command =
            decode(event, data, 5, || "sio-a-5".into(), |_| Some("conversation:1".into()))
                .unwrap_or_else(|refusal| panic!("{event}: {refusal:?}"));
        assert_eq!(command.frame["type"], *native, "{event}");
        assert_eq!(command.frame["ref"], 5, "{event}");
        let text = command.frame.to_string();
        let parsed: Result<Envelope<ClientFrame>, _> = serde_json::from_str(&text);
        assert!(parsed.is_ok(), "{event}: {text} is no native frame: {parsed:?}");
        assert_eq!(command.answered, matches!(*native, "join" | "leave" | "send"), "{event}");
    }
}

#[test]
fn conversation_ids_keep_their_kind() {
    let room = |data: Value| decode("join_conversation", data, 1, String::new, |_| None);
    assert_eq!(room(json!(123)).expect("a number").frame["room"], "conversation:123");
    assert_eq!(room(json!("abc")).expect("a string").frame["room"], "conversation:abc");
    assert_eq!(conversation_id("conversation:123"), json!(123));
    assert_eq!(conversation_id("conversation:0123"), json!("0123"));
    assert_eq!(conversation_id("conversation:abc"), json!("abc"));
    assert_eq!(conversation_id("user:alice"), Value::Null);
}

#[test]
fn hostile_events_are_refused_with_a_reason() {
    let refused = |event: &str, data: Value| {
        decode(event, data, 1, String::new, |_| None).expect_err(event).code
    };
    assert_eq!(refused("join_conversation", json!("")), ErrorCode::BadRequest);
    assert_eq!(refused("join_conversation", json!(-1)), ErrorCode::BadRequest);
    assert_eq!(refused("join_conversation", json!(1.5)), ErrorCode::BadRequest);
    assert_eq!(refused("join_conversation", json!({"id": 1})), ErrorCode::BadRequest);
    assert_eq!(refused("join_conversation", Value::Null), ErrorCode::BadRequest);
    assert_eq!(refused("send_message", json!({"content": "x"})), ErrorCode::BadRequest);
    assert_eq!(refused("typing", json!({"conversationId": 1})), ErrorCode::BadRequest);
    assert_eq!(refused("mark_read", json!({"messageId": "unseen"})), ErrorCode::NotFound);
    assert_eq!(refused("", Value::Null), ErrorCode::BadRequest);
    assert_eq!(refused("connect", Value::Null), ErrorCode::BadRequest);
}

#[test]
fn backend_events_with_reserved_names_are_not_emitted() {
    for name in RESERVED {
        let frame =
            json!({"type": "event", "room": "user:a", "name": name, "data": 1, "created_at": "t"});
        assert_eq!(encode(&frame.to_string()), [], "{name}");
    }
}
