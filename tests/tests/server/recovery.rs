//! Recovery: a client that reconnects with `since` gets what it missed, in
//! offset order, or `recovered: false` when that cannot be done.
//!
//! Every test runs on both engines but one: the budget that bounds the
//! history of all rooms together is the memory engine's (Redis bounds each
//! room's stream by count and age instead; the kept-history test shows the
//! count on both).

use roomcast_shared::RoomEvent;
use roomcast_shared::frame::Joined;
use roomcast_tests::{Engine, TestServer, WsClient, every_engine, typed};
use serde_json::{Value, json};

fn join_since(room: &str, epoch: &Value, offset: u64) -> Value {
    json!({"type": "join", "room": room, "since": {"epoch": epoch, "offset": offset}})
}

every_engine!(missed_messages_edits_and_deletes_are_replayed_in_order);
async fn missed_messages_edits_and_deletes_are_replayed_in_order(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let epoch = bob.join("general").await["epoch"].clone();
    alice.say("general", "seen").await;
    let seen = bob.recv_until("message").await;
    assert_eq!(seen["offset"], 1);
    bob.close().await;

    let mut ids = Vec::new();
    for text in ["missed 1", "missed 2", "missed 3"] {
        ids.push(alice.say("general", text).await["id"].clone());
    }
    alice
        .call_ok(
            json!({"type": "edit", "room": "general", "id": ids[0], "content": "missed 1 edited"}),
            "ack",
        )
        .await;
    alice.call_ok(json!({"type": "delete", "room": "general", "id": ids[1]}), "ack").await;

    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let reply = bob.call_ok(join_since("general", &epoch, 1), "joined").await;
    assert_eq!(reply["recovered"], true, "{reply}");
    let types: Vec<_> =
        reply["messages"].as_array().unwrap().iter().map(|m| m["type"].clone()).collect();
    assert_eq!(types, ["message", "message", "message", "message_updated", "message_deleted"]);

    let joined: Joined = typed(&reply);
    assert_eq!((&joined.epoch, joined.offset), (&epoch.as_str().unwrap().to_owned(), 6));
    let offsets: Vec<u64> = joined.messages.iter().map(RoomEvent::offset).collect();
    assert_eq!(offsets, [2, 3, 4, 5, 6]);
    match (&joined.messages[3], &joined.messages[4]) {
        (RoomEvent::MessageUpdated(edit), RoomEvent::MessageDeleted(delete)) => {
            assert_eq!(
                (json!(edit.id), edit.content.as_str()),
                (ids[0].clone(), "missed 1 edited")
            );
            assert_eq!(json!(delete.id), ids[1]);
        }
        other => panic!("expected an edit then a delete, got {other:?}"),
    }
    // After recovery the connection is live again.
    alice.say("general", "live").await;
    assert_eq!(bob.recv_until("message").await["offset"], 7);
}

every_engine!(a_deleted_message_is_replayed_as_its_trace);
/// A delete erases the message from what recovery replays, as from history:
/// its `message` comes as the trace and its edit as another
/// `message_deleted`, every offset in place, no deleted text anywhere; with
/// a database, the same from the store after a restart (no recent window).
async fn a_deleted_message_is_replayed_as_its_trace(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let epoch = alice.join("general").await["epoch"].clone();
    alice.say("general", "kept").await;
    let first = alice.say("general", "secret one").await["id"].clone();
    alice
        .call_ok(
            json!({"type": "edit", "room": "general", "id": first, "content": "secret edit"}),
            "ack",
        )
        .await;
    alice.call_ok(json!({"type": "delete", "room": "general", "id": first}), "ack").await;
    let second = alice.say("general", "secret two").await["id"].clone();
    alice.call_ok(json!({"type": "delete", "room": "general", "id": second}), "ack").await;
    // Not deleted, though its data says so.
    let after = json!({"type": "send", "room": "general", "content": "after",
        "client_id": "after", "data": {"deleted": true}});
    alice.call_ok(after, "ack").await;

    let check = |reply: &Value| {
        assert_eq!(reply["recovered"], true, "{reply}");
        assert!(!reply.to_string().contains("secret"), "no deleted text: {reply}");
        let joined: Joined = typed(reply);
        let offsets: Vec<u64> = joined.messages.iter().map(RoomEvent::offset).collect();
        assert_eq!(offsets, (1..=7).collect::<Vec<_>>());
        let kinds: Vec<_> = joined
            .messages
            .iter()
            .map(|event| match event {
                RoomEvent::Message(m) if m.deleted => {
                    assert!(m.content.is_empty() && m.edited_at.is_none() && m.data.is_none());
                    format!("trace {}", json!(m.id))
                }
                RoomEvent::Message(m) => format!("message {}", m.content),
                RoomEvent::MessageUpdated(u) => format!("edit {}", json!(u.id)),
                RoomEvent::MessageDeleted(d) => format!("deleted {}", json!(d.id)),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "message kept".to_owned(),
                format!("trace {first}"),
                format!("deleted {first}"),
                format!("deleted {first}"),
                format!("trace {second}"),
                format!("deleted {second}"),
                "message after".to_owned(),
            ]
        );
    };
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    check(&bob.call_ok(join_since("general", &epoch, 0), "joined").await);
    if matches!(engine, Engine::Sqlite | Engine::RedisPostgres) {
        let server = server.restart().await;
        let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
        check(&bob.call_ok(join_since("general", &epoch, 0), "joined").await);
    }
}

