//! Presence and typing: per-user presence across connections, the grace
//! period after a disconnect, statuses, and typing indicators. Every test
//! runs on both engines.

use std::time::Duration;

use roomcast_shared::frame::Joined;
use roomcast_shared::{Presence, Status};
use roomcast_tests::diffs::{arrival, departure};
use roomcast_tests::{
    Engine, PRESENCE_GRACE, TYPING_TIMEOUT, TestServer, WsClient, every_engine, typed,
};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Long enough for anything due to arrive: the grace period and some slack.
const AFTER_GRACE: Duration = Duration::from_millis(PRESENCE_GRACE.as_millis() as u64 * 3);

/// A client of `user` in `room` that hands out membership news.
async fn joined(server: &TestServer, user: &str, name: &str, room: &str) -> WsClient {
    let mut client = WsClient::connect_as(server, user, name).await.show_presence();
    client.join(room).await;
    client
}

/// Whether `frames` announce that `user` left.
fn announces_departure(frames: &[Value], user: &str) -> bool {
    frames.iter().any(|f| departure(f, user).is_some())
}

every_engine!(a_user_stays_online_until_the_last_connection_closes);
async fn a_user_stays_online_until_the_last_connection_closes(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let tab1 = joined(&server, "alice", "Alice", "general").await;
    bob.recv_arrival("alice").await;
    let tab2 = joined(&server, "alice", "Alice", "general").await.labelled("alice-tab2");
    // The second connection of a member is no news.
    bob.expect_silence(Duration::from_millis(200)).await;

    tab1.close().await;
    let frames = bob.collect_for(AFTER_GRACE).await;
    assert!(!announces_departure(&frames, "alice"), "alice still has a connection: {frames:?}");
    let presence = server.api_get("/api/users/alice/presence").await.expect(200);
    assert_eq!(presence["status"], "online", "{presence}");

    tab2.close().await;
    let left = bob.recv_departure("alice").await;
    assert_eq!(left["name"], "Alice");
    let offline = server.api_get("/api/users/alice/presence").await.expect(200);
    assert_eq!(offline["status"], "offline", "{offline}");
}

every_engine!(a_disconnect_is_announced_after_the_grace_period);
async fn a_disconnect_is_announced_after_the_grace_period(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let alice = joined(&server, "alice", "Alice", "general").await;
    bob.recv_arrival("alice").await;

    let closed = Instant::now();
    alice.close().await;
    bob.recv_departure("alice").await;
    let waited = closed.elapsed();
    assert!(waited >= PRESENCE_GRACE - Duration::from_millis(50), "announced after {waited:?}");

    let presence: Presence = typed(&server.api_get("/api/users/alice/presence").await.expect(200));
    assert_eq!((presence.user_id.as_str(), presence.status), ("alice", Status::Offline));
    let age = time::OffsetDateTime::now_utc() - presence.last_seen;
    assert!(age.whole_seconds().abs() < 60, "last_seen is about now: {presence:?}");
}

every_engine!(a_quick_reconnect_does_not_flicker);
async fn a_quick_reconnect_does_not_flicker(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let alice = joined(&server, "alice", "Alice", "general").await;
    bob.recv_arrival("alice").await;

    alice.close().await;
    let alice = joined(&server, "alice", "Alice", "general").await;
    let frames = bob.collect_for(AFTER_GRACE).await;
    assert!(
        !announces_departure(&frames, "alice"),
        "a reconnect within the grace period: {frames:?}"
    );
    assert!(!frames.iter().any(|f| arrival(f, "alice").is_some()), "alice never left: {frames:?}");

    // Leaving for good is still announced.
    alice.close().await;
    let left = bob.recv_departure("alice").await;
    assert_eq!(left["id"], "alice");
}

