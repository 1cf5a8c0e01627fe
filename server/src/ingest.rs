//! Ingest from RabbitMQ (`--amqp-url`): services publish JSON envelopes to
//! a queue, each carrying the body of one HTTP API call (publish a message,
//! notify users, a room event) and an id; every instance consumes the same
//! queue (competing consumers) and applies each envelope through the same
//! code as the API.
//!
//! - `envelope.rs`: the envelope format and why one is refused.
//! - `consumer.rs`: the connection, the queues it declares, acks after the
//!   effect is stored, dead-lettering, requeue and reconnect with backoff.
//! - `seen.rs`: the ids of applied notify and event envelopes (in the
//!   store, or a bounded set in memory), so a redelivery is skipped.
//!
//! Publishes are made idempotent by the store itself: the envelope id is
//! the message's `client_id`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::config::ConfigError;
use crate::state::AppState;

mod consumer;
mod envelope;
mod seen;

/// Longest queue name: AMQP names are at most 255 bytes, and the
/// dead-letter queue adds `.dead`.
const MAX_QUEUE_NAME: usize = 250;

/// The longest wait between retries and reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the consumer reads its queue (see the `--amqp-*` flags).
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// The queue consumed; `<queue>.dead` receives refused envelopes
    /// (default `roomcast`).
    pub queue: String,
    /// Unacknowledged envelopes RabbitMQ sends this instance (default 32).
    pub prefetch: u16,
    /// Largest envelope accepted, in bytes (default 256 KiB).
    pub max_envelope_bytes: usize,
    /// First wait before a requeue or a reconnect, doubled on each failure
    /// in a row up to 30 s (default 500 ms).
    pub retry: Duration,
    /// How long the store keeps applied envelope ids (default 7 days).
    pub dedup_for: Duration,
    /// Applied envelope ids kept in memory without a store (default
    /// 100,000).
    pub dedup_ids: usize,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            queue: "roomcast".to_owned(),
            prefetch: 32,
            max_envelope_bytes: 256 * 1024,
            retry: Duration::from_millis(500),
            dedup_for: Duration::from_secs(7 * 24 * 3600),
            dedup_ids: 100_000,
        }
    }
}

impl AmqpSettings {
    /// Checks the flags' values.
    pub(crate) fn from_flags(
        queue: String,
        prefetch: u16,
        max_envelope_bytes: usize,
        retry_ms: u64,
        dedup_hours: u64,
        dedup_ids: usize,
    ) -> Result<Self, ConfigError> {
        let out_of_range = |name, rule| ConfigError::OutOfRange { name, rule };
        if queue.is_empty() || queue.len() > MAX_QUEUE_NAME || queue.chars().any(char::is_control) {
            return Err(out_of_range("amqp-queue", "1 to 250 bytes without control characters"));
        }
        if prefetch == 0 {
            return Err(out_of_range("amqp-prefetch", "at least 1"));
        }
        if max_envelope_bytes == 0 {
            return Err(out_of_range("amqp-max-envelope-bytes", "at least 1"));
        }
        if retry_ms == 0 || retry_ms > 30_000 {
            return Err(out_of_range("amqp-retry-ms", "1 to 30000"));
        }
        if dedup_hours == 0 || dedup_hours > 24 * 365 * 10 {
            return Err(out_of_range("amqp-dedup-hours", "1 to 87600"));
        }
        if dedup_ids == 0 {
            return Err(out_of_range("amqp-dedup-ids", "at least 1"));
        }
        Ok(Self {
            queue,
            prefetch,
            max_envelope_bytes,
            retry: Duration::from_millis(retry_ms),
            dedup_for: Duration::from_secs(dedup_hours * 3600),
            dedup_ids,
        })
    }

    /// The dead-letter queue: `<queue>.dead`.
    pub(crate) fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }
}

/// Where the consumer is, for `/health`.
#[derive(Debug, Default)]
pub(crate) struct Status(AtomicU8);

impl Status {
    const OFF: u8 = 0;
    const CONNECTING: u8 = 1;
    const CONNECTED: u8 = 2;

    fn set(&self, value: u8) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// `connected` or `connecting`; `None` without `--amqp-url`.
    pub fn describe(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Relaxed) {
            Self::CONNECTING => Some("connecting"),
            Self::CONNECTED => Some("connected"),
            _ => None,
        }
    }
}

/// Starts the consumer on the state's task tracker when `--amqp-url` is
/// set; it stops at shutdown (stops consuming, finishes the envelope in
/// hand, closes the channel).
pub(crate) fn start(state: &AppState) {
    let Some(url) = state.config.amqp_url.clone() else { return };
    state.ingest.set(Status::CONNECTING);
    let seen = seen::Seen::new(state.engine_store.clone(), &state.config.amqp);
    if let Some(pruning) = seen.pruning(state.config.amqp.dedup_for, state.shutdown.clone()) {
        state.tasks.spawn(pruning);
    }
    let consumer = consumer::Consumer::new(url, state.clone(), Arc::new(seen));
    state.tasks.spawn(consumer.run());
}

/// The next wait after `current`: doubled, at most [`MAX_BACKOFF`].
fn backoff(current: Duration) -> Duration {
    current.saturating_mul(2).min(MAX_BACKOFF)
}
