//! Webhooks: the body of each event POSTed to the backend
//! (`--webhook-url`), and the HTTP API's dead-letter bodies
//! (`/api/webhooks/dead-letters`). `docs/integration.md` has the delivery
//! rules and the signature.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::RoomEvent;
use crate::model::{
    ChatMessage, MessageDeleted, MessageUpdated, Notification, Presence, ReadReceipt, UserInfo,
};
use crate::room::RoomName;

/// One event, as POSTed to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    /// Unique per event (the same in every retry and for every endpoint):
    /// the receiver's deduplication key.
    pub id: String,
    /// When it happened.
    #[serde(with = "crate::timestamp::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: OffsetDateTime,
    /// The room it happened in; absent for a user's event (`presence`,
    /// `notification_delivered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    /// `type` and `data`.
    #[serde(flatten)]
    pub payload: WebhookPayload,
}

/// A webhook event's `type` and its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum WebhookPayload {
    /// A message was stored (as clients receive it).
    Message(ChatMessage),
    /// A message was edited.
    MessageUpdated(MessageUpdated),
    /// A message was deleted.
    MessageDeleted(MessageDeleted),
    /// A user's first connection joined the room.
    MemberJoined {
        /// Who.
        user: UserInfo,
    },
    /// A user's last connection left the room.
    MemberLeft {
        /// Who.
        user_id: String,
    },
    /// A user's presence changed (online, status, offline).
    Presence(Presence),
    /// A user read the room up to a message.
    Read(ReadReceipt),
    /// The room has its first member.
    RoomOccupied {},
    /// The room's last member left.
    RoomVacated {},
    /// A notification reached a connection of the user (live, or when the
    /// user connected and took what was kept).
    NotificationDelivered {
        /// To whom.
        user_id: String,
        /// What.
        notification: Notification,
    },
}

impl From<RoomEvent> for WebhookPayload {
    fn from(event: RoomEvent) -> Self {
        match event {
            RoomEvent::Message(m) => Self::Message(m),
            RoomEvent::MessageUpdated(m) => Self::MessageUpdated(m),
            RoomEvent::MessageDeleted(m) => Self::MessageDeleted(m),
        }
    }
}

impl WebhookPayload {
    /// The message this event carries the text of (`message`,
    /// `message_updated`): what a delete of that message erases.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Self::Message(m) => Some(&m.id),
            Self::MessageUpdated(u) => Some(&u.id),
            _ => None,
        }
    }

    /// Erases the text of message `id` from the event, which keeps its
    /// type, id and place: a `message` becomes the message's trace (as in
    /// the room's log), a `message_updated` keeps its offset and edit time
    /// with no content or data. The `message_deleted` that erased it
    /// follows in the room's order. Returns whether the event was one of
    /// that message's.
    pub fn erase(&mut self, id: &str) -> bool {
        match self {
            Self::Message(m) if m.id == id => {
                m.delete();
                true
            }
            Self::MessageUpdated(u) if u.id == id => {
                u.content = String::new();
                u.data = None;
                true
            }
            _ => false,
        }
    }
}

/// A dead letter: an event whose deliveries to one endpoint all failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetter {
    /// Its place in the outbox: what `replay` and `after` take.
    pub seq: i64,
    /// The webhook URL it was for.
    pub endpoint: String,
    /// Failed attempts.
    pub attempts: u32,
    /// Why the last one failed.
    pub error: String,
    /// The event, as it was POSTed.
    pub event: WebhookEvent,
}

/// `GET /api/webhooks/dead-letters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterPage {
    /// Oldest first.
    pub dead_letters: Vec<DeadLetter>,
    /// The `after` of the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// `POST /api/webhooks/dead-letters/replay`: the dead letters to deliver
/// again, by `seq`, or every one with `all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayRequest {
    /// The dead letters' `seq`s.
    #[serde(default)]
    pub seqs: Vec<i64>,
    /// Every dead letter (then `seqs` must be empty).
    #[serde(default)]
    pub all: bool,
}

/// The answer to a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayResponse {
    /// How many dead letters are back in line.
    pub replayed: u64,
}
