//! The JSON frames of the WebSocket protocol: one object per text frame, its
//! `type` field naming the variant.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::code::ErrorCode;
use crate::model::{
    AppEvent, ChatMessage, Member, MessageDeleted, MessageUpdated, Notification, Position,
    Presence, ReadReceipt, SetStatus, UserInfo, UserRef,
};
use crate::room::RoomName;

/// A client's label for a request, echoed in the server's direct reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(untagged)]
pub enum Ref {
    /// A numeric ref, such as a counter.
    Number(serde_json::Number),
    /// A string ref.
    Text(String),
}

impl From<u64> for Ref {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

impl From<&str> for Ref {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

/// A frame with the optional `ref` beside its fields.
///
/// Client frames always travel in an envelope; the server puts its direct
/// replies in one (echoing the request's `ref`) and sends broadcasts bare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<F> {
    /// The request's label, echoed by the reply.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Ref>,
    /// The frame itself.
    #[serde(flatten)]
    pub frame: F,
}

impl<F> Envelope<F> {
    /// A frame without a `ref`.
    pub fn bare(frame: F) -> Self {
        Self { reference: None, frame }
    }

    /// A frame with a `ref`.
    pub fn with_ref(reference: Option<Ref>, frame: F) -> Self {
        Self { reference, frame }
    }
}

/// A frame from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS), ts(rename = "BareClientFrame"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate, or refresh the token of an open connection.
    Auth {
        /// A JWT. Left out on a connection the connect hook signed in: the
        /// backend is asked again who the connection's cookies belong to.
        #[cfg_attr(feature = "typescript", ts(optional))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Join a room, optionally recovering from a position or loading history.
    Join {
        /// The room.
        room: RoomName,
        /// Replay what was missed since this position.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Position>,
        /// Include this many of the latest messages (at most 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history: Option<u16>,
        /// In a big room (more members than the server's big-room size),
        /// still receive each member's arrival, departure and status in
        /// `presence_diff` frames rather than only `occupancy` counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_events: Option<bool>,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: RoomName,
    },
    /// Send a chat message.
    Send {
        /// The room (joined).
        room: RoomName,
        /// The text; may be empty when `data` is not.
        #[serde(default)]
        content: String,
        /// An idempotency key, unique per sender: resending with the same key
        /// returns the original ack and broadcasts nothing.
        client_id: String,
        /// Application data kept with the message: a JSON object (by
        /// convention `attachments`), bounded by the server; `{}` is none.
        #[cfg_attr(feature = "typescript", ts(optional, type = "Record<string, unknown>"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Box<serde_json::Value>>,
    },
    /// Edit a message (own messages; admins any).
    Edit {
        /// The room (joined).
        room: RoomName,
        /// The message.
        id: String,
        /// The new text; may be empty when `data` is a non-empty object.
        #[serde(default)]
        content: String,
        /// The message's new data: absent (or `null`) keeps what it has,
        /// an object replaces it, `{}` removes it.
        #[cfg_attr(feature = "typescript", ts(optional, type = "Record<string, unknown>"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Box<serde_json::Value>>,
    },
    /// Delete a message (own messages; admins any).
    Delete {
        /// The room (joined).
        room: RoomName,
        /// The message.
        id: String,
    },
    /// Start or stop typing.
    Typing {
        /// The room (joined).
        room: RoomName,
        /// Whether the user is typing.
        is_typing: bool,
    },
    /// Mark a room read up to a message.
    Read {
        /// The room (joined).
        room: RoomName,
        /// The last message read.
        id: String,
    },
    /// Set the user's status.
    Presence {
        /// The new status.
        status: SetStatus,
        /// A custom status text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<String>,
    },
    /// Page back through a room's history.
    History {
        /// The room (joinable).
        room: RoomName,
        /// Only messages with an offset below this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// How many (at most 100; default 50).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u16>,
    },
    /// Page through a joined room's members (online first, then by name).
    Members {
        /// The room (joined).
        room: RoomName,
        /// Where the previous page ended (its `cursor`); the first page
        /// without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// How many (at most [`MAX_MEMBERS_LIMIT`](crate::MAX_MEMBERS_LIMIT);
        /// default [`DEFAULT_MEMBERS_LIMIT`](crate::DEFAULT_MEMBERS_LIMIT)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u16>,
    },
    /// Ask for a `pong` (browsers cannot send WebSocket pings).
    Ping,
}

impl ClientFrame {
    /// The frame's `type`, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Send { .. } => "send",
            Self::Edit { .. } => "edit",
            Self::Delete { .. } => "delete",
            Self::Typing { .. } => "typing",
            Self::Read { .. } => "read",
            Self::Presence { .. } => "presence",
            Self::History { .. } => "history",
            Self::Members { .. } => "members",
            Self::Ping => "ping",
        }
    }
}

