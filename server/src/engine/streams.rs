//! The streams role: each room's stream of events with its offsets, appends
//! made idempotent by the sender's `client_id`, the snapshot a joiner gets
//! (recovery from a position, or the latest messages) and history pages.
//!
//! Implementations: `memory/streams.rs` (over `memory/room_stream.rs`) and
//! `redis/streams.rs`.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use roomcast_shared::{Position, ReadReceipt, RoomName};

use super::{Appended, Change, EngineError, Page, Snapshot};

/// An append handed over without waiting for its end
/// ([`Streams::start_append`]).
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per send and taken apart at once; boxing `Done` would cost the memory engine an allocation per message"
)]
pub(crate) enum Appending {
    /// Finished already.
    Done(Result<Appended, EngineError>),
    /// Queued: resolves once the change is stored and broadcast. Appends
    /// started one after another resolve in that order.
    Queued(Queued),
}

/// An append's end, boxed; `Sync` because a session awaits with a shared
/// borrow of itself while holding it.
pub(crate) type Queued = Pin<Box<dyn Future<Output = Result<Appended, EngineError>> + Send + Sync>>;

/// Most readers whose position an engine keeps per room; past it the one
/// who read earliest is forgotten (`joined.reads` shows at most
/// `MAX_JOINED_READS` of them).
pub(crate) const MAX_READERS: usize = 1000;

/// Room streams: history, offsets, idempotency, recovery.
#[async_trait]
pub(crate) trait Streams: Send + Sync + std::fmt::Debug {
    /// Appends a change to a room's stream and broadcasts its frame, so that
    /// every connection receives a room's events in offset order.
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError>;

    /// Starts an append and returns once it is queued, in order after every
    /// append started before it, without waiting for it to be stored: a
    /// connection's sends then share commits. Streams without a store
    /// (whose appends are quick) append at once.
    async fn start_append(&self, room: &RoomName, change: Change) -> Appending {
        Appending::Done(self.append(room, change).await)
    }

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

    /// Keeps a member's read position: it moves forward only, and one
    /// naming no message of the room is ignored. Best effort (a `read` has
    /// no ack); with a store, durable within about a second.
    async fn keep_read(&self, room: &RoomName, receipt: ReadReceipt);

    /// This instance starts (or starts again) receiving `room`: what the
    /// engine remembers of it from before may be stale.
    fn watching(&self, _room: &RoomName) {}

    /// The room's read positions, latest readers first, at most `limit`.
    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, EngineError>;
}
