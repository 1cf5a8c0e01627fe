//! Connection liveness: server pings keep a reading client connected, a
//! silent one is closed after two heartbeats, and a client too slow to read
//! its frames is closed with 4009.

use std::time::Duration;

use roomcast_tests::{RECV_TIMEOUT, TestServer, WsClient};
use serde_json::json;
use tokio::time::Instant;

const HEARTBEAT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_client_that_reads_answers_pings_and_stays_connected() {
    let server = TestServer::with(|c| c.timing.heartbeat = HEARTBEAT).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    assert_eq!(alice.ready["heartbeat_ms"], 200);
    // Reading answers the server's pings (tungstenite does it), nothing else.
    let frames = alice.collect_for(HEARTBEAT * 5).await;
    assert!(frames.is_empty(), "{frames:?}");
    alice.assert_usable().await;
}

#[tokio::test]
async fn a_client_ping_is_answered_with_a_pong_carrying_its_payload() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await.expect("connected");
    ws.send(Message::Ping("are you there".into())).await.expect("ping sent");
    let reply = tokio::time::timeout(RECV_TIMEOUT, ws.next())
        .await
        .expect("an answer in time")
        .expect("the connection is open")
        .expect("a frame");
    assert_eq!(reply, Message::Pong("are you there".into()));
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_two_heartbeats() {
    let server = TestServer::with(|c| c.timing.heartbeat = HEARTBEAT).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    // Not reading means not answering pings: the server hears nothing.
    tokio::time::sleep(HEARTBEAT * 5).await;
    let code = alice.expect_disconnect().await;
    assert!(matches!(code, None | Some(1000 | 1001)), "closed with {code:?}");
    // The server counts it gone (once it has tidied up).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let health = server.get("/health").await.expect(200);
        if health["connections"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still counted as connected: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_as_a_slow_consumer() {
    let server = TestServer::with(|c| {
        c.limits.send_queue = 4;
        c.limits.max_content_bytes = 1 << 20;
    })
    .await;
    let mut slow = WsClient::connect_as(&server, "slow", "Slow").await;
    slow.join("firehose").await;
    let mut reader = WsClient::connect_as(&server, "reader", "Reader").await;
    reader.join("firehose").await;

    // 1 MB messages while `slow` reads nothing, until the server counts a
    // slow consumer: more than the socket buffers and the send queue hold.
    let big = "x".repeat(1 << 20);
    let mut sent = 0;
    while slow_consumer_closes(&server).await == 0 {
        assert!(
            sent < 64,
            "no slow consumer after {sent} MB: {}",
            server.get("/metrics").await.text
        );
        let body = json!({"content": big, "client_id": format!("flood-{sent}")});
        let reply = server.api_post("/api/rooms/firehose/messages", body).await;
        assert!(matches!(reply.status, 200 | 201), "{}: {}", reply.status, reply.text);
        // A reader that keeps up is not affected.
        assert_eq!(reader.recv_until("message").await["client_id"], format!("flood-{sent}"));
        sent += 1;
    }
    assert_eq!(slow.expect_close().await, 4009);
    reader.assert_usable().await;
}

/// The `*slow_consumer*` counter of `/metrics`.
async fn slow_consumer_closes(server: &TestServer) -> u64 {
    let metrics = server.get("/metrics").await;
    metrics
        .text
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("slow_consumer"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