every_engine!(an_explicit_leave_is_announced_at_once);
async fn an_explicit_leave_is_announced_at_once(engine: Engine) {
    let server =
        TestServer::with_on(engine, |c| c.timing.presence_grace = Duration::from_secs(30)).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let mut alice = joined(&server, "alice", "Alice", "general").await;
    bob.recv_arrival("alice").await;

    alice.call_ok(json!({"type": "leave", "room": "general"}), "left").await;
    let diff = bob.recv_where("alice leaving", |f| departure(f, "alice").is_some()).await;
    assert_eq!((&diff["room"], &diff["count"]), (&json!("general"), &json!(1)));
    assert_eq!(departure(&diff, "alice").unwrap()["name"], "Alice");
    // Leaving a room is not going offline.
    bob.expect_silence(Duration::from_millis(300)).await;
}

every_engine!(statuses_reach_those_who_share_a_room);
async fn statuses_reach_those_who_share_a_room(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let mut alice = joined(&server, "alice", "Alice", "general").await;
    let mut stranger = WsClient::connect_as(&server, "carol", "Carol").await.show_presence();
    bob.recv_arrival("alice").await;

    for (status, custom, shown) in
        [("away", Some("lunch"), "away"), ("busy", None, "busy"), ("invisible", None, "offline")]
    {
        let mut frame = json!({"type": "presence", "status": status});
        if let Some(custom) = custom {
            frame["custom"] = json!(custom);
        }
        alice.send(frame).await;
        let presence = bob.recv_status("alice", shown).await;
        assert_eq!(presence["user_id"], "alice");
        if let Some(custom) = custom {
            assert_eq!(presence["custom"], custom);
        }
        let _: Presence = typed(&presence);
    }
    stranger.expect_silence(Duration::from_millis(200)).await;

    // A newcomer sees the invisible user as offline among the members.
    let mut dave = WsClient::connect_as(&server, "dave", "Dave").await;
    let joined: Joined = typed(&dave.join("general").await);
    let alice_member =
        joined.members.iter().find(|m| m.user.id == "alice").expect("alice is a member");
    assert_eq!(alice_member.presence.status, Status::Offline);

    alice.send(json!({"type": "presence", "status": "online"})).await;
    let presence = bob.recv_status("alice", "online").await;
    assert_eq!(presence["user_id"], "alice");
}

every_engine!(typing_goes_to_other_users_and_expires);
async fn typing_goes_to_other_users_and_expires(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = joined(&server, "alice", "Alice", "general").await;
    let mut alice_tab = joined(&server, "alice", "Alice", "general").await.labelled("alice-tab");
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    alice.recv_arrival("bob").await;
    alice_tab.recv_arrival("bob").await;

    let started = Instant::now();
    alice.send(json!({"type": "typing", "room": "general", "is_typing": true})).await;
    let typing = bob.recv_until("typing").await;
    assert_eq!(typing["room"], "general");
    assert_eq!(typing["user"], json!({"id": "alice", "name": "Alice"}));
    assert_eq!(typing["is_typing"], true);

    // The server says she stopped once she is quiet for the typing timeout.
    let stopped = bob.recv_until("typing").await;
    assert_eq!((&stopped["user"]["id"], &stopped["is_typing"]), (&json!("alice"), &json!(false)));
    let waited = started.elapsed();
    assert!(waited >= TYPING_TIMEOUT - Duration::from_millis(10), "expired after {waited:?}");

    // None of it went to the typer's own connections.
    alice.expect_silence(Duration::from_millis(100)).await;
    alice_tab.expect_silence(Duration::from_millis(100)).await;
}

