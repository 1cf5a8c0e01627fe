//! Authentication: the first-frame `auth`, `?token=`, token refresh on an open
//! connection, refused tokens (close 4001) and the authentication timeout.

use std::time::Duration;

use roomcast_shared::{Claims, ServerFrame, UserInfo};
use roomcast_tests::{
    TestServer, WsClient, claims, frame_type, now_secs, sign, typed, unsigned_token,
};
use serde_json::json;

#[tokio::test]
async fn auth_frame_answers_ready_with_the_users_profile() {
    let server = TestServer::start().await;
    let token = server.token_with(&Claims {
        role: Some("member".into()),
        avatar: Some("https://example.com/a.png".into()),
        ..claims("alice", "Alice")
    });
    let mut client = WsClient::connect(&server.ws_url()).await;
    client.send(json!({"type": "auth", "token": token, "ref": 1})).await;
    let ready = client.expect_type("ready").await;

    assert_eq!(ready["ref"], 1, "ready must echo the auth's ref: {ready}");
    let ServerFrame::Ready { session_id, user, heartbeat_ms, limits } = typed(&ready) else {
        unreachable!()
    };
    assert!(!session_id.is_empty(), "empty session_id: {ready}");
    let expected = UserInfo {
        id: "alice".into(),
        name: "Alice".into(),
        role: Some("member".into()),
        avatar: Some("https://example.com/a.png".into()),
    };
    assert_eq!(user, expected);
    assert_eq!(heartbeat_ms, server.config().timing.heartbeat.as_millis() as u64);
    let limits = limits.expect("ready announces the rate limits");
    let configured = &server.config().limits;
    assert_eq!(limits.messages.per_sec, configured.messages.per_sec);
    assert_eq!(limits.messages.burst, configured.messages.burst);
    assert_eq!(limits.user_messages.burst, configured.user_messages.burst);
    client.assert_usable().await;
}

#[tokio::test]
async fn each_connection_gets_its_own_session_id() {
    let server = TestServer::start().await;
    let a = WsClient::connect_as(&server, "alice", "Alice").await;
    let b = WsClient::connect_as(&server, "alice", "Alice").await;
    assert_ne!(a.ready["session_id"], b.ready["session_id"]);
}

#[tokio::test]
async fn a_query_token_authenticates_the_connection() {
    let server = TestServer::start().await;
    let url = format!("{}?token={}", server.ws_url(), server.token("alice", "Alice"));
    let mut client = WsClient::connect(&url).await.labelled("alice");

    // Without any `auth` frame, the connection may join rooms at once.
    let joined = client.call(json!({"type": "join", "room": "general"})).await;
    assert_eq!(frame_type(&joined), "joined", "join over a query-token connection: {joined}");
    // The query token counts as an `auth` frame without a ref: `ready` came
    // first (and maybe the user's own presence).
    let before = client.collect_for(Duration::ZERO).await;
    assert_eq!(before.first().map(frame_type), Some("ready"), "before joined: {before:?}");
    assert_eq!(before[0]["user"]["id"], "alice");
    for frame in &before[1..] {
        assert_eq!(
            (frame_type(frame), &frame["user_id"]),
            ("presence", &json!("alice")),
            "{frame}"
        );
    }
}

#[tokio::test]
async fn a_bad_query_token_is_refused_with_4001() {
    let server = TestServer::start().await;
    let url = format!("{}?token=not-a-jwt", server.ws_url());
    let mut client = WsClient::connect(&url).await;
    client.expect_error("unauthorized").await;
    assert_eq!(client.expect_close().await, 4001);
}

#[tokio::test]
async fn a_fresh_auth_on_an_open_connection_refreshes_the_token() {
    let server = TestServer::start().await;
    let short =
        server.token_with(&Claims { exp: Some(now_secs() + 2), ..claims("alice", "Alice") });
    let mut stale = WsClient::connect_with_token(&server, &short, "stale").await;
    let mut refreshed = WsClient::connect_with_token(&server, &short, "refreshed").await;
    refreshed.join("general").await;

    let fresh = server.token("alice", "Alice");
    let ready = refreshed.call_ok(json!({"type": "auth", "token": fresh}), "ready").await;
    assert_eq!(ready["user"]["id"], "alice");
    assert_eq!(ready["session_id"], refreshed.ready["session_id"], "the same session goes on");

    // The connection that kept the short token is closed when it expires...
    assert_eq!(stale.expect_close().await, 4001);
    // ...while the refreshed one keeps its rooms past the old expiry.
    let ack = refreshed.say("general", "still here").await;
    assert_eq!(ack["offset"], 1, "{ack}");
}