every_engine!(an_erased_edit_stays_erased_once_its_message_left_the_window);
/// The window keeps three events: once the deleted message's own event
/// left it, its edit (still in it) is still replayed erased.
async fn an_erased_edit_stays_erased_once_its_message_left_the_window(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.history.max_events = 3).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let epoch = alice.join("general").await["epoch"].clone();
    let id = alice.say("general", "secret").await["id"].clone();
    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "secret edit"});
    alice.call_ok(edit, "ack").await;
    alice.call_ok(json!({"type": "delete", "room": "general", "id": id}), "ack").await;
    alice.say("general", "after").await;

    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let reply = bob.call_ok(join_since("general", &epoch, 1), "joined").await;
    assert_eq!(reply["recovered"], true, "offsets 2 to 4 are kept: {reply}");
    assert!(!reply.to_string().contains("secret"), "no deleted text: {reply}");
    let kinds: Vec<_> =
        reply["messages"].as_array().unwrap().iter().map(|m| m["type"].clone()).collect();
    assert_eq!(kinds, ["message_deleted", "message_deleted", "message"]);
}

every_engine!(a_client_that_missed_nothing_recovers_nothing);
async fn a_client_that_missed_nothing_recovers_nothing(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let epoch = alice.join("general").await["epoch"].clone();
    alice.say("general", "one").await;

    let mut again = WsClient::connect_as(&server, "alice", "Alice").await;
    let reply = again.call_ok(join_since("general", &epoch, 1), "joined").await;
    assert_eq!(reply["recovered"], true, "{reply}");
    assert_eq!(reply["messages"], json!([]));
    assert_eq!(reply["offset"], 1);
}

every_engine!(a_restart_recovers_only_what_the_engine_kept);
/// A memory server forgets everything when it restarts, so its old
/// positions cannot be recovered; on Redis and with a store the history
/// outlives the instance and a client recovers across the restart as if
/// nothing happened.
async fn a_restart_recovers_only_what_the_engine_kept(engine: Engine) {
    let first = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&first, "alice", "Alice").await;
    let old_epoch = alice.join("general").await["epoch"].clone();
    let sent = alice.say("general", "before the restart").await;
    let second = first.restart().await;

    let mut alice = WsClient::connect_as(&second, "alice", "Alice").await;
    let reply = alice.call_ok(join_since("general", &old_epoch, 0), "joined").await;
    match engine {
        Engine::Memory => {
            assert_eq!(reply["recovered"], false, "an old epoch cannot be recovered: {reply}");
            assert_ne!(reply["epoch"], old_epoch, "a new server has new epochs");
            assert_eq!(reply["offset"], 0);
        }
        Engine::Redis | Engine::Sqlite | Engine::RedisPostgres => {
            assert_eq!(reply["recovered"], true, "the room was kept: {reply}");
            assert_eq!((&reply["epoch"], &reply["offset"]), (&old_epoch, &json!(1)));
            let replayed = &reply["messages"][0];
            assert_eq!(
                (&replayed["id"], &replayed["content"]),
                (&sent["id"], &json!("before the restart"))
            );
        }
    }
}

