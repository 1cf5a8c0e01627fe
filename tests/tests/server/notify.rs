//! The HTTP API: notifications for online and offline users, the API key,
//! publishing messages and events into rooms, presence and history reads,
//! health, metrics, the OpenAPI document and dev tokens. Every test runs on
//! both engines.

use std::time::Duration;

use reqwest::Method;
use roomcast_shared::api::{Health, HistoryPage, NotifyResponse, RoomPresence};
use roomcast_shared::{AppEvent, ChatMessage, Notification, Presence, Status};
use roomcast_tests::{Engine, TestServer, WsClient, every_engine, frame_type, typed};
use serde_json::{Value, json};

fn notify(user_ids: &[&str], title: &str) -> Value {
    json!({"user_ids": user_ids, "title": title, "body": "the body", "data": {"order": 42}})
}

every_engine!(online_users_get_notifications_on_every_connection);
async fn online_users_get_notifications_on_every_connection(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut tab1 = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut tab2 = WsClient::connect_as(&server, "alice", "Alice").await.labelled("alice-tab2");
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;

    let reply =
        server.api_post("/api/notify", notify(&["alice", "carol"], "Shipped")).await.expect(200);
    let reply: NotifyResponse = typed(&reply);
    assert_eq!(reply.online, 1, "alice is online, carol is not");

    for client in [&mut tab1, &mut tab2] {
        let frame = client.expect_type("notification").await;
        let notification: Notification = typed(&frame);
        assert_eq!(notification.id, reply.id);
        assert_eq!(
            (notification.title.as_str(), notification.body.as_str()),
            ("Shipped", "the body")
        );
        assert_eq!(notification.data, json!({"order": 42}));
    }
    bob.expect_silence(Duration::from_millis(200)).await;
}

every_engine!(offline_users_get_unread_notifications_once_on_connect);
async fn offline_users_get_unread_notifications_once_on_connect(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let reply =
        server.api_post("/api/notify", notify(&["carol"], "While you were out")).await.expect(200);
    assert_eq!(reply["online"], 0);

    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let frame = carol.expect_type("notification").await;
    assert_eq!((&frame["id"], &frame["title"]), (&reply["id"], &json!("While you were out")));
    carol.expect_silence(Duration::from_millis(200)).await;
    carol.close().await;

    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    carol.expect_silence(Duration::from_millis(300)).await;
}

every_engine!(unread_notifications_are_bounded_keeping_the_newest);
async fn unread_notifications_are_bounded_keeping_the_newest(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.notifications_per_user = 3).await;
    for i in 1..=5 {
        server.api_post("/api/notify", notify(&["dave"], &format!("n{i}"))).await.expect(200);
    }
    let mut dave = WsClient::connect_as(&server, "dave", "Dave").await;
    let frames = dave.collect_for(Duration::from_millis(500)).await;
    let titles: Vec<_> =
        frames.iter().map(|f| (frame_type(f), f["title"].as_str().unwrap_or(""))).collect();
    assert_eq!(titles, [("notification", "n3"), ("notification", "n4"), ("notification", "n5")]);
}

every_engine!(the_api_needs_the_key);
async fn the_api_needs_the_key(engine: Engine) {
    // Twelve wrong keys in a row: more than one address may try by default.
    let server = TestServer::with_on(engine, |c| {
        c.limits.api_failures = roomcast_server::Rate::new(100.0, 100)
    })
    .await;
    let body = Some(notify(&["alice"], "x"));
    let cases = [
        (Method::POST, "/api/notify", body.clone()),
        (Method::POST, "/api/rooms/general/messages", Some(json!({"content": "x"}))),
        (Method::POST, "/api/rooms/general/events", Some(json!({"name": "x", "data": null}))),
        (Method::GET, "/api/rooms/general/presence", None),
        (Method::GET, "/api/rooms/general/messages", None),
        (Method::GET, "/api/users/alice/presence", None),
    ];
    for (method, path, body) in cases {
        for key in [None, Some("wrong-key")] {
            let reply = server.http(method.clone(), path, key, body.clone()).await;
            reply.expect_error(401, "unauthorized");
        }
    }
    // The right key passes.
    server.api_post("/api/notify", notify(&["alice"], "x")).await.expect(200);
}

