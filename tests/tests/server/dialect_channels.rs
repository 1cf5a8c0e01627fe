//! The Django Channels dialect (`/ws/chat/<room_name>/`, `/ws/notifications/`):
//! raw WebSocket clients sending the original frames, talking to native
//! clients in the same rooms, with the native auth, limits and errors.

use std::time::Duration;

use roomcast_server::Rate;
use roomcast_server::config::ConnectHook;
use roomcast_tests::{
    Engine, HookServer, Reply, TestServer, WsClient, every_engine, frame_type, percent_encode,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

/// The URL of a Channels path (`chat/general/`, `notifications/`) with a token.
fn url(server: &TestServer, path: &str, token: &str) -> String {
    format!("{}/{path}?token={}", server.ws_url(), percent_encode(token))
}

/// A Channels chat client of `room` signed in as `user_id`.
async fn chat(server: &TestServer, room: &str, user_id: &str, name: &str) -> WsClient {
    let path = format!("chat/{}/", percent_encode(room));
    let client = WsClient::connect(&url(server, &path, &server.token(user_id, name))).await;
    client.labelled(&format!("channels-{user_id}"))
}

/// Waits until a notifications connection is signed in: it takes no
/// frames, and answers one with an error once its sign-in is done (the
/// reader handles frames only after it).
async fn signed_in(client: &mut WsClient) {
    client.send(json!({"message": "hi"})).await;
    let error = client.recv().await;
    assert_eq!((&error["type"], &error["code"]), (&json!("error"), &json!("bad_request")));
}

/// Reads until a `chat_message`.
async fn chat_message(client: &mut WsClient) -> Value {
    client.recv_until("chat_message").await
}

/// Reads until a `user_event` of `event` about `name`.
async fn user_event(client: &mut WsClient, name: &str, event: &str) -> Value {
    let message = match event {
        "user_joined" => format!("{name} joined the room"),
        _ => format!("{name} left the room"),
    };
    let what = format!("a user_event {event} of {name}");
    client
        .recv_where(&what, |f| frame_type(f) == "user_event" && f["message"] == message.as_str())
        .await
}

every_engine!(a_message_reaches_every_connection_of_the_room_sender_included);
async fn a_message_reaches_every_connection_of_the_room_sender_included(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = chat(&server, "general", "alice", "Alice").await;
    // Her own arrival: the join is done before she sends.
    user_event(&mut alice, "Alice", "user_joined").await;
    let mut bob = chat(&server, "general", "bob", "Bob").await;
    user_event(&mut bob, "Bob", "user_joined").await;
    let mut native = WsClient::connect_as(&server, "carol", "Carol").await;
    native.join("general").await;
    let mut elsewhere = chat(&server, "random", "dave", "Dave").await;
    user_event(&mut elsewhere, "Dave", "user_joined").await;

    alice.send(json!({"message": "Merhaba!"})).await;
    let expected = json!({"type": "chat_message", "message": "Merhaba!", "sender": "Alice"});
    assert_eq!(chat_message(&mut alice).await, expected);
    assert_eq!(chat_message(&mut bob).await, expected);
    let message = native.recv_until("message").await;
    assert_eq!((&message["room"], &message["content"]), (&json!("general"), &json!("Merhaba!")));
    assert_eq!(message["sender"]["id"], "alice");

    // And the other way: a native client's message reaches the Channels ones.
    native.say("general", "Selam").await;
    let expected = json!({"type": "chat_message", "message": "Selam", "sender": "Carol"});
    assert_eq!(chat_message(&mut alice).await, expected);
    assert_eq!(chat_message(&mut bob).await, expected);
    // Nothing of the native protocol (acks, presence) and nothing of
    // another room reaches a Channels client.
    let frames = elsewhere.collect_for(Duration::from_millis(300)).await;
    assert!(frames.is_empty(), "another room's client got {frames:?}");
}

every_engine!(joins_and_leaves_are_user_events);
async fn joins_and_leaves_are_user_events(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = chat(&server, "lobby", "alice", "Alice").await;
    user_event(&mut alice, "Alice", "user_joined").await;
    let mut bob = chat(&server, "lobby", "bob", "Bob").await;
    let joined = user_event(&mut alice, "Bob", "user_joined").await;
    assert_eq!(
        joined,
        json!({"type": "user_event", "message": "Bob joined the room", "event": "user_joined"})
    );
    user_event(&mut bob, "Bob", "user_joined").await;
    bob.close().await;
    let left = user_event(&mut alice, "Bob", "user_left").await;
    assert_eq!(
        left,
        json!({"type": "user_event", "message": "Bob left the room", "event": "user_left"})
    );
}

every_engine!(notifications_reach_the_notifications_path_only);
async fn notifications_reach_the_notifications_path_only(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let token = server.token("alice", "Alice");
    let mut notifications = WsClient::connect(&url(&server, "notifications/", &token)).await;
    let mut chat_tab = chat(&server, "general", "alice", "Alice").await;
    user_event(&mut chat_tab, "Alice", "user_joined").await;
    signed_in(&mut notifications).await;

    let body = json!({"user_ids": ["alice"], "title": "Shipped", "body": "the body", "data": {"order": 42}});
    let reply = server.api_post("/api/notify", body).await.expect(200);
    assert_eq!(reply["online"], 1);
    let frame = notifications.recv().await;
    assert_eq!(
        frame,
        json!({"type": "notification", "data": {"title": "Shipped", "message": "the body"}})
    );
    chat_tab.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn unread_notifications_arrive_on_connect() {
    let server = TestServer::start().await;
    let body = json!({"user_ids": ["carol"], "title": "While you were out", "body": "b"});
    server.api_post("/api/notify", body).await.expect(200);
    let token = server.token("carol", "Carol");
    let mut carol = WsClient::connect(&url(&server, "notifications/", &token)).await;
    assert_eq!(
        carol.recv().await,
        json!({"type": "notification", "data": {"title": "While you were out", "message": "b"}})
    );
}

#[tokio::test]
async fn without_a_valid_token_the_connection_is_refused_with_4001() {
    let server = TestServer::start().await;
    let no_token = format!("{}/chat/general/", server.ws_url());
    let bad_token = url(&server, "chat/general/", "not-a-jwt");
    let no_token_notifications = format!("{}/notifications/", server.ws_url());
    for url in [no_token, bad_token, no_token_notifications] {
        let mut client = WsClient::connect(&url).await;
        let (frames, code) = client.frames_until_close().await;
        assert_eq!(code, 4001, "{url}");
        let [error] = &frames[..] else { panic!("{url}: one error frame, got {frames:?}") };
        assert_eq!((&error["type"], &error["code"]), (&json!("error"), &json!("unauthorized")));
        assert!(error.get("ref").is_none(), "{error}");
    }
}

#[tokio::test]
async fn a_path_the_original_route_would_not_match_is_not_found() {
    let server = TestServer::start().await;
    // `:` reaches personal and direct-message rooms; `\w+` keeps it out.
    for room in ["user%3Abob", "dm%3Aalice%2Cbob", "a-b", "a.b"] {
        let target = url(&server, &format!("chat/{room}/"), &server.token("alice", "Alice"));
        match tokio_tungstenite::connect_async(&target).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404, "{target}");
            }
            other => panic!("{target}: expected a 404, got {:?}", other.map(|_| "a WebSocket")),
        }
    }
}

