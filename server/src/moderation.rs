//! Server-side control (the HTTP API's `api/control.rs`): what a control
//! call asks every instance to do, and the bans and mutes each instance
//! enforces.
//!
//! A [`Control`] travels like any other fan-out: `Fanout::control` hands it
//! to this instance's hub (memory engine) or publishes it on the channel
//! every instance listens to (Redis), and each instance's
//! [`Hub::control`](crate::hub::Hub::control) applies it to its own
//! connections. Bans and mutes are kept in the store (or, without one, in
//! Redis) by a [`Keeper`], loaded into every instance's [`Sanctions`] when
//! it starts, so a join or a send checks a local table, never a database.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use roomcast_shared::RoomName;
use serde::{Deserialize, Serialize};

use time::OffsetDateTime;

use crate::engine::EngineError;
pub(crate) use crate::store::sanctions::{Sanction, SanctionKind};
use crate::store::{Store, StoreError};

/// What a control call asks of every instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub(crate) enum Control {
    /// Close every connection of the user (close 4003).
    Disconnect { user_id: String },
    /// Take the user's connections out of the room (`left`).
    Remove { room: RoomName, user_id: String },
    /// A ban or mute set (`on`) or lifted; a ban also removes the user.
    Sanction { sanction: Sanction, on: bool },
}

/// Where bans and mutes outlive a process: the store, or Redis without one.
#[async_trait]
pub(crate) trait Keeper: Send + Sync + std::fmt::Debug {
    /// Records a sanction set (`on`) or lifted; returns whether it changed
    /// anything.
    async fn keep(&self, sanction: &Sanction, on: bool) -> Result<bool, EngineError>;

    /// Every sanction in force.
    async fn load(&self) -> Result<Vec<Sanction>, EngineError>;
}

/// The store as a [`Keeper`].
#[derive(Debug)]
pub(crate) struct StoreKeeper(pub Arc<dyn Store>);

#[async_trait]
impl Keeper for StoreKeeper {
    async fn keep(&self, sanction: &Sanction, on: bool) -> Result<bool, EngineError> {
        let kept = if on {
            self.0.put_sanction(sanction, OffsetDateTime::now_utc()).await
        } else {
            self.0.lift_sanction(sanction).await
        };
        kept.map_err(unavailable)
    }

    async fn load(&self) -> Result<Vec<Sanction>, EngineError> {
        self.0.sanctions().await.map_err(unavailable)
    }
}

/// A store failure, in the general terms a caller may see (the details
/// are logged).
fn unavailable(err: StoreError) -> EngineError {
    tracing::warn!(%err, "the store failed to keep a sanction");
    EngineError::Unavailable("the database failed; try again".into())
}

/// One room's sanctioned users.
#[derive(Debug, Default)]
struct RoomSanctions {
    banned: HashSet<Box<str>>,
    muted: HashSet<Box<str>>,
}

impl RoomSanctions {
    fn of(&mut self, kind: SanctionKind) -> &mut HashSet<Box<str>> {
        match kind {
            SanctionKind::Ban => &mut self.banned,
            SanctionKind::Mute => &mut self.muted,
        }
    }
}

/// The bans and mutes in force, as this instance knows them: looked up on
/// every join (bans) and every send, edit and typing (mutes), so a lookup
/// is one map read and allocates nothing. Only the backend (with the API
/// key) adds to it, so it needs no cap of its own.
#[derive(Debug, Default)]
pub(crate) struct Sanctions {
    rooms: DashMap<RoomName, RoomSanctions>,
}

impl Sanctions {
    /// Sets (`on`) or lifts a sanction; returns whether that changed it.
    pub fn set(&self, sanction: &Sanction, on: bool) -> bool {
        if on {
            let mut room = self.rooms.entry(sanction.room.clone()).or_default();
            return room.of(sanction.kind).insert(sanction.user_id.as_str().into());
        }
        let dashmap::Entry::Occupied(mut room) = self.rooms.entry(sanction.room.clone()) else {
            return false;
        };
        let lifted = room.get_mut().of(sanction.kind).remove(sanction.user_id.as_str());
        if room.get().banned.is_empty() && room.get().muted.is_empty() {
            room.remove();
        }
        lifted
    }

    /// Whether `user_id` is under `kind` in `room`.
    pub fn has(&self, room: &RoomName, user_id: &str, kind: SanctionKind) -> bool {
        self.rooms.get(room.as_str()).is_some_and(|room| match kind {
            SanctionKind::Ban => room.banned.contains(user_id),
            SanctionKind::Mute => room.muted.contains(user_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanctions_are_per_room_user_and_kind() {
        let table = Sanctions::default();
        let general = RoomName::new("general").unwrap();
        let ban =
            Sanction { room: general.clone(), user_id: "bob".into(), kind: SanctionKind::Ban };
        assert!(table.set(&ban, true));
        assert!(!table.set(&ban, true), "setting it again changes nothing");
        assert!(table.has(&general, "bob", SanctionKind::Ban));
        assert!(!table.has(&general, "bob", SanctionKind::Mute));
        assert!(!table.has(&general, "bobby", SanctionKind::Ban));
        assert!(!table.has(&RoomName::new("other").unwrap(), "bob", SanctionKind::Ban));
        assert!(table.set(&ban, false));
        assert!(!table.has(&general, "bob", SanctionKind::Ban));
        assert!(table.rooms.is_empty(), "an empty room is forgotten");
    }
}
