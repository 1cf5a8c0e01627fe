//! Ingest from RabbitMQ against a real node (one per test binary, see
//! `RabbitMq`): envelopes reach members on several instances once each,
//! redelivered ids apply once, hostile envelopes go to the dead-letter
//! queue with their reason, and the queues exist as soon as Roomcast runs.

mod dead_letter;
mod delivery;

use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use roomcast_tests::{Engine, RECV_TIMEOUT, RabbitMq, TestServer};
use serde_json::Value;

/// A service's side: publishes envelopes and reads the dead-letter queue.
pub struct Service {
    channel: Channel,
    _connection: Connection,
}

impl Service {
    pub async fn connect() -> Self {
        let url = RabbitMq::shared().url();
        let connection = Connection::connect(&url, ConnectionProperties::default())
            .await
            .expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("a channel");
        channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
        Self { channel, _connection: connection }
    }

    /// Publishes `body` to `queue` and waits for RabbitMQ's confirm.
    pub async fn publish(&self, queue: &str, body: &[u8]) {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publishing")
            .await
            .expect("the publish's confirm");
        assert!(confirm.is_ack(), "RabbitMQ refused the publish to {queue}");
    }

    /// Publishes an envelope.
    pub async fn send(&self, queue: &str, envelope: &Value) {
        self.publish(queue, envelope.to_string().as_bytes()).await;
    }

    /// The next message of `queue` (acknowledged) with its
    /// `x-roomcast-reason` header, waiting up to [`RECV_TIMEOUT`].
    pub async fn take(&self, queue: &str) -> (Vec<u8>, String) {
        let started = Instant::now();
        loop {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get");
            if let Some(message) = got {
                let delivery = message.delivery;
                let reason = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-roomcast-reason").cloned())
                    .map(|value| match value {
                        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default();
                return (delivery.data, reason);
            }
            assert!(started.elapsed() < RECV_TIMEOUT, "nothing arrived in {queue}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }
}

/// Declares nothing: checks that `queue` exists and is durable (a
/// non-durable declaration of a durable queue is refused).
pub async fn assert_durable_queue(queue: &str) {
    let service = Service::connect().await;
    let durable = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    service
        .channel()
        .queue_declare(queue.into(), durable, FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("{queue} does not exist: {e}"));
    let transient = lapin::options::QueueDeclareOptions::default();
    let refused =
        service.channel().queue_declare(queue.into(), transient, FieldTable::default()).await;
    assert!(refused.is_err(), "{queue} accepted a non-durable declaration: it is not durable");
}

/// A server on `engine` consuming `queue`, once its consumer is connected.
pub async fn ingesting(
    engine: Engine,
    queue: &str,
    adjust: impl FnOnce(&mut roomcast_server::Config),
) -> TestServer {
    let queue = queue.to_owned();
    let server = TestServer::with_on(engine, |config| {
        config.amqp_url = Some(RabbitMq::shared().url());
        config.amqp.queue = queue;
        config.amqp.retry = Duration::from_millis(100);
        adjust(config);
    })
    .await;
    wait_connected(&server).await;
    server
}

/// Waits until `/health` says the consumer is connected.
pub async fn wait_connected(server: &TestServer) {
    let started = Instant::now();
    loop {
        let health = server.get("/health").await.expect(200);
        if health["amqp"] == "connected" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the consumer never connected: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A counter of `/metrics` (`roomcast_<name>_total`).
pub async fn counter(server: &TestServer, name: &str) -> u64 {
    let text = server.get("/metrics").await.text;
    let line = format!("roomcast_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in /metrics"))
}