#[tokio::test]
async fn unicode_room_names_are_the_native_rooms_of_that_name() {
    let server = TestServer::start().await;
    let mut ayse = chat(&server, "genel_sohbet_ü", "ayse", "Ayşe").await;
    user_event(&mut ayse, "Ayşe", "user_joined").await;
    let mut native = WsClient::connect_as(&server, "bob", "Bob").await;
    native.join("genel_sohbet_ü").await;
    ayse.send(json!({"message": "günaydın"})).await;
    let message = native.recv_until("message").await;
    assert_eq!(message["content"], "günaydın");
}

every_engine!(bad_input_gets_an_error_and_the_connection_stays);
async fn bad_input_gets_an_error_and_the_connection_stays(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.max_content_bytes = 100).await;
    let mut alice = chat(&server, "general", "alice", "Alice").await;
    user_event(&mut alice, "Alice", "user_joined").await;
    let huge = json!({"message": "x".repeat(101)}).to_string();
    for bad in [r#"{"message": 5}"#, "not json", "{}", r#"["message"]"#, huge.as_str()] {
        alice.send_text(bad).await;
        let error = alice.recv().await;
        assert_eq!(frame_type(&error), "error", "{bad}: {error}");
        let code = if bad == huge { "too_large" } else { "bad_request" };
        assert_eq!(error["code"], code, "{bad}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
    alice.send_binary(b"\x00\x01").await;
    assert_eq!(alice.recv().await["code"], "bad_request");
    alice.send(json!({"message": "still here", "extra": true})).await;
    assert_eq!(chat_message(&mut alice).await["message"], "still here");
}

#[tokio::test]
async fn a_frame_over_the_frame_limit_closes_with_1009() {
    let server = TestServer::with(|c| c.limits.max_frame_bytes = 1024).await;
    let mut alice = chat(&server, "general", "alice", "Alice").await;
    user_event(&mut alice, "Alice", "user_joined").await;
    alice.send(json!({"message": "y".repeat(2048)})).await;
    assert_eq!(alice.expect_close().await, 1009);
}

#[tokio::test]
async fn the_message_rate_applies() {
    let server = TestServer::with(|c| c.limits.messages = Rate::new(1.0, 2)).await;
    let mut alice = chat(&server, "general", "alice", "Alice").await;
    user_event(&mut alice, "Alice", "user_joined").await;
    for i in 0..3 {
        alice.send(json!({"message": format!("m{i}")})).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = alice.recv().await;
        seen.push(frame);
    }
    let kinds: Vec<_> = seen.iter().map(|f| frame_type(f).to_owned()).collect();
    assert_eq!(kinds, ["chat_message", "chat_message", "error"], "{seen:?}");
    assert_eq!(seen[2]["code"], "rate_limited");
    assert!(seen[2]["retry_after_ms"].as_u64().is_some(), "{}", seen[2]);
}

every_engine!(the_personal_chat_is_the_direct_message_room);
async fn the_personal_chat_is_the_direct_message_room(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let connect = |me: &str, name: &str, other: &str| {
        let target = url(&server, &format!("{other}/"), &server.token(me, name));
        async move { WsClient::connect(&target).await }
    };
    let mut seven = connect("7", "Seven", "42").await;
    user_event(&mut seven, "Seven", "user_joined").await;
    let mut forty_two = connect("42", "Fortytwo", "7").await;
    user_event(&mut forty_two, "Fortytwo", "user_joined").await;
    let mut eight = connect("8", "Eight", "42").await;
    user_event(&mut eight, "Eight", "user_joined").await;
    let mut native = WsClient::connect_as(&server, "42", "Fortytwo").await;
    native.join("dm:42,7").await;

    seven.send(json!({"message": "özel"})).await;
    let expected = json!({"type": "chat_message", "message": "özel", "sender": "Seven"});
    assert_eq!(chat_message(&mut seven).await, expected);
    assert_eq!(chat_message(&mut forty_two).await, expected);
    let message = native.recv_until("message").await;
    assert_eq!((&message["room"], &message["content"]), (&json!("dm:42,7"), &json!("özel")));
    native.say("dm:42,7", "cevap").await;
    assert_eq!(chat_message(&mut seven).await["message"], "cevap");
    // Eight's personal chat with 42 is another room.
    let frames = eight.collect_for(Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| frame_type(f) != "chat_message"), "{frames:?}");
}

