//! Decoding server frames into the protocol's [`ServerFrame`], cheaply.
//!
//! Every serde decoder of a struct costs the wasm a few KB (its field
//! matching, and a second path for a struct written as an array), and
//! `ServerFrame` is an internally tagged enum that serde decodes by
//! buffering the whole object first (once a third of the SDK). So a frame
//! is read in one pass into [`Fields`]: every field any server frame (or
//! room event, or read receipt) has, each optional, in one struct, one
//! decoder in the wasm. The frame's `type` then picks which fields it
//! requires and builds the same `ServerFrame` serde would; a test decodes
//! every golden sample of the protocol both ways and compares, and another
//! removes each field in turn and checks the frame is refused (or
//! defaulted) as serde does.
//!
//! The price of one struct for all: a known field of the wrong type makes
//! any frame undecodable, where serde ignores fields a frame type does not
//! have. The server only sends fields of the right type.

use std::borrow::Cow;

use roomcast_shared::frame::{Ack, ErrorFrame, Joined, Limits, MembersPage, PresenceDiff};
use roomcast_shared::{
    AppEvent, ChatMessage, ErrorCode, Member, MessageDeleted, MessageUpdated, Notification,
    Presence, ReadReceipt, RoomEvent, RoomName, ServerFrame, Status, UserInfo, UserRef,
};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// A decoded frame and the numeric `ref` it answers, if any.
pub struct Decoded {
    /// The `ref`, when it is a number (the client only sends numbers).
    pub reference: Option<u64>,
    /// The frame.
    pub frame: ServerFrame,
}

/// Decodes a server frame; `None` for malformed JSON, a frame without a
/// field its type requires, or a `type` this client does not know (the
/// protocol may grow).
pub fn decode(text: &str) -> Option<Decoded> {
    let fields = Fields::read(text)?;
    let reference = fields.reference;
    let frame = fields.into_frame()?;
    Some(Decoded { reference, frame })
}

/// Every field of the server's frames, room events and read receipts. A
/// field a frame requires is `None` here when absent, and the frame is
/// refused then; a field a frame may omit takes its default.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ref", default, deserialize_with = "numeric")]
    reference: Option<u64>,
    room: Option<RoomName>,
    id: Option<String>,
    offset: Option<u64>,
    count: Option<u64>,
    // message, message_updated, ack
    client_id: Option<String>,
    sender: Option<UserInfo>,
    content: Option<String>,
    #[serde(default, with = "roomcast_shared::timestamp::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(default, with = "roomcast_shared::timestamp::rfc3339::option")]
    edited_at: Option<OffsetDateTime>,
    /// A message's data (`null` is none), or a notification's or an
    /// event's (`null` when absent).
    data: Option<Box<Value>>,
    // error
    code: Option<ErrorCode>,
    message: Option<String>,
    retry_after_ms: Option<u64>,
    reason_code: Option<String>,
    // notification, event
    title: Option<String>,
    body: Option<String>,
    name: Option<String>,
    // ready
    session_id: Option<String>,
    /// `ready`'s user, or `typing`'s (whose `id` and `name` a `UserInfo`
    /// reads the same).
    user: Option<UserInfo>,
    heartbeat_ms: Option<u64>,
    limits: Option<Limits>,
    // joined, members
    epoch: Option<String>,
    members: Option<Vec<MemberWire>>,
    cursor: Option<String>,
    /// `joined`'s events or `history`'s messages, each read on its own.
    messages: Option<Vec<Box<RawValue>>>,
    recovered: Option<bool>,
    /// Read one by one: a receipt this client cannot read is dropped, not
    /// the join.
    reads: Option<Vec<Box<RawValue>>>,
    // presence_diff
    joins: Option<Vec<MemberWire>>,
    leaves: Option<Vec<UserInfo>>,
    updates: Option<Vec<Presence>>,
    // typing, read, history
    is_typing: Option<bool>,
    user_id: Option<String>,
    #[serde(default, with = "roomcast_shared::timestamp::rfc3339::option")]
    read_at: Option<OffsetDateTime>,
    has_more: Option<bool>,
    // pong
    #[serde(default, with = "roomcast_shared::timestamp::rfc3339::option")]
    time: Option<OffsetDateTime>,
}

