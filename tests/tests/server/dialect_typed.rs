//! The typed chat events dialect (`/ws/chat/`): raw WebSocket clients
//! sending the original envelopes, talking to native clients in the same
//! rooms, with the native auth, limits and errors.

use std::time::Duration;

use roomcast_server::Rate;
use roomcast_server::config::ConnectHook;
use roomcast_shared::Claims;
use roomcast_tests::{
    Engine, HookServer, Reply, TestServer, WsClient, claims, every_engine, frame_type,
    percent_encode, sign,
};
use serde_json::{Value, json};

/// `/ws/chat/`, without a token.
fn url(server: &TestServer) -> String {
    format!("{}/chat/", server.ws_url())
}

/// John Doe, user 123, a teacher with an avatar (the original's sample).
fn john(server: &TestServer) -> String {
    server.token_with(&Claims {
        role: Some("teacher".into()),
        avatar: Some("/path/to/avatar.jpg".into()),
        ..claims("123", "John Doe")
    })
}

/// A client of the path signed in with `?token=`.
async fn typed_with_query(server: &TestServer, token: &str, label: &str) -> WsClient {
    let target = format!("{}?token={}", url(server), percent_encode(token));
    let mut client = WsClient::connect(&target).await.labelled(label);
    synced(&mut client).await;
    client
}

/// A client of the path signed in with an `auth` frame, as the original's
/// clients did (with the token the dialect needs).
async fn typed(server: &TestServer, token: &str, label: &str) -> WsClient {
    let mut client = WsClient::connect(&url(server)).await.labelled(label);
    let auth =
        json!({"type": "auth", "data": {"token": token}, "timestamp": "2024-01-15T10:00:00Z"});
    client.send(auth).await;
    synced(&mut client).await;
    client
}

/// Waits until every frame sent before is handled: the session handles
/// frames in order, and a `ping` is answered with a `pong`.
async fn synced(client: &mut WsClient) -> Value {
    client.send(json!({"type": "ping", "data": {}, "timestamp": "2024-01-15T10:00:00Z"})).await;
    client.recv_until("pong").await
}

/// Joins `room_id` (a number or a string) and waits until it is joined.
async fn join(client: &mut WsClient, room_id: Value) {
    client
        .send(json!({"type": "join_room", "data": {"room_id": room_id}, "room_id": room_id}))
        .await;
    synced(client).await;
}

fn message(room_id: Value, content: &str) -> Value {
    json!({
        "type": "message",
        "data": {"room_id": room_id, "content": content},
        "room_id": room_id,
        "user_id": 123,
        "timestamp": "2024-01-15T10:00:00Z",
    })
}

