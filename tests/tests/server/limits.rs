//! Per-connection limits: message, join and frame rates (with a hint of when
//! to retry), persistent abuse closed with 4008, rooms per connection and
//! connections per user.

use std::time::Duration;

use roomcast_server::Rate;
use roomcast_tests::{TestServer, WsClient};
use serde_json::json;

fn send(i: usize) -> serde_json::Value {
    json!({"type": "send", "room": "general", "content": format!("m{i}"), "client_id": format!("c{i}")})
}

#[tokio::test]
async fn a_burst_over_the_message_rate_is_refused_with_a_retry_hint() {
    let server = TestServer::with(|c| c.limits.messages = Rate::new(5.0, 3)).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    for i in 0..3 {
        alice.call_ok(send(i), "ack").await;
    }
    let refused = alice.call(send(3)).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("rate_limited")),
        "{refused}"
    );
    let wait = refused["retry_after_ms"].as_u64().expect("a retry hint");
    assert!((1..=200).contains(&wait), "one token at 5/s comes within 200 ms, got {wait}");
    // Other frames still work, and the same send works after the wait.
    alice.assert_usable().await;
    tokio::time::sleep(Duration::from_millis(wait + 20)).await;
    alice.call_ok(send(3), "ack").await;
}

#[tokio::test]
async fn persistent_abuse_is_closed_with_4008() {
    let server = TestServer::with(|c| {
        c.limits.messages = Rate::new(1.0, 1);
        c.limits.strikes = Rate::new(0.1, 5);
    })
    .await;
    let mut spammer = WsClient::connect_as(&server, "spammer", "Spammer").await;
    spammer.join("general").await;
    for i in 0..20 {
        spammer.send(send(i)).await;
    }
    let (frames, code) = spammer.frames_until_close().await;
    assert_eq!(code, 4008, "{frames:?}");
    let refused = frames.iter().filter(|f| f["code"] == "rate_limited").count();
    assert_eq!(refused, 6, "five refusals are tolerated, the sixth closes: {frames:?}");
    // Others are not affected.
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    alice.say("general", "still fine").await;
}

#[tokio::test]
async fn joins_are_rate_limited_and_rooms_per_connection_bounded() {
    let server = TestServer::with(|c| {
        c.limits.joins = Rate::new(1000.0, 1000);
        c.limits.rooms_per_connection = 3;
    })
    .await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    for room in ["a", "b", "c"] {
        alice.join(room).await;
    }
    alice.join("a").await; // joining again is not another room
    let refused = alice.call(json!({"type": "join", "room": "d"})).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("at most 3 rooms"), "{refused}");
    alice.call_ok(json!({"type": "leave", "room": "a"}), "left").await;
    alice.join("d").await;

    let slow = TestServer::with(|c| c.limits.joins = Rate::new(1.0, 2)).await;
    let mut bob = WsClient::connect_as(&slow, "bob", "Bob").await;
    bob.join("x").await;
    bob.join("y").await;
    let refused = bob.call(json!({"type": "join", "room": "z"})).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
}

#[tokio::test]
async fn connections_per_user_are_bounded() {
    let server = TestServer::with(|c| c.limits.connections_per_user = 2).await;
    let _first = WsClient::connect_as(&server, "alice", "Alice").await;
    let _second = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut third = WsClient::connect(&server.ws_url()).await;
    third.send(json!({"type": "auth", "token": server.token("alice", "Alice")})).await;
    let refused = third.expect_type("error").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(third.expect_close().await, 4008);
    // Another user is not affected.
    WsClient::connect_as(&server, "bob", "Bob").await.assert_usable().await;
}

#[tokio::test]
async fn the_frame_rate_covers_every_frame() {
    let server = TestServer::with(|c| c.limits.frames = Rate::new(1.0, 5)).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    // The auth frame took one token.
    for _ in 0..4 {
        alice.assert_usable().await;
    }
    let refused = alice.call(json!({"type": "ping"})).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
}

#[tokio::test]
async fn a_user_cannot_multiply_the_message_rate_with_more_tabs() {
    let server = TestServer::with(|c| {
        c.limits.messages = Rate::new(100.0, 100);
        c.limits.user_messages = Rate::new(1.0, 4);
    })
    .await;
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let mut tab = WsClient::connect_as(&server, "alice", "Alice").await;
        tab.join("general").await;
        tabs.push(tab);
    }
    let mut sent = 0;
    for i in 0..4 {
        tabs[i % 2].call_ok(send(i), "ack").await;
        sent += 1;
    }
    let refused = tabs[0].call(send(sent)).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("user"), "{refused}");
    // Another user has a budget of their own.
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;
    bob.say("general", "hello").await;
}