#[tokio::test]
async fn notify_is_the_notifications_path_too() {
    let server = TestServer::start().await;
    let token = server.token("alice", "Alice");
    let mut alice = WsClient::connect(&url(&server, "notify/", &token)).await;
    signed_in(&mut alice).await;
    let body = json!({"user_ids": ["alice"], "title": "Hi", "body": "there"});
    server.api_post("/api/notify", body).await.expect(200);
    assert_eq!(
        alice.recv().await,
        json!({"type": "notification", "data": {"title": "Hi", "message": "there"}})
    );
}

#[tokio::test]
async fn a_personal_chat_path_needs_a_numeric_id() {
    let server = TestServer::start().await;
    for id in ["abc", "4a", "-1"] {
        let target = url(&server, &format!("{id}/"), &server.token("alice", "Alice"));
        match tokio_tungstenite::connect_async(&target).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 404, "{target}");
            }
            other => panic!("{target}: expected a 404, got {:?}", other.map(|_| "a WebSocket")),
        }
    }
}

/// Reads until an online-status frame about `user`.
async fn online_status(client: &mut WsClient, user: &str) -> Value {
    client.recv_where(&format!("an online status of {user}"), |f| f["username"] == user).await
}

every_engine!(online_status_tells_the_others_of_open_close_and_departure);
async fn online_status_tells_the_others_of_open_close_and_departure(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let online = |user: &str| url(&server, "online/", &server.token(user, user));
    let mut alice = WsClient::connect(&online("alice")).await;
    let mut bob = WsClient::connect(&online("bob")).await;
    assert_eq!(
        online_status(&mut alice, "bob").await,
        json!({"username": "bob", "online_status": true})
    );
    // `username` is not trusted: the frame is about the signed-in user.
    bob.send(json!({"username": "alice", "type": "close"})).await;
    assert_eq!(
        online_status(&mut alice, "bob").await,
        json!({"username": "bob", "online_status": false})
    );
    bob.send(json!({"username": "bob", "type": "open"})).await;
    assert_eq!(online_status(&mut alice, "bob").await["online_status"], true);
    bob.send(json!({"username": "bob", "type": "dance"})).await;
    assert_eq!(bob.recv_until("error").await["code"], "bad_request");
    // Bob hears of alice (already there when he joined: nothing), never of himself.
    let frames = bob.collect_for(Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| f["username"] != "bob"), "{frames:?}");
    bob.close().await;
    assert_eq!(online_status(&mut alice, "bob").await["online_status"], false);
}

