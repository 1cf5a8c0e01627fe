//! Hostile names: user ids, room names and `client_id`s that hold `:` or
//! spell another key's suffix must not make two messages one, nor reach
//! another room's state; a store failure reaches the client as a generic
//! error; a `read` cannot broadcast an id of any size. Each runs on both
//! engines but the store failure, which needs Redis.

use std::time::Duration;

use roomcast_tests::{
    Engine, RedisServer, TestServer, WsClient, every_engine, frame_type, percent_encode,
};
use serde_json::{Value, json};

async fn on_redis(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::with(move |config| config.redis_url = Some(url)).await
}

/// Runs one command with `redis-cli` (installed with redis-server).
fn redis_cli(redis: &RedisServer, args: &[&str]) {
    let status = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running redis-cli");
    assert!(status.success(), "redis-cli {args:?} failed");
}

fn send(room: &str, content: &str, client_id: &str) -> Value {
    json!({"type": "send", "room": room, "content": content, "client_id": client_id})
}

every_engine!(senders_and_client_ids_that_read_alike_are_two_messages);
/// User `a` with `client_id` `b:c1` and user `a:b` with `c1` send two
/// different messages: both are stored and broadcast.
async fn senders_and_client_ids_that_read_alike_are_two_messages(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut watcher = WsClient::connect_as(&server, "watcher", "Watcher").await;
    watcher.join("general").await;
    let mut a = WsClient::connect_as(&server, "a", "A").await;
    a.join("general").await;
    let mut ab = WsClient::connect_as(&server, "a:b", "AB").await;
    ab.join("general").await;
    let first = a.call_ok(send("general", "from a", "b:c1"), "ack").await;
    let second = ab.call_ok(send("general", "from a:b", "c1"), "ack").await;
    assert_ne!(first["id"], second["id"], "two senders, two messages");
    assert_eq!(second["offset"], 2);
    let seen = watcher.collect_for(Duration::from_millis(300)).await;
    let contents: Vec<&Value> =
        seen.iter().filter(|f| frame_type(f) == "message").map(|f| &f["content"]).collect();
    assert_eq!(contents, [&json!("from a"), &json!("from a:b")], "{seen:?}");
    let history = watcher.call_ok(json!({"type": "history", "room": "general"}), "history").await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2), "{history}");
}

every_engine!(client_ids_cannot_reach_another_rooms_keys);
/// `client_id`s spelling a room key's suffix, sent in `general` by `alice`,
/// while room `general:idem:alice` is in use: neither room is disturbed.
async fn client_ids_cannot_reach_another_rooms_keys(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let other = "general:idem:alice";
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join(other).await;
    bob.call_ok(send(other, "before", "b1"), "ack").await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    for (i, client_id) in ["log", "seq", "epoch", "msgs", "idx", "deleted", "members", "profiles"]
        .into_iter()
        .enumerate()
    {
        let reply = alice.call(send("general", "hi", client_id)).await;
        assert_eq!(frame_type(&reply), "ack", "client_id {client_id}: {reply}");
        assert_eq!(reply["offset"], i + 1, "client_id {client_id}: {reply}");
    }
    let after = bob.call_ok(send(other, "after", "b2"), "ack").await;
    assert_eq!(after["offset"], 2, "the other room's offsets are its own");
    let history = bob.call_ok(json!({"type": "history", "room": other}), "history").await;
    let contents: Vec<&Value> =
        history["messages"].as_array().unwrap().iter().map(|m| &m["content"]).collect();
    assert_eq!(contents, [&json!("before"), &json!("after")]);
}