#[tokio::test]
async fn the_http_api_has_its_own_budget() {
    let server = TestServer::with(|c| c.limits.api = Rate::new(1.0, 3)).await;
    for _ in 0..3 {
        server.api_get("/api/users/alice/presence").await.expect(200);
    }
    let reply = server.api_get("/api/users/alice/presence").await;
    reply.expect_error(429, "rate_limited");
    // Health and metrics are not API calls.
    server.get("/health").await.expect(200);
}

/// A server whose frame rate allows a burst of 5 and whose strikes allow 3
/// refusals: the fourth refusal closes with 4008.
async fn strict_server() -> TestServer {
    TestServer::with(|c| {
        c.limits.frames = Rate::new(0.1, 5);
        c.limits.strikes = Rate::new(0.1, 3);
    })
    .await
}

/// Counts the frames of each error code.
fn codes(frames: &[serde_json::Value], code: &str) -> usize {
    frames.iter().filter(|f| f["type"] == "error" && f["code"] == code).count()
}

#[tokio::test]
async fn a_flood_of_invalid_json_meets_the_frame_rate() {
    let server = strict_server().await;
    let mut client = WsClient::connect(&server.ws_url()).await;
    for _ in 0..20 {
        client.send_text("not json").await;
    }
    let (frames, code) = client.frames_until_close().await;
    assert_eq!(code, 4008, "{frames:?}");
    assert_eq!(codes(&frames, "bad_request"), 5, "the burst is answered: {frames:?}");
    assert_eq!(codes(&frames, "rate_limited"), 4, "then refused until closed: {frames:?}");
}

#[tokio::test]
async fn a_flood_of_binary_frames_meets_the_frame_rate() {
    let server = strict_server().await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    // The auth frame took one token of five.
    for _ in 0..20 {
        alice.send_binary(b"\x00\x01").await;
    }
    let (frames, code) = alice.frames_until_close().await;
    assert_eq!(code, 4008, "{frames:?}");
    assert_eq!(codes(&frames, "bad_request"), 4, "{frames:?}");
    assert_eq!(codes(&frames, "rate_limited"), 4, "{frames:?}");
}

#[tokio::test]
async fn a_flood_of_websocket_pings_meets_the_frame_rate() {
    use roomcast_tests::{RawWs, raw};

    let server = strict_server().await;
    let mut ws = RawWs::connect(&server.config().bind.to_string()).await;
    for _ in 0..20 {
        ws.write(&raw::frame(0x89, b"hi", true)).await.unwrap();
    }
    let (mut pongs, mut limited) = (0, 0);
    let code = loop {
        let frame = ws.read_frame().await.expect("a close frame before the end");
        match frame.opcode {
            0xa => pongs += 1,
            0x1 if String::from_utf8_lossy(&frame.payload).contains("rate_limited") => limited += 1,
            0x8 => break frame.close_code(),
            other => panic!("unexpected frame {other:#x}: {frame:?}"),
        }
    };
    assert_eq!((pongs, limited, code), (5, 4, Some(4008)));
}

#[tokio::test]
async fn wrong_api_keys_from_one_address_are_refused_after_a_few() {
    let server = TestServer::with(|c| c.limits.api_failures = Rate::new(0.5, 3)).await;
    let path = "/api/users/alice/presence";
    let mut statuses = Vec::new();
    for i in 0..200 {
        let reply =
            server.http(reqwest::Method::GET, path, Some(&format!("guess-{i}")), None).await;
        statuses.push(reply.status);
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((unauthorized, limited), (3, 197), "{statuses:?}");
    // Even the right key waits, so that a guess cannot tell by succeeding.
    let reply = server.api_get(path).await;
    reply.expect_error(429, "rate_limited");
    assert!(reply.text.contains("failed API key attempts"), "{}", reply.text);
    // Health is not behind the key.
    server.get("/health").await.expect(200);
    // Once the budget refills, the right key works.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    server.api_get(path).await.expect(200);
}
