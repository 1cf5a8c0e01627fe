//! The engine boundary: everything that must be shared between instances of
//! the server goes through [`Engine`], in three roles, each a trait in a file
//! of its own with its in-memory and Redis implementations beside it:
//!
//! - [`Streams`] (`streams.rs`): room streams, idempotent appends, the
//!   snapshot a joiner gets (recovery) and history pages.
//! - [`Presence`] (`presence.rs`): membership, connections, status, and
//!   unread notifications (kept atomic with the connection counts).
//! - [`Fanout`] (`fanout.rs`): which rooms this instance receives, and frames
//!   broadcast to rooms on every instance.
//!
//! [`start`] picks the engine from the configuration (`memory/` keeps it all
//! in this process; `redis/` shares it through Redis) and spawns its
//! background task; nothing outside this module knows which one runs.
//! Engines deliver frames to local connections through the
//! [`Hub`](crate::hub::Hub) they are built with.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::{ChatMessage, Notification, Presence as UserPresence, RoomEvent, UserInfo};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::hub::Hub;
use crate::moderation::{Control, Keeper, Sanction};
pub(crate) use crate::store::DataEdit;
use crate::store::Store;
use crate::store::outbox::{EventRows, NoWebhooks};
use crate::telemetry::Metrics;
use crate::webhooks::Webhooks;
use crate::webhooks::record::{Recorder, TapPresence, TapStreams};

mod diffs;
mod durable;
mod fanout;
mod memory;
mod presence;
mod redis;
mod streams;

pub(crate) use fanout::{Fanout, RoomEventSink};
pub(crate) use presence::{
    Counted, Departure, Departures, MemberChange, MemberKey, MemberPage, Presence, page_request,
};
pub(crate) use streams::{Appending, MAX_READERS, Queued, Streams};

/// Runs `work` every `interval`, the first time at once, until `shutdown`;
/// a run that takes longer delays the next rather than bunching them up.
pub(crate) async fn every<F: Future<Output = ()>>(
    interval: std::time::Duration,
    shutdown: &CancellationToken,
    mut work: impl FnMut() -> F,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => work().await,
        }
    }
}

/// A fresh random id: room epochs, instance ids.
pub(crate) fn random_id() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
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
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}

/// A change to a room's stream. Each takes the next offset.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A new message; `client_id` makes it idempotent per sender. `data` is
    /// what the publish hook attached, kept with the message.
    Message {
        sender: UserInfo,
        content: String,
        client_id: String,
        data: Option<Box<serde_json::Value>>,
    },
    /// New text (and data) for a message. With `sender`, only that
    /// user's message.
    Edit { id: String, content: String, data: DataEdit, sender: Option<String> },
    /// Deletion of a message. With `sender`, only that user's message.
    Delete { id: String, sender: Option<String> },
}

/// The result of [`Streams::append`].
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

/// The result of [`Presence::connection_opened`].
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    /// The user's presence when it just came online (and others should hear).
    pub came_online: Option<UserPresence>,
    /// Notifications kept while the user was offline, oldest first.
    pub unread: Vec<Notification>,
}

/// A page of history.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub messages: Vec<ChatMessage>,
    pub has_more: bool,
}

/// What is not a role but the backend as a whole: its name, its health and
/// its release at shutdown.
#[async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// `memory` or `redis`, for `/health`.
    fn name(&self) -> &'static str;

    /// Whether the backing store is reachable.
    fn healthy(&self) -> bool;

    /// The server is shutting down: release what this instance holds.
    async fn close(&self);
}

/// Shared state of the whole deployment, by role. Cheap to share: each role
/// is one pointer, and every operation one dynamic call, as before the split.
///
/// Methods that change something also deliver the resulting frames to every
/// local connection concerned (and, in a networked engine, to the other
/// instances), in stream order.
#[derive(Debug)]
pub(crate) struct Engine {
    pub streams: Arc<dyn Streams>,
    pub presence: Arc<dyn Presence>,
    pub fanout: Arc<dyn Fanout>,
    backend: Arc<dyn Backend>,
    /// Where bans and mutes outlive this process (`moderation.rs`): the
    /// store, Redis without one, nothing for the memory engine alone.
    keeper: Option<Arc<dyn Keeper>>,
    /// This instance's connections, which the engine subscribes rooms for
    /// (see `fanout.rs`).
    hub: Arc<Hub>,
}

