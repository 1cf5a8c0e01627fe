//! The engine boundary: everything that must be shared between instances of
//! the server (fan-out, room streams and history, idempotency keys,
//! membership, presence, unread notifications) goes through [`Engine`].
//!
//! [`memory::MemoryEngine`] keeps it all in this process. A networked engine
//! (Redis) implements the same trait; nothing outside this module knows which
//! one runs. Engines deliver frames to local connections through the
//! [`Hub`](crate::hub::Hub) they are built with.

use async_trait::async_trait;
use roomcast_shared::{
    ChatMessage, Member, Notification, Position, Presence, RoomEvent, RoomName, SetStatus, UserInfo,
};

use crate::hub::{Delivery, Exclude};

pub(crate) mod memory;
pub(crate) mod redis;
mod stream;

/// A fresh random id: room epochs, instance ids.
pub(crate) fn random_id() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}

/// Members in the order every engine lists them: by name, then id.
pub(crate) fn sort_members(members: &mut [Member]) {
    members.sort_by(|a, b| a.user.name.cmp(&b.user.name).then_with(|| a.user.id.cmp(&b.user.id)));
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    /// The message does not exist (or is no longer kept).
    #[error("no message {0} in this room")]
    MessageNotFound(String),
    /// An edit or delete of someone else's message.
    #[error("only its sender (or an admin) may change message {0}")]
    NotTheSender(String),
    /// The backing store is unreachable or failed. The text reaches the
    /// client: it says what happened in general terms, never the store's own
    /// error (which is logged where it happened).
    #[allow(
        dead_code,
        reason = "the in-memory engine is always available; networked engines are not"
    )]
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}

/// A change to a room's stream. Each takes the next offset.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A new message; `client_id` makes it idempotent per sender.
    Message { sender: UserInfo, content: String, client_id: String },
    /// New text for a message. With `sender`, only that user's message.
    Edit { id: String, content: String, sender: Option<String> },
    /// Deletion of a message. With `sender`, only that user's message.
    Delete { id: String, sender: Option<String> },
}

/// The result of [`Engine::append`].
#[derive(Debug, Clone)]
pub(crate) struct Appended {
    /// The message the change is about.
    pub id: String,
    /// The offset of the event (for a duplicate, the original one).
    pub offset: u64,
    /// The event that was appended and broadcast; `None` for a duplicate
    /// `send`, which appends and broadcasts nothing.
    pub event: Option<RoomEvent>,
}

/// What a joiner gets of a room's stream.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub epoch: String,
    /// The latest offset (0 when the room has no events).
    pub offset: u64,
    /// Replayed events (recovery) or the latest messages (history).
    pub events: Vec<RoomEvent>,
    /// With `since`: whether `events` holds everything that was missed.
    pub recovered: Option<bool>,
}

/// The result of [`Engine::connection_opened`].
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    /// The user's presence when it just came online (and others should hear).
    pub came_online: Option<Presence>,
    /// Notifications kept while the user was offline, oldest first.
    pub unread: Vec<Notification>,
}

/// A page of history.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub messages: Vec<ChatMessage>,
    pub has_more: bool,
}

/// Shared state of the whole deployment.
///
/// Methods that change something also deliver the resulting frames to every
/// local connection concerned (and, in a networked engine, to the other
/// instances), in stream order.
#[async_trait]
pub(crate) trait Engine: Send + Sync + std::fmt::Debug {
    /// `memory` or `redis`, for `/health`.
    fn name(&self) -> &'static str;

    /// Whether the engine's backing store is reachable.
    fn healthy(&self) -> bool {
        true
    }

    // ---- Room streams: history, offsets, idempotency --------------------

    /// Appends a change to a room's stream and broadcasts its frame.
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError>;

    /// The room's position, with the events after `since` (recovery) or the
    /// latest `history` messages.
    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError>;

    /// Messages in their current state, newest `limit` below `before`.
    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError>;

    // ---- Fan-out ------------------------------------------------------------

    /// This instance has its first local member in `room`: from when this
    /// returns, the room's frames from every instance reach the hub.
    async fn watch(&self, _room: &RoomName) -> Result<(), EngineError> {
        Ok(())
    }

    /// This instance's last local member left `room` (the hub may have a new
    /// one by now: an engine checks before it stops watching).
    async fn unwatch(&self, _room: &RoomName) {}

    /// Delivers a frame once to every connection in any of `rooms`.
    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError>;

    // ---- Membership and presence -------------------------------------------

    /// Counts a connection of `user` into `room`; true for the user's first.
    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<bool, EngineError>;

    /// Counts a connection of `user_id` out of `room`; true for the last.
    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<bool, EngineError>;

    /// The room's members with their presence.
    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, EngineError>;

    /// The rooms `user_id` is a member of (with any connection).
    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError>;

    /// A connection of `user` opened (and is already in the hub, in its
    /// personal room). Takes the user's unread notifications, atomically with
    /// counting the connection in, so none is both kept and delivered.
    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError>;

    /// A connection of `user_id` closed. The user stays a member of its rooms
    /// and online until [`Engine::connection_expired`], after the grace period.
    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError>;

    /// The grace period of a closed connection ended; returns the user's
    /// presence when that was its last connection and others should hear it
    /// went offline.
    async fn connection_expired(&self, user_id: &str) -> Result<Option<Presence>, EngineError>;

    /// Sets a user's status; returns the presence others now see.
    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<Presence, EngineError>;

    /// A user's presence as others see it (offline when unknown).
    async fn presence(&self, user_id: &str) -> Result<Presence, EngineError>;

    // ---- Notifications -----------------------------------------------------

    /// Delivers a notification to every connection of `user_id` when the user
    /// is online (returns true), or keeps it as unread (bounded) otherwise.
    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError>;

    /// The server is shutting down: release what this instance holds.
    async fn close(&self) {}
}
