//! Golden samples of protocol version 1 (`tests/golden/`): each file round-trips
//! exactly through its `roomcast-shared` type, and every frame type and HTTP
//! body has one.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use roomcast_shared::api::{
    ApiErrorBody, DevTokenRequest, DevTokenResponse, EditMessageRequest, Health, HistoryPage,
    NotifyRequest, NotifyResponse, OnlineUsers, PublishEventRequest, PublishMessageRequest,
    RoomPresence,
};
use roomcast_shared::frame::CLIENT_FRAME_TYPES;
use roomcast_shared::webhook::{DeadLetterPage, ReplayRequest, ReplayResponse, WebhookEvent};
use roomcast_shared::{ClientFrame, Envelope, Ref, RoomEvent, RoomName, ServerFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Defines `SERVER_FRAME_TYPES` and `server_type` from one table, so that a new
/// `ServerFrame` variant fails to compile until it gets a name here, and then
/// fails the tests until it gets a golden file.
macro_rules! server_frame_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every `type` the server sends.
        const SERVER_FRAME_TYPES: &[&str] = &[$($name),*];

        /// The `type` of a server frame, as on the wire.
        fn server_type(frame: &ServerFrame) -> &'static str {
            match frame {
                $(ServerFrame::$variant { .. } => $name,)*
            }
        }
    };
}

server_frame_types! {
    Ready => "ready",
    Joined => "joined",
    Left => "left",
    Message => "message",
    Ack => "ack",
    MessageUpdated => "message_updated",
    MessageDeleted => "message_deleted",
    PresenceDiff => "presence_diff",
    Occupancy => "occupancy",
    Typing => "typing",
    Read => "read",
    Notification => "notification",
    Event => "event",
    History => "history",
    Members => "members",
    Pong => "pong",
    Error => "error",
}

/// Checks the golden file of that name.
type Check = fn(&str);

/// Every HTTP body in `roomcast_shared::api`, by golden file name.
const API_BODIES: &[(&str, Check)] = &[
    ("notify_request", body::<NotifyRequest>),
    ("notify_response", body::<NotifyResponse>),
    ("publish_message_request", body::<PublishMessageRequest>),
    ("edit_message_request", body::<EditMessageRequest>),
    ("publish_event_request", body::<PublishEventRequest>),
    ("room_presence", body::<RoomPresence>),
    ("online_users", body::<OnlineUsers>),
    ("history_page", body::<HistoryPage>),
    ("health", body::<Health>),
    ("dev_token_request", body::<DevTokenRequest>),
    ("dev_token_response", body::<DevTokenResponse>),
    ("error", body::<ApiErrorBody>),
    ("webhook_message", body::<WebhookEvent>),
    ("webhook_member_joined", body::<WebhookEvent>),
    ("dead_letter_page", body::<DeadLetterPage>),
    ("replay_request", body::<ReplayRequest>),
    ("replay_response", body::<ReplayResponse>),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The names (without `.json`) of the files in `golden/<kind>/`.
fn golden_names(kind: &str) -> BTreeSet<String> {
    let dir = golden_dir().join(kind);
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            let stem = name.strip_suffix(".json");
            stem.unwrap_or_else(|| panic!("{}: not a .json file", path.display())).to_owned()
        })
        .collect()
}

