//! Many instances on one real Redis: fan-out, notifications, presence and
//! typing across instances, recovery on another instance, a killed
//! instance's users going offline, and a Redis outage.

use std::time::Duration;

use roomcast_server::Rate;
use roomcast_tests::{RedisServer, ServerProcess, TestServer, WsClient};
use serde_json::{Value, json};

/// Long enough for an instance outside dev mode (32 bytes at least).
const SECRET: &str = "cluster-secret-shared-by-every-instance";
const API_KEY: &str = "cluster-key";
/// Short leases, so a killed instance is noticed quickly.
const LEASE: Duration = Duration::from_millis(1200);

async fn instance(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::with(move |config| {
        config.redis_url = Some(url);
        config.jwt_secret = SECRET.into();
        config.api_key = API_KEY.into();
        config.timing.instance_lease = LEASE;
    })
    .await
}

fn join_since(room: &str, epoch: &Value, offset: &Value) -> Value {
    json!({"type": "join", "room": room, "since": {"epoch": epoch, "offset": offset}})
}

#[tokio::test]
async fn messages_and_members_cross_instances() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    let joined = bob.join("general").await;
    let members: Vec<&Value> =
        joined["members"].as_array().unwrap().iter().map(|m| &m["user_id"]).collect();
    assert_eq!(members, [&json!("alice"), &json!("bob")], "{joined}");
    assert_eq!(alice.recv_arrival("bob").await["user"]["id"], "bob");

    let ack = alice.say("general", "hello from A").await;
    let message = bob.recv_until("message").await;
    assert_eq!((&message["id"], &message["offset"]), (&ack["id"], &ack["offset"]));
    assert_eq!(message["content"], "hello from A");
    let ack = bob.say("general", "hello from B").await;
    assert_eq!(ack["offset"], 2, "offsets are shared by the instances");
    let from_b =
        alice.recv_where("bob's message", |f| f["type"] == "message" && f["offset"] == 2).await;
    assert_eq!(from_b["content"], "hello from B");

    let health = a.get("/health").await.expect(200);
    assert_eq!((&health["broker"], &health["status"]), (&json!("redis"), &json!("ok")));
}

#[tokio::test]
async fn a_duplicate_sent_to_another_instance_is_not_broadcast_again() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut watcher = WsClient::connect_as(&a, "watcher", "Watcher").await;
    watcher.join("general").await;
    let send = json!({"type": "send", "room": "general", "content": "once", "client_id": "c-1"});
    let mut first = WsClient::connect_as(&a, "alice", "Alice").await;
    first.join("general").await;
    let ack = first.call_ok(send.clone(), "ack").await;
    let mut retry = WsClient::connect_as(&b, "alice", "Alice").await;
    retry.join("general").await;
    let again = retry.call_ok(send, "ack").await;
    assert_eq!((&again["id"], &again["offset"]), (&ack["id"], &ack["offset"]));
    let seen = watcher.collect_for(Duration::from_millis(300)).await;
    let messages = seen.iter().filter(|f| f["type"] == "message").count();
    assert_eq!(messages, 1, "{seen:?}");
}

#[tokio::test]
async fn notifications_reach_users_on_any_instance() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    let body = json!({"user_ids": ["bob", "carol"], "title": "Deploy", "body": "done"});
    let reply = a.api_post("/api/notify", body).await.expect(200);
    assert_eq!(reply["online"], 1, "bob is online on B, carol is offline: {reply}");
    assert_eq!(bob.recv_until("notification").await["title"], "Deploy");

    // Carol gets hers when she connects, on whichever instance.
    let mut carol = WsClient::connect_as(&b, "carol", "Carol").await;
    assert_eq!(carol.recv_until("notification").await["id"], reply["id"]);
}

#[tokio::test]
async fn presence_and_typing_cross_instances() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    bob.join("general").await;

    bob.send(json!({"type": "typing", "room": "general", "is_typing": true})).await;
    let typing = alice.recv_until("typing").await;
    assert_eq!((&typing["user"]["id"], &typing["is_typing"]), (&json!("bob"), &json!(true)));

    bob.send(json!({"type": "presence", "status": "away", "custom": "lunch"})).await;
    let away = alice.recv_status("bob", "away").await;
    assert_eq!((&away["status"], &away["custom"]), (&json!("away"), &json!("lunch")));
    let http = a.api_get("/api/users/bob/presence").await.expect(200);
    assert_eq!(http["status"], "away");

    bob.close().await;
    assert_eq!(alice.recv_departure("bob").await["id"], "bob");
    let http = a.api_get("/api/users/bob/presence").await.expect(200);
    assert_eq!(http["status"], "offline");
}