/// The next typed `error`; checks its form and returns `data`.
async fn error(client: &mut WsClient) -> Value {
    let frame = client.recv_until("error").await;
    assert!(frame["timestamp"].is_string(), "{frame}");
    assert!(frame["data"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{frame}");
    assert!(frame.get("code").is_none() && frame.get("message").is_none(), "{frame}");
    frame["data"].clone()
}

every_engine!(messages_go_both_ways_between_typed_and_native_clients);
async fn messages_go_both_ways_between_typed_and_native_clients(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut john = typed(&server, &john(&server), "john").await;
    let mut jane = typed_with_query(&server, &server.token("124", "Jane"), "jane").await;
    let mut native = WsClient::connect_as(&server, "carol", "Carol").await;
    native.join("456").await;
    join(&mut john, json!(456)).await;
    join(&mut jane, json!("456")).await;

    john.send(message(json!(456), "Hello world!")).await;
    let echo = john.recv_until("message").await;
    let id = echo["data"]["id"].as_str().expect("an id").to_owned();
    let created_at = echo["data"]["created_at"].as_str().expect("created_at").to_owned();
    let expected = json!({
        "type": "message",
        "data": {
            "id": id,
            "content": "Hello world!",
            "sender": 123,
            "chat": 456,
            "created_at": created_at,
            "sender_info": {"id": 123, "name": "John Doe", "role": "teacher", "avatar": "/path/to/avatar.jpg"},
        },
        "room_id": 456,
        "timestamp": created_at,
    });
    assert_eq!(echo, expected);
    assert_eq!(jane.recv_until("message").await, expected);
    let received = native.recv_until("message").await;
    assert_eq!((&received["room"], &received["content"]), (&json!("456"), &json!("Hello world!")));
    assert_eq!((&received["id"], &received["sender"]["id"]), (&json!(id), &json!("123")));

    // And the other way: a native client's message, with a string id.
    native.say("456", "Merhaba").await;
    let frame = jane.recv_until("message").await;
    assert_eq!(frame["data"]["content"], "Merhaba");
    assert_eq!(frame["room_id"], 456);
    assert_eq!(frame["data"]["sender"], "carol");
    assert_eq!(
        frame["data"]["sender_info"],
        json!({"id": "carol", "name": "Carol", "role": null, "avatar": null})
    );
    assert_eq!(john.recv_until("message").await, frame);

    // The envelope's `user_id` is not trusted: Jane's message is Jane's.
    jane.send(message(json!(456), "as john?")).await;
    let forged = native.recv_where("jane's message", |f| f["content"] == "as john?").await;
    assert_eq!((&forged["content"], &forged["sender"]["id"]), (&json!("as john?"), &json!("124")));
}

every_engine!(typing_goes_both_ways);
async fn typing_goes_both_ways(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut john = typed(&server, &john(&server), "john").await;
    let mut native = WsClient::connect_as(&server, "124", "Jane").await;
    native.join("456").await;
    join(&mut john, json!(456)).await;

    john.send(
        json!({"type": "typing", "data": {"room_id": 456, "is_typing": true}, "room_id": 456}),
    )
    .await;
    let typing = native.recv_until("typing").await;
    assert_eq!(
        (&typing["room"], &typing["user"]["id"], &typing["is_typing"]),
        (&json!("456"), &json!("123"), &json!(true))
    );

    native.send(json!({"type": "typing", "room": "456", "is_typing": true})).await;
    let typing = john.recv_until("typing").await;
    assert!(typing["timestamp"].is_string(), "{typing}");
    assert_eq!(
        typing["data"],
        json!({"room_id": 456, "user_id": 124, "user_name": "Jane", "is_typing": true})
    );
}

every_engine!(user_status_is_the_native_status);
async fn user_status_is_the_native_status(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut john = typed(&server, &john(&server), "john").await;
    let mut jane = typed(&server, &server.token("124", "Jane"), "jane").await;
    let mut native = WsClient::connect_as(&server, "carol", "Carol").await;
    native.join("456").await;
    join(&mut john, json!(456)).await;
    join(&mut jane, json!(456)).await;

    let is_status = |user: i64, status: &'static str| {
        move |f: &Value| {
            frame_type(f) == "user_status"
                && f["data"]["user_id"] == user
                && f["data"]["status"] == status
        }
    };
    john.send(json!({"type": "user_status", "data": {"status": "away"}, "user_id": 123})).await;
    native.recv_status("123", "away").await;
    let frame = jane.recv_where("john away", is_status(123, "away")).await;
    assert!(frame["data"]["last_seen"].is_string() && frame["timestamp"].is_string(), "{frame}");

    // The original's `offline`: connected, shown to others as offline.
    john.send(json!({"type": "user_status", "data": {"status": "offline"}})).await;
    native.recv_status("123", "offline").await;
    jane.recv_where("john offline", is_status(123, "offline")).await;

    // A native client's status change reaches the typed ones.
    native.send(json!({"type": "presence", "status": "busy"})).await;
    let frame = jane
        .recv_where("carol busy", |f| {
            f["data"]["user_id"] == "carol" && f["data"]["status"] == "busy"
        })
        .await;
    assert_eq!(frame_type(&frame), "user_status");
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = TestServer::start().await;
    let mut john = typed(&server, &john(&server), "john").await;
    let pong = synced(&mut john).await;
    let keys: Vec<&String> = pong.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["data", "timestamp", "type"], "{pong}");
    assert_eq!(pong["data"], json!({}));
    assert!(pong["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{pong}");
}

every_engine!(leave_room_stops_the_rooms_frames);
async fn leave_room_stops_the_rooms_frames(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut john = typed(&server, &john(&server), "john").await;
    let mut native = WsClient::connect_as(&server, "carol", "Carol").await.show_presence();
    native.join("456").await;
    join(&mut john, json!(456)).await;
    native.recv_arrival("123").await;

    john.send(json!({"type": "leave_room", "data": {"room_id": 456}, "room_id": 456})).await;
    synced(&mut john).await;
    native.recv_departure("123").await;
    native.say("456", "anyone?").await;
    let frames = john.collect_for(Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| frame_type(f) != "message"), "{frames:?}");
    // Sending to a room left is refused, in the dialect's form.
    john.send(message(json!(456), "still here?")).await;
    let refused = error(&mut john).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
}

