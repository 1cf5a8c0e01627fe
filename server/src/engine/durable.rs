//! Room streams with a store (`--database-url`): the store is the truth
//! (offsets, idempotency keys, every retained message, read positions,
//! unread notifications), and the engine keeps only what is live
//! (membership, presence, fan-out) and a window of recent events.
//!
//! - `commit.rs`: group commit; an `ack` is sent after the commit, and the
//!   committed events are published (to this instance, or through Redis).
//! - `recent.rs`: each room's recent events, for recovery without a read,
//!   and the one place events are put in offset order before the hub.
//! - `fanin.rs`: with Redis, every instance's events, into `recent.rs`.
//! - `reads.rs`: read positions gathered and written every half second.
//! - `presence.rs`: unread notifications kept in the store.
//!
//! [`wrap`] puts the store behind an engine: the memory engine (one
//! instance) or Redis (many, all on one PostgreSQL).
//!
//! A room's epoch is the store's, so offsets continue across restarts and
//! a client's `since` stays valid.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_shared::{Position, ReadReceipt, RoomEvent, RoomName};
use time::OffsetDateTime;
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use tokio_util::task::TaskTracker;

use super::{Appended, Appending, Backend, Change, Engine, EngineError, Page, Snapshot, Streams};
use crate::config::{Config, HistoryLimits};
use crate::hub::Hub;
use crate::store::outbox::EventRows;
use crate::store::{NewEvent, Outcome, Pruned, ReadMark, Store, UnreadCaps};
use crate::telemetry::Metrics;

mod commit;
mod fanin;
mod presence;
mod reads;
mod recent;

use commit::{Committer, Committing, Publish};
use fanin::Arrivals;
pub(super) use fanin::FanIn;
use presence::DurablePresence;
use presence::unavailable;
use reads::PendingReads;
use recent::{Recent, lock};

/// The streams of a deployment with a store.
#[derive(Debug)]
pub(super) struct DurableStreams {
    store: Arc<dyn Store>,
    recent: Arc<Recent>,
    /// `None` once closed: changes are refused from then on.
    committer: std::sync::RwLock<Option<Committer>>,
    reads: Arc<PendingReads>,
    limits: HistoryLimits,
    /// This instance's connections, for what a join finds the window lacks.
    hub: Arc<Hub>,
}

/// The background tasks of the durable layer, stopped by
/// [`DurableBackend::close`].
#[derive(Debug)]
struct Tasks {
    committer: JoinHandle<()>,
    reads: JoinHandle<()>,
    fanin: Option<JoinHandle<()>>,
    /// Stops the read writer (after a last write) and the fan-in.
    stop: CancellationToken,
}

/// The store behind the streams, and the webhook outbox rows each stored
/// event takes (none without webhooks).
pub(super) struct Storage {
    pub store: Arc<dyn Store>,
    pub outbox: Arc<dyn EventRows>,
}

/// What [`wrap`] needs to share a store between instances: the Redis
/// engine's fan-out to publish through, and the fan-in its subscriber feeds.
pub(super) struct Shared {
    pub fanin: Arc<FanIn>,
    pub arrivals: Arrivals,
}

