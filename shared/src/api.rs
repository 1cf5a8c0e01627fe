//! Bodies of the HTTP API that backends call (`/api/...`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::code::ErrorCode;
use crate::model::{ChatMessage, UserInfo};
use crate::room::RoomName;

/// `POST /api/notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyRequest {
    /// The users to notify (every connection of each, on every instance).
    pub user_ids: Vec<String>,
    /// The headline.
    pub title: String,
    /// The text.
    #[serde(default)]
    pub body: String,
    /// Anything the application wants to attach.
    #[serde(default)]
    pub data: Value,
}

/// The answer to `POST /api/notify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyResponse {
    /// The notification's id.
    pub id: String,
    /// How many of the users were online and got it at once; the others get
    /// it when they next connect.
    pub online: usize,
}

/// Who a message posted through the API is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SenderSpec {
    /// The user id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The role.
    #[serde(default)]
    pub role: Option<String>,
    /// An avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
}

impl From<SenderSpec> for UserInfo {
    fn from(s: SenderSpec) -> Self {
        Self { id: s.id, name: s.name, role: s.role, avatar: s.avatar }
    }
}

/// `POST /api/rooms/{room}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishMessageRequest {
    /// The text; may be empty (or absent) when `data` is not.
    #[serde(default)]
    pub content: String,
    /// On whose behalf; absent means `{id: "system", name: "System"}`.
    #[serde(default)]
    pub sender: Option<SenderSpec>,
    /// An idempotency key, as in the `send` frame; one is made up when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Application data kept with the message, as in the `send` frame: a
    /// JSON object within the server's bounds; `{}` is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `PATCH /api/rooms/{room}/messages/{id}`: new text, and data, for any
/// message of the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditMessageRequest {
    /// The new text (may be empty when the message has `data` after the edit).
    pub content: String,
    /// The message's new data, as in the `edit` frame: absent (or `null`)
    /// keeps it, an object replaces it, `{}` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `POST /api/rooms/{room}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishEventRequest {
    /// The event's name, such as `order.shipped`.
    pub name: String,
    /// Its payload.
    #[serde(default)]
    pub data: Value,
}

/// `GET /api/rooms/{room}/presence`: one page of the room's members (the
/// same body as the `members` frame, without its `type`).
pub type RoomPresence = crate::frame::MembersPage;

/// `GET /api/users/online`: how many users are online on any instance, and
/// one page of them by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnlineUsers {
    /// How many users are online (invisible ones are not).
    pub count: u64,
    /// Up to `limit` of them with their presence, in id order (byte order).
    pub users: Vec<crate::model::Presence>,
    /// Where the next page starts; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /api/rooms/{room}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    /// The room.
    pub room: RoomName,
    /// Messages in their current state, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages remain.
    pub has_more: bool,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`, or `degraded` when the broker is unreachable.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// Open WebSocket connections on this instance.
    pub connections: usize,
    /// Distinct users connected to this instance.
    pub users: usize,
    /// Rooms with members on this instance.
    pub rooms: usize,
    /// Which engine carries messages: `memory` or `redis`.
    pub broker: String,
    /// The RabbitMQ consumer (`--amqp-url`): `connected`, or `connecting`
    /// while it (re)connects; absent when none is configured. It does not
    /// change `status`: an instance without its queue still serves clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp: Option<String>,
}

/// `POST /api/dev/token` (dev mode only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DevTokenRequest {
    /// The display name; the user id is made from it.
    pub name: String,
    /// A role for the token, such as `admin`.
    #[serde(default)]
    pub role: Option<String>,
}

/// The answer to `POST /api/dev/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DevTokenResponse {
    /// A signed token for the `auth` frame or `?token=`.
    pub token: String,
    /// The user the token is for.
    pub user: UserInfo,
}

/// Every HTTP error: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    /// The error.
    pub error: ApiErrorDetail,
}

/// The inside of an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorDetail {
    /// What went wrong.
    pub code: ErrorCode,
    /// For humans.
    pub message: String,
}
