//! Big rooms: what a join, a leave or a status change costs the others is
//! counted in frames (one `presence_diff` per room and window, however many
//! changed), every member is paged exactly once, the diffs a member applies
//! converge on what a fresh joiner sees (on one instance and across two),
//! big rooms send counts unless asked for members, and hostile `members`
//! requests get an error frame. Frame counts, never timings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use roomcast_tests::diffs::{arrival, departure};
use roomcast_tests::{
    Engine, RedisServer, TestServer, WsClient, every_engine, frame_type, percent_encode, unique_id,
};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The coalescing window of these tests' servers.
const WINDOW: Duration = Duration::from_millis(200);

/// A server with [`WINDOW`] and every member listed in `joined`.
async fn server(engine: Engine) -> TestServer {
    TestServer::with_on(engine, |c| {
        c.timing.presence_window = WINDOW;
        c.limits.joined_members = 500;
    })
    .await
}

/// `count` users (`<prefix>-<i>`) joined to `room`, all at once.
async fn crowd(server: &TestServer, prefix: &str, count: usize, room: &str) -> Vec<WsClient> {
    join_all((0..count).map(|i| async move {
        let id = format!("{prefix}-{i:03}");
        let mut client = WsClient::connect_as(server, &id, &id.to_uppercase()).await;
        client.join(room).await;
        client
    }))
    .await
}

/// A member list as applying frames builds it: user id to status.
type Roster = BTreeMap<String, String>;

fn roster_of(members: &Value) -> Roster {
    let members = members.as_array().map(Vec::as_slice).unwrap_or_default();
    members
        .iter()
        .map(|m| (m["user"]["id"].as_str().unwrap_or("").to_owned(), m["status"].to_string()))
        .collect()
}

/// Applies a `presence_diff` as a client does: leaves, then joins, then
/// updates.
fn apply(roster: &mut Roster, diff: &Value) {
    for left in diff["leaves"].as_array().into_iter().flatten() {
        roster.remove(left["id"].as_str().unwrap_or(""));
    }
    roster.extend(roster_of(&diff["joins"]));
    for update in diff["updates"].as_array().into_iter().flatten() {
        let id = update["user_id"].as_str().unwrap_or("");
        if let Some(status) = roster.get_mut(id) {
            *status = update["status"].to_string();
        }
    }
}

/// Every member of `room`, paged with `members` (`limit` a page), each id
/// checked to come once; and the count the pages gave.
async fn page_all(client: &mut WsClient, room: &str, limit: u16) -> (Vec<Value>, u64) {
    let mut members = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut request = json!({"type": "members", "room": room, "limit": limit});
        if !cursor.is_null() {
            request["cursor"] = cursor.clone();
        }
        let page = client.call_ok(request, "members").await;
        let got = page["members"].as_array().cloned().unwrap_or_default();
        assert!(got.len() <= usize::from(limit), "a page within its limit: {page}");
        members.extend(got);
        cursor = page["cursor"].clone();
        if cursor.is_null() {
            return (members, page["count"].as_u64().unwrap_or(0));
        }
    }
}

/// Reads `presence_diff` frames until the room has been quiet for two
/// windows; returns them.
async fn settle(client: &mut WsClient) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let more = client.collect_for(WINDOW * 3).await;
        if more.is_empty() {
            return frames;
        }
        frames.extend(more);
    }
}

every_engine!(a_join_storm_costs_each_member_frames_per_window_not_per_joiner);
/// 120 users join a room at once. Each of the three members already there
/// gets one `presence_diff` per window at most (today: one `member_joined`
/// per joiner), and applying them gives the room a fresh joiner sees.
async fn a_join_storm_costs_each_member_frames_per_window_not_per_joiner(engine: Engine) {
    const JOINERS: usize = 120;
    let server = server(engine).await;
    let mut early = crowd(&server, "early", 3, "hall").await;
    let mut early: Vec<WsClient> = early.drain(..).map(WsClient::show_presence).collect();
    let mut rosters: Vec<Roster> = Vec::new();
    for client in &mut early {
        let joined = client.join("hall").await;
        rosters.push(roster_of(&joined["members"]));
        settle(client).await;
    }

    let started = Instant::now();
    let _joiners = crowd(&server, "joiner", JOINERS, "hall").await;
    // Every diff of the storm is flushed within a window of its last join.
    let storm = started.elapsed() + WINDOW;
    let windows = storm.as_millis().div_ceil(WINDOW.as_millis()) as usize;

    let mut fresh = WsClient::connect_as(&server, "fresh", "Fresh").await;
    fresh.join("hall").await;
    let (members, count) = page_all(&mut fresh, "hall", 500).await;
    let expected = roster_of(&json!(members));
    assert_eq!(count, (JOINERS + 4) as u64);
    for (client, roster) in early.iter_mut().zip(&mut rosters) {
        let frames = settle(client).await;
        for frame in &frames {
            assert_eq!(frame_type(frame), "presence_diff", "only diffs: {frame}");
            apply(roster, frame);
        }
        // One per window the storm lasted, plus the fresh joiner's window
        // and one that a window's edge may split.
        assert!(
            frames.len() <= windows + 2,
            "{} diffs in {windows} windows for {JOINERS} joins",
            frames.len()
        );
        assert!(frames.len() < JOINERS / 4, "{} frames for {JOINERS} joins", frames.len());
        roster.insert("fresh".into(), expected["fresh"].clone());
        assert_eq!(*roster, expected, "the diffs converge on what a fresh joiner sees");
    }
}