every_engine!(http_errors_are_json_with_their_status);
async fn http_errors_are_json_with_their_status(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let key = Some(server.api_key());
    let bad_bodies = [json!({"title": 5}), json!({"user_ids": "alice", "title": "x"}), json!([1])];
    for body in bad_bodies {
        server
            .http(Method::POST, "/api/notify", key, Some(body))
            .await
            .expect_error(400, "bad_request");
    }
    for path in ["/api/rooms/has%20space/messages", "/api/rooms/general/messages?limit=ten"] {
        server.api_get(path).await.expect_error(400, "bad_request");
    }
    server
        .api_post("/api/rooms/has%20space/events", json!({"name": "x"}))
        .await
        .expect_error(400, "bad_request");
    server.api_get("/api/no-such-endpoint").await.expect_error(404, "not_found");
}

every_engine!(messages_published_through_the_api_reach_the_room);
async fn messages_published_through_the_api_reach_the_room(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;

    let ack = server
        .api_post("/api/rooms/general/messages", json!({"content": "deploy done"}))
        .await
        .expect(201);
    assert_eq!(ack["offset"], 1);
    assert!(ack["client_id"].is_string(), "a client_id is made up: {ack}");
    let frame = alice.expect_type("message").await;
    let system: ChatMessage = typed(&frame);
    assert_eq!((system.sender.id.as_str(), system.sender.name.as_str()), ("system", "System"));
    assert_eq!(
        (system.room.as_str(), system.offset, system.content.as_str(), system.id.as_str()),
        ("general", 1, "deploy done", ack["id"].as_str().unwrap())
    );

    let on_behalf = json!({"content": "hi", "sender": {"id": "bot", "name": "Bot", "role": "bot"}, "client_id": "b-1"});
    let bot = server.api_post("/api/rooms/general/messages", on_behalf.clone()).await.expect(201);
    assert_eq!((&bot["offset"], &bot["client_id"]), (&json!(2), &json!("b-1")));
    let frame = alice.expect_type("message").await;
    assert_eq!(
        (&frame["sender"]["id"], &frame["sender"]["name"], &frame["sender"]["role"]),
        (&json!("bot"), &json!("Bot"), &json!("bot"))
    );

    // A repeated client_id is the same message: 200 with the original ack, no broadcast.
    let again = server.api_post("/api/rooms/general/messages", on_behalf).await.expect(200);
    assert_eq!((&again["id"], &again["offset"]), (&bot["id"], &bot["offset"]));
    alice.expect_silence(Duration::from_millis(200)).await;
}

every_engine!(events_published_through_the_api_reach_members_but_not_history);
async fn events_published_through_the_api_reach_members_but_not_history(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("orders").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("elsewhere").await;

    let body = json!({"name": "order.shipped", "data": {"order": 7}});
    let event = server.api_post("/api/rooms/orders/events", body).await.expect(202);
    let event: AppEvent = typed(&event);
    assert_eq!((event.room.as_str(), event.name.as_str()), ("orders", "order.shipped"));

    let frame = alice.recv_until("event").await;
    assert_eq!(
        (&frame["room"], &frame["name"], &frame["data"]),
        (&json!("orders"), &json!("order.shipped"), &json!({"order": 7}))
    );
    assert!(frame["created_at"].is_string(), "{frame}");
    bob.expect_silence(Duration::from_millis(200)).await;

    let history = server.api_get("/api/rooms/orders/messages").await.expect(200);
    assert_eq!(history["messages"], json!([]), "events are not kept: {history}");
}

every_engine!(presence_and_history_can_be_read_over_http);
async fn presence_and_history_can_be_read_over_http(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    alice.send(json!({"type": "presence", "status": "away", "custom": "lunch"})).await;
    for text in ["one", "two", "three"] {
        alice.say("general", text).await;
    }

    let room: RoomPresence =
        typed(&server.api_get("/api/rooms/general/presence").await.expect(200));
    assert_eq!(room.room.as_str(), "general");
    assert_eq!(room.members.len(), 1);
    assert_eq!(room.members[0].user.id, "alice");
    assert_eq!(room.members[0].presence.status, Status::Away);

    let user: Presence = typed(&server.api_get("/api/users/alice/presence").await.expect(200));
    assert_eq!(
        (user.user_id.as_str(), user.status, user.custom.as_deref()),
        ("alice", Status::Away, Some("lunch"))
    );

    let page: HistoryPage =
        typed(&server.api_get("/api/rooms/general/messages?limit=2").await.expect(200));
    let texts: Vec<_> = page.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!((texts, page.has_more), (vec!["two", "three"], true));
    let page: HistoryPage =
        typed(&server.api_get("/api/rooms/general/messages?before=2&limit=10").await.expect(200));
    let texts: Vec<_> = page.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!((texts, page.has_more), (vec!["one"], false));
}