/// Reads an `error` (in the dialect's form) and the close that follows.
async fn refused_and_closed(client: &mut WsClient) -> (Value, u16) {
    let (frames, code) = client.frames_until_close().await;
    let [frame] = &frames[..] else { panic!("one error frame, got {frames:?}") };
    assert_eq!(frame_type(frame), "error", "{frame}");
    assert!(frame["data"]["error"].is_string(), "{frame}");
    (frame["data"].clone(), code)
}

#[tokio::test]
async fn anonymous_connections_are_closed_with_4001() {
    let server = TestServer::start().await;
    let join = json!({"type": "join_room", "data": {"room_id": 456}}).to_string();
    let auth_without_token = json!({"type": "auth", "data": {"user_id": 123}}).to_string();
    let bad_token = json!({"type": "auth", "data": {"token": "not-a-jwt"}}).to_string();
    let forged = sign("another-secret", &claims("123", "John Doe"));
    let forged = json!({"type": "auth", "data": {"token": forged}}).to_string();
    for first in [join.as_str(), "not json", auth_without_token.as_str(), &bad_token, &forged] {
        let mut client = WsClient::connect(&url(&server)).await;
        client.send_text(first).await;
        let (data, code) = refused_and_closed(&mut client).await;
        assert_eq!((code, &data["code"]), (4001, &json!("unauthorized")), "{first}: {data}");
    }
    // A bad `?token=` is refused at once, before any frame.
    let target = format!("{}?token=not-a-jwt", url(&server));
    let mut client = WsClient::connect(&target).await;
    let (data, code) = refused_and_closed(&mut client).await;
    assert_eq!((code, &data["code"]), (4001, &json!("unauthorized")), "{data}");
}

#[tokio::test]
async fn a_query_token_connection_may_send_the_originals_auth_frame() {
    let server = TestServer::start().await;
    let target = format!("{}?token={}", url(&server), percent_encode(&john(&server)));
    let mut john = WsClient::connect(&target).await;
    // What the original's clients send on connect: a user id, no token.
    john.send(
        json!({"type": "auth", "data": {"user_id": 123}, "timestamp": "2024-01-15T10:00:00Z"}),
    )
    .await;
    let pong = synced(&mut john).await;
    assert_eq!(pong["type"], "pong");
    join(&mut john, json!(456)).await;
    john.send(message(json!(456), "signed in")).await;
    assert_eq!(john.recv_until("message").await["data"]["sender"], 123);
}