/// Every `type` a client may send, for error messages and docs.
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "auth", "join", "leave", "send", "edit", "delete", "typing", "read", "presence", "history",
    "members", "ping",
];

/// One event of a room's stream: what `joined.messages` replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A new message.
    Message(ChatMessage),
    /// A message's text changed.
    MessageUpdated(MessageUpdated),
    /// A message was deleted.
    MessageDeleted(MessageDeleted),
}

impl RoomEvent {
    /// The event's place in its room's stream.
    pub fn offset(&self) -> u64 {
        match self {
            Self::Message(m) => m.offset,
            Self::MessageUpdated(m) => m.offset,
            Self::MessageDeleted(m) => m.offset,
        }
    }

    /// Gives the event its place, once the stream assigned it.
    pub fn set_offset(&mut self, offset: u64) {
        match self {
            Self::Message(m) => m.offset = offset,
            Self::MessageUpdated(m) => m.offset = offset,
            Self::MessageDeleted(m) => m.offset = offset,
        }
    }

    /// The room whose stream it belongs to.
    pub fn room(&self) -> &RoomName {
        match self {
            Self::Message(m) => &m.room,
            Self::MessageUpdated(m) => &m.room,
            Self::MessageDeleted(m) => &m.room,
        }
    }

    /// What a room's log keeps of the event once message `id` is deleted:
    /// the message becomes its trace ([`ChatMessage::delete`]) and each of
    /// its edits a `message_deleted` at the edit's offset, so that a replay
    /// never carries deleted content yet keeps every offset. Returns whether
    /// the event was one of that message's.
    pub fn erase(&mut self, id: &str) -> bool {
        match self {
            Self::Message(m) if m.id == id => {
                m.delete();
                true
            }
            Self::MessageUpdated(u) if u.id == id => {
                let (room, id, offset) = (u.room.clone(), std::mem::take(&mut u.id), u.offset);
                *self = Self::MessageDeleted(MessageDeleted { room, id, offset });
                true
            }
            _ => false,
        }
    }
}

impl From<RoomEvent> for ServerFrame {
    fn from(event: RoomEvent) -> Self {
        match event {
            RoomEvent::Message(m) => Self::Message(m),
            RoomEvent::MessageUpdated(m) => Self::MessageUpdated(m),
            RoomEvent::MessageDeleted(m) => Self::MessageDeleted(m),
        }
    }
}

/// The reply to `join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Joined {
    /// The room.
    pub room: RoomName,
    /// The room's history generation.
    pub epoch: String,
    /// The latest offset in the room (0 when it has no events yet).
    pub offset: u64,
    /// How many members the room has.
    pub count: u64,
    /// The first page of members with their presence (online first, then
    /// by name); the rest with `members` from `cursor`.
    pub members: Vec<Member>,
    /// Where to continue with `members`; absent when `members` is everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Recovered events (with `since`) or the latest messages (with `history`),
    /// oldest first.
    pub messages: Vec<RoomEvent>,
    /// With `since`: whether every missed event is in `messages`. When false,
    /// the client should reload the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The latest read position of each member who has one, latest readers
    /// first, at most [`MAX_JOINED_READS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<ReadReceipt>,
}

/// Most read positions a `joined` reply carries (the latest readers).
pub const MAX_JOINED_READS: usize = 100;

/// A page of a room's members: the reply to `members`, and the room
/// presence API's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembersPage {
    /// The room.
    pub room: RoomName,
    /// How many members the room has.
    pub count: u64,
    /// Members with their presence, online first, then by name.
    pub members: Vec<Member>,
    /// Where the next page starts; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A room's membership and presence changes over a short window, sent once
