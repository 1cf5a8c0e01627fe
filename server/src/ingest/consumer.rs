//! The RabbitMQ consumer: connects, declares the queue and its dead-letter
//! queue (both durable), consumes with a bounded prefetch, applies one
//! envelope at a time in queue order and acknowledges it only after its
//! effect is stored. A refused envelope is copied to `<queue>.dead` with
//! its reason (confirmed by RabbitMQ before the original is acknowledged);
//! a transient failure is requeued after a backoff. When the connection
//! goes away, it reconnects with backoff; at shutdown it stops consuming,
//! finishes the envelope in hand and closes the channel (unacknowledged
//! prefetched envelopes go back to the queue).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::envelope::{Body, Envelope};
use super::seen::Seen;
use super::{Status, backoff};
use crate::api::notify::post_notification;
use crate::api::rooms::{post_event, post_message};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;

/// Longest reason kept in a log line and a dead letter's header: parse
/// errors quote the input.
const MAX_REASON_BYTES: usize = 512;

/// The header of a dead letter that says why it was refused.
const REASON_HEADER: &str = "x-roomcast-reason";

/// Why one consuming session ended (and the consumer reconnects).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker closed the consumer")]
    Cancelled,
    #[error("the dead-letter queue refused a copy (nack)")]
    DeadLetterRefused,
}

/// What applying an envelope did.
enum Applied {
    Done,
    /// Applied before (redelivered or resent): nothing done again.
    Skipped,
}

/// Why applying an envelope failed.
enum Failure {
    /// It will never apply: dead-letter it.
    Refused(String),
    /// It may apply later (engine or store unavailable): requeue it.
    Transient(String),
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        let reason = format!("{}: {}", err.code, err.message);
        if err.code.is_retryable() { Self::Transient(reason) } else { Self::Refused(reason) }
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        tracing::warn!(%err, "the store failed on an ingested envelope id");
        Self::Transient("unavailable: the store failed".to_owned())
    }
}

pub(super) struct Consumer {
    url: String,
    state: AppState,
    seen: Arc<Seen>,
    /// The wait before the next requeue after a transient failure; back to
    /// `--amqp-retry-ms` after a success.
    retry_wait: Duration,
}

impl Consumer {
    pub fn new(url: String, state: AppState, seen: Arc<Seen>) -> Self {
        let retry_wait = state.config.amqp.retry;
        Self { url, state, seen, retry_wait }
    }

