//! The Channels codec against the golden samples: native frames in, the
//! dialect's frames out, and the client's frame into native ones.

use std::collections::VecDeque;
use std::path::PathBuf;

use roomcast_shared::{ClientFrame, Envelope};
use serde_json::Value;

use super::*;
use crate::dialect::testing::golden;

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn channels(name: &str) -> Value {
    json_of(&golden(&format!("dialects/channels/server/{name}.json")))
}

/// What `encoder` makes of the native sample `name`.
fn encode(encoder: &mut Encoder, name: &str) -> Vec<Value> {
    let native = golden(&format!("server/{name}.json"));
    let frames = VecDeque::from([Outbound::Frame(native.into())]);
    let out = encoder.encode(frames);
    out.iter()
        .map(|frame| match frame {
            Outbound::Frame(text) => json_of(text.as_str()),
            other => panic!("a control frame out of a text frame: {other:?}"),
        })
        .collect()
}

/// Every native sample, in the order a connection could see them.
const NATIVE: &[&str] = &[
    "ready",
    "joined",
    "message",
    "presence_diff",
    "notification",
    "error",
    "ack",
    "event",
    "history",
    "left",
    "members",
    "message_deleted",
    "message_updated",
    "occupancy",
    "pong",
    "read",
    "typing",
];

#[test]
fn the_chat_endpoint_turns_native_samples_into_channels_samples() {
    let (_, mut encoder) = Endpoint::chat("general").expect("a room").codec();
    for name in NATIVE {
        let out = encode(&mut encoder, name);
        let expected = match *name {
            "message" => vec![channels("chat_message")],
            "presence_diff" => vec![channels("user_event_joined"), channels("user_event_left")],
            "error" => vec![channels("error")],
            _ => vec![],
        };
        assert_eq!(out, expected, "native {name}");
    }
}

#[test]
fn the_notifications_endpoint_sends_notifications_and_errors_only() {
    let (_, mut encoder) = Endpoint::Notifications.codec();
    for name in NATIVE {
        let out = encode(&mut encoder, name);
        let expected = match *name {
            "notification" => vec![channels("notification")],
            "error" => vec![channels("error")],
            _ => vec![],
        };
        assert_eq!(out, expected, "native {name}");
    }
}

#[test]
fn another_rooms_frames_are_not_this_rooms() {
    let (_, mut encoder) = Endpoint::chat("random").expect("a room").codec();
    for name in ["joined", "message", "presence_diff"] {
        assert_eq!(encode(&mut encoder, name), Vec::<Value>::new(), "native {name}");
    }
}

#[test]
fn control_frames_keep_their_place() {
    let (_, mut encoder) = Endpoint::chat("general").expect("a room").codec();
    crate::dialect::testing::control_frames_keep_their_place(
        &mut encoder,
        golden("server/ack.json"),
        golden("server/message.json"),
    );
}

#[test]
fn the_client_sample_becomes_a_native_send_to_the_room() {
    let (mut decoder, _) = Endpoint::chat("general").expect("a room").codec();
    let Decoded::Frames(frames) = decoder.decode(&golden("dialects/channels/client/message.json"))
    else {
        panic!("the sample was refused");
    };
    let [frame] = &frames[..] else { panic!("one frame: {frames:?}") };
    let native: Envelope<ClientFrame> = serde_json::from_str(frame).expect("a native frame");
    let ClientFrame::Send { room, content, client_id, data } = native.frame else {
        panic!("a send: {frame}");
    };
    assert_eq!((room.as_str(), content.as_str()), ("general", "Merhaba, bu bir mesajdır"));
    assert!(client_id.starts_with("channels-") && data.is_none(), "{frame}");
    let Decoded::Frames(again) = decoder.decode(&golden("dialects/channels/client/message.json"))
    else {
        panic!("refused");
    };
    assert_ne!(frames, again, "each frame is a new message, under a key of its own");
}

#[test]
fn the_chat_endpoint_joins_its_room_without_history_with_member_events() {
    let (mut decoder, _) = Endpoint::chat("genel_sohbet_ü").expect("a room").codec();
    let Decoded::Frames(frames) = decoder.on_open("alice") else { panic!("refused") };
    let [frame] = &frames[..] else { panic!("one frame: {frames:?}") };
    let native: Envelope<ClientFrame> = serde_json::from_str(frame).expect("a native frame");
    let ClientFrame::Join { room, since, history, member_events } = native.frame else {
        panic!("a join: {frame}");
    };
    assert_eq!(room.as_str(), "genel_sohbet_ü");
    assert_eq!((since, history, member_events), (None, Some(0), Some(true)));
}

