//! The gateway codec against the golden samples: native frames of a
//! guild's room in, the gateway's answers and events out, and each client
//! op into native frames.

use std::path::PathBuf;

use roomcast_shared::{ClientFrame, Envelope};
use serde_json::Value;

use super::*;
use crate::dialect::testing::golden;

const GUILD: &str = "507f1f77bcf86cd799439011";
const CHANNEL: &str = "507f1f77bcf86cd799439013";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn gateway(name: &str) -> Value {
    json_of(&golden(&format!("dialects/gateway/server/{name}.json")))
}

/// The native sample `name`, moved into the guild's room, its `data` (when
/// it has some) naming the channel.
fn in_guild(name: &str) -> Value {
    let mut native = json_of(&golden(&format!("server/{name}.json")));
    if native.get("room").is_some() {
        native["room"] = Value::from(format!("guild:{GUILD}"));
    }
    if let Some(data) = native.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("channelId".into(), Value::from(CHANNEL));
    }
    native
}

/// What `encoder` makes of the native frames `natives`.
fn encode(encoder: &mut Encoder, natives: &[Value]) -> Vec<Value> {
    let frames = natives.iter().map(|n| Outbound::Frame(n.to_string().into())).collect();
    encoder
        .encode(frames)
        .iter()
        .map(|frame| match frame {
            Outbound::Frame(text) => json_of(text.as_str()),
            other => panic!("a control frame out of a text frame: {other:?}"),
        })
        .collect()
}

/// What the decoder makes of the client sample `name`: its one native frame.
fn decode(decoder: &mut Decoder, name: &str) -> Envelope<ClientFrame> {
    let text = golden(&format!("dialects/gateway/client/{name}.json"));
    let Decoded::Frames(frames) = decoder.decode(&text) else { panic!("{name} refused") };
    let [frame] = &frames[..] else { panic!("{name}: one frame, got {frames:?}") };
    serde_json::from_str(frame).unwrap_or_else(|e| panic!("{name}: {e}: {frame}"))
}

fn codec() -> (Decoder, Encoder) {
    super::codec(Duration::from_secs(60))
}

#[test]
fn guild_frames_become_gateway_events() {
    let (_, mut encoder) = codec();
    let cases = [
        ("message", vec![gateway("message_create")]),
        ("message_updated", vec![gateway("message_update")]),
        ("message_deleted", vec![gateway("message_delete")]),
        ("typing", vec![gateway("typing_start")]),
        ("error", vec![gateway("error")]),
        ("pong", vec![gateway("heartbeat_ack")]),
    ];
    for (name, expected) in cases {
        assert_eq!(encode(&mut encoder, &[in_guild(name)]), expected, "native {name}");
    }
    // Carol arrived, Dave left, Bob changed his status: one event each.
    let presence = encode(&mut encoder, &[in_guild("presence_diff")]);
    let of = |user: &str, status: &str, custom: Value| {
        serde_json::json!({"event": "presence.update", "data": {
            "userId": user, "status": status, "customStatus": custom, "guildId": GUILD,
        }})
    };
    assert_eq!(
        presence,
        [
            of("carol", "online", Value::Null),
            of("dave", "offline", Value::Null),
            gateway("presence_update")
        ]
    );
    // A typer who stopped: the original had no such event.
    let mut stopped = in_guild("typing");
    stopped["is_typing"] = Value::Bool(false);
    assert!(encode(&mut encoder, &[stopped]).is_empty());
}

#[test]
fn a_backend_event_keeps_its_name_and_data() {
    let (_, mut encoder) = codec();
    let sample = gateway("channel_create");
    let mut native = in_guild("event");
    native["name"] = sample["event"].clone();
    native["data"] = sample["data"].clone();
    assert_eq!(encode(&mut encoder, std::slice::from_ref(&native)), std::slice::from_ref(&sample));
    // For the user alone (`user:<id>`), too; another kind of room's, not.
    native["room"] = Value::from("user:alice");
    assert_eq!(encode(&mut encoder, std::slice::from_ref(&native)), std::slice::from_ref(&sample));
    native["room"] = Value::from("general");
    assert!(encode(&mut encoder, &[native]).is_empty());
}

#[test]
fn other_rooms_and_frames_without_a_gateway_form_are_dropped() {
    let (_, mut encoder) = codec();
    for name in
        ["message", "message_updated", "message_deleted", "presence_diff", "typing", "event"]
    {
        let native = json_of(&golden(&format!("server/{name}.json")));
        assert_eq!(
            encode(&mut encoder, &[native]),
            Vec::<Value>::new(),
            "native {name} of general"
        );
    }
    for name in ["ack", "history", "members", "notification", "occupancy", "read", "joined", "left"]
    {
        assert_eq!(encode(&mut encoder, &[in_guild(name)]), Vec::<Value>::new(), "native {name}");
    }
}

#[test]
fn a_message_without_a_channel_has_a_null_channel_id() {
    let (_, mut encoder) = codec();
    let mut native = in_guild("message");
    native.as_object_mut().expect("an object").remove("data");
    let [event] = &encode(&mut encoder, &[native])[..] else { panic!("one event") };
    assert_eq!(event["data"]["channelId"], Value::Null);
    assert_eq!(event["data"]["message"], gateway("message_create")["data"]["message"]);
}

