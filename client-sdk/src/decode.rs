//! Decoding server frames into the protocol's [`ServerFrame`], cheaply.
//!
//! Every serde decoder of a struct costs the wasm a few KB (its field
//! matching, and a second path for a struct written as an array),
//! `ServerFrame` is an internally tagged enum that serde decodes by
//! buffering the whole object first (once a third of the SDK), and
//! serde_json's deserializer with serde's visitors took another 56 KB. So
//! a frame is read in one pass with the crate's own [`json`](crate::json)
//! reader into [`Fields`]: every field any server frame (or room event, or
//! read receipt) has, each optional, in one struct, one reader in the
//! wasm. The frame's `type` then picks which fields it requires and builds
//! the same `ServerFrame` serde would; a test decodes every golden sample
//! of the protocol both ways and compares, and others remove, repeat or
//! mistype each field in turn and check the frame is refused (or
//! defaulted) as serde does.
//!
//! The price of one struct for all: a known field of the wrong type makes
//! any frame undecodable, where serde ignores fields a frame type does not
//! have. The server only sends fields of the right type.

use std::borrow::Cow;

use roomcast_shared::frame::{
    Ack, ErrorFrame, Joined, Limits, MembersPage, PresenceDiff, RateLimit,
};
use roomcast_shared::{
    AppEvent, ChatMessage, ErrorCode, Member, MessageDeleted, MessageUpdated, Notification,
    Presence, ReadReceipt, RoomEvent, RoomName, ServerFrame, Status, UserInfo, UserRef,
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::json::{Num, Reader};

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
/// field a frame requires is `None` here when absent (or `null`), and the
/// frame is refused then; a field a frame may omit takes its default.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<Cow<'a, str>>,
    reference: Option<u64>,
    room: Option<RoomName>,
    id: Option<String>,
    offset: Option<u64>,
    count: Option<u64>,
    // message, message_updated, ack
    client_id: Option<String>,
    sender: Option<UserInfo>,
    content: Option<String>,
    created_at: Option<OffsetDateTime>,
    edited_at: Option<OffsetDateTime>,
    /// A message's data (`null` is none), or a notification's or an
    /// event's (`null` when absent).
    data: Option<Box<Value>>,
    /// A message's: what a deleted one left (absent is false).
    deleted: Option<bool>,
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
    members: Option<Vec<Member>>,
    cursor: Option<String>,
    /// `joined`'s events or `history`'s messages, each read on its own.
    messages: Option<Vec<&'a str>>,
    recovered: Option<bool>,
    /// Read one by one: a receipt this client cannot read is dropped, not
    /// the join.
    reads: Option<Vec<&'a str>>,
    // presence_diff
    joins: Option<Vec<Member>>,
    leaves: Option<Vec<UserInfo>>,
    updates: Option<Vec<Presence>>,
    // typing, read, history
    is_typing: Option<bool>,
    user_id: Option<String>,
    read_at: Option<OffsetDateTime>,
    has_more: Option<bool>,
    // pong
    time: Option<OffsetDateTime>,
}

impl<'a> Fields<'a> {
    /// Reads a frame (or a room event, or a receipt): `None` when it is
    /// not JSON, a known field has the wrong type, or a field comes twice.
    fn read(text: &'a str) -> Option<Self> {
        let mut fields = Fields::default();
        let mut seen = Seen::default();
        Reader::document(text, |r| r.object(|r, key| fields.field(r, &key, &mut seen)))?;
        Some(fields)
    }

