//! Server-side control over the HTTP API: editing and deleting any
//! message, closing a user's connections, taking a user out of a room,
//! bans and mutes, on every engine, across instances and across a restart,
//! and the hostile inputs those endpoints meet.

use std::time::Duration;

use reqwest::Method;
use roomcast_tests::{Engine, RedisServer, TestServer, WsClient, every_engine};
use serde_json::{Value, json};

/// A control call with the server's API key.
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let reply = server.http(method, path, Some(server.api_key()), body).await;
    let body = if reply.text.is_empty() { Value::Null } else { reply.json() };
    (reply.status, body)
}

/// alice and bob, both in `general`.
async fn two_members(server: &TestServer) -> (WsClient, WsClient) {
    let mut alice = WsClient::connect_as(server, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(server, "bob", "Bob").await;
    bob.join("general").await;
    alice.recv_arrival("bob").await;
    (alice, bob)
}

every_engine!(any_message_is_edited_and_deleted_through_the_api);
async fn any_message_is_edited_and_deleted_through_the_api(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = two_members(&server).await;
    let sent = bob.say("general", "something rude").await;
    alice.expect_type("message").await;
    bob.expect_type("message").await;
    let path = format!("/api/rooms/general/messages/{}", sent["id"].as_str().unwrap());

    let (status, ack) =
        call(&server, Method::PATCH, &path, Some(json!({"content": "[removed by a moderator]"})))
            .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["id"], sent["id"]);
    for client in [&mut alice, &mut bob] {
        let updated = client.expect_type("message_updated").await;
        assert_eq!((&updated["id"], &updated["offset"]), (&sent["id"], &ack["offset"]));
        assert_eq!(updated["content"], "[removed by a moderator]");
    }
    // The backend may set the message's data with its text, and take it off.
    let labelled = json!({"content": "[hidden]", "data": {"moderation": "hidden"}});
    let (status, ack) = call(&server, Method::PATCH, &path, Some(labelled)).await;
    assert_eq!(status, 200, "{ack}");
    for client in [&mut alice, &mut bob] {
        let updated = client.expect_type("message_updated").await;
        assert_eq!(updated["data"], json!({"moderation": "hidden"}), "{updated}");
    }
    let (status, ack) =
        call(&server, Method::PATCH, &path, Some(json!({"content": "[hidden]", "data": {}}))).await;
    assert_eq!(status, 200, "{ack}");
    let updated = alice.expect_type("message_updated").await;
    assert!(updated.get("data").is_none_or(Value::is_null), "data removed: {updated}");
    bob.expect_type("message_updated").await;
    let (status, body) =
        call(&server, Method::PATCH, &path, Some(json!({"content": "x", "data": [1]}))).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{body}");

    let (status, ack) = call(&server, Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{ack}");
    for client in [&mut alice, &mut bob] {
        let deleted = client.expect_type("message_deleted").await;
        assert_eq!((&deleted["id"], &deleted["offset"]), (&sent["id"], &ack["offset"]));
    }
    // Stored: the history shows only its trace, on every engine.
    let page = server.api_get("/api/rooms/general/messages").await.expect(200);
    let trace = &page["messages"][0];
    assert_eq!(
        (&trace["id"], &trace["deleted"], &trace["content"]),
        (&sent["id"], &json!(true), &json!("")),
        "{page}"
    );
    assert!(trace.get("data").is_none() && !page.to_string().contains("[hidden]"), "{page}");

    let (status, body) =
        call(&server, Method::DELETE, "/api/rooms/general/messages/nope", None).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{body}");
    let (status, body) = call(&server, Method::PATCH, &path, Some(json!({"content": "   "}))).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{body}");
    let huge = "x".repeat(server.config().limits.max_content_bytes + 1);
    let (status, body) = call(&server, Method::PATCH, &path, Some(json!({"content": huge}))).await;
    assert_eq!((status, &body["error"]["code"]), (413, &json!("too_large")), "{body}");
}

every_engine!(a_disconnect_closes_every_connection_of_the_user);
async fn a_disconnect_closes_every_connection_of_the_user(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = two_members(&server).await;
    let mut bob_tab = WsClient::connect_as(&server, "bob", "Bob").await.labelled("bob-tab2");

    let (status, _) = call(&server, Method::POST, "/api/users/bob/disconnect", None).await;
    assert_eq!(status, 202);
    assert_eq!(bob.expect_close().await, 4003);
    assert_eq!(bob_tab.expect_close().await, 4003);
    alice.recv_departure("bob").await;
    alice.assert_usable().await;
}

every_engine!(a_removed_member_gets_left_and_the_room_sees_them_leave);
async fn a_removed_member_gets_left_and_the_room_sees_them_leave(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = two_members(&server).await;

    let (status, _) = call(&server, Method::DELETE, "/api/rooms/general/members/bob", None).await;
    assert_eq!(status, 202);
    let left = bob.expect_type("left").await;
    assert_eq!(left["room"], "general");
    assert!(left.get("ref").is_none(), "not an answer to a request: {left}");
    alice.recv_departure("bob").await;
    bob.send(
        json!({"type": "send", "room": "general", "content": "still here?", "client_id": "c1"}),
    )
    .await;
    bob.expect_error("forbidden").await;
    // Removal is not a ban: they may come back.
    bob.join("general").await;
}

every_engine!(a_banned_user_is_removed_and_cannot_join_until_unbanned);
async fn a_banned_user_is_removed_and_cannot_join_until_unbanned(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = two_members(&server).await;

    let (status, _) = call(&server, Method::PUT, "/api/rooms/general/bans/bob", None).await;
    assert_eq!(status, 204);
    assert_eq!(bob.expect_type("left").await["room"], "general");
    alice.recv_departure("bob").await;
    bob.send(json!({"type": "join", "room": "general"})).await;
    let refused = bob.expect_error("forbidden").await;
    assert!(refused["message"].as_str().unwrap().contains("banned"), "{refused}");
    // Only that room: others are open.
    bob.join("random").await;

    let (status, _) = call(&server, Method::DELETE, "/api/rooms/general/bans/bob", None).await;
    assert_eq!(status, 204);
    bob.join("general").await;
}

every_engine!(a_muted_user_reads_but_cannot_send);
async fn a_muted_user_reads_but_cannot_send(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = two_members(&server).await;
    let own = bob.say("general", "before the mute").await;
    alice.expect_type("message").await;
    bob.expect_type("message").await;

    let (status, _) = call(&server, Method::PUT, "/api/rooms/general/mutes/bob", None).await;
    assert_eq!(status, 204);
    for frame in [
        json!({"type": "send", "room": "general", "content": "hi", "client_id": "m1"}),
        json!({"type": "edit", "room": "general", "id": own["id"], "content": "changed"}),
        json!({"type": "typing", "room": "general", "is_typing": true}),
    ] {
        bob.send(frame).await;
        let refused = bob.expect_error("forbidden").await;
        assert!(refused["message"].as_str().unwrap().contains("muted"), "{refused}");
    }
    alice.expect_silence(Duration::from_millis(200)).await;
    // Still a reader: alice's messages arrive, and joining is allowed.
    alice.say("general", "you can still read this").await;
    assert_eq!(bob.expect_type("message").await["content"], "you can still read this");
    bob.join("general").await;

    let (status, _) = call(&server, Method::DELETE, "/api/rooms/general/mutes/bob", None).await;
    assert_eq!(status, 204);
    bob.say("general", "thanks").await;
}

/// An instance of a two-instance deployment on `redis`.
async fn instance(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::with(move |config| {
        config.redis_url = Some(url);
        config.jwt_secret = "cluster-secret-shared-by-every-instance".into();
        config.api_key = "cluster-key".into();
    })
    .await
}

#[tokio::test]
async fn control_calls_reach_users_on_another_instance() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    bob.join("general").await;
    alice.recv_arrival("bob").await;

    // Banned on A while connected to B.
    let (status, _) = call(&a, Method::PUT, "/api/rooms/general/bans/bob", None).await;
    assert_eq!(status, 204);
    assert_eq!(bob.expect_type("left").await["room"], "general");
    alice.recv_departure("bob").await;
    bob.send(json!({"type": "join", "room": "general"})).await;
    bob.expect_error("forbidden").await;
    // An instance bob was never on knows too.
    let c = instance(&redis).await;
    let mut bob_on_c = WsClient::connect_as(&c, "bob", "Bob").await.labelled("bob-on-c");
    bob_on_c.send(json!({"type": "join", "room": "general"})).await;
    bob_on_c.expect_error("forbidden").await;

    // Closed on A while connected to B and C.
    let (status, _) = call(&a, Method::POST, "/api/users/bob/disconnect", None).await;
    assert_eq!(status, 202);
    assert_eq!(bob.expect_close().await, 4003);
    assert_eq!(bob_on_c.expect_close().await, 4003);
    alice.assert_usable().await;
}