    /// Consumes until shutdown, reconnecting with backoff.
    pub async fn run(mut self) {
        let first = self.state.config.amqp.retry;
        let mut wait = first;
        let shutdown = self.state.shutdown.clone();
        // `start` set `connecting`; a session sets `connected`.
        while !shutdown.is_cancelled() {
            match self.session(&mut wait).await {
                Ok(()) => break,
                Err(err) => {
                    // Between connections too, not only while the next is
                    // being made: `/health` says so for the whole wait.
                    self.state.ingest.set(Status::CONNECTING);
                    tracing::warn!(
                        %err,
                        queue = %self.state.config.amqp.queue,
                        "RabbitMQ consumer stopped; reconnecting in {wait:?}"
                    )
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            wait = backoff(wait);
        }
        self.state.ingest.set(Status::OFF);
    }

    /// One connection: declares, consumes until shutdown (`Ok`) or until
    /// the connection fails. `wait` is reset once connected.
    async fn session(&mut self, wait: &mut Duration) -> Result<(), SessionError> {
        let shutdown = self.state.shutdown.clone();
        let settings = self.state.config.amqp.clone();
        let connection = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            connection = Connection::connect(&self.url, ConnectionProperties::default()) => connection?,
        };
        let channel = connection.create_channel().await?;
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        for queue in [settings.queue.clone(), settings.dead_letter_queue()] {
            channel.queue_declare(queue.as_str().into(), durable, FieldTable::default()).await?;
        }
        channel.basic_qos(settings.prefetch, BasicQosOptions::default()).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let tag = format!("roomcast-{}", crate::engine::random_id());
        let mut deliveries = channel
            .basic_consume(
                settings.queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = %settings.queue, "consuming envelopes from RabbitMQ");
        self.state.ingest.set(Status::CONNECTED);
        *wait = settings.retry;
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = deliveries.next() => next,
            };
            match next {
                Some(Ok(delivery)) => self.handle(&channel, delivery).await?,
                Some(Err(err)) => return Err(err.into()),
                None => return Err(SessionError::Cancelled),
            }
        }
        // Shutdown: nothing is in hand; what was prefetched is requeued by
        // the broker when the channel closes.
        let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
        let _ = channel.close(200, "shutting down".into()).await;
        let _ = connection.close(200, "shutting down".into()).await;
        tracing::info!("RabbitMQ consumer stopped");
        Ok(())
    }

    /// Applies one delivery and settles it: ack, dead letter, or requeue.
    async fn handle(&mut self, channel: &Channel, delivery: Delivery) -> Result<(), SessionError> {
        let max = self.state.config.amqp.max_envelope_bytes;
        let envelope = match Envelope::parse(&delivery.data, max) {
            Ok(envelope) => envelope,
            Err(refused) => {
                return self.dead_letter(channel, delivery, None, refused.to_string()).await;
            }
        };
        let (id, kind) = (envelope.id.clone(), envelope.kind());
        match self.apply(envelope).await {
            Ok(applied) => {
                self.retry_wait = self.state.config.amqp.retry;
                match applied {
                    Applied::Done => self.state.metrics.ingest_applied.inc(),
                    Applied::Skipped => {
                        tracing::info!(id, kind, "envelope already applied; skipped");
                        self.state.metrics.ingest_skipped.inc()
                    }
                };
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(Failure::Refused(reason)) => {
                self.dead_letter(channel, delivery, Some(&id), reason).await?;
            }
            Err(Failure::Transient(reason)) => {
                let wait = self.retry_wait;
                tracing::warn!(id, kind, reason, "envelope not applied; requeued in {wait:?}");
                let shutdown = self.state.shutdown.clone();
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(wait) => {}
                }
                self.retry_wait = backoff(wait);
                self.state.metrics.ingest_requeued.inc();
                let requeue = BasicNackOptions { requeue: true, ..BasicNackOptions::default() };
                delivery.nack(requeue).await?;
            }
        }
        Ok(())
    }

    /// Applies an envelope through the API's code.
    async fn apply(&self, envelope: Envelope) -> Result<Applied, Failure> {
        let state = &self.state;
        let id = envelope.id;
        match envelope.body {
            Body::Publish { room, request } => {
                let room = crate::api::room(room)?;
                let (_, stored) = post_message(state, room, request).await?;
                Ok(if stored { Applied::Done } else { Applied::Skipped })
            }
            Body::Notify(request) => {
                if self.seen.contains(&id).await? {
                    return Ok(Applied::Skipped);
                }
                post_notification(state, request).await?;
                self.seen.record(&id).await?;
                Ok(Applied::Done)
            }
            Body::Event { room, request } => {
                if self.seen.contains(&id).await? {
                    return Ok(Applied::Skipped);
                }
                let room = crate::api::room(room)?;
                post_event(state, room, request).await?;
                self.seen.record(&id).await?;
                Ok(Applied::Done)
            }
        }
    }

    /// Copies a refused delivery to the dead-letter queue with its reason
    /// in a header, waits for RabbitMQ's confirm, then acknowledges it.
    async fn dead_letter(
        &self,
        channel: &Channel,
        delivery: Delivery,
        id: Option<&str>,
        reason: String,
    ) -> Result<(), SessionError> {
        let reason = truncate(reason);
        tracing::warn!(id, reason, "envelope refused to the dead-letter queue");
        let mut headers = FieldTable::default();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        let mut properties = BasicProperties::default().with_headers(headers).with_delivery_mode(2);
        if let Some(content_type) = delivery.properties.content_type().clone() {
            properties = properties.with_content_type(content_type);
        }
        let dead = self.state.config.amqp.dead_letter_queue();
        let confirm = channel
            .basic_publish(
                "".into(),
                dead.as_str().into(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if !confirm.is_ack() {
            return Err(SessionError::DeadLetterRefused);
        }
        self.state.metrics.ingest_dead_lettered.inc();
        delivery.ack(BasicAckOptions::default()).await?;
        Ok(())
    }
}

/// `reason` cut to [`MAX_REASON_BYTES`] on a character boundary.
fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}