    /// Reads the value of `key` into its field (an unknown key's value is
    /// skipped).
    fn field(&mut self, r: &mut Reader<'a>, key: &str, seen: &mut Seen) -> Option<()> {
        let string = |r: &mut Reader<'a>| r.nullable(owned);
        let number = |r: &mut Reader<'a>| r.nullable(Reader::u64);
        let flag = |r: &mut Reader<'a>| r.nullable(Reader::bool);
        let at = |r: &mut Reader<'a>| r.nullable(timestamp);
        let raws = |r: &mut Reader<'a>| r.nullable(|r| r.list(Reader::raw));
        let members = |r: &mut Reader<'a>| r.nullable(|r| r.list(member));
        match key {
            "type" => self.kind = seen.once(0, r.nullable(Reader::string))?,
            "ref" => self.reference = seen.once(1, reference(r))?,
            "room" => self.room = seen.once(2, r.nullable(room))?,
            "id" => self.id = seen.once(3, string(r))?,
            "offset" => self.offset = seen.once(4, number(r))?,
            "count" => self.count = seen.once(5, number(r))?,
            "client_id" => self.client_id = seen.once(6, string(r))?,
            "sender" => self.sender = seen.once(7, r.nullable(user))?,
            "content" => self.content = seen.once(8, string(r))?,
            "created_at" => self.created_at = seen.once(9, at(r))?,
            "edited_at" => self.edited_at = seen.once(10, at(r))?,
            "data" => self.data = seen.once(11, r.nullable(|r| r.value().map(Box::new)))?,
            "code" => self.code = seen.once(12, r.nullable(error_code))?,
            "message" => self.message = seen.once(13, string(r))?,
            "retry_after_ms" => self.retry_after_ms = seen.once(14, number(r))?,
            "reason_code" => self.reason_code = seen.once(15, string(r))?,
            "title" => self.title = seen.once(16, string(r))?,
            "body" => self.body = seen.once(17, string(r))?,
            "name" => self.name = seen.once(18, string(r))?,
            "session_id" => self.session_id = seen.once(19, string(r))?,
            "user" => self.user = seen.once(20, r.nullable(user))?,
            "heartbeat_ms" => self.heartbeat_ms = seen.once(21, number(r))?,
            "limits" => self.limits = seen.once(22, r.nullable(limits))?,
            "epoch" => self.epoch = seen.once(23, string(r))?,
            "members" => self.members = seen.once(24, members(r))?,
            "cursor" => self.cursor = seen.once(25, string(r))?,
            "messages" => self.messages = seen.once(26, raws(r))?,
            "recovered" => self.recovered = seen.once(27, flag(r))?,
            "reads" => self.reads = seen.once(28, raws(r))?,
            "joins" => self.joins = seen.once(29, members(r))?,
            "leaves" => self.leaves = seen.once(30, r.nullable(|r| r.list(user)))?,
            "updates" => self.updates = seen.once(31, r.nullable(|r| r.list(presence)))?,
            "is_typing" => self.is_typing = seen.once(32, flag(r))?,
            "user_id" => self.user_id = seen.once(33, string(r))?,
            "read_at" => self.read_at = seen.once(34, at(r))?,
            "has_more" => self.has_more = seen.once(35, flag(r))?,
            "time" => self.time = seen.once(36, at(r))?,
            "deleted" => self.deleted = seen.once(37, flag(r))?,
            _ => r.skip()?,
        }
        Some(())
    }

