//! Live events into the outbox: joins, leaves, presence, reads and
//! delivered notifications, which no transaction stores, are turned into
//! rows where the engine sees them ([`TapPresence`], [`TapStreams`] wrap
//! its roles) and written in batches by one task.
//!
//! The queue is bounded ([`Delivery::record_queue`]): when the database
//! cannot keep up, live events past it are dropped and counted in
//! `/metrics` (`webhook_events_dropped`) rather than held in memory or
//! slowing chat. Room events (messages, edits, deletes) never go through
//! here: their rows are written with them.
//!
//! [`Delivery::record_queue`]: crate::config::WebhookDelivery::record_queue

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_shared::webhook::WebhookPayload;
use roomcast_shared::{
    Member, Notification, Position, Presence as UserPresence, ReadReceipt, RoomKind, RoomName,
    SetStatus, UserInfo,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Kind, Subscriptions};
use crate::engine::{
    Appended, Appending, Change, Counted, Departure, Departures, EngineError, MemberKey,
    MemberPage, Opened, Page, Presence, Snapshot, Streams,
};
use crate::store::Store;
use crate::store::outbox::OutboxRow;
use crate::telemetry::Metrics;

/// Rows written in one transaction at most.
const BATCH: usize = 1_000;

/// The wait before writing again after the database failed.
const RETRY: Duration = Duration::from_secs(1);

/// Turns live events into outbox rows and queues them for writing.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    subscriptions: Arc<Subscriptions>,
    queue: mpsc::Sender<Vec<OutboxRow>>,
    metrics: Arc<Metrics>,
}

impl Recorder {
    /// Starts the writer, which runs until `stop` and then writes what is
    /// queued.
    pub fn start(
        subscriptions: Arc<Subscriptions>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        capacity: usize,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (queue, queued) = mpsc::channel(capacity.max(1));
        let writing = tokio::spawn(write(queued, store, subscriptions.clone(), stop));
        (Self { subscriptions, queue, metrics }, writing)
    }

    /// Whether any endpoint takes events of `kind`.
    pub fn wants(&self, kind: Kind) -> bool {
        self.subscriptions.wants(kind)
    }

    /// Records an event that happened now.
    pub fn record(&self, room: Option<&RoomName>, payload: WebhookPayload) {
        let mut rows = Vec::new();
        self.subscriptions.rows(room, payload, OffsetDateTime::now_utc(), &mut rows);
        if rows.is_empty() {
            return;
        }
        if self.queue.try_send(rows).is_err() {
            self.metrics.webhook_events_dropped.inc();
        }
    }
}

/// Writes queued rows, a batch per transaction, until `stop`; then what is
/// left.
async fn write(
    mut queued: mpsc::Receiver<Vec<OutboxRow>>,
    store: Arc<dyn Store>,
    subscriptions: Arc<Subscriptions>,
    stop: CancellationToken,
) {
    let mut events = Vec::with_capacity(BATCH);
    loop {
        let open = tokio::select! {
            received = queued.recv_many(&mut events, BATCH) => received > 0,
            () = stop.cancelled() => false,
        };
        if !open {
            while let Ok(rows) = queued.try_recv() {
                events.push(rows);
            }
        }
        let rows: Vec<OutboxRow> = events.drain(..).flatten().collect();
        // The database may be down for a while: the batch waits (and the
        // queue behind it fills, then drops), unless the server is
        // stopping.
        while let Err(err) = store.enqueue(&rows).await {
            tracing::warn!(%err, rows = rows.len(), "webhook events not written; retrying");
            if !open || stop.is_cancelled() {
                break;
            }
            tokio::time::sleep(RETRY).await;
        }
        subscriptions.written();
        if !open {
            return;
        }
    }
}

/// The presence role, recording its changes as webhook events.
#[derive(Debug)]
pub(crate) struct TapPresence {
    pub inner: Arc<dyn Presence>,
    pub recorder: Recorder,
}