#[tokio::test]
async fn a_session_cookie_signs_in_through_the_connect_hook() {
    let hook = HookServer::start(Reply::Json(
        200,
        json!({"user": {"id": "123", "name": "John Doe", "role": "teacher"}}),
    ))
    .await;
    let hook_url = reqwest::Url::parse(&hook.url()).expect("a hook URL");
    let server = TestServer::with(|config| {
        config.hooks.connect =
            Some(ConnectHook { url: hook_url, timeout: Duration::from_secs(5), recheck: None });
    })
    .await;
    let mut john =
        WsClient::connect_with(&url(&server), None, &[("cookie", "sessionid=abc")]).await;
    john.send(json!({"type": "auth", "data": {"user_id": 123}})).await;
    join(&mut john, json!(456)).await;
    john.send(message(json!(456), "via cookie")).await;
    let echo = john.recv_until("message").await;
    assert_eq!(echo["data"]["sender_info"]["role"], "teacher", "{echo}");
    assert_eq!(hook.requests().len(), 1, "the tokenless auth frame asked the hook nothing more");
}

every_engine!(bad_input_gets_the_dialects_error_and_the_connection_stays);
async fn bad_input_gets_the_dialects_error_and_the_connection_stays(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.max_content_bytes = 100).await;
    let mut john = typed(&server, &john(&server), "john").await;
    join(&mut john, json!(456)).await;
    let huge = message(json!(456), &"x".repeat(101)).to_string();
    let long_room = json!({"type": "join_room", "data": {"room_id": "r".repeat(300)}}).to_string();
    let cases = [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        (r#"{"type": "dance", "data": {}}"#, "bad_request"),
        (r#"{"type": "message", "data": {"content": "no room"}}"#, "bad_request"),
        (r#"{"type": "join_room", "data": {}}"#, "bad_request"),
        (r#"{"type": "join_room", "data": {"room_id": -4}}"#, "bad_request"),
        (r#"{"type": "join_room", "data": {"room_id": "a b"}}"#, "bad_request"),
        (long_room.as_str(), "bad_request"),
        (r#"{"type": "typing", "data": {"room_id": 456}}"#, "bad_request"),
        (r#"{"type": "user_status", "data": {"status": "dancing"}}"#, "bad_request"),
        (r#"{"type": "message", "data": {"room_id": 456, "content": "   "}}"#, "bad_request"),
        (huge.as_str(), "too_large"),
        (r#"{"type": "message", "data": {"room_id": 789, "content": "not joined"}}"#, "forbidden"),
        // Any room by name, under the native room rules: not another's.
        (r#"{"type": "join_room", "data": {"room_id": "user:124"}}"#, "forbidden"),
        (r#"{"type": "join_room", "data": {"room_id": "dm:124,125"}}"#, "forbidden"),
    ];
    for (bad, code) in cases {
        john.send_text(bad).await;
        let data = error(&mut john).await;
        assert_eq!(data["code"], code, "{bad}: {data}");
    }
    john.send_binary(b"\x00\x01").await;
    assert_eq!(error(&mut john).await["code"], "bad_request");
    john.send(message(json!(456), "still here")).await;
    assert_eq!(john.recv_until("message").await["data"]["content"], "still here");
}

#[tokio::test]
async fn the_message_rate_is_told_in_the_dialects_error() {
    let server = TestServer::with(|c| c.limits.messages = Rate::new(1.0, 2)).await;
    let mut john = typed(&server, &john(&server), "john").await;
    join(&mut john, json!(456)).await;
    for i in 0..3 {
        john.send(message(json!(456), &format!("m{i}"))).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = john.recv().await;
        if frame_type(&frame) != "user_status" {
            seen.push(frame);
        }
    }
    let kinds: Vec<_> = seen.iter().map(|f| frame_type(f).to_owned()).collect();
    assert_eq!(kinds, ["message", "message", "error"], "{seen:?}");
    assert_eq!(seen[2]["data"]["code"], "rate_limited");
    assert!(seen[2]["data"]["retry_after_ms"].as_u64().is_some(), "{}", seen[2]);
}

#[tokio::test]
async fn a_frame_over_the_frame_limit_closes_with_1009() {
    let server = TestServer::with(|c| c.limits.max_frame_bytes = 1024).await;
    let mut john = typed(&server, &john(&server), "john").await;
    join(&mut john, json!(456)).await;
    john.send(message(json!(456), &"y".repeat(2048))).await;
    assert_eq!(john.expect_close().await, 1009);
}
