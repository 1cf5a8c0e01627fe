//! Prometheus metrics, served as OpenMetrics text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the error counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub code: &'static str,
}

/// Every metric the server keeps. Counters are atomics: cheap on hot paths.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub connections_total: Counter,
    pub frames_received: Counter,
    pub frames_sent: Counter,
    pub messages: Counter,
    pub notifications: Counter,
    pub slow_consumers: Counter,
    /// Control calls of the HTTP API (disconnect, remove, ban, mute).
    pub control_calls: Counter,
    pub errors: Family<ErrorLabels, Counter>,
    /// What the in-memory engine keeps, as of its last sweep.
    pub engine_users: Gauge,
    pub engine_rooms: Gauge,
    pub history_bytes: Gauge,
    /// The store's group commits (with `--database-url`).
    pub store_commits: Counter,
    pub store_committed_changes: Counter,
    pub store_commit_failures: Counter,
    /// What the recent-event windows in front of the store cost.
    pub recent_bytes: Gauge,
    /// Envelopes ingested from RabbitMQ (`--amqp-url`).
    pub ingest_applied: Counter,
    pub ingest_dead_lettered: Counter,
    pub ingest_skipped: Counter,
    pub ingest_requeued: Counter,
    /// Webhooks (`--webhook-url`): attempts, and the outbox as of its last
    /// read (every few seconds).
    pub webhook_delivered: Counter,
    pub webhook_failures: Counter,
    pub webhook_dead_lettered: Counter,
    pub webhook_events_dropped: Counter,
    pub webhook_pending: Gauge,
    pub webhook_oldest_ms: Gauge,
    pub webhook_dead: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("roomcast"),
            connections: Gauge::default(),
            connections_total: Counter::default(),
            frames_received: Counter::default(),
            frames_sent: Counter::default(),
            messages: Counter::default(),
            notifications: Counter::default(),
            slow_consumers: Counter::default(),
            control_calls: Counter::default(),
            errors: Family::default(),
            engine_users: Gauge::default(),
            engine_rooms: Gauge::default(),
            history_bytes: Gauge::default(),
            store_commits: Counter::default(),
            store_committed_changes: Counter::default(),
            store_commit_failures: Counter::default(),
            recent_bytes: Gauge::default(),
            ingest_applied: Counter::default(),
            ingest_dead_lettered: Counter::default(),
            ingest_skipped: Counter::default(),
            ingest_requeued: Counter::default(),
            webhook_delivered: Counter::default(),
            webhook_failures: Counter::default(),
            webhook_dead_lettered: Counter::default(),
            webhook_events_dropped: Counter::default(),
            webhook_pending: Gauge::default(),
            webhook_oldest_ms: Gauge::default(),
            webhook_dead: Gauge::default(),
        };
        let registry = &mut metrics.registry;
        registry.register("connections", "Open WebSocket connections", metrics.connections.clone());
        registry.register(
            "connections_accepted",
            "WebSocket connections accepted",
            metrics.connections_total.clone(),
        );
        registry.register(
            "frames_received",
            "Client frames received",
            metrics.frames_received.clone(),
        );
        registry.register(
            "frames_sent",
            "Frames queued to connections",
            metrics.frames_sent.clone(),
        );
        registry.register("messages", "Chat messages accepted", metrics.messages.clone());
        registry.register(
            "notifications",
            "Notifications posted, per user",
            metrics.notifications.clone(),
        );
        registry.register(
            "slow_consumer_closes",
            "Connections closed because their send queue overflowed",
            metrics.slow_consumers.clone(),
        );
        registry.register(
            "control_calls",
            "Control calls of the HTTP API: disconnects, removals, bans and mutes",
            metrics.control_calls.clone(),
        );
        registry.register("errors", "Error frames sent, by code", metrics.errors.clone());
        registry.register(
            "engine_users",
            "Users the in-memory engine remembers (as of its last sweep)",
            metrics.engine_users.clone(),
        );
        registry.register(
            "engine_rooms",
            "Room streams the in-memory engine keeps (as of its last sweep)",
            metrics.engine_rooms.clone(),
        );
        registry.register(
            "history_bytes",
            "Estimated bytes of history the in-memory engine keeps (as of its last sweep)",
            metrics.history_bytes.clone(),
        );
        registry.register(
            "store_commits",
            "Transactions the committer made (each holds many changes under load)",
            metrics.store_commits.clone(),
        );
        registry.register(
            "store_committed_changes",
            "Changes (messages, edits, deletes) committed; over store_commits, the mean batch",
            metrics.store_committed_changes.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Batches the database refused or could not take (none of them was acknowledged)",
            metrics.store_commit_failures.clone(),
        );
        registry.register(
            "recent_bytes",
            "Estimated bytes of the recent events kept in front of the store (last sweep)",
            metrics.recent_bytes.clone(),
        );
        registry.register(
            "ingest_applied",
            "Envelopes from RabbitMQ applied and acknowledged",
            metrics.ingest_applied.clone(),
        );
        registry.register(
            "ingest_dead_lettered",
            "Envelopes from RabbitMQ refused to the dead-letter queue",
            metrics.ingest_dead_lettered.clone(),
        );
        registry.register(
            "ingest_skipped",
            "Envelopes from RabbitMQ already applied (redelivered or resent), acknowledged again",
            metrics.ingest_skipped.clone(),
        );
        registry.register(
            "ingest_requeued",
            "Envelopes from RabbitMQ requeued after a transient failure",
            metrics.ingest_requeued.clone(),
        );
        registry.register(
            "webhook_delivered",
            "Webhook events delivered (answered 2xx) by this instance",
            metrics.webhook_delivered.clone(),
        );
        registry.register(
            "webhook_failures",
            "Webhook attempts that failed (error status, timeout, unreachable); each is retried",
            metrics.webhook_failures.clone(),
        );
        registry.register(
            "webhook_dead_lettered",
            "Webhook events that failed every attempt and became dead letters",
            metrics.webhook_dead_lettered.clone(),
        );
        registry.register(
            "webhook_events_dropped",
            "Live webhook events (joins, presence, reads) dropped because the outbox's writer was behind",
            metrics.webhook_events_dropped.clone(),
        );
        registry.register(
            "webhook_pending",
            "Webhook events waiting in the outbox, all endpoints (read every few seconds)",
            metrics.webhook_pending.clone(),
        );
        registry.register(
            "webhook_oldest_ms",
            "Age of the oldest webhook event waiting, in milliseconds (0: none)",
            metrics.webhook_oldest_ms.clone(),
        );
        registry.register(
            "webhook_dead",
            "Dead letters kept for replay",
            metrics.webhook_dead.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