every_engine!(paging_returns_every_member_exactly_once_online_first);
/// 80 members (enough for a sorted room), one invisible: the `joined` reply holds the first page and
/// the count, and `members` pages (and the HTTP API's) hold everyone once,
/// online members first, each group by name.
async fn paging_returns_every_member_exactly_once_online_first(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.joined_members = 10).await;
    let mut members = crowd(&server, "m", 79, "hall").await;
    members[0].send(json!({"type": "presence", "status": "invisible"})).await;
    // Frames are handled in order: once the ping is answered, so is the status.
    members[0].assert_usable().await;
    let mut me = WsClient::connect_as(&server, "zed", "Aaron").await;
    let joined = me.join("hall").await;
    assert_eq!(joined["count"], 80, "{joined}");
    assert_eq!(joined["members"].as_array().map(Vec::len), Some(10));
    assert!(joined["cursor"].is_string(), "more to page: {joined}");

    for limit in [7, 80, 500] {
        let (page, count) = page_all(&mut me, "hall", limit).await;
        assert_eq!(count, 80);
        let ids: Vec<&str> = page.iter().map(|m| m["user"]["id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!((ids.len(), unique.len()), (80, 80), "every member once: {ids:?}");
        // Online first (Aaron sorts before M-…), the invisible one last.
        assert_eq!(ids[0], "zed", "by name: {ids:?}");
        assert_eq!(ids[79], "m-000", "looking offline, last: {ids:?}");
        let names: Vec<&str> =
            page[..79].iter().map(|m| m["user"]["name"].as_str().unwrap()).collect();
        assert!(names.is_sorted(), "by name: {names:?}");
    }

    let mut seen = Vec::new();
    let mut path = "/api/rooms/hall/presence?limit=20".to_owned();
    loop {
        let page = server.api_get(&path).await.expect(200);
        assert_eq!(page["count"], 80);
        seen.extend(page["members"].as_array().unwrap().iter().map(|m| m["user"]["id"].clone()));
        let Some(cursor) = page["cursor"].as_str() else { break };
        path = format!("/api/rooms/hall/presence?limit=20&cursor={}", percent_encode(cursor));
    }
    let unique: BTreeSet<String> = seen.iter().map(Value::to_string).collect();
    assert_eq!((seen.len(), unique.len()), (80, 80), "the API pages everyone once");
}

every_engine!(small_rooms_still_hear_who_came_left_and_changed_status);
async fn small_rooms_still_hear_who_came_left_and_changed_status(engine: Engine) {
    let server = server(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await.show_presence();
    alice.join("den").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("den").await;
    let diff = alice.recv_where("bob came", |f| arrival(f, "bob").is_some()).await;
    assert_eq!((&diff["room"], &diff["count"]), (&json!("den"), &json!(2)));
    assert_eq!(arrival(&diff, "bob").unwrap()["user"]["name"], "Bob");

    bob.send(json!({"type": "presence", "status": "busy", "custom": "focus"})).await;
    let busy = alice.recv_status("bob", "busy").await;
    assert_eq!(busy["custom"], "focus");

    bob.call_ok(json!({"type": "leave", "room": "den"}), "left").await;
    let diff = alice.recv_where("bob left", |f| departure(f, "bob").is_some()).await;
    assert_eq!(diff["count"], 1);
    alice.expect_silence(WINDOW * 2).await;
}

every_engine!(big_rooms_send_counts_unless_a_member_asked_for_members);
/// Over `--big-room-members`, a plain member hears `occupancy` when the
/// count changes and nothing of statuses; one that joined with
/// `member_events` still hears every change.
async fn big_rooms_send_counts_unless_a_member_asked_for_members(engine: Engine) {
    let server = TestServer::with_on(engine, |c| {
        c.timing.presence_window = WINDOW;
        c.limits.big_room_members = 5;
    })
    .await;
    let _crowd = crowd(&server, "c", 6, "stage").await;
    let mut plain = WsClient::connect_as(&server, "plain", "Plain").await.show_presence();
    plain.join("stage").await;
    let mut curious = WsClient::connect_as(&server, "curious", "Curious").await.show_presence();
    curious
        .call_ok(json!({"type": "join", "room": "stage", "member_events": true}), "joined")
        .await;
    settle(&mut plain).await;
    settle(&mut curious).await;

    let mut late = WsClient::connect_as(&server, "late", "Late").await;
    late.join("stage").await;
    let counted = plain.recv_where("a count", |f| frame_type(f) == "occupancy").await;
    assert_eq!((&counted["room"], &counted["count"]), (&json!("stage"), &json!(9)));
    curious.recv_arrival("late").await;

    late.send(json!({"type": "presence", "status": "away"})).await;
    curious.recv_status("late", "away").await;
    let frames = settle(&mut plain).await;
    assert!(frames.is_empty(), "no member news for a plain member of a big room: {frames:?}");
}

every_engine!(hostile_members_requests_get_error_frames);
async fn hostile_members_requests_get_error_frames(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let long = "0,alice,".to_owned() + &"x".repeat(5000);
    for (request, code) in [
        (json!({"room": "general", "limit": 501}), "bad_request"),
        (json!({"room": "general", "limit": 65535}), "bad_request"),
        (json!({"room": "general", "limit": 0}), "bad_request"),
        (json!({"room": "general", "limit": 1_000_000}), "bad_request"),
        (json!({"room": "general", "cursor": "garbage"}), "bad_request"),
        (json!({"room": "general", "cursor": "2,alice,Alice"}), "bad_request"),
        (json!({"room": "general", "cursor": "0,not a user,Alice"}), "bad_request"),
        (json!({"room": "general", "cursor": long}), "bad_request"),
        (json!({"room": "general", "cursor": 7}), "bad_request"),
        (json!({"room": "elsewhere"}), "forbidden"),
        (json!({"room": "admin"}), "forbidden"),
        (json!({"room": "no spaces"}), "bad_request"),
    ] {
        let mut frame = request.clone();
        frame["type"] = json!("members");
        let reply = alice.call(frame).await;
        assert_eq!((frame_type(&reply), &reply["code"]), ("error", &json!(code)), "{request}");
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    alice.assert_usable().await;

    for query in ["limit=501", "limit=99999999", "cursor=garbage", "limit=-1", "cursor=2,a,b"] {
        server
            .api_get(&format!("/api/rooms/general/presence?{query}"))
            .await
            .expect_error(400, "bad_request");
    }
}

#[tokio::test]
/// Members join, leave and change status on two instances at once; what
/// an observer on each instance applies converges on what a fresh joiner
/// on either sees.
async fn diffs_converge_across_two_instances() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let instance = || {
        let url = url.clone();
        TestServer::with(move |c| {
            c.redis_url = Some(url);
            c.jwt_secret = "a-secret-shared-by-both-instances-0123".into();
            c.timing.presence_window = WINDOW;
            c.limits.joined_members = 500;
        })
    };
    let (a, b) = (instance().await, instance().await);
    let mut observers = Vec::new();
    for server in [&a, &b] {
        let mut observer =
            WsClient::connect_as(server, &unique_id("obs"), "Observer").await.show_presence();
        let joined = observer.join("hall").await;
        observers.push((observer, roster_of(&joined["members"])));
    }
    let (on_a, on_b) = tokio::join!(crowd(&a, "a", 30, "hall"), crowd(&b, "b", 30, "hall"));
    // Some leave, some change status, on both instances at once.
    let mut stay = Vec::new();
    for (i, mut client) in on_a.into_iter().chain(on_b).enumerate() {
        match i % 3 {
            0 => client.close().await,
            1 => {
                client.send(json!({"type": "presence", "status": "away"})).await;
                stay.push(client);
            }
            _ => stay.push(client),
        }
    }
    for server in [&a, &b] {
        let mut fresh = WsClient::connect_as(server, &unique_id("fresh"), "Fresh").await;
        fresh.join("hall").await;
        // Past the grace period: the closed ones are gone.
        tokio::time::sleep(roomcast_tests::PRESENCE_GRACE + WINDOW * 3).await;
        for (observer, roster) in &mut observers {
            for frame in settle(observer).await {
                apply(roster, &frame);
            }
        }
        let (members, _) = page_all(&mut fresh, "hall", 500).await;
        let mut expected = roster_of(&json!(members));
        for (_, roster) in &observers {
            // The fresh joiners are news the observers may not have yet.
            let mut roster = roster.clone();
            roster.retain(|id, _| !id.starts_with("fresh"));
            expected.retain(|id, _| !id.starts_with("fresh"));
            assert_eq!(roster, expected, "an observer's diffs converge");
        }
        assert_eq!(expected.len(), 2 + 40, "observers and those who stayed: {expected:?}");
        assert_eq!(expected.values().filter(|s| s.contains("away")).count(), 20);
    }
}