/// A server whose connect hook answers `reply` for a session cookie.
async fn with_connect_hook(reply: Reply) -> (HookServer, TestServer) {
    let hook = HookServer::start(reply).await;
    let url = reqwest::Url::parse(&hook.url()).expect("a hook URL");
    let timeout = Duration::from_secs(2);
    let server = TestServer::with(|config| {
        config.hooks.connect = Some(ConnectHook { url, timeout, recheck: None });
    })
    .await;
    (hook, server)
}

#[tokio::test]
async fn a_session_cookie_signs_in_on_the_chat_path_through_the_connect_hook() {
    let alice =
        json!({"user": {"id": "alice", "name": "Alice", "role": "member"}, "rooms": ["general"]});
    let (hook, server) = with_connect_hook(Reply::Json(200, alice)).await;
    let url = format!("{}/chat/general/", server.ws_url());
    let mut page = WsClient::connect_with(&url, None, &[("cookie", "sessionid=abc123")]).await;
    user_event(&mut page, "Alice", "user_joined").await;
    page.send(json!({"message": "signed in by cookie"})).await;
    let message = chat_message(&mut page).await;
    assert_eq!(message["sender"], "Alice", "{message}");
    let asked = hook.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].body["headers"]["cookie"], "sessionid=abc123");
    // The hook's rooms apply as on /ws: another room's path is refused.
    let url = format!("{}/chat/random/", server.ws_url());
    let mut elsewhere = WsClient::connect_with(&url, None, &[("cookie", "sessionid=abc123")]).await;
    let refused = elsewhere.recv_until("error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
}

#[tokio::test]
async fn a_session_the_hook_refuses_is_closed_with_4001_on_the_chat_path() {
    let (_hook, server) = with_connect_hook(Reply::Json(401, json!({"error": "expired"}))).await;
    let url = format!("{}/chat/general/", server.ws_url());
    let mut page = WsClient::connect_with(&url, None, &[("cookie", "sessionid=stale")]).await;
    assert_eq!(page.expect_close().await, 4001);
}
