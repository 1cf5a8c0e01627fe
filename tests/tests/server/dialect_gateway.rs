//! The gateway with ops (`/gateway`): raw WebSocket clients sending the
//! original ops, next to native clients and the HTTP API in the same guild
//! rooms (`guild:<id>`), with the native auth, limits and errors.

use std::time::Duration;

use roomcast_shared::Claims;
use roomcast_tests::{Engine, TestServer, WsClient, claims, every_engine, frame_type, unique_id};
use serde_json::{Value, json};

/// `ws://127.0.0.1:<port>/gateway`.
fn url(server: &TestServer) -> String {
    format!("{}/gateway", server.http_url().replacen("http", "ws", 1))
}

fn op(name: &str, data: Value) -> Value {
    json!({"op": name, "data": data})
}

/// A gateway client that sent `IDENTIFY` with `token` and got `READY`.
async fn identified_with(server: &TestServer, token: &str, label: &str) -> WsClient {
    let mut client = WsClient::connect(&url(server)).await.labelled(label);
    client.send(op("IDENTIFY", json!({"token": token}))).await;
    let ready = answer(&mut client, "READY").await;
    assert!(ready["data"]["userId"].is_string(), "{ready}");
    client
}

/// A gateway client signed in as `user_id`.
async fn identified(server: &TestServer, user_id: &str) -> WsClient {
    identified_with(server, &server.token(user_id, user_id), &format!("gateway-{user_id}")).await
}

/// Reads until an answer of `op` (`READY`, `HEARTBEAT_ACK`, `ERROR`).
async fn answer(client: &mut WsClient, op: &str) -> Value {
    client.recv_where(&format!("a {op}"), |f| f["op"] == op).await
}

/// Reads until an event named `event`.
async fn event(client: &mut WsClient, event: &str) -> Value {
    client.recv_where(&format!("a {event} event"), |f| f["event"] == event).await
}

/// Sends `HEARTBEAT` and waits for its `HEARTBEAT_ACK`: every op sent
/// before it has been handled (ops are handled in order).
async fn synced(client: &mut WsClient) {
    client.send(op("HEARTBEAT", Value::Null)).await;
    answer(client, "HEARTBEAT_ACK").await;
}

/// Subscribes to `guild` and waits until the subscription is in place.
async fn subscribe(client: &mut WsClient, guild: &str) {
    client.send(op("GUILD_SUBSCRIBE", json!({"guildId": guild}))).await;
    synced(client).await;
}

/// The frames that arrive within `window`, but heartbeat answers and
/// presence (which comes once per window, at times a test does not control).
async fn events_for(client: &mut WsClient, window: Duration) -> Vec<Value> {
    let news = |f: &Value| f["op"] != "HEARTBEAT_ACK" && f["event"] != "presence.update";
    client.collect_for(window).await.into_iter().filter(news).collect()
}

/// A native client `send` with `data`, returning the `ack`.
async fn send_with_data(native: &mut WsClient, room: &str, content: &str, data: Value) -> Value {
    let frame = json!({"type": "send", "room": room, "content": content,
        "client_id": unique_id("msg"), "data": data});
    native.call_ok(frame, "ack").await
}

#[tokio::test]
async fn identify_is_answered_with_ready() {
    let server = TestServer::start().await;
    let mut client = WsClient::connect(&url(&server)).await;
    client.send(op("IDENTIFY", json!({"token": server.token("alice", "Alice")}))).await;
    assert_eq!(
        client.recv().await,
        json!({"op": "READY", "data": {"userId": "alice", "guilds": []}})
    );
    // A second IDENTIFY (a fresh token) lists the guilds subscribed since.
    subscribe(&mut client, "g1").await;
    client.send(op("IDENTIFY", json!({"token": server.token("alice", "Alice")}))).await;
    assert_eq!(
        answer(&mut client, "READY").await,
        json!({"op": "READY", "data": {"userId": "alice", "guilds": ["g1"]}})
    );
}