#[tokio::test]
async fn a_refresh_must_be_for_the_same_user() {
    let server = TestServer::start().await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let reply =
        alice.call(json!({"type": "auth", "token": server.token("mallory", "Mallory")})).await;
    assert_eq!(frame_type(&reply), "error", "switching users on a connection: {reply}");
    assert!(matches!(reply["code"].as_str(), Some("forbidden" | "unauthorized")), "{reply}");
}

#[tokio::test]
async fn tokens_without_exp_are_accepted_in_dev_mode_only() {
    let no_exp =
        |server: &TestServer| server.token_with(&Claims { exp: None, ..claims("alice", "Alice") });

    let dev = TestServer::start().await;
    WsClient::connect_with_token(&dev, &no_exp(&dev), "alice").await.assert_usable().await;

    let prod = TestServer::with(|c| c.dev = false).await;
    let mut client = WsClient::connect(&prod.ws_url()).await;
    client.send(json!({"type": "auth", "token": no_exp(&prod), "ref": "a"})).await;
    let error = client.expect_error("unauthorized").await;
    assert_eq!(error["ref"], "a");
    assert_eq!(client.expect_close().await, 4001);

    // The same server accepts a token that has `exp`.
    let token = prod.token("alice", "Alice");
    WsClient::connect_with_token(&prod, &token, "alice").await.assert_usable().await;
}