every_engine!(health_counts_connections_without_a_key);
async fn health_counts_connections_without_a_key(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let _tab = WsClient::connect_as(&server, "alice", "Alice").await;
    let _bob = WsClient::connect_as(&server, "bob", "Bob").await;
    alice.join("general").await;

    let health: Health = typed(&server.get("/health").await.expect(200));
    assert_eq!(health.status, "ok");
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!((health.connections, health.users), (3, 2));
    assert!(health.rooms >= 1, "{health:?}");
    assert_eq!(health.broker, engine.name());
}

every_engine!(metrics_are_prometheus_text_without_a_key);
async fn metrics_are_prometheus_text_without_a_key(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    alice.say("general", "counted").await;

    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics.content_type.starts_with("text/plain")
            || metrics.content_type.starts_with("application/openmetrics-text"),
        "content type {:?}",
        metrics.content_type
    );
    assert!(metrics.text.contains("# TYPE "), "no metric families: {}", metrics.text);
    let samples = metrics.text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    assert!(samples.count() > 0, "no samples: {}", metrics.text);
}

every_engine!(the_openapi_document_lists_the_api_without_a_key);
async fn the_openapi_document_lists_the_api_without_a_key(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let doc = server.get("/api/openapi.json").await.expect(200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "not OpenAPI 3: {}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/notify",
        "/api/rooms/{room}/messages",
        "/api/rooms/{room}/events",
        "/api/webhooks/dead-letters",
        "/api/webhooks/dead-letters/replay",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

every_engine!(dev_tokens_log_in_without_a_key_in_dev_mode_only);
async fn dev_tokens_log_in_without_a_key_in_dev_mode_only(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let reply = server
        .http(Method::POST, "/api/dev/token", None, Some(json!({"name": "Alice"})))
        .await
        .expect(200);
    assert_eq!(reply["user"]["id"], "alice");
    assert_eq!(reply["user"]["name"], "Alice");
    let token = reply["token"].as_str().expect("token");
    let client = WsClient::connect_with_token(&server, token, "alice").await;
    assert_eq!(client.ready["user"]["id"], "alice");

    let body = Some(json!({"name": "Root", "role": "admin"}));
    let admin = server.http(Method::POST, "/api/dev/token", None, body.clone()).await.expect(200);
    let mut root =
        WsClient::connect_with_token(&server, admin["token"].as_str().unwrap(), "root").await;
    root.join("admin").await;

    let prod = TestServer::with_on(engine, |c| c.dev = false).await;
    prod.http(Method::POST, "/api/dev/token", None, body.clone())
        .await
        .expect_error(404, "not_found");
    let key = Some(prod.api_key());
    prod.http(Method::POST, "/api/dev/token", key, body).await.expect_error(404, "not_found");
}

every_engine!(unread_notifications_are_capped_in_bytes_and_expire);
/// Unread notifications are capped in bytes (the newest kept, one bigger
/// than the cap alone not kept) and expire.
async fn unread_notifications_are_capped_in_bytes_and_expire(engine: Engine) {
    let server = TestServer::with_on(engine, |config| {
        config.limits.notification_bytes_per_user = 3500;
        config.limits.notification_max_age = Duration::from_secs(1);
    })
    .await;
    // About 1,000 bytes each as JSON: three fit in 3,500 bytes.
    let sized = |title: &str, bytes: usize| json!({"user_ids": ["erin"], "title": title, "body": "x".repeat(bytes)});
    for i in 1..=5 {
        server.api_post("/api/notify", sized(&format!("n{i}"), 900)).await.expect(200);
    }
    // One that could never be kept is refused for everyone, not dropped.
    server.api_post("/api/notify", sized("huge", 10_000)).await.expect_error(413, "too_large");
    let mut erin = WsClient::connect_as(&server, "erin", "Erin").await;
    let frames = erin.collect_for(Duration::from_millis(500)).await;
    let titles: Vec<&str> = frames.iter().filter_map(|f| f["title"].as_str()).collect();
    assert_eq!(titles, ["n3", "n4", "n5"], "the newest within 3,500 bytes");
    erin.close().await;

    server.api_post("/api/notify", notify(&["frank"], "stale")).await.expect(200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut frank = WsClient::connect_as(&server, "frank", "Frank").await;
    frank.expect_silence(Duration::from_millis(300)).await;
}
