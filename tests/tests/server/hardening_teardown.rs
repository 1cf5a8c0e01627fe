//! A connection's task that ends abnormally (a panic) is undone like one
//! that closes: out of the hub, its user offline and free to reconnect, and
//! `/health` and `/metrics` agreeing. And a token whose `exp` no clock can
//! hold does not panic the session in the first place.

use std::time::Duration;

use roomcast_shared::Claims;
use roomcast_tests::{RECV_TIMEOUT, TestServer, WsClient, frame_type};
use serde_json::json;
use tokio::time::Instant;

/// The frame that makes a test server's session panic.
const PANIC: &str = "panic, please";

/// Open connections by `/health` and by the `roomcast_connections` gauge.
async fn counts(server: &TestServer) -> (u64, u64) {
    let health = server.get("/health").await.expect(200);
    let metrics = server.get("/metrics").await.text;
    let gauge = metrics
        .lines()
        .find_map(|line| line.strip_prefix("roomcast_connections "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no roomcast_connections gauge in {metrics}"));
    (health["connections"].as_u64().unwrap_or(u64::MAX), gauge as u64)
}

/// Waits until `/health` and `/metrics` both count `expected` connections.
async fn wait_for_counts(server: &TestServer, expected: u64) {
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let seen = counts(server).await;
        if seen == (expected, expected) {
            return;
        }
        assert!(Instant::now() < deadline, "(/health, /metrics) = {seen:?}, not {expected}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(server: &TestServer, user: &str) -> String {
    let presence = server.api_get(&format!("/api/users/{user}/presence")).await.expect(200);
    presence["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_panicking_session_is_torn_down_completely() {
    let server = TestServer::with(|c| {
        c.panic_on_frame = Some(PANIC.into());
        c.limits.connections_per_user = 3;
    })
    .await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;

    // More panics than alice may have connections: each one must give its
    // slot back, or she is locked out for good.
    for round in 0..5 {
        let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
        alice.join("general").await;
        alice.send(json!({"type": "typing", "room": "general", "is_typing": true})).await;
        bob.recv_where("alice typing", |f| frame_type(f) == "typing" && f["is_typing"] == true)
            .await;
        assert_eq!(status_of(&server, "alice").await, "online");

        alice.send_text(PANIC).await;
        // The client is told, with a code that means "reconnect later".
        assert_eq!(alice.expect_close().await, 1001, "round {round}");
        // Others hear that alice stopped typing, and, after the grace
        // period, that she left and went offline.
        bob.recv_where("alice stopped typing", |f| {
            frame_type(f) == "typing" && f["user"]["id"] == "alice" && f["is_typing"] == false
        })
        .await;
        bob.recv_departure("alice").await;
        wait_for_counts(&server, 1).await;
        assert_eq!(status_of(&server, "alice").await, "offline", "round {round}");
    }
    let health = server.get("/health").await.expect(200);
    assert_eq!(
        (health["users"].as_u64(), health["rooms"].as_u64()),
        (Some(1), Some(2)),
        "{health}"
    );

    // An unauthenticated connection (in the gauge, not yet in the hub) that
    // panics is counted out too.
    let mut anonymous = WsClient::connect(&server.ws_url()).await;
    anonymous.send(json!({"type": "ping"})).await;
    anonymous.expect_type("pong").await;
    assert_eq!(counts(&server).await, (1, 2));
    anonymous.send_text(PANIC).await;
    anonymous.expect_disconnect().await;
    wait_for_counts(&server, 1).await;
    bob.assert_usable().await;
}

#[tokio::test]
async fn a_token_whose_exp_no_clock_can_hold_is_accepted_and_refreshed() {
    let server = TestServer::with(|c| c.limits.connections_per_user = 3).await;
    let forever = Claims { exp: Some(u64::MAX), ..Claims::new("alice", "Alice") };
    // More rounds than alice may have connections: a task that died would
    // keep its slot.
    for round in 0..5 {
        let mut alice =
            WsClient::connect_with_token(&server, &server.token_with(&forever), "alice").await;
        // A refresh with the same huge `exp`.
        let refreshed =
            alice.call(json!({"type": "auth", "token": server.token_with(&forever)})).await;
        assert_eq!(frame_type(&refreshed), "ready", "round {round}: {refreshed}");
        alice.join("general").await;
        alice.assert_usable().await;
        alice.close().await;
        wait_for_counts(&server, 0).await;
    }
}
