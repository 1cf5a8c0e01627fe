//! The in-memory engine: one process holds every room stream, membership,
//! presence and unread notification. The default, and the reference for the
//! behaviour every engine must have.
//!
//! - `streams.rs` (over `room_stream.rs`, one room's stream): history,
//!   offsets, idempotency and recovery.
//! - `presence.rs`: membership, connections, status, unread notifications.
//! - `fanout.rs`: straight to the hub.
//!
//! Everything it keeps is bounded: history per room by count and age and
//! over all rooms by bytes (the oldest events of any room go first); unread
//! notifications per user by count, bytes and age; and a periodic [`sweep`]
//! forgets what nobody needs any more: users offline and idle with nothing
//! kept for them, and rooms with neither members nor kept events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Backend, Engine};
use crate::config::{Config, HistoryLimits};
use crate::hub::Hub;
use crate::telemetry::Metrics;

mod fanout;
mod presence;
mod room_stream;
mod streams;

use fanout::MemoryFanout;
use presence::MemoryPresence;
use streams::MemoryStreams;

/// What the in-memory engine keeps, and for how long (from [`Config`]).
#[derive(Debug, Clone)]
pub(crate) struct MemorySettings {
    pub history: HistoryLimits,
    pub unread_per_user: usize,
    pub unread_bytes_per_user: usize,
    pub unread_max_age: Duration,
    /// How long an offline user with nothing else kept is remembered.
    pub user_idle: Duration,
}

impl MemorySettings {
    pub fn new(config: &Config) -> Self {
        Self {
            history: config.history.clone(),
            unread_per_user: config.limits.notifications_per_user,
            unread_bytes_per_user: config.limits.notification_bytes_per_user,
            unread_max_age: config.limits.notification_max_age,
            user_idle: config.timing.user_idle,
        }
    }
}

/// The in-memory engine as a whole: always available, nothing to release.
#[derive(Debug)]
struct Memory;

#[async_trait]
impl Backend for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn healthy(&self) -> bool {
        true
    }

    async fn close(&self) {}
}

/// Builds the in-memory engine and spawns its [`sweep`] on `tasks`.
pub(super) fn start(
    config: &Config,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Engine {
    let settings = MemorySettings::new(config);
    let streams = Arc::new(MemoryStreams::new(hub.clone(), settings.clone()));
    let presence = Arc::new(MemoryPresence::new(hub.clone(), settings));
    let interval = config.timing.sweep_interval;
    tasks.spawn(sweep(streams.clone(), presence.clone(), metrics, interval, shutdown));
    Engine {
        streams,
        presence,
        fanout: Arc::new(MemoryFanout { hub: hub.clone() }),
        backend: Arc::new(Memory),
        keeper: None,
        hub,
    }
}

/// Shrinks a map whose table is mostly empty (rehashing it: only then),
/// and hands the pages freed with it, and with the entries that emptied
/// it, back to the system: this happens after a burst, rarely, and without
/// it the process stays near its peak (see `crate::allocator`).
fn shrink_when_sparse<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V>) {
    const SMALL: usize = 4096;
    if map.capacity() > SMALL && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
        crate::allocator::release_free_pages();
    }
}

/// Sweeps the engine every `interval` until shutdown: drops what expired
/// and forgets what nobody needs (see [`MemoryPresence::sweep`] and
/// [`MemoryStreams::sweep`]).
async fn sweep(
    streams: Arc<MemoryStreams>,
    presence: Arc<MemoryPresence>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    super::every(interval, &shutdown, || async {
        let users = presence.sweep();
        let (rooms, history_bytes) = streams.sweep(|room| presence.has_members(room));
        metrics.engine_users.set(users as i64);
        metrics.engine_rooms.set(rooms as i64);
        metrics.history_bytes.set(history_bytes as i64);
    })
    .await;
}
