//! Chat: send, ack and broadcast, ordering, idempotent `client_id`, edit and
//! delete rights, history paging and read receipts. Every test runs on
//! both engines.

use std::time::Duration;

use roomcast_shared::{ChatMessage, ServerFrame};
use roomcast_tests::{Engine, TestServer, WsClient, every_engine, frame_type, typed};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const QUIET: Duration = Duration::from_millis(300);

/// Alice and Bob, both in `general`, with the join announcements read.
pub(crate) async fn alice_and_bob(server: &TestServer) -> (WsClient, WsClient) {
    let mut alice = WsClient::connect_as(server, "alice", "Alice").await;
    let mut bob = WsClient::connect_as(server, "bob", "Bob").await;
    alice.join("general").await;
    bob.join("general").await;
    alice.recv_arrival("bob").await;
    (alice, bob)
}

/// A `send` to `general`.
pub(crate) fn send(content: &str, client_id: &str) -> Value {
    json!({"type": "send", "room": "general", "content": content, "client_id": client_id})
}

every_engine!(a_message_is_acked_and_broadcast_to_every_member);
async fn a_message_is_acked_and_broadcast_to_every_member(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    alice.send(json!({"type": "send", "room": "general", "content": "héllo", "client_id": "c1", "ref": 7})).await;
    let mut frames = vec![alice.recv().await, alice.recv().await];
    frames.sort_by_key(|f| frame_type(f).to_owned());
    let [ack, own] = <[Value; 2]>::try_from(frames).unwrap();
    assert_eq!(frame_type(&ack), "ack", "{ack}");
    assert_eq!(ack["ref"], 7);
    assert_eq!(ack["client_id"], "c1");
    assert_eq!(ack["offset"], 1);
    let id = ack["id"].as_str().expect("ack.id").to_owned();

    for frame in [own, bob.expect_type("message").await] {
        assert_eq!(frame_type(&frame), "message", "{frame}");
        assert!(frame.get("ref").is_none(), "broadcasts carry no ref: {frame}");
        let ServerFrame::Message(message) = typed(&frame) else { unreachable!() };
        assert_eq!((message.id.as_str(), message.offset), (id.as_str(), 1));
        assert_eq!(message.room.as_str(), "general");
        assert_eq!(message.client_id, "c1");
        assert_eq!(message.content, "héllo");
        assert_eq!((message.sender.id.as_str(), message.sender.name.as_str()), ("alice", "Alice"));
        let age = OffsetDateTime::now_utc() - message.created_at;
        assert!(age.whole_seconds().abs() < 60, "created_at is not now: {frame}");
        let raw = frame["created_at"].as_str().expect("created_at string");
        OffsetDateTime::parse(raw, &Rfc3339).expect("created_at is RFC 3339");
    }
}

every_engine!(messages_arrive_in_offset_order);
async fn messages_arrive_in_offset_order(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    // Both send at once, without waiting for acks.
    for i in 0..20 {
        alice.send(send(&format!("a{i}"), &format!("a{i}"))).await;
        bob.send(send(&format!("b{i}"), &format!("b{i}"))).await;
    }
    let mut seen = Vec::new();
    for client in [&mut alice, &mut bob] {
        let mut messages = Vec::new();
        while messages.len() < 40 {
            let frame = client.recv().await;
            if frame_type(&frame) == "message" {
                messages.push((
                    frame["offset"].as_u64().unwrap(),
                    frame["content"].as_str().unwrap().to_owned(),
                ));
            }
        }
        let offsets: Vec<u64> = messages.iter().map(|m| m.0).collect();
        assert_eq!(offsets, (1..=40).collect::<Vec<_>>(), "offsets in order, none missing");
        // Each sender's messages keep the order they were sent in.
        for who in ["a", "b"] {
            let mine: Vec<_> =
                messages.iter().filter(|m| m.1.starts_with(who)).map(|m| m.1.clone()).collect();
            assert_eq!(mine, (0..20).map(|i| format!("{who}{i}")).collect::<Vec<_>>());
        }
        seen.push(messages);
    }
    assert_eq!(seen[0], seen[1], "every member sees the same order");
}

every_engine!(a_duplicate_client_id_gets_the_original_ack_and_no_broadcast);
async fn a_duplicate_client_id_gets_the_original_ack_and_no_broadcast(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    let first = alice.call_ok(send("once", "dup"), "ack").await;
    bob.expect_type("message").await;
    let again = alice.call_ok(send("once", "dup"), "ack").await;
    assert_eq!((&again["id"], &again["offset"]), (&first["id"], &first["offset"]));
    assert_eq!(again["client_id"], "dup");
    bob.expect_silence(QUIET).await;

    // The key is per sender: Bob's `dup` is a message of its own.
    let bobs = bob.call_ok(send("mine", "dup"), "ack").await;
    assert_ne!(bobs["id"], first["id"]);
    assert_eq!(bobs["offset"], 2);
}