#[tokio::test]
async fn a_client_recovers_on_another_instance() {
    let redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&a, "bob", "Bob").await;
    let joined = bob.join("general").await;
    alice.say("general", "before").await;
    let seen = bob.recv_until("message").await;
    bob.close().await;

    for text in ["one", "two", "three"] {
        alice.say("general", text).await;
    }
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    let reply =
        bob.call_ok(join_since("general", &joined["epoch"], &seen["offset"]), "joined").await;
    assert_eq!(reply["recovered"], true, "{reply}");
    let contents: Vec<&Value> =
        reply["messages"].as_array().unwrap().iter().map(|m| &m["content"]).collect();
    assert_eq!(contents, [&json!("one"), &json!("two"), &json!("three")]);
}

#[tokio::test]
async fn history_and_epochs_survive_instance_restarts() {
    let redis = RedisServer::start().await;
    let a = instance(&redis).await;
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    let joined = alice.join("general").await;
    let ack = alice.say("general", "kept").await;
    let edit =
        json!({"type": "edit", "room": "general", "id": ack["id"], "content": "kept, edited"});
    alice.call_ok(edit, "ack").await;
    drop(alice);
    a.stop().await;

    let b = instance(&redis).await;
    let mut alice = WsClient::connect_as(&b, "alice", "Alice").await;
    let reply = alice.call_ok(join_since("general", &joined["epoch"], &json!(0)), "joined").await;
    assert_eq!((&reply["epoch"], &reply["recovered"]), (&joined["epoch"], &json!(true)), "{reply}");
    let kinds: Vec<&Value> =
        reply["messages"].as_array().unwrap().iter().map(|m| &m["type"]).collect();
    assert_eq!(kinds, [&json!("message"), &json!("message_updated")]);
    let page = b.api_get("/api/rooms/general/messages").await.expect(200);
    assert_eq!(page["messages"][0]["content"], "kept, edited", "{page}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_killed_instance_users_go_offline_within_the_lease() {
    let redis = RedisServer::start().await;
    let lease_ms = LEASE.as_millis().to_string();
    let args = ["--redis-url", &redis.url(), "--jwt-secret", SECRET, "--api-key", API_KEY];
    let doomed =
        ServerProcess::spawn(&[&args[..], &["--instance-lease-ms", &lease_ms]].concat(), &[]).await;
    let survivor = instance(&redis).await;

    let mut alice = WsClient::connect_as(&survivor, "alice", "Alice").await;
    alice.join("general").await;
    let token = survivor.token("bob", "Bob");
    let mut bob = WsClient::connect_with_query_token(&doomed.ws_url(), &token, "bob").await;
    bob.join("general").await;
    let ack = bob.say("general", "acked before the crash").await;
    alice.recv_until("message").await;
    let online = survivor.api_get("/api/users/online").await.expect(200);
    assert_eq!(online["count"], 2, "bob, on the other instance, is online too: {online}");

    doomed.signal("KILL");
    let started = tokio::time::Instant::now();
    assert_eq!(alice.recv_departure("bob").await["id"], "bob");
    // The lease, plus at most one renewal interval of the survivor.
    assert!(started.elapsed() < LEASE * 2, "offline after {:?}", started.elapsed());

    let page = survivor.api_get("/api/rooms/general/messages").await.expect(200);
    assert_eq!(page["messages"][0]["id"], ack["id"], "the acked message is kept: {page}");
    let members = survivor.api_get("/api/rooms/general/presence").await.expect(200);
    assert_eq!(members["members"].as_array().unwrap().len(), 1, "only alice is left: {members}");
    let online = survivor.api_get("/api/users/online").await.expect(200);
    assert_eq!(
        (&online["count"], &online["users"][0]["user_id"]),
        (&json!(1), &json!("alice")),
        "the dead instance's users left the online list: {online}"
    );
}

#[tokio::test]
async fn a_redis_outage_is_unavailable_then_everything_resumes() {
    let mut redis = RedisServer::start().await;
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    bob.join("general").await;
    let mut carol = WsClient::connect_as(&b, "carol", "Carol").await;
    carol.join("general").await;
    let before = alice.say("general", "before the outage").await;
    bob.recv_until("message").await;

    redis.stop().await;
    let failed = alice
        .call(json!({"type": "send", "room": "general", "content": "lost?", "client_id": "x-1"}))
        .await;
    assert_eq!(
        (&failed["type"], &failed["code"]),
        (&json!("error"), &json!("unavailable")),
        "{failed}"
    );
    let health = a.get("/health").await.expect(200);
    assert_eq!(health["status"], "degraded", "{health}");
    alice.assert_usable().await;

    redis.restart().await;
    // B's subscriber reconnects on its own schedule, and Redis pub/sub keeps
    // nothing for a subscriber that is away: wait until carol's typing,
    // published through Redis, reaches bob on the same instance.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for typing in [true, false].into_iter().cycle() {
        carol.send(json!({"type": "typing", "room": "general", "is_typing": typing})).await;
        let frames = bob.collect_for(Duration::from_millis(300)).await;
        if frames.iter().any(|f| f["type"] == "typing") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "B never received again");
    }
    // The client retries, as the SDK does, until the engine is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ack = loop {
        let reply = alice
            .call(
                json!({"type": "send", "room": "general", "content": "after", "client_id": "x-1"}),
            )
            .await;
        if reply["type"] == "ack" {
            break reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still failing after Redis came back: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ack["offset"], 2, "the acked message before the outage was kept: {ack}");
    // B's subscription was restored: the new message reaches bob.
    let message = bob.recv_where("the message after the outage", |f| f["type"] == "message").await;
    assert_eq!(message["content"], "after");
    let page = b.api_get("/api/rooms/general/messages").await.expect(200);
    let ids: Vec<&Value> = page["messages"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, [&before["id"], &ack["id"]]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.get("/health").await.expect(200)["status"] != "ok" {
        assert!(tokio::time::Instant::now() < deadline, "health stayed degraded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An instance for a client that sends as fast as it can (limits raised, as
/// for a trusted backend or a load generator).
async fn unthrottled_instance(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::with(move |config| {
        config.redis_url = Some(url);
        config.jwt_secret = SECRET.into();
        config.limits.frames = Rate::new(100_000.0, 100_000);
        config.limits.messages = Rate::new(100_000.0, 100_000);
        config.limits.user_messages = Rate::new(100_000.0, 100_000);
    })
    .await
}

#[tokio::test]
async fn nothing_acked_is_lost_across_a_graceful_restart() {
    let redis = RedisServer::start().await;
    let a = unthrottled_instance(&redis).await;
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let sends: Vec<Value> = (0..300)
        .map(|i| json!({"type": "send", "room": "general", "content": format!("m{i}"), "client_id": format!("c{i}")}))
        .collect();
    for send in &sends {
        alice.send(send.clone()).await;
    }
    // Stop while the sends are being handled: what was acked must be kept.
    let stopping = tokio::spawn(a.stop());
    let (frames, code) = alice.frames_until_close().await;
    stopping.await.expect("the server stopped");
    assert_eq!(code, 1012);
    let acked: Vec<&Value> =
        frames.iter().filter(|f| f["type"] == "ack").map(|f| &f["client_id"]).collect();
    assert!(!acked.is_empty(), "some sends were acked before the close");

    // The client reconnects to another instance and resends what was not
    // acked, with the same client_ids, as the SDK does.
    let b = unthrottled_instance(&redis).await;
    let mut alice = WsClient::connect_as(&b, "alice", "Alice").await;
    alice.join("general").await;
    for send in &sends {
        if !acked.contains(&&send["client_id"]) {
            alice.call_ok(send.clone(), "ack").await;
        }
    }
    let mut seen = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut request = json!({"type": "history", "room": "general", "limit": 100});
        if let Some(before) = before {
            request["before"] = json!(before);
        }
        let page = alice.call_ok(request, "history").await;
        let messages = page["messages"].as_array().unwrap();
        seen.extend(messages.iter().map(|m| m["client_id"].clone()));
        before = messages.first().and_then(|m| m["offset"].as_u64());
        if page["has_more"] != true {
            break;
        }
    }
    seen.sort_by_key(|id| id.as_str().unwrap()[1..].parse::<u32>().unwrap());
    let expected: Vec<Value> = (0..300).map(|i| json!(format!("c{i}"))).collect();
    assert_eq!(seen, expected, "every message exactly once");
}