#[test]
fn bad_client_frames_are_refused() {
    let (mut decoder, _) = Endpoint::chat("general").expect("a room").codec();
    for bad in [r#"{"message": 5}"#, "not json", "{}", r#"["message"]"#, r#"{"message": null}"#] {
        assert!(matches!(decoder.decode(bad), Decoded::Refused(_)), "{bad}");
    }
    let (mut decoder, _) = Endpoint::Notifications.codec();
    assert!(matches!(decoder.decode(r#"{"message": "hi"}"#), Decoded::Refused(_)));
}

#[test]
fn only_word_names_are_chat_rooms() {
    for good in ["general", "room_1", "Sohbet_ğüş", "日本語", "42"] {
        assert!(Endpoint::chat(good).is_some(), "{good}");
    }
    for bad in ["", "user:alice", "dm:a,b", "a-b", "a.b", "a b", "a%2Fb", &"x".repeat(129)] {
        assert!(Endpoint::chat(bad).is_none(), "{bad}");
    }
}

#[test]
fn the_personal_chat_is_the_direct_message_room_of_the_two_users() {
    let (mut decoder, mut encoder) = Endpoint::direct("42").expect("digits").codec();
    let Decoded::Frames(frames) = decoder.on_open("7") else { panic!("refused") };
    let native: Envelope<ClientFrame> = serde_json::from_str(&frames[0]).expect("a join");
    let ClientFrame::Join { room, .. } = native.frame else { panic!("a join: {frames:?}") };
    assert_eq!(room.as_str(), "dm:42,7");
    let Decoded::Frames(sent) = decoder.decode(r#"{"message": "hi"}"#) else { panic!("refused") };
    assert!(sent[0].contains(r#""room":"dm:42,7""#), "{sent:?}");

    // Until `ready` names the user, the writer knows no room.
    let message = |room: &str| {
        golden("server/message.json")
            .replace(r#""room": "general""#, &format!(r#""room": "{room}""#))
    };
    let frames = VecDeque::from([Outbound::Frame(message("dm:42,7").into())]);
    assert!(encoder.encode(frames).is_empty(), "no room before ready");
    let ready =
        r#"{"type":"ready","session_id":"s","user":{"id":"7","name":"Seven"},"heartbeat_ms":1}"#;
    let frames = VecDeque::from([
        Outbound::Frame(ready.into()),
        Outbound::Frame(message("dm:42,7").into()),
        Outbound::Frame(message("dm:42,8").into()),
        Outbound::Frame(golden("server/notification.json").into()),
    ]);
    let out = encoder.encode(frames);
    let [Outbound::Frame(text)] = &out.into_iter().collect::<Vec<_>>()[..] else {
        panic!("one chat_message");
    };
    assert_eq!(json_of(text.as_str()), channels("chat_message"));
}

#[test]
fn only_digits_are_personal_chats() {
    for bad in ["", "abc", "4a", "-1", "1.0", &"9".repeat(200)] {
        assert!(Endpoint::direct(bad).is_none(), "{bad}");
    }
}

#[test]
fn the_dialects_golden_dir_holds_nothing_untested() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden/dialects");
    let mut files = Vec::new();
    for dialect in ["channels", "online"] {
        for side in ["client", "server"] {
            let dir = root.join(dialect).join(side);
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let name = entry.expect("an entry").file_name().into_string().expect("UTF-8");
                files.push(format!("{dialect}/{side}/{name}"));
            }
        }
    }
    files.sort();
    // Each one is read by a test of this file or of `online.rs`.
    let expected = [
        "channels/client/message.json",
        "channels/server/chat_message.json",
        "channels/server/error.json",
        "channels/server/notification.json",
        "channels/server/user_event_joined.json",
        "channels/server/user_event_left.json",
        "online/client/close.json",
        "online/client/open.json",
        "online/server/online_status.json",
    ];
    assert_eq!(files, expected);
}
