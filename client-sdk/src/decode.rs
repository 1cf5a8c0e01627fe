//! Decoding server frames into the protocol's [`ServerFrame`], cheaply.
//!
//! `ServerFrame` is an internally tagged enum, and `Member` flattens its
//! presence: serde decodes both by first buffering the whole object, and in
//! WebAssembly that generic buffering code was over a third of the SDK's
//! size. Here the `type` (and `ref`) are read first, then the frame's own
//! type is decoded straight from the text. The result is the same
//! `ServerFrame`; a test decodes every golden sample of the protocol both
//! ways and compares.

use std::borrow::Cow;

use roomcast_shared::frame::{Ack, ErrorFrame, Joined, Limits, MembersPage, PresenceDiff};
use roomcast_shared::{
    AppEvent, ChatMessage, Member, MessageDeleted, MessageUpdated, Notification, Presence,
    ReadReceipt, RoomEvent, RoomName, ServerFrame, Status, UserInfo, UserRef,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// A decoded frame and the numeric `ref` it answers, if any.
pub struct Decoded {
    /// The `ref`, when it is a number (the client only sends numbers).
    pub reference: Option<u64>,
    /// The frame.
    pub frame: ServerFrame,
}

/// Decodes a server frame; `None` for malformed JSON or a `type` this
/// client does not know (the protocol may grow).
pub fn decode(text: &str) -> Option<Decoded> {
    let head: Head = serde_json::from_str(text).ok()?;
    let frame = frame(&head.kind, text).ok()?;
    Some(Decoded { reference: head.reference, frame })
}

/// The fields read before the rest of the frame.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "ref", default, deserialize_with = "numeric")]
    reference: Option<u64>,
}

type Result<T> = std::result::Result<T, serde_json::Error>;

fn frame(kind: &str, text: &str) -> Result<ServerFrame> {
    Ok(match kind {
        "message" => ServerFrame::Message(json(text)?),
        "message_updated" => ServerFrame::MessageUpdated(json(text)?),
        "message_deleted" => ServerFrame::MessageDeleted(json(text)?),
        "ack" => ServerFrame::Ack(json::<Ack>(text)?),
        "error" => ServerFrame::Error(json::<ErrorFrame>(text)?),
        "notification" => ServerFrame::Notification(json::<Notification>(text)?),
        "event" => ServerFrame::Event(json::<AppEvent>(text)?),
        "joined" => ServerFrame::Joined(json::<JoinedWire>(text)?.into_joined()?),
        "ready" => {
            let w: ReadyWire = json(text)?;
            ServerFrame::Ready {
                session_id: w.session_id,
                user: w.user,
                heartbeat_ms: w.heartbeat_ms,
                limits: w.limits,
            }
        }
        "left" => ServerFrame::Left { room: json::<RoomOnly>(text)?.room },
        "presence_diff" => ServerFrame::PresenceDiff(json::<DiffWire>(text)?.into_diff()),
        "occupancy" => {
            let w: OccupancyWire = json(text)?;
            ServerFrame::Occupancy { room: w.room, count: w.count }
        }
        "members" => ServerFrame::Members(json::<PageWire>(text)?.into_page()),
        "typing" => {
            let w: TypingWire = json(text)?;
            ServerFrame::Typing { room: w.room, user: w.user, is_typing: w.is_typing }
        }
        "read" => {
            let w: ReadWire = json(text)?;
            ServerFrame::Read { room: w.room, user_id: w.user_id, id: w.id, read_at: w.read_at }
        }
        "history" => {
            let w: HistoryWire = json(text)?;
            ServerFrame::History { room: w.room, messages: w.messages, has_more: w.has_more }
        }
        "pong" => ServerFrame::Pong { time: json::<PongWire>(text)?.time },
        _ => return Err(serde::de::Error::custom("unknown frame type")),
    })
}

fn json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T> {
    serde_json::from_str(text)
}

/// One event of `joined.messages`, by its `type`.
fn room_event(text: &str) -> Result<RoomEvent> {
    let head: Head = json(text)?;
    Ok(match &*head.kind {
        "message" => RoomEvent::Message(json::<ChatMessage>(text)?),
        "message_updated" => RoomEvent::MessageUpdated(json::<MessageUpdated>(text)?),
        "message_deleted" => RoomEvent::MessageDeleted(json::<MessageDeleted>(text)?),
        _ => return Err(serde::de::Error::custom("unknown room event type")),
    })
}

#[derive(Deserialize)]
struct JoinedWire {
    room: RoomName,
    epoch: String,
    offset: u64,
    #[serde(default)]
    count: u64,
    members: Vec<MemberWire>,
    #[serde(default)]
    cursor: Option<String>,
    messages: Vec<Box<RawValue>>,
    #[serde(default)]
    recovered: Option<bool>,
    /// Decoded one by one: a receipt this client cannot read is dropped,
    /// not the join.
    #[serde(default)]
    reads: Vec<Box<RawValue>>,
}

impl JoinedWire {
    fn into_joined(self) -> Result<Joined> {
        Ok(Joined {
            room: self.room,
            epoch: self.epoch,
            offset: self.offset,
            count: self.count,
            members: self.members.into_iter().map(MemberWire::into_member).collect(),
            cursor: self.cursor,
            messages: self.messages.iter().map(|m| room_event(m.get())).collect::<Result<_>>()?,
            recovered: self.recovered,
            reads: self.reads.iter().filter_map(|r| json::<ReadReceipt>(r.get()).ok()).collect(),
        })
    }
}