#[test]
fn ready_names_the_subscribed_guilds() {
    let (_, mut encoder) = codec();
    let ready = json_of(&golden("server/ready.json"));
    let first = encode(&mut encoder, std::slice::from_ref(&ready));
    assert_eq!(
        first,
        [serde_json::json!({"op": "READY", "data": {"userId": "alice", "guilds": []}})]
    );
    // Subscribed (twice), a room that is no guild, then a second IDENTIFY.
    let general = json_of(&golden("server/joined.json"));
    let frames = [in_guild("joined"), in_guild("joined"), general, ready.clone()];
    assert_eq!(encode(&mut encoder, &frames), [gateway("ready")]);
    let frames = [in_guild("left"), ready];
    let after = encode(&mut encoder, &frames);
    assert_eq!(after[0]["data"]["guilds"], serde_json::json!([]));
}

#[test]
fn control_frames_keep_their_place() {
    let (_, mut encoder) = codec();
    crate::dialect::testing::control_frames_keep_their_place(
        &mut encoder,
        in_guild("ack").to_string(),
        in_guild("message").to_string(),
    );
}

#[test]
fn client_ops_become_native_frames() {
    let (mut decoder, _) = codec();
    let identify = decode(&mut decoder, "identify");
    assert!(
        matches!(&identify.frame, ClientFrame::Auth { token: Some(t) } if t.starts_with("eyJ")),
        "{identify:?}"
    );
    assert!(matches!(decode(&mut decoder, "heartbeat").frame, ClientFrame::Ping));
    let ClientFrame::Join { room, history, member_events, since } =
        decode(&mut decoder, "guild_subscribe").frame
    else {
        panic!("a join");
    };
    assert_eq!(room.as_str(), format!("guild:{GUILD}"));
    assert_eq!((history, member_events, since), (Some(0), Some(true), None));
    let ClientFrame::Leave { room } = decode(&mut decoder, "guild_unsubscribe").frame else {
        panic!("a leave");
    };
    assert_eq!(room.as_str(), format!("guild:{GUILD}"));
}

#[test]
fn a_heartbeat_moves_the_deadline() {
    let (mut decoder, _) = super::codec(Duration::from_secs(5));
    let first = decoder.heartbeat_due().expect("a deadline");
    assert!(first <= Instant::now() + Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(5));
    decode(&mut decoder, "heartbeat");
    assert!(decoder.heartbeat_due().expect("a deadline") > first);
    // Other ops do not count as heartbeats.
    let due = decoder.heartbeat_due();
    decode(&mut decoder, "guild_subscribe");
    assert_eq!(decoder.heartbeat_due(), due);
}

#[test]
fn bad_ops_are_refused() {
    let (mut decoder, _) = codec();
    let long =
        format!(r#"{{"op": "GUILD_SUBSCRIBE", "data": {{"guildId": "{}"}}}}"#, "1".repeat(123));
    let bad_requests = [
        "not json",
        "{}",
        "[]",
        r#"{"op": 1}"#,
        r#"{"op": "DANCE", "data": null}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": null}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": 42}}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": ""}}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": "a:b"}}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": "user:alice"}}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": "a b"}}"#,
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": "🚀"}}"#,
        r#"{"op": "GUILD_UNSUBSCRIBE", "data": {"guildId": "a/b"}}"#,
        long.as_str(),
    ];
    for bad in bad_requests {
        let Decoded::Refused(err) = decoder.decode(bad) else { panic!("{bad} was taken") };
        assert_eq!(err.code(), roomcast_shared::ErrorCode::BadRequest, "{bad}");
        assert!(err.to_string().len() < 300, "{bad}: a short message: {err}");
    }
    // The longest id that fits in a room name is a guild.
    let longest = long.replacen("11", "1", 1);
    assert!(matches!(decoder.decode(&longest), Decoded::Frames(_)));
    for bad in [r#"{"op": "IDENTIFY", "data": {}}"#, r#"{"op": "IDENTIFY", "data": {"token": 7}}"#]
    {
        let Decoded::Refused(err) = decoder.decode(bad) else { panic!("{bad} was taken") };
        assert!(matches!(err, FrameError::Token(_)), "{bad}: closes with 4001, got {err:?}");
    }
}

#[test]
fn the_dialects_golden_dir_holds_nothing_untested() {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden/dialects/gateway");
    let mut files = Vec::new();
    for side in ["client", "server"] {
        for entry in std::fs::read_dir(root.join(side)).expect("the samples") {
            let name = entry.expect("an entry").file_name().into_string().expect("UTF-8");
            files.push(format!("{side}/{name}"));
        }
    }
    files.sort();
    // Each one is read by a test of this file.
    let expected = [
        "client/guild_subscribe.json",
        "client/guild_unsubscribe.json",
        "client/heartbeat.json",
        "client/identify.json",
        "server/channel_create.json",
        "server/error.json",
        "server/heartbeat_ack.json",
        "server/message_create.json",
        "server/message_delete.json",
        "server/message_update.json",
        "server/presence_update.json",
        "server/ready.json",
        "server/typing_start.json",
    ];
    assert_eq!(files, expected);
}
