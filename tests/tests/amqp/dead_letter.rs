//! Hostile envelopes: each lands in `<queue>.dead` with its reason, and the
//! consumer keeps going; the queues exist as soon as Roomcast runs.

use std::time::Duration;

use roomcast_tests::{Engine, RabbitMq, WsClient};
use serde_json::json;

use crate::{Service, assert_durable_queue, counter, ingesting};

/// Most bytes an envelope may have in these tests.
const MAX_ENVELOPE: usize = 2048;

#[tokio::test]
async fn malformed_envelopes_are_dead_lettered_with_their_reason() {
    let queue = RabbitMq::shared().queue("bad");
    let server =
        ingesting(Engine::Sqlite, &queue, |c| c.amqp.max_envelope_bytes = MAX_ENVELOPE).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("orders").await;
    let huge = json!({"id": "big", "type": "publish", "room": "orders",
                      "content": "x".repeat(MAX_ENVELOPE)})
    .to_string();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json".to_vec(), "not a valid envelope"),
        (b"\xff\xfe\x00binary".to_vec(), "not a valid envelope"),
        (br#"{"id":"u-1","type":"launch","room":"orders"}"#.to_vec(), "unknown variant"),
        (br#"{"type":"notify","user_ids":["alice"],"title":"t"}"#.to_vec(), "missing field `id`"),
        (br#"{"id":7,"type":"notify","user_ids":["alice"],"title":"t"}"#.to_vec(), "invalid type"),
        (br#"{"id":"a\n","type":"notify","user_ids":["alice"],"title":"t"}"#.to_vec(), "control"),
        (
            br#"{"id":"n-2","type":"notify","user_ids":"alice","title":"t"}"#.to_vec(),
            "invalid type",
        ),
        (
            br#"{"id":"n-3","type":"notify","user_ids":[],"title":"t"}"#.to_vec(),
            "user_ids must list",
        ),
        (br#"{"id":"p-2","type":"publish","room":"orders","content":""}"#.to_vec(), "bad_request"),
        (
            br#"{"id":"p-3","type":"publish","room":"no room!","content":"x"}"#.to_vec(),
            "bad_request",
        ),
        (
            br#"{"id":"p-4","type":"publish","room":"orders","content":"x","client_id":"p-5"}"#
                .to_vec(),
            "must equal",
        ),
        (br#"{"id":"e-2","type":"event","room":"orders","name":""}"#.to_vec(), "name must be"),
        (huge.clone().into_bytes(), "too_large"),
    ];
    let service = Service::connect().await;
    for (body, _) in &cases {
        service.publish(&queue, body).await;
    }
    let good = json!({"id": "p-ok", "type": "publish", "room": "orders", "content": "still here"});
    service.send(&queue, &good).await;
    let message = alice.recv_until("message").await;
    assert_eq!(message["content"], "still here", "the consumer kept going");

    let dead = format!("{queue}.dead");
    for (body, reason) in &cases {
        let (copy, header) = service.take(&dead).await;
        assert_eq!(&copy, body, "the dead letter is the envelope as published");
        assert!(header.contains(reason), "the reason `{header}` should say `{reason}`");
    }
    assert_eq!(counter(&server, "ingest_dead_lettered").await, cases.len() as u64);
    assert_eq!(counter(&server, "ingest_applied").await, 1);
    let history = server.api_get("/api/rooms/orders/messages").await.expect(200);
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(1), "{history}");
    alice.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_queue_and_its_dead_letter_queue_exist_right_after_start() {
    let queue = RabbitMq::shared().queue("declared");
    let server = ingesting(Engine::Memory, &queue, |_| {}).await;
    assert_durable_queue(&queue).await;
    assert_durable_queue(&format!("{queue}.dead")).await;
    let health = server.get("/health").await.expect(200);
    assert_eq!((&health["amqp"], &health["status"]), (&json!("connected"), &json!("ok")));
}

#[tokio::test]
async fn without_a_url_health_has_no_amqp_field() {
    let server = roomcast_tests::TestServer::start().await;
    let health = server.get("/health").await.expect(200);
    assert!(health.get("amqp").is_none(), "{health}");
}