every_engine!(an_explicit_stop_and_a_disconnect_end_typing);
async fn an_explicit_stop_and_a_disconnect_end_typing(engine: Engine) {
    let server = TestServer::with_on(engine, |c| {
        c.timing.typing_timeout = Duration::from_secs(30);
        c.timing.presence_grace = Duration::from_secs(30);
    })
    .await;
    let mut alice = joined(&server, "alice", "Alice", "general").await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;

    alice.send(json!({"type": "typing", "room": "general", "is_typing": true})).await;
    assert_eq!(bob.recv_until("typing").await["is_typing"], true);
    alice.send(json!({"type": "typing", "room": "general", "is_typing": false})).await;
    assert_eq!(bob.recv_until("typing").await["is_typing"], false);

    alice.send(json!({"type": "typing", "room": "general", "is_typing": true})).await;
    assert_eq!(bob.recv_until("typing").await["is_typing"], true);
    alice.close().await;
    // Neither the typing timeout nor the grace period is over: the
    // disconnect itself ends typing.
    let stopped = bob.recv_until("typing").await;
    assert_eq!((&stopped["user"]["id"], &stopped["is_typing"]), (&json!("alice"), &json!(false)));
}

every_engine!(a_reload_leaves_no_ghost_member);
/// A page reload: the connection closes and another opens within the grace
/// period; when that one closes for good, the user leaves and goes offline,
/// and a later joiner does not see them as a member.
async fn a_reload_leaves_no_ghost_member(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut bob = joined(&server, "bob", "Bob", "general").await;
    let alice = joined(&server, "alice", "Alice", "general").await;
    bob.recv_arrival("alice").await;
    alice.close().await;
    let reloaded = joined(&server, "alice", "Alice", "general").await;
    // Past the first connection's grace period: the reload kept alice in.
    let quiet = bob.collect_for(AFTER_GRACE).await;
    assert!(!announces_departure(&quiet, "alice"), "a reload looked like leaving: {quiet:?}");

    reloaded.close().await;
    bob.recv_departure("alice").await;
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let joined: Joined = typed(&carol.join("general").await);
    let members: Vec<&str> = joined.members.iter().map(|m| m.user.id.as_str()).collect();
    assert_eq!(members, ["bob", "carol"], "alice left for good");
}

every_engine!(an_offline_user_is_remembered_for_the_idle_time_then_forgotten);
/// A status and `last_seen` outlive a disconnect for `--user-idle-secs`,
/// then go (in Redis too: the state key expires), so that users who never
/// come back take no memory; a user back in time keeps their status.
async fn an_offline_user_is_remembered_for_the_idle_time_then_forgotten(engine: Engine) {
    const IDLE: Duration = Duration::from_secs(2);
    let server = TestServer::with_on(engine, |config| {
        config.timing.user_idle = IDLE;
        config.timing.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let status = |presence: &Presence| (presence.status, presence.custom.clone());
    let away = json!({"type": "presence", "status": "away", "custom": "lunch"});
    let presence_of = async |user: &str| -> Presence {
        typed(&server.api_get(&format!("/api/users/{user}/presence")).await.expect(200))
    };

    // Back within the idle time: the status is still theirs.
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await.show_own_presence();
    alice.send(away.clone()).await;
    alice.recv_until("presence_diff").await;
    alice.close().await;
    tokio::time::sleep(AFTER_GRACE).await;
    let offline = presence_of("alice").await;
    assert_eq!(offline.status, Status::Offline);
    assert_ne!(offline.last_seen, time::OffsetDateTime::UNIX_EPOCH, "seen: {offline:?}");
    let _alice = WsClient::connect_as(&server, "alice", "Alice").await;
    assert_eq!(status(&presence_of("alice").await), (Status::Away, Some("lunch".into())));

    // Away for longer: forgotten, status and last-seen time alike.
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await.show_own_presence();
    bob.send(away).await;
    bob.recv_until("presence_diff").await;
    bob.close().await;
    tokio::time::sleep(AFTER_GRACE + IDLE + Duration::from_secs(1)).await;
    let forgotten = presence_of("bob").await;
    assert_eq!(
        (forgotten.status, forgotten.last_seen),
        (Status::Offline, time::OffsetDateTime::UNIX_EPOCH),
        "{forgotten:?}"
    );
    let _bob = WsClient::connect_as(&server, "bob", "Bob").await;
    assert_eq!(status(&presence_of("bob").await), (Status::Online, None));
}