#[tokio::test]
async fn a_bad_or_missing_token_gets_an_error_and_close_4001() {
    let server = TestServer::start().await;
    let expired = roomcast_tests::sign(
        &server.config().jwt_secret,
        &Claims { exp: Some(1), ..claims("a", "A") },
    );
    let frames = [
        op("IDENTIFY", json!({"token": "not-a-jwt"})),
        op("IDENTIFY", json!({"token": expired})),
        op("IDENTIFY", json!({})),
        op("IDENTIFY", json!({"token": 42})),
        json!({"op": "IDENTIFY"}),
    ];
    for frame in frames {
        let mut client = WsClient::connect(&url(&server)).await;
        client.send(frame.clone()).await;
        let (frames, code) = client.frames_until_close().await;
        assert_eq!(code, 4001, "{frame}");
        let [error] = &frames[..] else { panic!("{frame}: one error, got {frames:?}") };
        assert_eq!(
            (&error["op"], &error["data"]["code"]),
            (&json!("ERROR"), &json!("unauthorized"))
        );
        assert!(error["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    }
}

#[tokio::test]
async fn ops_before_identify_are_refused_and_nothing_arrives() {
    let server = TestServer::start().await;
    let mut client = WsClient::connect(&url(&server)).await.labelled("early");
    // A heartbeat is answered from the start.
    synced(&mut client).await;
    client.send(op("GUILD_SUBSCRIBE", json!({"guildId": "g1"}))).await;
    let error = answer(&mut client, "ERROR").await;
    assert_eq!(error["data"]["code"], "unauthorized", "{error}");
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("guild:g1").await;
    bob.say("guild:g1", "not for strangers").await;
    let api = json!({"name": "guild.update", "data": {"name": "secret"}});
    server.api_post("/api/rooms/guild%3Ag1/events", api).await.expect(202);
    // The connection stays open, hears nothing, and may still sign in.
    assert!(events_for(&mut client, Duration::from_millis(300)).await.is_empty());
    client.send(op("IDENTIFY", json!({"token": server.token("carol", "Carol")}))).await;
    assert_eq!(answer(&mut client, "READY").await["data"]["guilds"], json!([]));
}

#[tokio::test]
async fn heartbeat_is_acknowledged() {
    let server = TestServer::start().await;
    let mut client = identified(&server, "alice").await;
    client.send(op("HEARTBEAT", Value::Null)).await;
    assert_eq!(client.recv().await, json!({"op": "HEARTBEAT_ACK", "data": null}));
}

#[tokio::test]
async fn a_connection_that_stops_heartbeating_is_closed() {
    // Native pings every 100 ms, which the client's WebSocket library
    // answers by itself as a browser does: the native silence rule never
    // fires, only the gateway's own.
    let server = TestServer::with(|c| {
        c.timing.heartbeat = Duration::from_millis(100);
        c.timing.gateway_heartbeat_timeout = Duration::from_millis(600);
    })
    .await;
    let mut client = identified(&server, "alice").await;
    // Heartbeats keep it open well past the timeout.
    for _ in 0..6 {
        // Reading, so that the pings are answered meanwhile.
        let frames = client.collect_for(Duration::from_millis(250)).await;
        assert!(frames.is_empty(), "{frames:?}");
        synced(&mut client).await;
    }
    assert_eq!(client.expect_close_within(Duration::from_secs(5)).await, 1000);
}

/// A gateway client subscribed to `guild`, and a native client in its room.
async fn guild_with_native(server: &TestServer, guild: &str) -> (WsClient, WsClient) {
    let mut gateway = identified(server, "alice").await;
    subscribe(&mut gateway, guild).await;
    let mut native = WsClient::connect_as(server, "bob", "Bob").await;
    native.join(&format!("guild:{guild}")).await;
    (gateway, native)
}

every_engine!(messages_cross_between_the_gateway_and_native_clients);
async fn messages_cross_between_the_gateway_and_native_clients(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = guild_with_native(&server, "g1").await;
    let mut elsewhere = identified(&server, "carol").await;
    subscribe(&mut elsewhere, "g2").await;

    let ack = send_with_data(&mut bob, "guild:g1", "Merhaba!", json!({"channelId": "c1"})).await;
    let created = event(&mut alice, "message.create").await;
    let message = &created["data"]["message"];
    assert_eq!(
        (&created["data"]["channelId"], &created["data"]["guildId"]),
        (&json!("c1"), &json!("g1"))
    );
    assert_eq!((&message["_id"], &message["authorId"]), (&ack["id"], &json!("bob")));
    assert_eq!(message["content"], "Merhaba!");
    assert!(message["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

    // The reverse: the gateway has no op to send (the original's clients
    // posted to the backend), so the backend publishes through the API.
    let body = json!({"content": "Selam", "sender": {"id": "alice", "name": "Alice"},
        "data": {"channelId": "c2"}});
    server.api_post("/api/rooms/guild%3Ag1/messages", body).await.expect(201);
    let native = bob.recv_where("Selam", |f| f["content"] == "Selam").await;
    assert_eq!((&native["content"], &native["data"]["channelId"]), (&json!("Selam"), &json!("c2")));
    let created = event(&mut alice, "message.create").await;
    assert_eq!(
        (&created["data"]["channelId"], &created["data"]["message"]["authorId"]),
        (&json!("c2"), &json!("alice"))
    );

    // Another guild's subscriber heard nothing of it.
    assert!(events_for(&mut elsewhere, Duration::from_millis(300)).await.is_empty());

    // Unsubscribed, alice hears no more of the guild.
    alice.send(op("GUILD_UNSUBSCRIBE", json!({"guildId": "g1"}))).await;
    synced(&mut alice).await;
    bob.say("guild:g1", "gone?").await;
    let frames = events_for(&mut alice, Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| f["event"] != "message.create"), "{frames:?}");
}

#[tokio::test]
async fn edits_and_deletes_are_message_update_and_delete() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = guild_with_native(&server, "g1").await;
    let ack = send_with_data(&mut bob, "guild:g1", "first", json!({"channelId": "c1"})).await;
    event(&mut alice, "message.create").await;
    let edit = json!({"type": "edit", "room": "guild:g1", "id": ack["id"], "content": "second"});
    bob.call_ok(edit, "ack").await;
    let updated = event(&mut alice, "message.update").await;
    assert_eq!(
        updated,
        json!({"event": "message.update", "data": {"channelId": "c1", "guildId": "g1", "message": {
            "_id": ack["id"], "content": "second", "edited": true,
            "editedAt": updated["data"]["message"]["editedAt"],
        }}})
    );
    assert!(updated["data"]["message"]["editedAt"].is_string(), "{updated}");
    bob.call_ok(json!({"type": "delete", "room": "guild:g1", "id": ack["id"]}), "ack").await;
    assert_eq!(
        event(&mut alice, "message.delete").await,
        json!({"event": "message.delete", "data": {"messageId": ack["id"], "guildId": "g1"}})
    );
}

#[tokio::test]
async fn typing_and_presence_of_guild_members_arrive() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = guild_with_native(&server, "g1").await;
    // Bob's arrival in the guild.
    let online = alice
        .recv_where("bob online", |f| {
            f["event"] == "presence.update" && f["data"]["userId"] == "bob"
        })
        .await;
    assert_eq!(online["data"]["status"], "online", "{online}");
    bob.send(json!({"type": "typing", "room": "guild:g1", "is_typing": true})).await;
    assert_eq!(
        event(&mut alice, "typing.start").await,
        json!({"event": "typing.start", "data": {"channelId": null, "guildId": "g1", "userId": "bob"}})
    );
    bob.send(json!({"type": "presence", "status": "busy", "custom": "Playing games"})).await;
    let busy = alice
        .recv_where("bob busy", |f| {
            f["event"] == "presence.update" && f["data"]["status"] == "busy"
        })
        .await;
    assert_eq!(
        busy,
        json!({"event": "presence.update", "data": {"userId": "bob", "status": "busy",
            "customStatus": "Playing games", "guildId": "g1"}})
    );
}

#[tokio::test]
async fn backend_room_events_arrive_under_their_own_name() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    subscribe(&mut alice, "g1").await;
    let mut other = identified(&server, "carol").await;
    subscribe(&mut other, "g2").await;
    let data = json!({"channel": {"_id": "c9", "guildId": "g1", "name": "genel"}});
    let body = json!({"name": "channel.create", "data": data});
    server.api_post("/api/rooms/guild%3Ag1/events", body).await.expect(202);
    assert_eq!(
        event(&mut alice, "channel.create").await,
        json!({"event": "channel.create", "data": data})
    );
    // An event for one user alone reaches them without a subscription.
    let guild = json!({"guild": {"_id": "g3", "name": "My Server"}});
    let body = json!({"name": "guild.create", "data": guild});
    server.api_post("/api/rooms/user%3Acarol/events", body).await.expect(202);
    assert_eq!(event(&mut other, "guild.create").await["data"], guild);
    assert!(events_for(&mut other, Duration::from_millis(300)).await.is_empty());
    assert!(events_for(&mut alice, Duration::from_millis(100)).await.is_empty());
}

#[tokio::test]
async fn bad_input_gets_an_error_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let huge = "x".repeat(10_000);
    let bad = [
        "not json".to_owned(),
        "{}".to_owned(),
        r#"{"op": "DANCE", "data": null}"#.to_owned(),
        r#"{"op": "GUILD_SUBSCRIBE", "data": null}"#.to_owned(),
        r#"{"op": "GUILD_SUBSCRIBE", "data": {"guildId": 42}}"#.to_owned(),
        op("GUILD_SUBSCRIBE", json!({"guildId": ""})).to_string(),
        op("GUILD_SUBSCRIBE", json!({"guildId": huge})).to_string(),
        // A `:` would name another kind of room's part.
        op("GUILD_SUBSCRIBE", json!({"guildId": "x:user:bob"})).to_string(),
        op("GUILD_SUBSCRIBE", json!({"guildId": "a b"})).to_string(),
        op("GUILD_UNSUBSCRIBE", json!({"guildId": "../admin"})).to_string(),
    ];
    for text in &bad {
        alice.send_text(text).await;
        let error = alice.recv().await;
        assert_eq!(
            (&error["op"], &error["data"]["code"]),
            (&json!("ERROR"), &json!("bad_request")),
            "{text}"
        );
        let message = error["data"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty() && message.len() < 300, "{text}: {error}");
    }
    alice.send_binary(b"\x00\x01").await;
    assert_eq!(answer(&mut alice, "ERROR").await["data"]["code"], "bad_request");
    // Still open, and nothing of the native protocol came out.
    synced(&mut alice).await;
    let frames = alice.collect_for(Duration::from_millis(200)).await;
    assert!(frames.iter().all(|f| frame_type(f).is_empty()), "{frames:?}");
}

