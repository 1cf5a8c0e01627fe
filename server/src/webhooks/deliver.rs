//! Delivery: the outbox's rows POSTed to their endpoints, off the path of
//! chat.
//!
//! One instance delivers at a time: the holder of the store's lease,
//! renewed every [`LEASE_RENEW`] and lost after [`LEASE_TTL`] (so an
//! instance that dies hands over within seconds). For each endpoint it
//! reads rows ahead, up to [`Delivery::buffer`] (the memory bound), into
//! one line per room. A room's events go one at a time, in outbox order;
//! up to [`Delivery::concurrency`] rooms are in flight at once. A 2xx
//! answer deletes the row; anything else is retried after a backoff that
//! doubles (with jitter) up to [`Delivery::retry_max`], and after
//! [`Delivery::max_attempts`] the row is dead-lettered and the room goes
//! on with its next event. A row held longer than [`FRESH`] (behind a
//! failing receiver) is read again before it is posted, so that what a
//! delete erased meanwhile goes out erased.
//!
//! A room's rows are in outbox order when they are committed, but rows of
//! different rooms written by concurrent transactions (several instances
//! on PostgreSQL) may become visible out of order: reading only after the
//! last row seen could pass one by for good, so the outbox is also read
//! from the start every [`RESCAN`].
//!
//! [`Delivery::buffer`]: crate::config::WebhookDelivery::buffer
//! [`Delivery::concurrency`]: crate::config::WebhookDelivery::concurrency
//! [`Delivery::retry_max`]: crate::config::WebhookDelivery::retry_max
//! [`Delivery::max_attempts`]: crate::config::WebhookDelivery::max_attempts

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sign;
use crate::config::{WebhookDelivery as Delivery, WebhookEndpoint as Endpoint, Webhooks};
use crate::hooks::{HttpClient, client, reached};
use crate::store::Store;
use crate::store::outbox::Pending;
use crate::telemetry::Metrics;

/// How long a lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(10);

/// How often the holder renews its lease (and others try to take it).
const LEASE_RENEW: Duration = Duration::from_secs(2);

/// How often the outbox is read for rows this instance was not told about
/// (written by another instance).
const POLL: Duration = Duration::from_secs(1);

/// How often the outbox is read from the start (see the module's text).
const RESCAN: Duration = Duration::from_secs(5);

/// Rows read per query.
const PAGE: usize = 256;

/// A row read longer ago than this is read again before it is posted: a
/// delete may have erased it meanwhile (a receiver that fails holds a
/// room's rows in memory for as long as it fails).
const FRESH: Duration = Duration::from_secs(1);

/// Bytes of an answer read (and thrown away) so the connection is reused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Delivers every endpoint's rows while this instance holds the lease.
pub(crate) struct Deliverer {
    endpoints: Vec<Endpoint>,
    secret: Arc<[u8]>,
    delivery: Delivery,
    store: Arc<dyn Store>,
    http: HttpClient,
    metrics: Arc<Metrics>,
}

impl Deliverer {
    pub fn new(
        settings: &Webhooks,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            endpoints: settings.endpoints.clone(),
            secret: settings.secret.as_bytes().into(),
            delivery: settings.delivery.clone(),
            store,
            http: client()?,
            metrics,
        })
    }

    /// Holds the lease when it can and delivers while it does, until
    /// `shutdown`.
    pub async fn run(self, written: watch::Receiver<u64>, shutdown: CancellationToken) {
        let names: Vec<&str> = self.endpoints.iter().map(|e| e.url.as_str()).collect();
        match self.store.orphan(&names).await {
            Ok(0) => {}
            Ok(rows) => tracing::warn!(
                rows,
                "webhook events for URLs no longer configured were dead-lettered"
            ),
            Err(err) => tracing::warn!(%err, "webhook outbox not checked for removed URLs"),
        }
        let (holding, held) = watch::channel(false);
        let this = Arc::new(self);
        let mut lines = JoinSet::new();
        for endpoint in 0..this.endpoints.len() {
            let line = Line::new(this.clone(), endpoint);
            lines.spawn(line.run(held.clone(), written.clone(), shutdown.clone()));
        }
        let owner = crate::engine::random_id();
        crate::engine::every(LEASE_RENEW, &shutdown, || async {
            let now = crate::store::millis(time::OffsetDateTime::now_utc());
            let until = now + i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
            let held = match this.store.lease(&owner, now, until).await {
                Ok(held) => held,
                Err(err) => {
                    // Not renewed: another instance may take over once it
                    // expires, so stop now rather than deliver beside it.
                    tracing::warn!(%err, "webhook delivery lease not renewed");
                    false
                }
            };
            holding.send_if_modified(|was| std::mem::replace(was, held) != held);
        })
        .await;
        lines.shutdown().await;
        if let Err(err) = this.store.release(&owner).await {
            tracing::warn!(%err, "webhook delivery lease not released; it expires by itself");
        }
    }
}

/// A row read for delivery, and when.
#[derive(Debug)]
struct Queued {
    row: Pending,
    read: Instant,
}

