//! The values that frames and HTTP bodies carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::room::RoomName;

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// The user id (a token's `sub`).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The role, when the token has one.
    #[serde(default)]
    pub role: Option<String>,
    /// An avatar URL, when the token has one.
    #[serde(default)]
    pub avatar: Option<String>,
}

/// The short form of a user in `typing` frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct UserRef {
    /// The user id.
    pub id: String,
    /// The display name.
    pub name: String,
}

impl From<&UserInfo> for UserRef {
    fn from(user: &UserInfo) -> Self {
        Self { id: user.id.clone(), name: user.name.clone() }
    }
}

/// A place in a room's stream: where a client is, to recover from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Position {
    /// The room's history generation; changes when its history is reset.
    pub epoch: String,
    /// The offset of the last event seen.
    pub offset: u64,
}

/// A chat message, as the `message` frame and history carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    /// The room it was sent to.
    pub room: RoomName,
    /// The message id, unique across rooms.
    pub id: String,
    /// Its place in the room's stream.
    pub offset: u64,
    /// The sender's idempotency key.
    pub client_id: String,
    /// Who sent it.
    pub sender: UserInfo,
    /// The text (edited text, in history, when it was edited; empty when
    /// deleted).
    pub content: String,
    /// When the server accepted it.
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last edited; only in history of edited messages.
    #[cfg_attr(feature = "typescript", ts(as = "Option<String>"))]
    #[serde(
        default,
        with = "crate::timestamp::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub edited_at: Option<OffsetDateTime>,
    /// Application data kept with the message: the sender's object (by
    /// convention `attachments`: see the protocol), or what the
    /// application's backend made of it when it accepted the message (its
    /// publish hook: mentions, link previews, moderation labels), which may
    /// be any JSON value; absent when there is none. Boxed: most
    /// messages have none, and every kept message would carry a whole
    /// `Value`'s room otherwise.
    #[cfg_attr(feature = "typescript", ts(optional, type = "unknown"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<serde_json::Value>>,
    /// `true` for what a deleted message leaves in history: its place, id,
    /// sender and time, with no content, data or edit time. Absent
    /// otherwise.
    #[cfg_attr(feature = "typescript", ts(as = "Option<bool>", optional))]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ChatMessage {
    /// Turns the message into what its deletion leaves: the content and
    /// data are gone for good, the place and the sender stay.
    pub fn delete(&mut self) {
        self.content = String::new();
        self.edited_at = None;
        self.data = None;
        self.deleted = true;
    }
}

/// A message's new text and data, as the `message_updated` frame carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageUpdated {
    /// The room.
    pub room: RoomName,
    /// The edited message.
    pub id: String,
    /// The edit's own place in the room's stream.
    pub offset: u64,
    /// The new text.
    pub content: String,
    /// When it was edited.
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub edited_at: OffsetDateTime,
    /// The message's data after the edit (kept, replaced or removed):
    /// absent when it has none now.
    #[cfg_attr(feature = "typescript", ts(optional, type = "unknown"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<serde_json::Value>>,
}

/// A deleted message, as the `message_deleted` frame carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageDeleted {
    /// The room.
    pub room: RoomName,
    /// The deleted message.
    pub id: String,
    /// The deletion's own place in the room's stream.
    pub offset: u64,
}

/// The status a client may set for its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SetStatus {
    /// Available.
    Online,
    /// Away from the keyboard.
    Away,
    /// Do not disturb.
    Busy,
    /// Connected, but shown to others as offline.
    Invisible,
}

impl SetStatus {
    /// How others see this status.
    pub fn visible(self) -> Status {
        match self {
            Self::Online => Status::Online,
            Self::Away => Status::Away,
            Self::Busy => Status::Busy,
            Self::Invisible => Status::Offline,
        }
    }
}

/// A user's status as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Available.
    Online,
    /// Away from the keyboard.
    Away,
    /// Do not disturb.
    Busy,
    /// Not connected, or invisible.
    Offline,
}

/// A user's presence, as the `presence` frame carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    /// The user.
    pub user_id: String,
    /// The status others see.
    pub status: Status,
    /// A custom status text.
    #[serde(default)]
    pub custom: Option<String>,
    /// When the user was last connected (now, while online).
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// A room member in `joined.members` and the room presence API: a presence
/// object with the user's profile beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The member.
    pub user: UserInfo,
    /// Their presence (`presence.user_id` is `user.id`).
    #[serde(flatten)]
    pub presence: Presence,
}

/// How far a member has read a room: the latest `read` they sent, kept so
/// that a page loaded later shows "seen by" at once (`joined.reads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadReceipt {
    /// The reader.
    pub user_id: String,
    /// The last message they read.
    pub id: String,
    /// When they read it.
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub read_at: OffsetDateTime,
}

/// A notification for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    /// The notification id.
    pub id: String,
    /// The headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// Anything the application wants to attach.
    #[cfg_attr(feature = "typescript", ts(type = "unknown"))]
    #[serde(default)]
    pub data: Value,
    /// When the backend posted it.
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An application event a backend published into a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppEvent {
    /// The room.
    pub room: RoomName,
    /// The event's name, such as `order.shipped`.
    pub name: String,
    /// Its payload.
    #[cfg_attr(feature = "typescript", ts(type = "unknown"))]
    #[serde(default)]
    pub data: Value,
    /// When it was published.
    #[cfg_attr(feature = "typescript", ts(type = "string"))]
    #[serde(with = "crate::timestamp::rfc3339")]
    pub created_at: OffsetDateTime,
}