/// A member: the presence fields beside the user (flattened in `Member`).
#[derive(Deserialize)]
struct MemberWire {
    user: UserInfo,
    user_id: String,
    status: Status,
    #[serde(default)]
    custom: Option<String>,
    #[serde(with = "roomcast_shared::timestamp::rfc3339")]
    last_seen: OffsetDateTime,
}

impl MemberWire {
    fn into_member(self) -> Member {
        let presence = Presence {
            user_id: self.user_id,
            status: self.status,
            custom: self.custom,
            last_seen: self.last_seen,
        };
        Member { user: self.user, presence }
    }
}

#[derive(Deserialize)]
struct ReadyWire {
    session_id: String,
    user: UserInfo,
    heartbeat_ms: u64,
    #[serde(default)]
    limits: Option<Limits>,
}

#[derive(Deserialize)]
struct RoomOnly {
    room: RoomName,
}

#[derive(Deserialize)]
struct DiffWire {
    room: RoomName,
    count: u64,
    #[serde(default)]
    joins: Vec<MemberWire>,
    #[serde(default)]
    leaves: Vec<UserInfo>,
    #[serde(default)]
    updates: Vec<Presence>,
}

impl DiffWire {
    fn into_diff(self) -> PresenceDiff {
        PresenceDiff {
            room: self.room,
            count: self.count,
            joins: self.joins.into_iter().map(MemberWire::into_member).collect(),
            leaves: self.leaves,
            updates: self.updates,
        }
    }
}

#[derive(Deserialize)]
struct OccupancyWire {
    room: RoomName,
    count: u64,
}

#[derive(Deserialize)]
struct PageWire {
    room: RoomName,
    count: u64,
    members: Vec<MemberWire>,
    #[serde(default)]
    cursor: Option<String>,
}

impl PageWire {
    fn into_page(self) -> MembersPage {
        MembersPage {
            room: self.room,
            count: self.count,
            members: self.members.into_iter().map(MemberWire::into_member).collect(),
            cursor: self.cursor,
        }
    }
}

#[derive(Deserialize)]
struct TypingWire {
    room: RoomName,
    user: UserRef,
    is_typing: bool,
}

#[derive(Deserialize)]
struct ReadWire {
    room: RoomName,
    user_id: String,
    id: String,
    #[serde(with = "roomcast_shared::timestamp::rfc3339")]
    read_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct HistoryWire {
    room: RoomName,
    messages: Vec<ChatMessage>,
    has_more: bool,
}

#[derive(Deserialize)]
struct PongWire {
    #[serde(with = "roomcast_shared::timestamp::rfc3339")]
    time: OffsetDateTime,
}

/// A `ref` as a number, or `None` for any other value.
fn numeric<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    struct Numeric;
    impl serde::de::Visitor<'_> for Numeric {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number or a string")
        }
        fn visit_u64<E>(self, n: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(n))
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Numeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_shared::Envelope;

    /// Every server frame sample of the protocol decodes to exactly what
    /// serde's own decoding of `ServerFrame` gives.
    #[test]
    fn agrees_with_serde_on_every_golden_sample() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tests/golden/server");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("golden samples") {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let expected: Envelope<ServerFrame> = serde_json::from_str(&text).unwrap();
            let decoded = decode(&text).unwrap_or_else(|| panic!("{} not decoded", path.display()));
            assert_eq!(decoded.frame, expected.frame, "{}", path.display());
            let reference = expected.reference.and_then(|r| match r {
                roomcast_shared::Ref::Number(n) => n.as_u64(),
                roomcast_shared::Ref::Text(_) => None,
            });
            assert_eq!(decoded.reference, reference, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 17, "every frame type has a sample: {seen}");
    }

    #[test]
    fn unknown_types_and_odd_refs() {
        assert!(decode(r#"{"type":"hello_from_the_future","x":1}"#).is_none());
        assert!(decode("not json").is_none());
        let pong = r#"{"type":"pong","ref":"mine","time":"2026-11-22T10:00:00Z"}"#;
        assert_eq!(decode(pong).unwrap().reference, None);
        let joined = r#"{"type":"joined","room":"r","epoch":"e","offset":1,"members":[],
            "messages":[{"type":"nope","room":"r","id":"x","offset":1}]}"#;
        assert!(decode(joined).is_none(), "an unknown room event is an error, as with serde");
    }

    #[test]
    fn a_joined_keeps_the_reads_it_can_read_and_drops_the_others() {
        let joined = r#"{"type":"joined","room":"r","epoch":"e","offset":0,"members":[],
            "messages":[],"reads":[{"user_id":"bob","id":"m1","read_at":"2026-11-22T10:00:00Z"},
            {"user_id":"carol","id":"m1","read_at":"yesterday"},{"id":"m1"},7,
            {"user_id":"dave","id":"m2","read_at":"2026-11-22T09:00:00Z","seat":"12B"}]}"#;
        let Some(Decoded { frame: ServerFrame::Joined(j), .. }) = decode(joined) else {
            panic!("the join is not lost for a bad receipt")
        };
        let readers: Vec<&str> = j.reads.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(readers, ["bob", "dave"]);
    }
}
