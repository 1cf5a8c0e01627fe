//! The presence role: who is in which room, how many connections each user
//! has, their status, and the notifications kept for them while offline
//! (taken atomically with counting a connection in, so none is both kept
//! and delivered).
//!
//! Implementations: `memory/presence.rs` and `redis/presence.rs`.

use async_trait::async_trait;
use roomcast_shared::{
    Member, Notification, Presence as UserPresence, RoomName, SetStatus, UserInfo,
};

use super::{EngineError, Opened};

/// Membership, connections, status and unread notifications.
#[async_trait]
pub(crate) trait Presence: Send + Sync + std::fmt::Debug {
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
    /// and online until [`Presence::connection_expired`], after the grace
    /// period.
    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError>;

    /// The grace period of a closed connection ended; returns the user's
    /// presence when that was its last connection and others should hear it
    /// went offline.
    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError>;

    /// Sets a user's status; returns the presence others now see.
    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError>;

    /// Whether `user_id` has an open connection on any instance (one in its
    /// grace period does not count: nothing can be delivered to it).
    async fn connected(&self, user_id: &str) -> Result<bool, EngineError>;

    /// A user's presence as others see it (offline when unknown).
    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError>;

    /// Delivers a notification to every connection of `user_id` when the user
    /// is online (returns true), or keeps it as unread (bounded) otherwise.
    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError>;
}