#[tokio::test]
async fn the_tokens_rooms_claim_says_which_guilds_a_user_may_subscribe_to() {
    let server = TestServer::start().await;
    let limited = Claims { rooms: Some(vec!["guild:g1".into()]), ..claims("dave", "Dave") };
    let token = server.token_with(&limited);
    let mut dave = identified_with(&server, &token, "dave").await;
    subscribe(&mut dave, "g1").await;
    dave.send(op("GUILD_SUBSCRIBE", json!({"guildId": "g2"}))).await;
    let error = answer(&mut dave, "ERROR").await;
    assert_eq!(error["data"]["code"], "forbidden", "{error}");
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("guild:g2").await;
    bob.say("guild:g2", "private").await;
    let frames = events_for(&mut dave, Duration::from_millis(300)).await;
    assert!(frames.iter().all(|f| f["event"] != "message.create"), "{frames:?}");
}

#[tokio::test]
async fn a_frame_over_the_frame_limit_closes_with_1009() {
    let server = TestServer::with(|c| c.limits.max_frame_bytes = 1024).await;
    let mut alice = identified(&server, "alice").await;
    alice.send(op("GUILD_SUBSCRIBE", json!({"guildId": "y".repeat(2048)}))).await;
    assert_eq!(alice.expect_close().await, 1009);
}