/// One room's events waiting for one endpoint.
#[derive(Debug, Default)]
struct RoomLine {
    rows: VecDeque<Queued>,
    /// The head is being posted.
    busy: bool,
    /// When the head may be tried again (after a failure).
    due: Option<Instant>,
}

/// What one POST came to.
struct Attempt {
    room: String,
    seq: i64,
    result: Result<(), String>,
}

/// One endpoint's deliveries.
struct Line {
    deliverer: Arc<Deliverer>,
    endpoint: usize,
    /// The endpoint's name in the outbox.
    name: String,
    rooms: HashMap<String, RoomLine>,
    /// Rows read and not yet deleted (queued, in flight, or delivered and
    /// waiting for their delete): never read twice.
    held: HashSet<i64>,
    /// Delivered rows whose delete is pending.
    delivered: Vec<i64>,
    /// The last row read.
    cursor: i64,
    in_flight: JoinSet<Attempt>,
    /// The last read of new rows and of the whole outbox.
    polled: Instant,
    rescanned: Instant,
    /// The last read filled its page: there is more to read.
    more: bool,
}

impl Line {
    fn new(deliverer: Arc<Deliverer>, endpoint: usize) -> Self {
        let name = deliverer.endpoints[endpoint].url.to_string();
        let long_ago = Instant::now().checked_sub(RESCAN).unwrap_or_else(Instant::now);
        Self {
            deliverer,
            endpoint,
            name,
            rooms: HashMap::new(),
            held: HashSet::new(),
            delivered: Vec::new(),
            cursor: 0,
            in_flight: JoinSet::new(),
            polled: long_ago,
            rescanned: long_ago,
            more: true,
        }
    }

    fn delivery(&self) -> &Delivery {
        &self.deliverer.delivery
    }