    fn into_frame(mut self) -> Option<ServerFrame> {
        let kind = self.kind.take()?;
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
                members: self.members?,
                cursor: self.cursor,
                messages: self
                    .messages?
                    .iter()
                    .map(|m| Fields::read(m)?.into_room_event())
                    .collect::<Option<_>>()?,
                recovered: self.recovered,
                reads: self
                    .reads
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| Fields::read(r)?.into_receipt())
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
                joins: self.joins.unwrap_or_default(),
                leaves: self.leaves.unwrap_or_default(),
                updates: self.updates.unwrap_or_default(),
            }),
            "occupancy" => ServerFrame::Occupancy { room: self.room?, count: self.count? },
            "members" => ServerFrame::Members(MembersPage {
                room: self.room?,
                count: self.count?,
                members: self.members?,
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
                    .map(|m| Fields::read(m)?.message())
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
            deleted: self.deleted.unwrap_or(false),
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

/// Which of the fields were read: a field that comes twice makes the
/// frame undecodable, as serde's derived decoders refuse it.
#[derive(Default)]
struct Seen(u64);

impl Seen {
    /// `value` as the field numbered `bit`, unless that field came before.
    fn once<T>(&mut self, bit: u32, value: Option<T>) -> Option<T> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        value
    }
}

fn owned(r: &mut Reader<'_>) -> Option<String> {
    r.string().map(Cow::into_owned)
}

fn timestamp(r: &mut Reader<'_>) -> Option<OffsetDateTime> {
    roomcast_shared::timestamp::parse(&r.string()?)
}

fn room(r: &mut Reader<'_>) -> Option<RoomName> {
    RoomName::new(r.string()?.into_owned()).ok()
}

/// A `ref`: a number as itself when it fits a `u64`; any other number or a
/// string as no ref; any other value makes the frame undecodable.
fn reference(r: &mut Reader<'_>) -> Option<Option<u64>> {
    if r.peek()? == b'"' {
        return r.string().map(|_| None);
    }
    match r.number()? {
        Num::Unsigned(n) => Some(Some(n)),
        Num::Signed(_) | Num::Float(_) => Some(None),
    }
}

fn error_code(r: &mut Reader<'_>) -> Option<ErrorCode> {
    Some(match &*r.string()? {
        "bad_request" => ErrorCode::BadRequest,
        "unauthorized" => ErrorCode::Unauthorized,
        "forbidden" => ErrorCode::Forbidden,
        "not_found" => ErrorCode::NotFound,
        "rate_limited" => ErrorCode::RateLimited,
        "too_large" => ErrorCode::TooLarge,
        "conflict" => ErrorCode::Conflict,
        "rejected" => ErrorCode::Rejected,
        "unavailable" => ErrorCode::Unavailable,
        "internal" => ErrorCode::Internal,
        _ => return None,
    })
}

fn status(r: &mut Reader<'_>) -> Option<Status> {
    Some(match &*r.string()? {
        "online" => Status::Online,
        "away" => Status::Away,
        "busy" => Status::Busy,
        "offline" => Status::Offline,
        _ => return None,
    })
}

/// A `UserInfo`: `id` and `name` required, `role` and `avatar` optional.
fn user(r: &mut Reader<'_>) -> Option<UserInfo> {
    let (mut id, mut name, mut role, mut avatar) = (None, None, None, None);
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            "id" => id = Some(seen.once(0, owned(r))?),
            "name" => name = Some(seen.once(1, owned(r))?),
            "role" => role = seen.once(2, r.nullable(owned))?,
            "avatar" => avatar = seen.once(3, r.nullable(owned))?,
            _ => r.skip()?,
        }
        Some(())
    })?;
    Some(UserInfo { id: id?, name: name?, role, avatar })
}

/// A `Presence`, or with `user` beside it, a `Member` (whose presence
/// fields are flattened beside the user).
fn presence_and_user(r: &mut Reader<'_>) -> Option<(Presence, Option<UserInfo>)> {
    let (mut user_id, mut state, mut custom, mut last_seen, mut who) =
        (None, None, None, None, None);
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            "user_id" => user_id = Some(seen.once(0, owned(r))?),
            "status" => state = Some(seen.once(1, status(r))?),
            "custom" => custom = seen.once(2, r.nullable(owned))?,
            "last_seen" => last_seen = Some(seen.once(3, timestamp(r))?),
            "user" => who = Some(seen.once(4, user(r))?),
            _ => r.skip()?,
        }
        Some(())
    })?;
    let presence = Presence { user_id: user_id?, status: state?, custom, last_seen: last_seen? };
    Some((presence, who))
}

fn presence(r: &mut Reader<'_>) -> Option<Presence> {
    presence_and_user(r).map(|(presence, _)| presence)
}

fn member(r: &mut Reader<'_>) -> Option<Member> {
    let (presence, user) = presence_and_user(r)?;
    Some(Member { user: user?, presence })
}

fn limits(r: &mut Reader<'_>) -> Option<Limits> {
    let (mut messages, mut user_messages, mut frames, mut joins) = (None, None, None, None);
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            "messages" => messages = Some(seen.once(0, rate_limit(r))?),
            "user_messages" => user_messages = Some(seen.once(1, rate_limit(r))?),
            "frames" => frames = Some(seen.once(2, rate_limit(r))?),
            "joins" => joins = Some(seen.once(3, rate_limit(r))?),
            _ => r.skip()?,
        }
        Some(())
    })?;
    Some(Limits {
        messages: messages?,
        user_messages: user_messages?,
        frames: frames?,
        joins: joins?,
    })
}

fn rate_limit(r: &mut Reader<'_>) -> Option<RateLimit> {
    let (mut per_sec, mut burst) = (None, None);
    let mut seen = Seen::default();
    r.object(|r, key| {
        match &*key {
            "per_sec" => per_sec = Some(seen.once(0, r.f64())?),
            "burst" => burst = Some(seen.once(1, r.u64().and_then(|n| u32::try_from(n).ok()))?),
            _ => r.skip()?,
        }
        Some(())
    })?;
    Some(RateLimit { per_sec: per_sec?, burst: burst? })
}

#[cfg(test)]
mod tests;
