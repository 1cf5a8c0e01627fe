//! Envelopes applied: on two instances each member gets each once; a
//! redelivered (or resent) id is applied once.

use std::time::Duration;

use roomcast_tests::{Engine, RabbitMq, TestServer, WsClient, frame_type};
use serde_json::{Value, json};

use crate::{Service, counter, ingesting, wait_connected};

fn publish(id: &str, room: &str, content: &str) -> Value {
    json!({"id": id, "type": "publish", "room": room, "content": content,
           "sender": {"id": "shop", "name": "Shop"}})
}

fn notify(id: &str, users: &[&str], title: &str) -> Value {
    json!({"id": id, "type": "notify", "user_ids": users, "title": title, "body": "b"})
}

fn event(id: &str, room: &str, name: &str) -> Value {
    json!({"id": id, "type": "event", "room": room, "name": name, "data": {"n": 1}})
}

/// Frames of `kind` among `frames`.
fn count(frames: &[Value], kind: &str) -> usize {
    frames.iter().filter(|f| frame_type(f) == kind).count()
}

#[tokio::test]
async fn envelopes_reach_members_on_two_instances_once_each() {
    let queue = RabbitMq::shared().queue("two");
    let a = ingesting(Engine::RedisPostgres, &queue, |_| {}).await;
    let (redis, database) = (a.config().redis_url.clone(), a.config().database_url.clone());
    let b = TestServer::with(|config| {
        config.redis_url = redis;
        config.database_url = database;
        config.amqp_url = a.config().amqp_url.clone();
        config.amqp = a.config().amqp.clone();
    })
    .await;
    wait_connected(&b).await;

    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("orders").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    bob.join("orders").await;
    alice.recv_arrival("bob").await;

    let service = Service::connect().await;
    service.send(&queue, &publish("p-1", "orders", "order 1 shipped")).await;
    service.send(&queue, &event("e-1", "orders", "order.shipped")).await;
    service.send(&queue, &notify("n-1", &["alice", "bob"], "Order shipped")).await;

    // Two consumers share the queue: the three may arrive in any order.
    for member in [&mut alice, &mut bob] {
        let frames = member.collect_for(Duration::from_millis(1500)).await;
        for kind in ["message", "event", "notification"] {
            assert_eq!(count(&frames, kind), 1, "one {kind} each: {frames:?}");
        }
        let of = |kind| frames.iter().find(|f| frame_type(f) == kind).expect("seen");
        let message = of("message");
        assert_eq!(
            (&message["content"], &message["sender"]["id"]),
            (&json!("order 1 shipped"), &json!("shop"))
        );
        assert_eq!(message["client_id"], "p-1", "the envelope id is the message's client_id");
        assert_eq!(of("event")["name"], "order.shipped");
        assert_eq!(of("notification")["title"], "Order shipped");
    }
    let applied = counter(&a, "ingest_applied").await + counter(&b, "ingest_applied").await;
    assert_eq!(applied, 3, "the instances share the queue: each envelope applied by one");
    let history = a.api_get("/api/rooms/orders/messages").await.expect(200);
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1), "{history}");
}

/// The same ids published twice (as a redelivery after a lost ack would
/// bring them) are applied once; a marker published last shows the
/// duplicates were consumed, in queue order, before it.
async fn a_repeated_id_applies_once(engine: Engine) {
    let queue = RabbitMq::shared().queue("dup");
    let server = ingesting(engine, &queue, |_| {}).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("orders").await;
    let service = Service::connect().await;
    for _ in 0..2 {
        service.send(&queue, &publish("p-dup", "orders", "once")).await;
        service.send(&queue, &notify("n-dup", &["alice"], "once")).await;
        service.send(&queue, &event("e-dup", "orders", "once")).await;
    }
    service.send(&queue, &publish("p-marker", "orders", "marker")).await;
    let frames = alice.collect_for(Duration::from_millis(1500)).await;
    let messages: Vec<&Value> = frames.iter().filter(|f| frame_type(f) == "message").collect();
    let contents: Vec<&Value> = messages.iter().map(|m| &m["content"]).collect();
    assert_eq!(contents, [&json!("once"), &json!("marker")], "{frames:?}");
    assert_eq!(count(&frames, "notification"), 1, "{frames:?}");
    assert_eq!(count(&frames, "event"), 1, "{frames:?}");
    assert_eq!(counter(&server, "ingest_skipped").await, 3);
    assert_eq!(counter(&server, "ingest_applied").await, 4);
}

mod a_repeated_id_applies_once {
    use super::*;

    #[tokio::test]
    async fn memory() {
        a_repeated_id_applies_once(Engine::Memory).await;
    }

    #[tokio::test]
    async fn sqlite() {
        a_repeated_id_applies_once(Engine::Sqlite).await;
    }

    #[tokio::test]
    async fn redis_postgres() {
        a_repeated_id_applies_once(Engine::RedisPostgres).await;
    }
}

/// With a store, the ids of applied notify and event envelopes outlive a
/// restart: a redelivery after it is skipped.
#[tokio::test]
async fn applied_ids_survive_a_restart_with_a_store() {
    let queue = RabbitMq::shared().queue("restart");
    let server = ingesting(Engine::Sqlite, &queue, |_| {}).await;
    let service = Service::connect().await;
    service.send(&queue, &notify("n-kept", &["alice"], "once")).await;
    let started = std::time::Instant::now();
    while counter(&server, "ingest_applied").await < 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "the notification was not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server = server.restart().await;
    wait_connected(&server).await;
    service.send(&queue, &notify("n-kept", &["alice"], "once")).await;
    service.send(&queue, &notify("n-new", &["alice"], "new")).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let frames = alice.collect_for(Duration::from_millis(1000)).await;
    let titles: Vec<&Value> =
        frames.iter().filter(|f| frame_type(f) == "notification").map(|f| &f["title"]).collect();
    assert_eq!(
        titles,
        [&json!("once"), &json!("new")],
        "kept while offline, each once: {frames:?}"
    );
    assert_eq!(counter(&server, "ingest_skipped").await, 1);
}

/// When RabbitMQ drops the connection, `/health` says `connecting`, the
/// consumer reconnects with backoff and envelopes flow again.
#[tokio::test]
async fn the_consumer_reconnects_when_the_connection_drops() {
    let queue = RabbitMq::shared().queue("reconnect");
    // A first wait long enough to see the consumer between connections.
    let retry = Duration::from_secs(1);
    let server = ingesting(Engine::Memory, &queue, |c| c.amqp.retry = retry).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("orders").await;
    RabbitMq::shared().close_all_connections();
    let started = std::time::Instant::now();
    loop {
        let health = server.get("/health").await.expect(200);
        if health["amqp"] == "connecting" {
            assert_eq!(health["status"], "ok", "the instance still serves its clients");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the consumer did not notice the cut: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_connected(&server).await;
    let service = Service::connect().await;
    service.send(&queue, &publish("p-after", "orders", "after the cut")).await;
    assert_eq!(alice.recv_until("message").await["content"], "after the cut");
}