/// A ban held across a restart, on the engines that keep one: SQLite
/// (the store) and Redis without a store.
async fn a_ban_survives_a_restart(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (status, _) = call(&server, Method::PUT, "/api/rooms/general/bans/bob", None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&server, Method::PUT, "/api/rooms/general/mutes/carol", None).await;
    assert_eq!(status, 204);
    let server = server.restart().await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.send(json!({"type": "join", "room": "general"})).await;
    bob.expect_error("forbidden").await;
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    carol.join("general").await;
    carol.send(json!({"type": "send", "room": "general", "content": "x", "client_id": "c"})).await;
    carol.expect_error("forbidden").await;
}

#[tokio::test]
async fn a_ban_survives_a_restart_with_sqlite() {
    a_ban_survives_a_restart(Engine::Sqlite).await;
}

#[tokio::test]
async fn a_ban_survives_a_restart_with_redis() {
    a_ban_survives_a_restart(Engine::Redis).await;
}

every_engine!(control_calls_refuse_hostile_input);
async fn control_calls_refuse_hostile_input(engine: Engine) {
    // Eight calls without a key in a row: more than one address may try by default.
    let server = TestServer::with_on(engine, |c| {
        c.limits.api_failures = roomcast_server::Rate::new(100.0, 100)
    })
    .await;
    let long_user = "u".repeat(10_000);
    let long_room = "r".repeat(10_000);
    let long_id = "m".repeat(10_000);
    let bad = [
        (Method::POST, "/api/users/a,b/disconnect".to_owned()),
        (Method::POST, format!("/api/users/{long_user}/disconnect")),
        (Method::POST, "/api/users/%00/disconnect".to_owned()),
        (Method::DELETE, format!("/api/rooms/{long_room}/members/bob")),
        (Method::DELETE, "/api/rooms/general/members/bo%20b".to_owned()),
        (Method::PUT, "/api/rooms/user:bob/bans/bob".to_owned()),
        (Method::PUT, "/api/rooms/user:bob/mutes/bob".to_owned()),
        (Method::DELETE, "/api/rooms/user:alice/members/alice".to_owned()),
        (Method::PUT, "/api/rooms/%20/bans/bob".to_owned()),
        (Method::DELETE, format!("/api/rooms/general/messages/{long_id}")),
    ];
    for (method, path) in bad {
        let (status, body) = call(&server, method.clone(), &path, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{method} {path}: {body}"
        );
    }
    let (status, body) = call(
        &server,
        Method::PATCH,
        "/api/rooms/general/messages/m1",
        Some(json!({"content": 42})),
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{body}");

    // Every control call needs the key.
    for (method, path) in [
        (Method::PATCH, "/api/rooms/general/messages/m1"),
        (Method::DELETE, "/api/rooms/general/messages/m1"),
        (Method::POST, "/api/users/bob/disconnect"),
        (Method::DELETE, "/api/rooms/general/members/bob"),
        (Method::PUT, "/api/rooms/general/bans/bob"),
        (Method::DELETE, "/api/rooms/general/bans/bob"),
        (Method::PUT, "/api/rooms/general/mutes/bob"),
        (Method::DELETE, "/api/rooms/general/mutes/bob"),
    ] {
        let reply = server.http(method.clone(), path, None, Some(json!({"content": "x"}))).await;
        reply.expect_error(401, "unauthorized");
    }
    // Nothing was banned by the refused calls.
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;
}