every_engine!(an_offset_from_the_future_is_not_recovered);
async fn an_offset_from_the_future_is_not_recovered(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let epoch = alice.join("general").await["epoch"].clone();
    alice.say("general", "one").await;

    let mut again = WsClient::connect_as(&server, "alice", "Alice").await;
    let reply = again.call_ok(join_since("general", &epoch, 999), "joined").await;
    assert_eq!(reply["recovered"], false, "{reply}");
    assert_eq!(reply["offset"], 1);
    // The largest offset a frame can carry, past what a database holds.
    let reply = again.call_ok(join_since("general", &epoch, u64::MAX), "joined").await;
    assert_eq!((&reply["recovered"], &reply["offset"]), (&json!(false), &json!(1)), "{reply}");
}

every_engine!(a_gap_older_than_the_kept_history_is_not_recovered);
async fn a_gap_older_than_the_kept_history_is_not_recovered(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.history.max_events = 3).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let epoch = alice.join("general").await["epoch"].clone();
    for i in 1..=10 {
        alice.say("general", &format!("m{i}")).await;
    }

    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let lost = bob.call_ok(join_since("general", &epoch, 1), "joined").await;
    assert_eq!(lost["recovered"], false, "offsets 2..7 are gone: {lost}");

    // The last three are still there.
    let kept = bob.call_ok(join_since("general", &epoch, 7), "joined").await;
    assert_eq!(kept["recovered"], true, "{kept}");
    let offsets: Vec<_> =
        kept["messages"].as_array().unwrap().iter().map(|m| m["offset"].clone()).collect();
    assert_eq!(offsets, [8, 9, 10]);
}

every_engine!(resending_after_a_reconnect_does_not_duplicate);
async fn resending_after_a_reconnect_does_not_duplicate(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let send =
        json!({"type": "send", "room": "general", "content": "once", "client_id": "retry-me"});
    let first = alice.call_ok(send.clone(), "ack").await;
    alice.close().await;

    // The ack was lost, say: the client resends from a new connection.
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let again = alice.call_ok(send, "ack").await;
    assert_eq!((&again["id"], &again["offset"]), (&first["id"], &first["offset"]));

    let messages = bob.collect_for(std::time::Duration::from_millis(500)).await;
    let count = messages.iter().filter(|f| f["type"] == "message").count();
    assert_eq!(count, 1, "displayed once: {messages:?}");
}

/// Over the history budget of all rooms, the oldest events go first,
/// whichever room they are in, and recovery from before what is kept says
/// so (`recovered: false`) rather than replay a gap. Memory engine only:
/// `history.memory_bytes` is its budget.
#[tokio::test]
async fn the_history_budget_drops_the_oldest_events_of_all_rooms() {
    // Each 2,000-byte message costs about 4.7 KB: the budget holds four.
    let server = TestServer::with(|c| c.history.memory_bytes = 20_000).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let old = alice.join("old").await;
    let content = "x".repeat(2000);
    for _ in 0..3 {
        alice.say("old", &content).await;
    }
    let new = alice.join("new").await;
    let mut last = json!(null);
    for _ in 0..5 {
        last = alice.say("new", &content).await["offset"].clone();
    }
    let since_start = |room: &str, joined: &serde_json::Value| json!({"type": "join", "room": room, "since": {"epoch": joined["epoch"], "offset": 0}});
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let rejoined = bob.call_ok(since_start("old", &old), "joined").await;
    assert_eq!(rejoined["recovered"], false, "the old room's events were dropped first");
    let history = |room: &str| json!({"type": "history", "room": room});
    let page = bob.call_ok(history("old"), "history").await;
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(0), "{page}");
    let rejoined = bob.call_ok(since_start("new", &new), "joined").await;
    assert_eq!(rejoined["recovered"], false, "the new room's first events went too");
    let page = bob.call_ok(history("new"), "history").await;
    let kept = page["messages"].as_array().map_or(0, Vec::len);
    assert!((1..5).contains(&kept), "the newest are kept: {kept}");
    bob.call_ok(json!({"type": "leave", "room": "new"}), "left").await;
    let current =
        json!({"type": "join", "room": "new", "since": {"epoch": new["epoch"], "offset": last}});
    assert_eq!(bob.call_ok(current, "joined").await["recovered"], true);
}