/// A command Redis refuses (here: every write, once Redis is out of memory)
/// is answered `unavailable` with a message that tells nothing of Redis.
/// Redis only: it needs a store that can fail.
#[tokio::test]
async fn a_store_error_is_not_shown_to_the_client() {
    let redis = RedisServer::start().await;
    let server = on_redis(&redis).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    redis_cli(&redis, &["CONFIG", "SET", "maxmemory", "1"]);
    let reply = alice.call(send("general", "hi", "c1")).await;
    redis_cli(&redis, &["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!((frame_type(&reply), &reply["code"]), ("error", &json!("unavailable")), "{reply}");
    let message = reply["message"].as_str().unwrap_or_default().to_lowercase();
    for leak in ["oom", "maxmemory", "script", "err", "redis"] {
        assert!(!message.contains(leak), "the store's error reached the client: {reply}");
    }
    alice.call_ok(send("general", "hi", "c1"), "ack").await;
}

every_engine!(a_read_with_an_overlong_id_is_refused_and_not_broadcast);
async fn a_read_with_an_overlong_id_is_refused_and_not_broadcast(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    bob.recv_arrival("alice").await;
    let id = "x".repeat(65_000);
    let reply = alice.call(json!({"type": "read", "room": "general", "id": id})).await;
    assert_eq!((frame_type(&reply), &reply["code"]), ("error", &json!("too_large")), "{reply}");
    assert!(reply["message"].as_str().is_some_and(|m| m.contains("128")), "{reply}");
    bob.expect_silence(Duration::from_millis(200)).await;
    // A real message id still goes through.
    let ack = alice.say("general", "hello").await;
    alice.send(json!({"type": "read", "room": "general", "id": ack["id"]})).await;
    assert_eq!(bob.recv_until("read").await["id"], ack["id"]);
}

every_engine!(rooms_named_in_any_script_work_end_to_end);
/// Rooms named in Latin with accents, Japanese, Devanagari (with its
/// virama, a combining mark) and Cyrillic: joined, messaged, kept apart,
/// read back over history and the HTTP API with a percent-encoded path.
async fn rooms_named_in_any_script_work_end_to_end(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let rooms = ["général", "日本語", "नमस्ते", "чат-2"];
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    for room in rooms {
        assert_eq!(alice.join(room).await["room"], room);
        bob.join(room).await;
    }
    for room in rooms {
        let ack = alice.say(room, &format!("hello {room}")).await;
        assert_eq!(ack["offset"], 1, "{room} has its own stream");
    }
    let seen = bob.collect_for(Duration::from_millis(300)).await;
    let messages: Vec<(&Value, &Value)> = seen
        .iter()
        .filter(|f| frame_type(f) == "message")
        .map(|f| (&f["room"], &f["content"]))
        .collect();
    assert_eq!(messages.len(), rooms.len(), "{seen:?}");
    for (room, content) in messages {
        assert_eq!(content.as_str().unwrap(), format!("hello {}", room.as_str().unwrap()));
    }
    for room in rooms {
        let path = percent_encode(room);
        server
            .api_post(&format!("/api/rooms/{path}/messages"), json!({"content": "from the API"}))
            .await
            .expect(201);
        let page = server.api_get(&format!("/api/rooms/{path}/messages")).await.expect(200);
        let contents: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents, [format!("hello {room}").as_str(), "from the API"], "{room}");
    }
}

every_engine!(names_that_would_look_like_another_room_are_refused);
/// A decomposed `é` (e + U+0301) would display as `café` while naming
/// another room; invisible and bidi characters likewise. Each is refused
/// with `bad_request` naming the rule, and the connection stays usable.
async fn names_that_would_look_like_another_room_are_refused(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("café").await;
    for (name, says) in [
        ("cafe\u{301}", "Normalization Form C"),
        ("caf\u{e9}\u{200b}", "letters and digits"),
        ("\u{202e}éfac", "letters and digits"),
        ("café🙂", "letters and digits"),
    ] {
        alice.send(json!({"type": "join", "room": name})).await;
        let error = alice.expect_error("bad_request").await;
        assert!(error["message"].as_str().unwrap().contains(says), "{name:?}: {error}");
        let path = percent_encode(name);
        server
            .api_post(&format!("/api/rooms/{path}/messages"), json!({"content": "x"}))
            .await
            .expect_error(400, "bad_request");
    }
    alice.assert_usable().await;
}