impl<'a> Fields<'a> {
    fn read(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    fn into_frame(mut self) -> Option<ServerFrame> {
        let kind = self.kind.take()?;
        let members = |list: Option<Vec<MemberWire>>| -> Option<Vec<Member>> {
            Some(list?.into_iter().map(MemberWire::into_member).collect())
        };
        Some(match &*kind {
            "message" => ServerFrame::Message(self.message()?),
            "message_updated" => ServerFrame::MessageUpdated(self.message_updated()?),
            "message_deleted" => ServerFrame::MessageDeleted(self.message_deleted()?),
            "ack" => ServerFrame::Ack(Ack {
                id: self.id?,
                offset: self.offset?,
                client_id: self.client_id,
            }),
            "error" => ServerFrame::Error(ErrorFrame {
                code: self.code?,
                message: self.message?,
                retry_after_ms: self.retry_after_ms,
                reason_code: self.reason_code,
            }),
            "notification" => ServerFrame::Notification(Notification {
                id: self.id?,
                title: self.title?,
                body: self.body?,
                data: self.data.map_or(Value::Null, |d| *d),
                created_at: self.created_at?,
            }),
            "event" => ServerFrame::Event(AppEvent {
                room: self.room?,
                name: self.name?,
                data: self.data.map_or(Value::Null, |d| *d),
                created_at: self.created_at?,
            }),
            "joined" => ServerFrame::Joined(Joined {
                room: self.room?,
                epoch: self.epoch?,
                offset: self.offset?,
                count: self.count.unwrap_or(0),
                members: members(self.members)?,
                cursor: self.cursor,
                messages: self
                    .messages?
                    .iter()
                    .map(|m| Fields::read(m.get())?.into_room_event())
                    .collect::<Option<_>>()?,
                recovered: self.recovered,
                reads: self
                    .reads
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| Fields::read(r.get())?.into_receipt())
                    .collect(),
            }),
            "ready" => ServerFrame::Ready {
                session_id: self.session_id?,
                user: self.user?,
                heartbeat_ms: self.heartbeat_ms?,
                limits: self.limits,
            },
            "left" => ServerFrame::Left { room: self.room? },
            "presence_diff" => ServerFrame::PresenceDiff(PresenceDiff {
                room: self.room?,
                count: self.count?,
                joins: members(self.joins).unwrap_or_default(),
                leaves: self.leaves.unwrap_or_default(),
                updates: self.updates.unwrap_or_default(),
            }),
            "occupancy" => ServerFrame::Occupancy { room: self.room?, count: self.count? },
            "members" => ServerFrame::Members(MembersPage {
                room: self.room?,
                count: self.count?,
                members: members(self.members)?,
                cursor: self.cursor,
            }),
            "typing" => {
                let user = self.user?;
                ServerFrame::Typing {
                    room: self.room?,
                    user: UserRef { id: user.id, name: user.name },
                    is_typing: self.is_typing?,
                }
            }
            "read" => ServerFrame::Read {
                room: self.room?,
                user_id: self.user_id?,
                id: self.id?,
                read_at: self.read_at?,
            },
            "history" => ServerFrame::History {
                room: self.room?,
                messages: self
                    .messages?
                    .iter()
                    .map(|m| Fields::read(m.get())?.message())
                    .collect::<Option<_>>()?,
                has_more: self.has_more?,
            },
            "pong" => ServerFrame::Pong { time: self.time? },
            _ => return None,
        })
    }

    /// One event of `joined.messages`, by its `type`.
    fn into_room_event(mut self) -> Option<RoomEvent> {
        Some(match &*self.kind.take()? {
            "message" => RoomEvent::Message(self.message()?),
            "message_updated" => RoomEvent::MessageUpdated(self.message_updated()?),
            "message_deleted" => RoomEvent::MessageDeleted(self.message_deleted()?),
            _ => return None,
        })
    }

    fn into_receipt(self) -> Option<ReadReceipt> {
        Some(ReadReceipt { user_id: self.user_id?, id: self.id?, read_at: self.read_at? })
    }

    fn message(self) -> Option<ChatMessage> {
        Some(ChatMessage {
            room: self.room?,
            id: self.id?,
            offset: self.offset?,
            client_id: self.client_id?,
            sender: self.sender?,
            content: self.content?,
            created_at: self.created_at?,
            edited_at: self.edited_at,
            data: self.data,
        })
    }

    fn message_updated(self) -> Option<MessageUpdated> {
        Some(MessageUpdated {
            room: self.room?,
            id: self.id?,
            offset: self.offset?,
            content: self.content?,
            edited_at: self.edited_at?,
            data: self.data,
        })
    }

    fn message_deleted(self) -> Option<MessageDeleted> {
        Some(MessageDeleted { room: self.room?, id: self.id?, offset: self.offset? })
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

    /// A frame without one of its fields is refused, or read with that
    /// field's default, exactly as serde's decoding of `ServerFrame` does:
    /// every golden sample, each top-level field removed in turn.
    #[test]
    fn a_missing_field_is_refused_or_defaulted_as_serde_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tests/golden/server");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).expect("golden samples") {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let sample: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap();
            for key in sample.keys().filter(|k| *k != "type") {
                let mut without = sample.clone();
                without.remove(key);
                let text = serde_json::to_string(&without).unwrap();
                let decoded = decode(&text).map(|d| d.frame);
                let kind = sample["type"].as_str().unwrap();
                if (kind, key.as_str()) == ("joined", "count") {
                    // Deliberately lenient: a server from before member
                    // counts sends none, and the count is then 0.
                    let Some(ServerFrame::Joined(joined)) = decoded else { panic!("{text}") };
                    assert_eq!(joined.count, 0);
                    continue;
                }
                let expected = serde_json::from_str::<Envelope<ServerFrame>>(&text).ok();
                assert_eq!(decoded, expected.map(|e| e.frame), "{} without {key}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 40, "{checked}");
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