#[async_trait]
impl Presence for TapPresence {
    fn on_departures(&self, listener: Departures) {
        self.inner.on_departures(listener);
    }

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<Counted, EngineError> {
        let counted = self.inner.add_member(room, user).await?;
        // A user's personal room is where their notifications go, not a
        // room anyone joins.
        if !matches!(room.kind(), RoomKind::Personal { .. }) {
            if counted.room {
                self.recorder.record(Some(room), WebhookPayload::RoomOccupied {});
            }
            if counted.user {
                let user = user.clone();
                self.recorder.record(Some(room), WebhookPayload::MemberJoined { user });
            }
        }
        Ok(counted)
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<Counted, EngineError> {
        let counted = self.inner.remove_member(room, user_id).await?;
        if counted.user {
            let (room, user_id) = (room.clone(), user_id.to_owned());
            record_departure(
                &self.recorder,
                Departure::Left { room, user_id, vacated: counted.room },
            );
        }
        Ok(counted)
    }

    async fn members_page(
        &self,
        room: &RoomName,
        after: Option<&MemberKey>,
        limit: usize,
    ) -> Result<MemberPage, EngineError> {
        self.inner.members_page(room, after, limit).await
    }

    async fn members_now(
        &self,
        room: &RoomName,
        user_ids: &[String],
    ) -> Result<(u64, Vec<Option<Member>>), EngineError> {
        self.inner.members_now(room, user_ids).await
    }

    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError> {
        self.inner.rooms_of(user_id).await
    }

    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError> {
        let opened = self.inner.connection_opened(user).await?;
        if let Some(presence) = &opened.came_online {
            self.recorder.record(None, WebhookPayload::Presence(presence.clone()));
        }
        if self.recorder.wants(Kind::NotificationDelivered) {
            for notification in &opened.unread {
                self.recorder.record(None, delivered(&user.id, notification.clone()));
            }
        }
        Ok(opened)
    }

    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError> {
        self.inner.connection_closed(user_id).await
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError> {
        let offline = self.inner.connection_expired(user_id).await?;
        if let Some(presence) = &offline {
            record_departure(&self.recorder, Departure::Offline(presence.clone()));
        }
        Ok(offline)
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError> {
        let presence = self.inner.set_status(user_id, status, custom).await?;
        self.recorder.record(None, WebhookPayload::Presence(presence.clone()));
        Ok(presence)
    }

    async fn connected(&self, user_id: &str) -> Result<bool, EngineError> {
        self.inner.connected(user_id).await
    }

    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError> {
        self.inner.presence(user_id).await
    }

    async fn online_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(u64, Vec<UserPresence>), EngineError> {
        self.inner.online_users(after, limit).await
    }

    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError> {
        let copy = self.recorder.wants(Kind::NotificationDelivered).then(|| notification.clone());
        let online = self.inner.notify(user_id, notification).await?;
        if let Some(notification) = copy.filter(|_| online) {
            self.recorder.record(None, delivered(user_id, notification));
        }
        Ok(online)
    }
}

/// Records the departures the engine finds by itself (another instance's
/// users, when it died) as the calls that did not happen would have.
pub(crate) fn departures(recorder: Recorder) -> Departures {
    Arc::new(move |departure| record_departure(&recorder, departure))
}

/// A member leaving a room (and the room emptied), or a user going
/// offline, as webhook events. A user's personal room is where their
/// notifications go, not a room anyone joins or leaves.
fn record_departure(recorder: &Recorder, departure: Departure) {
    match departure {
        Departure::Left { room, .. } if matches!(room.kind(), RoomKind::Personal { .. }) => {}
        Departure::Left { room, user_id, vacated } => {
            recorder.record(Some(&room), WebhookPayload::MemberLeft { user_id });
            if vacated {
                recorder.record(Some(&room), WebhookPayload::RoomVacated {});
            }
        }
        Departure::Offline(presence) => recorder.record(None, WebhookPayload::Presence(presence)),
    }
}

fn delivered(user_id: &str, notification: Notification) -> WebhookPayload {
    WebhookPayload::NotificationDelivered { user_id: user_id.to_owned(), notification }
}

/// The streams role, recording reads as webhook events (room events are
/// recorded by the store, with them).
#[derive(Debug)]
pub(crate) struct TapStreams {
    pub inner: Arc<dyn Streams>,
    pub recorder: Recorder,
}

#[async_trait]
impl Streams for TapStreams {
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        self.inner.append(room, change).await
    }

    async fn start_append(&self, room: &RoomName, change: Change) -> Appending {
        self.inner.start_append(room, change).await
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        self.inner.snapshot(room, since, history).await
    }

    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        self.inner.history(room, before, limit).await
    }

    async fn keep_read(&self, room: &RoomName, receipt: ReadReceipt) {
        if self.recorder.wants(Kind::Read) {
            self.recorder.record(Some(room), WebhookPayload::Read(receipt.clone()));
        }
        self.inner.keep_read(room, receipt).await;
    }

    fn watching(&self, room: &RoomName) {
        self.inner.watching(room);
    }

    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, EngineError> {
        self.inner.reads(room, limit).await
    }
}
