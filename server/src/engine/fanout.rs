//! The fanout role: which rooms this instance receives frames for, and
//! frames broadcast to rooms on every instance. With it, the one place where
//! a connection enters or leaves a room on this instance
//! ([`Engine::register`], [`Engine::enter`], [`Engine::leave`],
//! [`Engine::unregister`]): the hub says whether the room gained its first
//! or lost its last local member, and the engine starts or stops receiving
//! the room accordingly.
//!
//! Implementations: `memory/fanout.rs` (the hub is everyone) and
//! `redis/fanout.rs` (pub/sub).

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::RoomName;

use super::{Engine, EngineError, MemberChange};
use crate::hub::{Conn, Delivery, Exclude};
use crate::moderation::Control;

/// Receiving rooms' frames, and broadcasting to rooms.
#[async_trait]
pub(crate) trait Fanout: Send + Sync + std::fmt::Debug {
    /// This instance has its first local member in `room`: from when this
    /// returns, the room's frames from every instance reach the hub.
    async fn watch(&self, room: &RoomName) -> Result<(), EngineError>;

    /// This instance's last local member left `room` (the hub may have a new
    /// one by now: an engine checks before it stops watching).
    async fn unwatch(&self, room: &RoomName);

    /// Delivers a frame once to every connection in any of `rooms`.
    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError>;

    /// Hands a membership or presence change of `rooms` to every instance's
    /// coalescer (`hub/diffs.rs`), which announces it with the window's
    /// other changes.
    async fn change(&self, rooms: &[RoomName], change: MemberChange) -> Result<(), EngineError>;

    /// Hands a control call (`moderation.rs`) to every instance's hub,
    /// this one's included; on return it is on its way to all of them.
    async fn control(&self, control: &Control) -> Result<(), EngineError>;

    /// Broadcasts room events (with their offsets) to everyone in their
    /// rooms, in order, as one batch where the engine can.
    async fn publish_events(&self, events: Vec<(RoomName, Delivery)>) -> Result<(), EngineError> {
        for (room, delivery) in events {
            self.broadcast(std::slice::from_ref(&room), delivery, Exclude::Nobody).await?;
        }
        Ok(())
    }
}

/// Where an engine hands the room events (frames with an offset) it
/// receives from other instances when they must be put in order before
/// they reach the hub (the store's fan-in, `durable/fanin.rs`). It must not
/// wait: it runs on the engine's receiving connection.
pub(crate) trait RoomEventSink: Send + Sync + std::fmt::Debug {
    /// Takes one room event's frame.
    fn offer(&self, room: RoomName, text: tungstenite::Utf8Bytes);

    /// Events of `room` may have been published while this instance was
    /// not listening (its subscription was lost and is back): what the room
    /// lacks is read from the store.
    fn missed(&self, room: RoomName);
}

impl Engine {
    /// Registers an authenticated connection in the hub, in its user's
    /// personal room with its frames held until `Hub::finish_join`, and
    /// receives the personal room here if it is the first local member.
    pub async fn register(
        &self,
        conn: &Arc<Conn>,
        user_id: &str,
        personal: &RoomName,
    ) -> Result<(), EngineError> {
        if self.hub.register(conn, user_id, personal) {
            self.fanout.watch(personal).await?;
            self.streams.watching(personal);
        }
        Ok(())
    }

    /// Starts (or restarts) a join in the hub, holding the room's frames for
    /// `conn` until `Hub::finish_join`, and receives the room here if it is
    /// the first local member. On return, nothing published later can be
    /// missed: read the snapshot after this.
    pub async fn enter(
        &self,
        room: &RoomName,
        conn: &Arc<Conn>,
        member_events: bool,
    ) -> Result<(), EngineError> {
        if self.hub.begin_join(room, conn, member_events) {
            self.fanout.watch(room).await?;
            self.streams.watching(room);
        }
        Ok(())
    }

    /// Takes `conn` out of `room` in the hub, and stops receiving the room
    /// if that left it without a local member.
    pub async fn leave(&self, room: &RoomName, conn: &Conn) {
        if self.hub.leave(room, conn.id) {
            self.fanout.unwatch(room).await;
        }
    }

    /// Takes `conn` out of `rooms` and out of the hub, and stops receiving
    /// the rooms it leaves without a local member.
    pub async fn unregister<'a>(&self, conn: &Conn, rooms: impl IntoIterator<Item = &'a RoomName>) {
        for room in self.hub.unregister(conn, rooms) {
            self.fanout.unwatch(&room).await;
        }
    }
}