    async fn run(
        mut self,
        mut held: watch::Receiver<bool>,
        mut written: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        loop {
            if !*held.borrow_and_update() {
                self.reset();
                tokio::select! {
                    changed = held.changed() => if changed.is_err() { return },
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
            self.delete_delivered().await;
            self.read().await;
            self.start_due();
            let next =
                self.next_due().unwrap_or_else(|| Instant::now() + POLL).min(self.polled + POLL);
            tokio::select! {
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    if let Ok(attempt) = done {
                        self.finish(attempt).await;
                    }
                }
                _ = written.changed() => self.more = true,
                _ = held.changed() => {}
                () = tokio::time::sleep_until(next) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Forgets everything read: another instance delivers now (or will).
    fn reset(&mut self) {
        self.in_flight.abort_all();
        self.rooms.clear();
        self.held.clear();
        self.delivered.clear();
        self.cursor = 0;
        self.more = true;
    }

    async fn delete_delivered(&mut self) {
        if self.delivered.is_empty() {
            return;
        }
        match self.deliverer.store.delivered(&self.delivered).await {
            Ok(()) => {
                for seq in self.delivered.drain(..) {
                    self.held.remove(&seq);
                }
            }
            // Kept (and held): deleted on a later turn.
            Err(err) => tracing::warn!(%err, "delivered webhook rows not deleted"),
        }
    }

    /// Reads new rows when there may be some and room for a good part of
    /// a page (not one query per delivered row), and the whole outbox
    /// every [`RESCAN`].
    async fn read(&mut self) {
        let buffer = self.delivery().buffer;
        let room_left = buffer.saturating_sub(self.held.len());
        let worth_a_query = room_left >= (buffer / 4).clamp(1, PAGE) || self.held.is_empty();
        let now = Instant::now();
        if room_left > 0 && ((self.more && worth_a_query) || now >= self.polled + POLL) {
            self.polled = now;
            let (after, limit) = (self.cursor, room_left.min(PAGE));
            self.more = self.read_after(after, limit).await == limit;
        }
        let room_left = buffer.saturating_sub(self.held.len());
        if room_left > 0 && now >= self.rescanned + RESCAN {
            self.rescanned = now;
            self.read_after(0, room_left.min(PAGE) + self.held.len().min(PAGE)).await;
        }
    }

    /// Queues the rows after `after` not held yet; returns how many were
    /// read.
    async fn read_after(&mut self, after: i64, limit: usize) -> usize {
        let rows = match self.deliverer.store.pending(&self.name, after, limit).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, "webhook outbox not read");
                return 0;
            }
        };
        let read = rows.len();
        let now = Instant::now();
        for row in rows {
            self.cursor = self.cursor.max(row.seq);
            if self.held.len() >= self.delivery().buffer || !self.held.insert(row.seq) {
                continue;
            }
            let line = self.rooms.entry(row.room.clone()).or_default();
            // In outbox order, behind a head being posted.
            let from = usize::from(line.busy);
            let at = line.rows.iter().skip(from).position(|r| r.row.seq > row.seq);
            let queued = Queued { row, read: now };
            match at {
                Some(i) => line.rows.insert(from + i, queued),
                None => line.rows.push_back(queued),
            }
        }
        read
    }

    /// Posts the head of each room that is not busy and due, as many as
    /// the concurrency allows.
    fn start_due(&mut self) {
        let now = Instant::now();
        let limit = self.delivery().concurrency;
        for (room, line) in &mut self.rooms {
            if self.in_flight.len() >= limit {
                break;
            }
            if line.busy || line.due.is_some_and(|due| due > now) {
                continue;
            }
            let Some(head) = line.rows.front() else { continue };
            line.busy = true;
            let stale = head.read.elapsed() >= FRESH;
            let post = post(self.deliverer.clone(), self.endpoint, head.row.clone(), stale);
            let (room, seq) = (room.clone(), head.row.seq);
            self.in_flight.spawn(async move { Attempt { room, seq, result: post.await } });
        }
    }

    /// When the next room waiting for a retry is due.
    fn next_due(&self) -> Option<Instant> {
        self.rooms.values().filter(|line| !line.busy).filter_map(|line| line.due).min()
    }

    async fn finish(&mut self, attempt: Attempt) {
        let Some(line) = self.rooms.get_mut(&attempt.room) else { return };
        line.busy = false;
        let Some(Queued { row: head, .. }) =
            line.rows.front_mut().filter(|head| head.row.seq == attempt.seq)
        else {
            return;
        };
        let metrics = &self.deliverer.metrics;
        match attempt.result {
            Ok(()) => {
                metrics.webhook_delivered.inc();
                line.rows.pop_front();
                line.due = None;
                self.delivered.push(attempt.seq);
            }
            Err(error) => {
                metrics.webhook_failures.inc();
                head.attempts = head.attempts.saturating_add(1);
                let attempts = head.attempts;
                let dead = attempts >= self.deliverer.delivery.max_attempts;
                let store = &self.deliverer.store;
                if let Err(err) = store.failed(attempt.seq, attempts, &error, dead).await {
                    tracing::warn!(%err, "webhook attempt not recorded");
                }
                if dead {
                    tracing::warn!(
                        endpoint = %self.name, event = %head.event_id, %error, attempts,
                        "webhook event dead-lettered"
                    );
                    metrics.webhook_dead_lettered.inc();
                    line.rows.pop_front();
                    line.due = None;
                    self.held.remove(&attempt.seq);
                } else {
                    line.due = Some(Instant::now() + backoff(&self.deliverer.delivery, attempts));
                }
            }
        }
        if line.rows.is_empty() && !line.busy {
            self.rooms.remove(&attempt.room);
        }
    }
}

/// The wait after `attempts` failed attempts: doubling from the initial
/// wait up to the cap, half of it random ("equal jitter": rooms that
/// failed together spread out, and none is retried much sooner than the
/// schedule says).
fn backoff(delivery: &Delivery, attempts: u32) -> Duration {
    use rand::Rng as _;
    let doubling = 1_u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
    let wait = delivery.retry_initial.saturating_mul(doubling).min(delivery.retry_max);
    let half = wait / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

/// POSTs one row to its endpoint, signed, within the timeout; a `stale`
/// row as the outbox holds it now (a row gone since is not posted).
async fn post(
    deliverer: Arc<Deliverer>,
    endpoint: usize,
    mut row: Pending,
    stale: bool,
) -> Result<(), String> {
    use http_body_util::BodyExt as _;
    if stale {
        match deliverer.store.body(row.seq).await {
            Ok(Some(body)) => row.body = body,
            Ok(None) => return Ok(()),
            Err(err) => return Err(format!("the outbox could not be read: {err}")),
        }
    }
    let url = &deliverer.endpoints[endpoint].url;
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign::signature(&deliverer.secret, timestamp, row.body.as_bytes());
    let request = axum::http::Request::post(url.as_str())
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .header(axum::http::header::USER_AGENT, concat!("roomcast/", env!("CARGO_PKG_VERSION")))
        .header(sign::EVENT_ID_HEADER, &row.event_id)
        .header(sign::EVENT_TYPE_HEADER, &row.kind)
        .header(sign::TIMESTAMP_HEADER, timestamp.to_string())
        .header(sign::SIGNATURE_HEADER, signature)
        .body(http_body_util::Full::new(bytes::Bytes::from(row.body)))
        .map_err(|err| err.to_string())?;
    let timeout = deliverer.delivery.timeout;
    let call = async {
        let response = deliverer.http.request(request).await.map_err(|e| reached(e).to_string())?;
        let status = response.status();
        // The answer is read (within a bound) so the connection is reused;
        // what it says does not matter.
        let _ =
            http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await;
        if status.is_success() { Ok(()) } else { Err(format!("answered HTTP {}", status.as_u16())) }
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let delivery = Delivery::default();
        for _ in 0..100 {
            let first = backoff(&delivery, 1);
            assert!((250..=500).contains(&first.as_millis()), "{first:?}");
            let third = backoff(&delivery, 3);
            assert!((1_000..=2_000).contains(&third.as_millis()), "{third:?}");
            for attempts in [7, 20, 40, u32::MAX] {
                let capped = backoff(&delivery, attempts);
                assert!((15_000..=30_000).contains(&capped.as_millis()), "{attempts}: {capped:?}");
            }
        }
    }
}