every_engine!(senders_edit_and_delete_their_own_messages);
async fn senders_edit_and_delete_their_own_messages(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let id = alice.say("general", "typo").await["id"].clone();
    bob.expect_type("message").await;

    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "fixed"});
    let ack = alice.call_ok(edit, "ack").await;
    assert_eq!((&ack["id"], &ack["offset"]), (&id, &json!(2)));
    let updated = bob.expect_type("message_updated").await;
    let ServerFrame::MessageUpdated(updated) = typed(&updated) else { unreachable!() };
    assert_eq!(
        (updated.id.as_str(), updated.offset, updated.content.as_str()),
        (id.as_str().unwrap(), 2, "fixed")
    );

    let ack = alice.call_ok(json!({"type": "delete", "room": "general", "id": id}), "ack").await;
    assert_eq!((&ack["id"], &ack["offset"]), (&id, &json!(3)));
    let deleted = bob.expect_type("message_deleted").await;
    assert_eq!(
        (&deleted["room"], &deleted["id"], &deleted["offset"]),
        (&json!("general"), &id, &json!(3))
    );
}

every_engine!(only_the_sender_or_an_admin_may_edit_or_delete);
async fn only_the_sender_or_an_admin_may_edit_or_delete(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let mut root =
        WsClient::connect_with_token(&server, &server.admin_token("root", "Root"), "root").await;
    root.join("general").await;
    let id = alice.say("general", "alice's").await["id"].clone();

    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "bob was here"});
    assert_eq!(bob.call(edit).await["code"], "forbidden");
    assert_eq!(
        bob.call(json!({"type": "delete", "room": "general", "id": id})).await["code"],
        "forbidden"
    );

    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "moderated"});
    root.call_ok(edit, "ack").await;
    root.call_ok(json!({"type": "delete", "room": "general", "id": id}), "ack").await;
    let kinds: Vec<_> =
        bob.collect_for(QUIET).await.iter().map(|f| frame_type(f).to_owned()).collect();
    assert_eq!(kinds, ["message", "message_updated", "message_deleted"]);
}

every_engine!(editing_or_deleting_an_unknown_message_is_not_found);
async fn editing_or_deleting_an_unknown_message_is_not_found(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    let edit = json!({"type": "edit", "room": "general", "id": "no-such-id", "content": "x"});
    assert_eq!(alice.call(edit).await["code"], "not_found");
    let delete = json!({"type": "delete", "room": "general", "id": "no-such-id"});
    assert_eq!(alice.call(delete).await["code"], "not_found");
}

every_engine!(content_is_limited_in_bytes_of_utf8);
async fn content_is_limited_in_bytes_of_utf8(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.max_content_bytes = 64).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    // 33 characters, 66 bytes.
    let error = alice.call(send(&"é".repeat(33), "big")).await;
    assert_eq!(error["code"], "too_large", "{error}");
    alice.call_ok(send(&"é".repeat(32), "fits"), "ack").await;
}

/// Alice's five messages `m1`..`m5` at offsets 1..5, then `m2` edited
/// (offset 6) and `m3` deleted (offset 7).
async fn edited_history(alice: &mut WsClient) -> Vec<Value> {
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(alice.say("general", &format!("m{i}")).await["id"].clone());
    }
    alice
        .call_ok(
            json!({"type": "edit", "room": "general", "id": ids[1], "content": "m2 edited"}),
            "ack",
        )
        .await;
    alice.call_ok(json!({"type": "delete", "room": "general", "id": ids[2]}), "ack").await;
    ids
}