impl Engine {
    /// `memory` or `redis`, for `/health`.
    pub fn name(&self) -> &'static str {
        self.backend.name()
    }

    /// Whether the engine's backing store is reachable.
    pub fn healthy(&self) -> bool {
        self.backend.healthy()
    }

    /// The server is shutting down: release what this instance holds.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Applies a control call on every instance (`moderation.rs`).
    pub async fn control(&self, control: &Control) -> Result<(), EngineError> {
        self.fanout.control(control).await
    }

    /// Sets (`on`) or lifts a ban or mute: kept first (so a restart cannot
    /// forget it), then applied on every instance. Returns whether it
    /// changed anything.
    pub async fn sanction(&self, sanction: Sanction, on: bool) -> Result<bool, EngineError> {
        let changed = match &self.keeper {
            Some(keeper) => keeper.keep(&sanction, on).await?,
            None => self.hub.sanctions.has(&sanction.room, &sanction.user_id, sanction.kind) != on,
        };
        // In force here on return; other instances (and this one again,
        // with the removal a ban makes) apply it as it reaches them.
        self.hub.sanctions.set(&sanction, on);
        self.fanout.control(&Control::Sanction { sanction, on }).await?;
        Ok(changed)
    }

    /// Loads the sanctions kept from before into this instance's table
    /// (at start, once the engine receives the others' changes).
    async fn load_sanctions(&self) -> Result<(), EngineError> {
        if let Some(keeper) = &self.keeper {
            for sanction in keeper.load().await? {
                self.hub.sanctions.set(&sanction, true);
            }
        }
        Ok(())
    }
}

/// Opens the store of `--database-url`, if any (handed to [`start`], and
/// to ingest for its envelope ids).
pub(crate) async fn open_store(config: &Config) -> std::io::Result<Option<Arc<dyn Store>>> {
    let Some(url) = &config.database_url else { return Ok(None) };
    let store = crate::store::connect(url).await.map_err(|err| {
        std::io::Error::other(format!("cannot open the database {}: {err}", redact(url)))
    })?;
    Ok(Some(store))
}

/// Starts the engine the configuration asks for (Redis with `--redis-url`,
/// in memory otherwise), with the store of `--database-url` behind its
/// streams when there is one, and their background tasks (the memory
/// engine's sweep, the Redis instance lease, the committer, retention) on
/// `tasks`, until `shutdown`.
pub(crate) async fn start(
    config: &Config,
    store: Option<Arc<dyn Store>>,
    webhooks: Option<&Webhooks>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> std::io::Result<Engine> {
    match &config.database_url {
        Some(url) => tracing::info!(database = %redact(url), "keeping messages in"),
        None if config.redis_url.is_none() => {
            tracing::warn!("--database-url memory: nothing is kept across restarts");
        }
        None => {}
    }
    if let Some(store) = &store {
        let retention = config.retention;
        let notification_max_age = config.limits.notification_max_age;
        tasks.spawn(durable::retain(
            store.clone(),
            retention,
            notification_max_age,
            shutdown.clone(),
        ));
    }
    // With a store, the engine keeps no unread notifications: the store does.
    let mut engine_config = config.clone();
    if store.is_some() {
        engine_config.limits.notifications_per_user = 0;
    }
    let config_for_engine = &engine_config;
    let diff_settings = diffs::DiffSettings {
        window: config.timing.presence_window,
        big_room_members: config.limits.big_room_members as u64,
    };
    let outbox: Arc<dyn EventRows> = match webhooks {
        Some(webhooks) => webhooks.subscriptions.clone(),
        None => Arc::new(NoWebhooks),
    };
    let engine = match (&config.redis_url, store) {
        (None, None) => memory::start(config, hub, metrics, tasks, shutdown.clone()),
        (None, Some(store)) => {
            let engine =
                memory::start(config_for_engine, hub, metrics.clone(), tasks, shutdown.clone());
            let storage = durable::Storage { store, outbox };
            durable::wrap(engine, storage, config, None, metrics, tasks, shutdown.clone())
        }
        (Some(url), None) => {
            tracing::warn!(
                "no --database-url: history is bounded (--history-size, --history-max-age-secs) \
                 and lives only in Redis; read positions are not kept"
            );
            redis::start(url, config, hub, tasks, shutdown.clone(), None)
                .await
                .map_err(|err| redis_error(url, err))?
        }
        (Some(url), Some(store)) => {
            let (fanin, arrivals) = durable::FanIn::new();
            let sink: Arc<dyn RoomEventSink> = fanin.clone();
            let engine =
                redis::start(url, config_for_engine, hub, tasks, shutdown.clone(), Some(sink))
                    .await
                    .map_err(|err| redis_error(url, err))?;
            let shared = durable::Shared { fanin, arrivals };
            let storage = durable::Storage { store, outbox };
            durable::wrap(engine, storage, config, Some(shared), metrics, tasks, shutdown.clone())
        }
    };
    let engine = match webhooks {
        Some(webhooks) => engine.recording(&webhooks.recorder),
        None => engine,
    };
    tasks.spawn(diffs::run(engine.presence.clone(), engine.hub.clone(), diff_settings, shutdown));
    engine
        .load_sanctions()
        .await
        .map_err(|err| std::io::Error::other(format!("cannot load the bans and mutes: {err}")))?;
    Ok(engine)
}

impl Engine {
    /// The engine with its live events (joins, leaves, presence, reads,
    /// delivered notifications) recorded for webhooks.
    fn recording(self, recorder: &Recorder) -> Self {
        let recorder = recorder.clone();
        self.presence.on_departures(crate::webhooks::record::departures(recorder.clone()));
        Self {
            streams: Arc::new(TapStreams { inner: self.streams, recorder: recorder.clone() }),
            presence: Arc::new(TapPresence { inner: self.presence, recorder }),
            ..self
        }
    }
}

fn redis_error(url: &str, err: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("cannot use Redis at {}: {err}", redact(url)))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
