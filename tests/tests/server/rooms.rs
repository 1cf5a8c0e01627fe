//! Rooms: join and leave, who may join which room (`user:`, `dm:`, `admin`,
//! the `rooms` claim), rejoining, members and `history: n` on join. Every
//! test runs on both engines.

use std::time::Duration;

use roomcast_shared::frame::Joined;
use roomcast_shared::{Claims, RoomEvent, Status, UserInfo};
use roomcast_tests::{Engine, TestServer, WsClient, claims, every_engine, frame_type, typed};
use serde_json::json;

const QUIET: Duration = Duration::from_millis(300);

every_engine!(join_answers_joined_and_leave_answers_left);
async fn join_answers_joined_and_leave_answers_left(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;

    let reply = alice.join("general").await;
    assert!(reply.get("recovered").is_none(), "recovered only comes with since: {reply}");
    let joined: Joined = typed(&reply);
    assert_eq!(joined.room.as_str(), "general");
    assert!(!joined.epoch.is_empty(), "{reply}");
    assert_eq!(joined.offset, 0, "an empty room is at offset 0: {reply}");
    assert!(joined.messages.is_empty(), "{reply}");
    assert_eq!(joined.members.len(), 1, "{reply}");
    let me = &joined.members[0];
    assert_eq!((me.user.id.as_str(), me.user.name.as_str()), ("alice", "Alice"));
    assert_eq!(me.presence.user_id, "alice");
    assert_eq!(me.presence.status, Status::Online);

    let left = alice.call(json!({"type": "leave", "room": "general"})).await;
    assert_eq!(frame_type(&left), "left", "{left}");
    assert_eq!(left["room"], "general");

    // Having left, the connection may no longer send there.
    let send = json!({"type": "send", "room": "general", "content": "hi", "client_id": "c1"});
    let error = alice.call(send).await;
    assert_eq!(error["code"], "forbidden", "{error}");
}

every_engine!(members_see_each_other_join);
async fn members_see_each_other_join(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;

    let bob_token =
        server.token_with(&Claims { role: Some("member".into()), ..claims("bob", "Bob") });
    let mut bob = WsClient::connect_with_token(&server, &bob_token, "bob").await;
    let joined: Joined = typed(&bob.join("general").await);
    let mut ids: Vec<_> = joined.members.iter().map(|m| m.user.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);

    let event = alice.recv_arrival("bob").await;
    let user: UserInfo = typed(&event["user"]);
    let expected = UserInfo {
        id: "bob".into(),
        name: "Bob".into(),
        role: Some("member".into()),
        avatar: None,
    };
    assert_eq!(user, expected, "{event}");
}

every_engine!(joining_again_answers_joined_again_without_announcing_it);
async fn joining_again_answers_joined_again_without_announcing_it(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;
    alice.join("general").await;
    bob.recv_arrival("alice").await;
    alice.say("general", "one").await;
    // With Redis, an `ack` comes once the event is published; this
    // instance's window has it once it came back and was delivered.
    alice.recv_until("message").await;

    let again: Joined = typed(&alice.join("general").await);
    assert_eq!(again.offset, 1);
    assert_eq!(again.members.len(), 2);
    bob.recv_until("message").await;
    bob.expect_silence(QUIET).await;
}

every_engine!(personal_rooms_admit_only_their_owner);
async fn personal_rooms_admit_only_their_owner(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("user:alice").await;
    let error = alice.call(json!({"type": "join", "room": "user:bob"})).await;
    assert_eq!(error["code"], "forbidden", "{error}");
    alice.assert_usable().await;

    // Not even an admin may join someone else's personal room.
    let mut root =
        WsClient::connect_with_token(&server, &server.admin_token("root", "Root"), "root").await;
    let error = root.call(json!({"type": "join", "room": "user:alice"})).await;
    assert_eq!(error["code"], "forbidden", "{error}");
}

every_engine!(every_connection_is_in_its_personal_room_without_a_joined_frame);
async fn every_connection_is_in_its_personal_room_without_a_joined_frame(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.expect_silence(QUIET).await;

    let body = json!({"name": "account.updated", "data": {"plan": "pro"}});
    server.api_post("/api/rooms/user:alice/events", body).await.expect(202);
    let event = alice.expect_type("event").await;
    assert_eq!((&event["room"], &event["name"]), (&json!("user:alice"), &json!("account.updated")));
}

every_engine!(direct_rooms_admit_only_their_two_users);
async fn direct_rooms_admit_only_their_two_users(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;

    alice.join("dm:alice,bob").await;
    bob.join("dm:alice,bob").await;
    for room in ["dm:alice,bob", "dm:bob,carol,alice"] {
        let error = carol.call(json!({"type": "join", "room": room})).await;
        assert_eq!(error["code"], "forbidden", "carol joining {room}: {error}");
    }
    // Ids must be sorted: `dm:bob,alice` is not a room anyone may join.
    let error = alice.call(json!({"type": "join", "room": "dm:bob,alice"})).await;
    assert_eq!(error["code"], "forbidden", "{error}");
    alice.assert_usable().await;
}

every_engine!(admin_rooms_admit_only_admins);
async fn admin_rooms_admit_only_admins(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let mut root =
        WsClient::connect_with_token(&server, &server.admin_token("root", "Root"), "root").await;
    for room in ["admin", "admin:ops"] {
        let error = alice.call(json!({"type": "join", "room": room})).await;
        assert_eq!(error["code"], "forbidden", "member joining {room}: {error}");
        root.join(room).await;
    }
    // `administrators` is an ordinary room, not in the admin namespace.
    alice.join("administrators").await;
}

every_engine!(the_rooms_claim_limits_public_rooms);
async fn the_rooms_claim_limits_public_rooms(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let limited =
        Claims { rooms: Some(vec!["team-*".into(), "lobby".into()]), ..claims("carol", "Carol") };
    let mut carol =
        WsClient::connect_with_token(&server, &server.token_with(&limited), "carol").await;

    carol.join("team-red").await;
    carol.join("lobby").await;
    for room in ["general", "lobby2"] {
        let error = carol.call(json!({"type": "join", "room": room})).await;
        assert_eq!(error["code"], "forbidden", "joining {room}: {error}");
    }
    // The claim limits public rooms only: the own personal room stays open.
    carol.join("user:carol").await;
}

every_engine!(history_on_join_returns_the_latest_messages_as_events);
async fn history_on_join_returns_the_latest_messages_as_events(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    for text in ["one", "two", "three"] {
        alice.say("general", text).await;
    }

    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let reply =
        bob.call_ok(json!({"type": "join", "room": "general", "history": 2}), "joined").await;
    assert!(reply.get("recovered").is_none(), "{reply}");
    for event in reply["messages"].as_array().expect("messages") {
        assert_eq!(event["type"], "message", "joined.messages holds tagged events: {event}");
    }
    let joined: Joined = typed(&reply);
    assert_eq!(joined.offset, 3);
    let texts: Vec<_> = joined
        .messages
        .iter()
        .map(|e| match e {
            RoomEvent::Message(m) => (m.offset, m.content.as_str()),
            other => panic!("expected messages only, got {other:?}"),
        })
        .collect();
    assert_eq!(texts, [(2, "two"), (3, "three")]);
}

every_engine!(leaving_a_room_not_joined_does_not_break_the_connection);
async fn leaving_a_room_not_joined_does_not_break_the_connection(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let reply = alice.call(json!({"type": "leave", "room": "nowhere"})).await;
    assert!(
        matches!(frame_type(&reply), "left" | "error"),
        "leave of a room not joined answers left or an error: {reply}"
    );
    alice.assert_usable().await;
}