/// Puts `store` behind `engine` (built to keep no unread notifications):
/// streams and unread notifications in the store, the rest in the engine.
/// With `shared`, committed events go to every instance through the
/// engine's fan-out and come back through the fan-in.
pub(super) fn wrap(
    engine: Engine,
    Storage { store, outbox }: Storage,
    config: &Config,
    shared: Option<Shared>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> Engine {
    let Engine { presence, fanout, backend, hub, .. } = engine;
    let recent = Arc::new(Recent::new(store.clone(), config.history.clone()));
    let (publish, fanin) = match shared {
        None => (Publish::Local { recent: recent.clone(), hub: hub.clone() }, None),
        Some(Shared { fanin, arrivals }) => {
            let receiving = fanin.start(arrivals, recent.clone(), hub.clone());
            (Publish::Shared(fanout.clone()), Some(receiving))
        }
    };
    let (committer, committing) = Committer::start(store.clone(), outbox, publish, metrics.clone());
    let reads = Arc::new(PendingReads::default());
    let stop = CancellationToken::new();
    let writing = reads.clone().start(store.clone(), stop.clone());
    let interval = config.timing.sweep_interval;
    tasks.spawn(sweep(recent.clone(), hub.clone(), metrics, interval, shutdown));
    let streams = Arc::new(DurableStreams {
        store: store.clone(),
        recent,
        committer: std::sync::RwLock::new(Some(committer)),
        reads,
        limits: config.history.clone(),
        hub: hub.clone(),
    });
    let tasks = Tasks { committer: committing, reads: writing, fanin, stop };
    let limits = &config.limits;
    let caps = UnreadCaps {
        count: limits.notifications_per_user,
        bytes: limits.notification_bytes_per_user,
        max_age: limits.notification_max_age,
    };
    let keeper = Arc::new(crate::moderation::StoreKeeper(store.clone()));
    Engine {
        streams: streams.clone(),
        presence: Arc::new(DurablePresence { inner: presence, store, caps }),
        fanout,
        backend: Arc::new(DurableBackend {
            inner: backend,
            streams,
            tasks: DurableTasks(AsyncMutex::new(Some(tasks))),
        }),
        keeper: Some(keeper),
        hub,
    }
}

/// Forgets, every `interval` until `shutdown`, the windows of rooms
/// without local members, and drops expired events from the rest.
async fn sweep(
    recent: Arc<Recent>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    super::every(interval, &shutdown, || async {
        let (_, bytes) = recent.sweep(|room| hub.has_members(room));
        metrics.recent_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    })
    .await;
}

impl DurableStreams {
    /// Queues a change for the committer, after every change queued before.
    async fn queue(&self, change: NewEvent) -> Result<Committing, EngineError> {
        let committer = {
            let committer = self.committer.read().unwrap_or_else(|p| p.into_inner());
            committer.clone()
        };
        match committer {
            Some(committer) => committer.queue(change).await,
            None => Err(EngineError::Unavailable("the server is shutting down".into())),
        }
    }

    /// The latest `count` messages at or below `last`, as events.
    async fn latest(
        &self,
        room: &RoomName,
        last: u64,
        count: usize,
    ) -> Result<Vec<RoomEvent>, EngineError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let messages = self
            .store
            .messages_before(room, Some(last + 1), count)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(messages.into_iter().map(RoomEvent::Message).collect())
    }

    /// The events after `since` up to `last`, from the store, when it still
    /// holds every one and they are within the recovery window.
    async fn recover(
        &self,
        room: &RoomName,
        since: u64,
        last: u64,
    ) -> Result<Option<Vec<RoomEvent>>, EngineError> {
        let missed = last - since;
        if missed > self.limits.max_events as u64 {
            return Ok(None);
        }
        let events = self
            .store
            .events_after(room, since, missed as usize)
            .await
            .map_err(|e| unavailable(&e))?;
        let complete =
            events.len() as u64 == missed && events.first().is_none_or(|e| e.offset() == since + 1);
        Ok(complete.then_some(events))
    }
}