fn contents(history: &Value) -> Vec<&str> {
    history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

every_engine!(history_pages_back_through_the_current_state);
async fn history_pages_back_through_the_current_state(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    edited_history(&mut alice).await;

    let all = alice.call_ok(json!({"type": "history", "room": "general"}), "history").await;
    assert_eq!(contents(&all), ["m1", "m2 edited", "", "m4", "m5"], "m3 as a trace");
    assert_eq!(all["has_more"], false);
    for message in all["messages"].as_array().unwrap() {
        assert!(message.get("type").is_none(), "history holds plain messages: {message}");
        let _: ChatMessage = typed(message);
    }
    assert!(all["messages"][1]["edited_at"].is_string(), "the edited message says when: {all}");

    let latest =
        alice.call_ok(json!({"type": "history", "room": "general", "limit": 2}), "history").await;
    assert_eq!(contents(&latest), ["m4", "m5"]);
    assert_eq!(latest["has_more"], true);

    let before = latest["messages"][0]["offset"].clone();
    assert_eq!(before, 4);
    let page = json!({"type": "history", "room": "general", "before": before, "limit": 2});
    let older = alice.call_ok(page, "history").await;
    assert_eq!(contents(&older), ["m2 edited", ""]);
    assert_eq!(older["has_more"], true);

    let page = json!({"type": "history", "room": "general", "before": 2, "limit": 10});
    let oldest = alice.call_ok(page, "history").await;
    assert_eq!(contents(&oldest), ["m1"]);
    assert_eq!(oldest["has_more"], false);
}

every_engine!(a_deleted_message_leaves_a_trace_without_its_content);
async fn a_deleted_message_leaves_a_trace_without_its_content(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let data = json!({"attachments": [{"url": "https://example.com/secret.png"}]});
    let send = json!({"type": "send", "room": "general", "content": "secret",
        "client_id": "c1", "data": data});
    let id = alice.call_ok(send.clone(), "ack").await["id"].clone();
    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "still secret"});
    alice.call_ok(edit.clone(), "ack").await;
    alice.call_ok(json!({"type": "delete", "room": "general", "id": id}), "ack").await;
    alice.say("general", "after").await;

    // Where it was, who sent it and when stay; nothing it said does.
    let history = bob.call_ok(json!({"type": "history", "room": "general"}), "history").await;
    let trace = &history["messages"][0];
    assert_eq!((&trace["id"], &trace["offset"], &trace["deleted"]), (&id, &json!(1), &json!(true)));
    assert_eq!((&trace["sender"]["id"], &trace["content"]), (&json!("alice"), &json!("")));
    assert!(trace["created_at"].is_string(), "{trace}");
    for gone in ["data", "edited_at"] {
        assert!(trace.get(gone).is_none(), "{gone} left in {trace}");
    }
    assert!(!history.to_string().contains("secret"), "{history}");
    assert!(history["messages"][1].get("deleted").is_none(), "a live message says nothing");
    let _: ChatMessage = typed(trace);

    // A joiner's latest messages show it the same way.
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let joined =
        carol.call_ok(json!({"type": "join", "room": "general", "history": 10}), "joined").await;
    assert_eq!(joined["messages"][0]["deleted"], true, "{joined}");
    assert!(!joined.to_string().contains("secret"), "{joined}");

    // A trace is not a message: it cannot be edited or deleted again, and
    // resending its `client_id` still answers with the original.
    assert_eq!(alice.call(edit).await["code"], "not_found");
    let again = json!({"type": "delete", "room": "general", "id": id});
    assert_eq!(alice.call(again).await["code"], "not_found");
    assert_eq!(alice.call_ok(send, "ack").await["id"], id);
}

every_engine!(history_needs_the_right_to_join_not_a_join);
async fn history_needs_the_right_to_join_not_a_join(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    alice.say("general", "hello").await;

    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let history = carol.call_ok(json!({"type": "history", "room": "general"}), "history").await;
    assert_eq!(contents(&history), ["hello"]);
    let error = carol.call(json!({"type": "history", "room": "admin"})).await;
    assert_eq!(error["code"], "forbidden", "{error}");
}

every_engine!(read_receipts_go_to_the_whole_room);
async fn read_receipts_go_to_the_whole_room(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let mut alice_tab = WsClient::connect_as(&server, "alice", "Alice").await.labelled("alice-tab");
    alice_tab.join("general").await;
    let id = bob.say("general", "read me").await["id"].clone();

    alice.send(json!({"type": "read", "room": "general", "id": id})).await;
    for client in [&mut bob, &mut alice, &mut alice_tab] {
        let read = client.recv_until("read").await;
        assert_eq!(
            (&read["room"], &read["user_id"], &read["id"]),
            (&json!("general"), &json!("alice"), &id)
        );
        let raw = read["read_at"].as_str().expect("read_at");
        OffsetDateTime::parse(raw, &Rfc3339).expect("read_at is RFC 3339");
    }
}

every_engine!(sending_to_a_room_not_joined_is_forbidden);
async fn sending_to_a_room_not_joined_is_forbidden(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let frames = [
        json!({"type": "send", "room": "general", "content": "x", "client_id": "c"}),
        json!({"type": "edit", "room": "general", "id": "x", "content": "x"}),
        json!({"type": "delete", "room": "general", "id": "x"}),
        json!({"type": "typing", "room": "general", "is_typing": true}),
        json!({"type": "read", "room": "general", "id": "x"}),
    ];
    for frame in frames {
        let error = alice.call(frame.clone()).await;
        assert_eq!(error["code"], "forbidden", "{frame} answered {error}");
    }
    alice.assert_usable().await;
}

every_engine!(joined_carries_each_readers_latest_position);
async fn joined_carries_each_readers_latest_position(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let first = bob.say("general", "first").await["id"].clone();
    let second = bob.say("general", "second").await["id"].clone();

    // Alice reads the second, then the first (a position never moves
    // back), then a message that is not there (ignored); Bob the first.
    for id in [&second, &first, &json!("no-such-message")] {
        alice.send(json!({"type": "read", "room": "general", "id": id})).await;
        bob.recv_until("read").await;
    }
    bob.send(json!({"type": "read", "room": "general", "id": first})).await;
    alice.recv_until("read").await;

    // A page loaded now (a new connection) sees both positions. (Which
    // comes first depends on their `read_at`, which may share a
    // millisecond.) A store keeps reads within about a second.
    let expected = json!([["alice", second], ["bob", first]]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
        let joined = carol.join("general").await;
        let mut reads: Vec<Value> = joined["reads"]
            .as_array()
            .map(|r| r.iter().map(|r| json!([r["user_id"], r["id"]])).collect())
            .unwrap_or_default();
        reads.sort_by_key(|r| r[0].as_str().unwrap_or_default().to_owned());
        if Value::from(reads.clone()) == expected {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "joined.reads is {reads:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
