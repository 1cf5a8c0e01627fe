//! Webhooks: every event the backend asked for (`--webhook-url`), POSTed
//! to it, signed, at least once, in order per room.
//!
//! An event first becomes rows of the store's outbox (`store/outbox.rs`),
//! one per endpoint that takes its type: a room event's rows in the
//! transaction that stores it ([`Subscriptions`] is what the committer
//! hands the store), a live event's (joins, presence, reads,
//! notifications) through the [`record`] queue as it happens. Delivery runs
//! apart from chat ([`deliver`]): one task per endpoint reads its rows
//! ahead (bounded), POSTs each room's events one at a time with retries
//! and backoff, deletes what was delivered and dead-letters what failed
//! too often. With many instances on one database, one of them (the
//! holder of the store's delivery lease) delivers.

use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::webhook::{WebhookEvent, WebhookPayload};
use roomcast_shared::{RoomEvent, RoomName};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Webhooks as Settings;
use crate::store::Store;
use crate::store::outbox::{EventRows, OutboxRow};
use crate::telemetry::Metrics;

pub(crate) mod deliver;
pub(crate) mod record;
pub(crate) mod sign;

pub(crate) use record::Recorder;

/// An event type, as webhook URLs name them (`#types=...`) and bodies
/// carry them (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Message,
    MessageUpdated,
    MessageDeleted,
    MemberJoined,
    MemberLeft,
    Presence,
    Read,
    RoomOccupied,
    RoomVacated,
    NotificationDelivered,
}

impl Kind {
    /// Every type, in the documented order.
    pub const ALL: [Self; 10] = [
        Self::Message,
        Self::MessageUpdated,
        Self::MessageDeleted,
        Self::MemberJoined,
        Self::MemberLeft,
        Self::Presence,
        Self::Read,
        Self::RoomOccupied,
        Self::RoomVacated,
        Self::NotificationDelivered,
    ];

    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::MessageUpdated => "message_updated",
            Self::MessageDeleted => "message_deleted",
            Self::MemberJoined => "member_joined",
            Self::MemberLeft => "member_left",
            Self::Presence => "presence",
            Self::Read => "read",
            Self::RoomOccupied => "room_occupied",
            Self::RoomVacated => "room_vacated",
            Self::NotificationDelivered => "notification_delivered",
        }
    }

    /// The type named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The type of a payload.
    pub fn of(payload: &WebhookPayload) -> Self {
        match payload {
            WebhookPayload::Message(_) => Self::Message,
            WebhookPayload::MessageUpdated(_) => Self::MessageUpdated,
            WebhookPayload::MessageDeleted(_) => Self::MessageDeleted,
            WebhookPayload::MemberJoined { .. } => Self::MemberJoined,
            WebhookPayload::MemberLeft { .. } => Self::MemberLeft,
            WebhookPayload::Presence(_) => Self::Presence,
            WebhookPayload::Read(_) => Self::Read,
            WebhookPayload::RoomOccupied {} => Self::RoomOccupied,
            WebhookPayload::RoomVacated {} => Self::RoomVacated,
            WebhookPayload::NotificationDelivered { .. } => Self::NotificationDelivered,
        }
    }
}

/// Which endpoint takes which events: turns an event into its outbox rows.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    settings: Settings,
    /// Bumped when rows were written, to wake the deliverers at once.
    written: watch::Sender<u64>,
}

impl Subscriptions {
    /// The outbox rows of one event: one per endpoint that takes its type,
    /// all with one body and one event id.
    pub fn rows(
        &self,
        room: Option<&RoomName>,
        payload: WebhookPayload,
        at: OffsetDateTime,
        rows: &mut Vec<OutboxRow>,
    ) {
        let kind = Kind::of(&payload);
        let mut wanted = self.settings.endpoints.iter().filter(|e| e.wants(kind)).peekable();
        if wanted.peek().is_none() {
            return;
        }
        let message_id = payload.message_id().map(str::to_owned);
        let event = WebhookEvent {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: at,
            room: room.cloned(),
            payload,
        };
        let body = match serde_json::to_string(&event) {
            Ok(body) => body,
            Err(err) => {
                // Only a payload holding a map with non-string keys could;
                // none of ours does.
                tracing::error!(%err, kind = kind.name(), "webhook event not encoded");
                return;
            }
        };
        rows.extend(wanted.map(|endpoint| OutboxRow {
            endpoint: endpoint.url.to_string(),
            room: room.map_or_else(String::new, |room| room.as_str().to_owned()),
            event_id: event.id.clone(),
            kind: kind.name(),
            body: body.clone(),
            at,
            message_id: message_id.clone(),
        }));
    }