fn read_golden(kind: &str, name: &str) -> String {
    let path = golden_dir().join(kind).join(format!("{name}.json"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `golden/<kind>/<name>.json` as a `T`, serializes it back and requires
/// exactly the file's JSON.
fn round_trip<T: Serialize + DeserializeOwned>(kind: &str, name: &str) -> (T, Value) {
    let text = read_golden(kind, name);
    let expected: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind}/{name}.json: {e}"));
    let typed: T = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{kind}/{name}.json does not parse as its type: {e}"));
    let actual = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        actual,
        expected,
        "{kind}/{name}.json does not round-trip; the type serializes as\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
    (typed, expected)
}

/// Checks `golden/api/<name>.json` against the body type `T`.
fn body<T: Serialize + DeserializeOwned>(name: &str) {
    round_trip::<T>("api", name);
}

fn assert_same_names(kind: &str, expected: &[&str]) {
    let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(golden_names(kind), expected, "golden/{kind}/ files vs. the types they sample");
}

#[test]
fn client_frames_round_trip() {
    for &name in CLIENT_FRAME_TYPES {
        let (envelope, value) = round_trip::<Envelope<ClientFrame>>("client", name);
        assert_eq!(value["type"], name, "client/{name}.json: its type");
        assert_eq!(envelope.frame.kind(), name, "client/{name}.json: its variant");
        assert!(envelope.reference.is_some(), "client/{name}.json: shows a ref");
    }
    assert_same_names("client", CLIENT_FRAME_TYPES);
}

#[test]
fn server_frames_round_trip() {
    for &name in SERVER_FRAME_TYPES {
        let (envelope, value) = round_trip::<Envelope<ServerFrame>>("server", name);
        assert_eq!(value["type"], name, "server/{name}.json: its type");
        assert_eq!(server_type(&envelope.frame), name, "server/{name}.json: its variant");
    }
    assert_same_names("server", SERVER_FRAME_TYPES);
}

#[test]
fn api_bodies_round_trip() {
    for (name, check) in API_BODIES {
        check(name);
    }
    let names: Vec<&str> = API_BODIES.iter().map(|(name, _)| *name).collect();
    assert_same_names("api", &names);
}

#[test]
fn golden_dir_holds_nothing_untested() {
    let entries: BTreeSet<String> = fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    // `dialects/` is checked against the dialects' codecs, in the server's
    // tests (`server/src/dialect/channels_tests.rs`).
    let expected = ["README.md", "api", "client", "dialects", "server"].map(str::to_owned);
    assert_eq!(entries, BTreeSet::from(expected));
}

#[test]
fn direct_replies_echo_their_request_ref_and_broadcasts_have_none() {
    let reference = |kind: &str, name: &str| {
        let value: Value = serde_json::from_str(&read_golden(kind, name)).unwrap();
        value.get("ref").cloned()
    };
    for (request, reply) in [
        ("auth", "ready"),
        ("join", "joined"),
        ("send", "ack"),
        ("history", "history"),
        ("members", "members"),
        ("ping", "pong"),
        ("leave", "left"),
    ] {
        let sent = reference("client", request);
        assert!(sent.is_some(), "client/{request}.json has a ref");
        assert_eq!(sent, reference("server", reply), "{reply} echoes the ref of {request}");
    }
    assert!(reference("server", "error").is_some(), "error answers a request here");
    for broadcast in [
        "message",
        "message_updated",
        "message_deleted",
        "presence_diff",
        "occupancy",
        "typing",
        "read",
        "notification",
        "event",
    ] {
        assert_eq!(reference("server", broadcast), None, "{broadcast} is a broadcast");
    }
}

#[test]
fn joined_sample_shows_a_recovery() {
    let (envelope, _) = round_trip::<Envelope<ServerFrame>>("server", "joined");
    let ServerFrame::Joined(joined) = envelope.frame else {
        panic!("server/joined.json is not a joined frame");
    };
    assert_eq!(joined.recovered, Some(true));
    assert!(joined.members.len() >= 2, "members with their presence");
    assert!(joined.count > joined.members.len() as u64, "a first page of a bigger room");
    assert!(joined.cursor.is_some(), "where the next page starts");
    let kinds: Vec<&str> = joined
        .messages
        .iter()
        .map(|event| match event {
            RoomEvent::Message(_) => "message",
            RoomEvent::MessageUpdated(_) => "message_updated",
            RoomEvent::MessageDeleted(_) => "message_deleted",
        })
        .collect();
    assert_eq!(kinds, ["message", "message_updated", "message_deleted"]);
    let offsets: Vec<u64> = joined.messages.iter().map(RoomEvent::offset).collect();
    assert!(offsets.is_sorted_by(|a, b| a < b), "offset order: {offsets:?}");
    assert_eq!(offsets.last(), Some(&joined.offset), "the latest offset is the last replayed");
}

fn parse_client(text: &str) -> Result<Envelope<ClientFrame>, serde_json::Error> {
    serde_json::from_str(text)
}

fn parse_error(text: &str) -> String {
    match parse_client(text) {
        Ok(frame) => panic!("{text} parsed as {frame:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_type_fails() {
    let err = parse_error(r#"{"type":"shout","ref":1,"room":"general"}"#);
    assert!(err.contains("shout"), "{err}");
    let err = parse_error(r#"{"ref":1,"room":"general"}"#);
    assert!(err.contains("type"), "{err}");
}

#[test]
fn missing_field_fails() {
    let err = parse_error(r#"{"type":"send","ref":1,"room":"general","content":"hi"}"#);
    assert!(err.contains("missing field `client_id`"), "{err}");
}

#[test]
fn wrong_field_type_fails() {
    let err = parse_error(r#"{"type":"typing","room":"general","is_typing":"yes"}"#);
    assert!(err.contains("invalid type"), "{err}");
    parse_error(r#"{"type":"history","room":"general","limit":-1}"#);
    parse_error(r#"{"type":"join","room":42}"#);
}

#[test]
fn invalid_room_name_fails() {
    for room in ["general chat", "", "a/b"] {
        let text = json!({"type": "join", "ref": 1, "room": room}).to_string();
        let err = parse_error(&text);
        assert!(err.contains("invalid room name"), "{err}");
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let frame = parse_client(
        r#"{"type":"send","ref":1,"room":"general","content":"hi","client_id":"c-1",
            "priority":"high","meta":{"sdk":"py/0.1"}}"#,
    )
    .unwrap();
    let room = RoomName::new("general").unwrap();
    let send =
        ClientFrame::Send { room, content: "hi".into(), client_id: "c-1".into(), data: None };
    assert_eq!(frame, Envelope::with_ref(Some(1.into()), send));

    let pong: Envelope<ServerFrame> =
        serde_json::from_str(r#"{"type":"pong","time":"2026-11-22T10:15:00Z","region":"eu"}"#)
            .unwrap();
    assert!(matches!(pong.frame, ServerFrame::Pong { .. }));
}

#[test]
fn ref_is_a_number_or_a_string() {
    let number = parse_client(r#"{"type":"ping","ref":7}"#).unwrap();
    assert_eq!(number.reference, Some(Ref::from(7)));
    let text = parse_client(r#"{"type":"ping","ref":"req-7"}"#).unwrap();
    assert_eq!(text.reference, Some(Ref::from("req-7")));
    let none = parse_client(r#"{"type":"ping"}"#).unwrap();
    assert_eq!(none.reference, None);

    // The reply echoes it as it came: a number stays a number.
    for reference in [number.reference, text.reference] {
        let pong = Envelope::with_ref(
            reference.clone(),
            ServerFrame::Pong { time: time::macros::datetime!(2026-11-22 10:15 UTC) },
        );
        let value = serde_json::to_value(&pong).unwrap();
        assert_eq!(value["ref"], serde_json::to_value(&reference).unwrap());
        assert_eq!(value["time"], "2026-11-22T10:15:00Z");
    }
    assert_eq!(serde_json::to_value(Ref::from(7)).unwrap(), json!(7));
}

#[test]
fn optional_request_fields_may_be_left_out() {
    for text in [
        r#"{"type":"join","room":"general"}"#,
        r#"{"type":"history","room":"general"}"#,
        r#"{"type":"presence","status":"online"}"#,
    ] {
        parse_client(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    serde_json::from_str::<DevTokenRequest>(r#"{"name":"Alice"}"#).unwrap();
    serde_json::from_str::<PublishMessageRequest>(r#"{"content":"Deploy finished."}"#).unwrap();
    serde_json::from_str::<PublishEventRequest>(r#"{"name":"order.shipped"}"#).unwrap();
    serde_json::from_str::<NotifyRequest>(r#"{"user_ids":["bob"],"title":"Hi"}"#).unwrap();
}