/// per window (`presence_diff`), the latest state of each user who changed:
/// applying `leaves`, then `joins`, then `updates` to the member list gives
/// the room as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct PresenceDiff {
    /// The room.
    pub room: RoomName,
    /// How many members the room has now.
    pub count: u64,
    /// Users who are members now and arrived in the window (or whose earlier
    /// departure this replaces), with their presence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<Member>,
    /// Users who are no longer members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaves: Vec<UserInfo>,
    /// Members whose status changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<Presence>,
}

/// The reply to `send`, `edit` and `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ack {
    /// The message.
    pub id: String,
    /// The offset of the event the request created (for a duplicate `send`,
    /// the original one).
    pub offset: u64,
    /// The `send`'s idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// An error reply, or an error about the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ErrorFrame {
    /// What went wrong.
    pub code: ErrorCode,
    /// For humans.
    pub message: String,
    /// With `rate_limited`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// With `rejected`: the code the application's backend gave its
    /// refusal (`"spam"`, say), for a client to act on; `message` is the
    /// backend's reason, for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// The rate limits a connection works within, announced in `ready`.
///
/// A request over a limit is refused with `rate_limited` and a
/// `retry_after_ms`; a client that paces itself by these numbers is not
/// refused by its connection's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Limits {
    /// `send`, `edit` and `delete` on this connection.
    pub messages: RateLimit,
    /// `send`, `edit` and `delete` of this user over all their connections
    /// to one server instance.
    pub user_messages: RateLimit,
    /// Frames of any type on this connection.
    pub frames: RateLimit,
    /// `join` on this connection.
    pub joins: RateLimit,
}

/// A token bucket: `burst` requests at once after a quiet spell, refilled
/// at `per_sec` per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_sec: f64,
    /// Requests allowed at once (the bucket's size).
    pub burst: u32,
}

/// A frame from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS), ts(rename = "BareServerFrame"))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The connection is authenticated (the reply to `auth`).
    Ready {
        /// This connection's id.
        session_id: String,
        /// Who the token says the user is.
        user: UserInfo,
        /// How often the server pings; clients may ping at the same rate.
        heartbeat_ms: u64,
        /// The rate limits this connection works within, so that a client
        /// can pace itself (older servers leave it out).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
    },
    /// The reply to `join`.
    Joined(Joined),
    /// The reply to `leave`.
    Left {
        /// The room.
        room: RoomName,
    },
    /// A new chat message.
    Message(ChatMessage),
    /// The reply to `send`, `edit` and `delete`.
    Ack(Ack),
    /// A message was edited.
    MessageUpdated(MessageUpdated),
    /// A message was deleted.
    MessageDeleted(MessageDeleted),
    /// Who arrived, left or changed status in a room over the last window.
    PresenceDiff(PresenceDiff),
    /// How many members a big room has now (instead of `presence_diff`,
    /// unless the join asked for `member_events`).
    Occupancy {
        /// The room.
        room: RoomName,
        /// How many members it has.
        count: u64,
    },
    /// Another user started or stopped typing.
    Typing {
        /// The room.
        room: RoomName,
        /// Who.
        user: UserRef,
        /// Whether they are typing now.
        is_typing: bool,
    },
    /// A user read the room up to a message.
    Read {
        /// The room.
        room: RoomName,
        /// Who.
        user_id: String,
        /// The last message they read.
        id: String,
        /// When.
        #[cfg_attr(feature = "typescript", ts(type = "string"))]
        #[serde(with = "crate::timestamp::rfc3339")]
        read_at: OffsetDateTime,
    },
    /// A notification for this user.
    Notification(Notification),
    /// An application event published by a backend.
    Event(AppEvent),
    /// The reply to `history`.
    History {
        /// The room.
        room: RoomName,
        /// Messages in their current state, oldest first.
        messages: Vec<ChatMessage>,
        /// Whether older messages remain.
        has_more: bool,
    },
    /// The reply to `members`.
    Members(MembersPage),
    /// The reply to `ping`.
    Pong {
        /// The server's clock.
        #[cfg_attr(feature = "typescript", ts(type = "string"))]
        #[serde(with = "crate::timestamp::rfc3339")]
        time: OffsetDateTime,
    },
    /// A request failed, or the connection is about to close.
    Error(ErrorFrame),
}

impl ServerFrame {
    /// An `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(ErrorFrame {
            code,
            message: message.into(),
            retry_after_ms: None,
            reason_code: None,
        })
    }
}