#[async_trait]
impl Streams for DurableStreams {
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        match self.start_append(room, change).await {
            Appending::Done(appended) => appended,
            Appending::Queued(appending) => appending.await,
        }
    }

    async fn start_append(&self, room: &RoomName, change: Change) -> Appending {
        let now = OffsetDateTime::now_utc();
        let (change, id) = match change {
            Change::Message { sender, content, client_id, data } => {
                let id = uuid::Uuid::now_v7().to_string();
                let message = NewEvent::Message {
                    room: room.clone(),
                    id: id.clone(),
                    client_id,
                    sender,
                    content,
                    created_at: now,
                    data,
                };
                (message, id)
            }
            Change::Edit { id, content, data, sender } => {
                let by = sender;
                (
                    NewEvent::Edit {
                        room: room.clone(),
                        id: id.clone(),
                        by,
                        content,
                        data,
                        edited_at: now,
                    },
                    id,
                )
            }
            Change::Delete { id, sender } => {
                (NewEvent::Delete { room: room.clone(), id: id.clone(), by: sender }, id)
            }
        };
        match self.queue(change).await {
            Ok(committing) => Appending::Queued(Box::pin(appended(committing, id))),
            Err(err) => Appending::Done(Err(err)),
        }
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        let cell = self.recent.window(room).await.map_err(|e| unavailable(&e))?;
        let Some(window) = cell.get() else {
            return Err(EngineError::Unavailable("room not loaded".into()));
        };
        let ahead = since.is_some_and(|s| {
            let window = lock(window);
            s.epoch == window.epoch && s.offset > window.last
        });
        if ahead {
            // The client saw events this instance has not received: another
            // instance committed them and they are still on their way
            // through the fan-in (or their publish was lost). The window
            // reads them from the store first and delivers them here; this
            // connection's frames wait for its `joined`, which drops what it
            // replays. An offset the room never reached stays ahead: a reset.
            self.recent.catch_up(room, &self.hub).await;
        }
        let (epoch, last, cached) = {
            let window = lock(window);
            let cached = since.and_then(|s| {
                (s.epoch == window.epoch).then(|| window.events_after(s.offset)).flatten()
            });
            (window.epoch.clone(), window.last, cached)
        };
        let recovered = match (since, cached) {
            (None, _) => None,
            (Some(_), Some(events)) => Some(Some(events)),
            (Some(s), None) if s.epoch == epoch && s.offset < last => {
                Some(self.recover(room, s.offset, last).await?)
            }
            (Some(_), None) => Some(None),
        };
        let (events, recovered) = match recovered {
            Some(Some(events)) => (events, Some(true)),
            Some(None) => (self.latest(room, last, history).await?, Some(false)),
            None => (self.latest(room, last, history).await?, None),
        };
        Ok(Snapshot { epoch, offset: last, events, recovered })
    }

    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let mut messages = self
            .store
            .messages_before(room, before, limit + 1)
            .await
            .map_err(|e| unavailable(&e))?;
        let has_more = messages.len() > limit;
        if has_more {
            messages.remove(0);
        }
        Ok(Page { messages, has_more })
    }

    fn watching(&self, room: &RoomName) {
        self.recent.forget(room);
    }

    async fn keep_read(&self, room: &RoomName, receipt: ReadReceipt) {
        self.reads.add(ReadMark {
            user_id: receipt.user_id,
            room: room.clone(),
            id: receipt.id,
            read_at: receipt.read_at,
        });
    }

    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, EngineError> {
        self.store.reads(room, limit).await.map_err(|e| unavailable(&e))
    }
}

/// What a queued change became, once committed; `id` names its message.
async fn appended(committing: Committing, id: String) -> Result<Appended, EngineError> {
    match committing.outcome().await? {
        Outcome::Appended(event) => Ok(Appended { id, offset: event.offset(), event: Some(event) }),
        Outcome::Duplicate { id, offset } => Ok(Appended { id, offset, event: None }),
        // A key holding NUL names no message that could exist.
        Outcome::NotFound | Outcome::Invalid => Err(EngineError::MessageNotFound(id)),
        Outcome::NotTheSender => Err(EngineError::NotTheSender(id)),
    }
}

/// How often retention runs (and once at start).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Removes, at start and then every [`RETENTION_INTERVAL`] until
/// `shutdown`, messages older than `retention` (when set) and unread
/// notifications older than `notification_max_age`.
pub(super) async fn retain(
    store: Arc<dyn Store>,
    retention: Option<Duration>,
    notification_max_age: Duration,
    shutdown: CancellationToken,
) {
    super::every(RETENTION_INTERVAL, &shutdown, || async {
        let now = OffsetDateTime::now_utc();
        match store.prune(retention.map(|r| now - r), now - notification_max_age).await {
            Ok(pruned) if pruned != Pruned::default() => {
                tracing::info!(
                    events = pruned.events,
                    messages = pruned.messages,
                    notifications = pruned.notifications,
                    "retention removed what expired"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "retention failed; retrying later"),
        }
    })
    .await;
}

/// The durable layer's tasks, stopped once at shutdown.
#[derive(Debug)]
pub(super) struct DurableTasks(AsyncMutex<Option<Tasks>>);

/// The engine's backend with the store behind it: closing commits what is
/// queued, writes the gathered reads, then releases the engine.
#[derive(Debug)]
pub(super) struct DurableBackend {
    pub inner: Arc<dyn Backend>,
    pub streams: Arc<DurableStreams>,
    pub tasks: DurableTasks,
}

#[async_trait]
impl Backend for DurableBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn healthy(&self) -> bool {
        self.inner.healthy()
    }

    async fn close(&self) {
        // Dropping the queue's last sender ends the committer once it has
        // committed what was queued.
        self.streams.committer.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tasks) = self.tasks.0.lock().await.take() {
            let _ = tasks.committer.await;
            tasks.stop.cancel();
            let _ = tasks.reads.await;
            if let Some(fanin) = tasks.fanin {
                fanin.abort();
            }
        }
        self.inner.close().await;
    }
}