    /// Whether any endpoint takes events of `kind`.
    pub fn wants(&self, kind: Kind) -> bool {
        self.settings.endpoints.iter().any(|e| e.wants(kind))
    }

    /// Wakes the deliverers: rows were written.
    pub fn written(&self) {
        self.written.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl EventRows for Subscriptions {
    fn rows_for(&self, event: &RoomEvent, at: OffsetDateTime, rows: &mut Vec<OutboxRow>) {
        // Most servers take few event types: look before copying the event.
        let kind = match event {
            RoomEvent::Message(_) => Kind::Message,
            RoomEvent::MessageUpdated(_) => Kind::MessageUpdated,
            RoomEvent::MessageDeleted(_) => Kind::MessageDeleted,
        };
        if self.wants(kind) {
            self.rows(Some(event.room()), event.clone().into(), at, rows);
        }
    }

    fn committed(&self) {
        self.written();
    }
}

/// The running webhooks: what the engine records into, and what the API's
/// replay wakes.
#[derive(Debug)]
pub(crate) struct Webhooks {
    pub subscriptions: Arc<Subscriptions>,
    pub recorder: Recorder,
    recording: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    stop: CancellationToken,
}

/// How often the outbox's depth is read for `/metrics`.
const DEPTH_INTERVAL: Duration = Duration::from_secs(5);

impl Webhooks {
    /// Starts recording and delivering the events `settings` asks for,
    /// until `shutdown`; `None` when no endpoint is configured.
    pub fn start(
        settings: &Settings,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> std::io::Result<Option<Arc<Self>>> {
        if !settings.enabled() {
            return Ok(None);
        }
        let (written, _) = watch::channel(0);
        let subscriptions = Arc::new(Subscriptions { settings: settings.clone(), written });
        let stop = CancellationToken::new();
        let (recorder, recording) = Recorder::start(
            subscriptions.clone(),
            store.clone(),
            metrics.clone(),
            settings.delivery.record_queue,
            stop.clone(),
        );
        let deliverer = deliver::Deliverer::new(settings, store.clone(), metrics.clone())?;
        tasks.spawn(deliverer.run(subscriptions.written.subscribe(), shutdown.clone()));
        let max_age = settings.delivery.dead_letter_max_age;
        tasks.spawn(watch_depth(store, metrics, max_age, shutdown));
        for endpoint in &settings.endpoints {
            let types: Vec<&str> = endpoint.kinds.iter().map(|k| k.name()).collect();
            tracing::info!(url = %endpoint.url, types = %types.join(","), "webhook");
        }
        Ok(Some(Arc::new(Self {
            subscriptions,
            recorder,
            recording: tokio::sync::Mutex::new(Some(recording)),
            stop,
        })))
    }

    /// The configured endpoints' names in the outbox.
    pub fn endpoints(&self) -> Vec<&str> {
        self.subscriptions.settings.endpoints.iter().map(|e| e.url.as_str()).collect()
    }

    /// Wakes the deliverers (after a replay).
    pub fn wake(&self) {
        self.subscriptions.written();
    }

    /// Writes the live events still queued; at shutdown, after the engine
    /// closed (its last leaves are recorded by then).
    pub async fn close(&self) {
        self.stop.cancel();
        if let Some(recording) = self.recording.lock().await.take() {
            let _ = recording.await;
        }
    }
}

/// Sets the outbox gauges every [`DEPTH_INTERVAL`], and drops dead
/// letters older than `max_age`, until `shutdown`.
async fn watch_depth(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    max_age: Duration,
    shutdown: CancellationToken,
) {
    crate::engine::every(DEPTH_INTERVAL, &shutdown, || async {
        let now = OffsetDateTime::now_utc();
        match store.depth().await {
            Ok(depth) => {
                let age = depth.oldest_at.map_or(0, |at| (crate::store::millis(now) - at).max(0));
                metrics.webhook_pending.set(i64::try_from(depth.pending).unwrap_or(i64::MAX));
                metrics.webhook_oldest_ms.set(age);
                metrics.webhook_dead.set(i64::try_from(depth.dead).unwrap_or(i64::MAX));
            }
            Err(err) => tracing::warn!(%err, "webhook outbox depth not read"),
        }
        if let Err(err) = store.prune_dead(now - max_age).await {
            tracing::warn!(%err, "expired dead letters not removed");
        }
    })
    .await;
}