#[tokio::test]
async fn refused_tokens_get_unauthorized_then_close_4001() {
    let server = TestServer::start().await;
    let past = now_secs() - 3600;
    let cases = [
        (
            "expired",
            server.token_with(&Claims {
                exp: Some(past),
                iat: Some(past - 60),
                ..claims("alice", "Alice")
            }),
        ),
        (
            "not yet valid",
            server.token_with(&Claims { nbf: Some(now_secs() + 3600), ..claims("alice", "Alice") }),
        ),
        ("wrong secret", sign("some-other-secret", &claims("alice", "Alice"))),
        ("alg none", unsigned_token(&claims("alice", "Alice"))),
        ("garbage", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in cases {
        let mut client = WsClient::connect(&server.ws_url()).await.labelled(what);
        client.send(json!({"type": "auth", "token": token, "ref": what})).await;
        let error = client.expect_error("unauthorized").await;
        assert_eq!(error["ref"], what, "{what}: {error}");
        assert_eq!(client.expect_close().await, 4001, "{what}");
    }
}

#[tokio::test]
async fn a_refused_refresh_closes_an_authenticated_connection() {
    let server = TestServer::start().await;
    let mut client = WsClient::connect_as(&server, "alice", "Alice").await;
    let bad = sign("some-other-secret", &claims("alice", "Alice"));
    client.send(json!({"type": "auth", "token": bad})).await;
    client.expect_error("unauthorized").await;
    assert_eq!(client.expect_close().await, 4001);
}

#[tokio::test]
async fn frames_before_auth_are_unauthorized_but_ping_works() {
    let server = TestServer::start().await;
    let mut client = WsClient::connect(&server.ws_url()).await;
    client.send(json!({"type": "join", "room": "general", "ref": "early"})).await;
    let error = client.expect_error("unauthorized").await;
    assert_eq!(error["ref"], "early");

    client.assert_usable().await;
    let ready = client.call(json!({"type": "auth", "token": server.token("alice", "Alice")})).await;
    assert_eq!(frame_type(&ready), "ready", "{ready}");
    client.join("general").await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_with_4001() {
    let server = TestServer::with(|c| c.timing.auth_timeout = Duration::from_millis(400)).await;
    let mut authed = WsClient::connect_as(&server, "alice", "Alice").await;
    let started = tokio::time::Instant::now();
    let mut idle = WsClient::connect(&server.ws_url()).await.labelled("idle");

    assert_eq!(idle.expect_close().await, 4001);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(390),
        "closed after {waited:?}, before the 400 ms timeout"
    );

    // An authenticated connection is not affected by the timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    authed.assert_usable().await;
}

#[tokio::test]
async fn pinging_does_not_count_as_authenticating() {
    let server = TestServer::with(|c| c.timing.auth_timeout = Duration::from_millis(600)).await;
    let mut client = WsClient::connect(&server.ws_url()).await;
    for _ in 0..3 {
        client.assert_usable().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(client.expect_close().await, 4001);
}

#[tokio::test]
async fn a_first_frame_sent_with_the_upgrade_request_is_read() {
    use futures_util::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let server = TestServer::start().await;
    let auth = json!({"type": "auth", "token": server.token("alice", "Alice"), "ref": 7});
    let mut frame = Frame::message(auth.to_string(), OpCode::Data(Data::Text), true);
    frame.header_mut().mask = Some(*b"mask");
    // The upgrade request and the client's first frame in one write: the
    // server reads both before it answers the upgrade.
    let host = server.http_url().trim_start_matches("http://").to_owned();
    let mut bytes = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    frame.format(&mut bytes).expect("a frame");
    let mut tcp = tokio::net::TcpStream::connect(&host).await.expect("connected");
    tcp.write_all(&bytes).await.expect("written");

    // The 101 answer, then whatever followed it is the WebSocket's.
    let mut read = Vec::new();
    let head_end = loop {
        let mut chunk = [0; 1024];
        let n = tcp.read(&mut chunk).await.expect("an answer");
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&read));
        read.extend_from_slice(&chunk[..n]);
        if let Some(at) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws =
        WebSocketStream::from_partially_read(tcp, read[head_end..].to_vec(), Role::Client, None)
            .await;
    let reply = tokio::time::timeout(roomcast_tests::RECV_TIMEOUT, ws.next())
        .await
        .expect("an answer in time")
        .expect("the connection is open")
        .expect("a frame");
    let reply: serde_json::Value =
        serde_json::from_str(reply.to_text().expect("a text frame")).expect("JSON");
    assert_eq!(frame_type(&reply), "ready", "{reply}");
    assert_eq!(reply["ref"], 7, "{reply}");
}

/// Flags, environment, and what the refusal must say.
type Refusal<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[cfg(unix)]
#[tokio::test]
async fn the_binary_refuses_empty_short_and_dev_mode_production_secrets() {
    let strong = "0123456789abcdef0123456789abcdef";
    let cases: [Refusal; 6] = [
        (&[], &[("ROOMCAST_JWT_SECRET", ""), ("ROOMCAST_API_KEY", "")], "--jwt-secret is empty"),
        (&["--jwt-secret", "x", "--api-key", "k"], &[], "at least 32"),
        (&["--jwt-secret", strong], &[("ROOMCAST_API_KEY", "")], "--api-key is empty"),
        (&[], &[("ROOMCAST_DEV", "0")], "--jwt-secret is required"),
        (&["--jwt-secret", strong], &[("ROOMCAST_DEV", "1")], "never be valid on a production"),
        (&["--dev", "--jwt-secret", strong, "--api-key", "k"], &[], "never be valid"),
    ];
    for (args, env, message) in cases {
        let (started, output) = roomcast_tests::process::run_to_exit(args, env).await;
        assert!(!started, "{args:?} {env:?} exited successfully: {output}");
        assert!(output.contains(message), "{args:?} {env:?}: expected {message:?} in {output}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_production_instance_accepts_only_tokens_of_its_own_strong_secret() {
    let secret = "a-production-secret-of-32-bytes!";
    let server = roomcast_tests::ServerProcess::spawn(
        &["--jwt-secret", secret, "--api-key", "backend-key"],
        &[("ROOMCAST_DEV", "0")],
    )
    .await;
    let admin = Claims { role: Some("admin".into()), ..claims("eve", "Eve") };
    for key in ["", "x", "another-secret-of-at-least-32-bytes"] {
        let mut client =
            WsClient::connect(&format!("{}?token={}", server.ws_url(), sign(key, &admin))).await;
        assert_eq!(client.expect_close().await, 4001, "a token signed with {key:?}");
    }
    let mut client =
        WsClient::connect(&format!("{}?token={}", server.ws_url(), sign(secret, &admin))).await;
    client.expect_type("ready").await;
    let dev_token = reqwest::Client::new()
        .post(format!("{}/api/dev/token", server.http_url()))
        .json(&json!({"name": "Eve"}))
        .send()
        .await
        .expect("POST /api/dev/token");
    assert_eq!(dev_token.status(), 404, "dev mode is off");
}
