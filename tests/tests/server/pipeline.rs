//! A connection's sends in flight: handed over without waiting for each
//! commit (so one busy sender's messages share commits), answered strictly
//! in the order they were sent, each once, never before they are stored,
//! and bounded by `--sends-in-flight`.

use std::collections::{HashMap, HashSet};

use roomcast_server::Rate;
use roomcast_tests::server::TempDatabase;
use roomcast_tests::{Engine, ServerProcess, TestServer, WsClient, every_engine, frame_type};
use serde_json::{Value, json};

use crate::durable::{connect, send, start_with, whole_history};

/// What frame `i` of the burst is: mostly new messages, with resends of an
/// earlier `client_id`, a send to a room not joined and a `ping` among them.
fn burst_frame(i: usize) -> Value {
    let mut frame = match i {
        150 => send("elsewhere", "c150", "not joined"),
        200 => json!({"type": "ping"}),
        i if i % 50 == 49 => send("general", &format!("c{}", i - 40), "resent"),
        i => send("general", &format!("c{i}"), &format!("m{i}")),
    };
    frame["ref"] = json!(i);
    frame
}

every_engine!(pipelined_sends_are_answered_in_order_each_once);
async fn pipelined_sends_are_answered_in_order_each_once(engine: Engine) {
    let server = TestServer::with_on(engine, |c| {
        c.limits.frames = Rate::new(100_000.0, 100_000);
        c.limits.messages = Rate::new(100_000.0, 100_000);
        c.limits.user_messages = Rate::new(100_000.0, 100_000);
    })
    .await;
    let (mut alice, mut bob) = crate::chat::alice_and_bob(&server).await;
    let count = 300;
    for i in 0..count {
        alice.send(burst_frame(i)).await;
    }
    // Replies in the order they arrive, and the ids of alice's own
    // messages received before each.
    let mut replies: Vec<Value> = Vec::new();
    let mut own_seen: HashSet<String> = HashSet::new();
    let mut ack_before_message = Vec::new();
    while replies.len() < count {
        let frame = alice.recv().await;
        if frame["ref"].is_u64() {
            if frame_type(&frame) == "ack" && !own_seen.contains(frame["id"].as_str().unwrap()) {
                ack_before_message.push(frame["ref"].clone());
            }
            replies.push(frame);
        } else if frame_type(&frame) == "message" {
            own_seen.insert(frame["id"].as_str().unwrap().to_owned());
        }
    }
    let order: Vec<u64> = replies.iter().map(|r| r["ref"].as_u64().unwrap()).collect();
    assert_eq!(order, (0..count as u64).collect::<Vec<_>>(), "replies in the frames' order");

    let mut first: HashMap<String, (Value, Value)> = HashMap::new();
    let mut last_offset = 0;
    let mut new_ids = Vec::new();
    for (i, reply) in replies.iter().enumerate() {
        match i {
            150 => assert_eq!(reply["code"], "forbidden", "{reply}"),
            200 => assert_eq!(frame_type(reply), "pong", "{reply}"),
            _ => {
                assert_eq!(frame_type(reply), "ack", "{i}: {reply}");
                let client_id = reply["client_id"].as_str().unwrap().to_owned();
                let (id, offset) = (reply["id"].clone(), reply["offset"].clone());
                if i % 50 == 49 {
                    assert_eq!(client_id, format!("c{}", i - 40));
                    assert_eq!(first[&client_id], (id, offset), "{i}: a resend gets the original");
                } else {
                    assert_eq!(client_id, format!("c{i}"));
                    let at = offset.as_u64().unwrap();
                    assert!(at > last_offset, "{i}: offset {at} after {last_offset}");
                    last_offset = at;
                    new_ids.push(id.as_str().unwrap().to_owned());
                    assert!(first.insert(client_id, (id, offset)).is_none());
                }
            }
        }
    }
    // The sender sees its own message before the ack, except through
    // Redis (the protocol allows either order there).
    if !engine.name().contains("redis") {
        assert_eq!(ack_before_message, Vec::<Value>::new(), "acks before their message");
    }
    // Bob gets each new message once, in order, and no resend.
    let mut received = Vec::new();
    while received.len() < new_ids.len() {
        let frame = bob.recv().await;
        if frame_type(&frame) == "message" {
            received.push(frame["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(received, new_ids);
    bob.expect_silence(std::time::Duration::from_millis(300)).await;
}

/// A counter of the server's `/metrics`.
async fn counter(server: &ServerProcess, name: &str) -> u64 {
    let metrics = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_default();
    line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Sends `count` messages to `room` at once and returns the acks in order.
async fn burst(client: &mut roomcast_tests::WsClient, room: &str, count: usize) -> Vec<Value> {
    for i in 0..count {
        let mut frame = send(room, &format!("c{i}"), &format!("m{i}"));
        frame["ref"] = json!(i);
        client.send(frame).await;
    }
    let mut acks = Vec::new();
    while acks.len() < count {
        let frame = client.recv().await;
        if frame["ref"].is_u64() {
            assert_eq!(frame_type(&frame), "ack", "{frame}");
            assert_eq!(frame["ref"], acks.len(), "in order");
            acks.push(frame);
        }
    }
    acks
}

#[tokio::test]
async fn one_connection_s_sends_share_commits_within_sends_in_flight() {
    let count = 400;
    // With webhooks, whose tap sits in front of the store's streams, too.
    let webhook = "http://127.0.0.1:9/nobody-listens";
    let webhooks = ["--webhook-url", webhook, "--webhook-secret", "sixteen-bytes-or-more"];
    let flags: [(&[&str], bool); 3] = [
        (&["--sends-in-flight", "64"], true),
        (&["--sends-in-flight", "1"], false),
        (&webhooks, true),
    ];
    for (flags, shared) in flags {
        let database = TempDatabase::new();
        let server = start_with(&database.url(), flags).await;
        let mut alice = connect(&server, "alice").await;
        alice.join("busy").await;
        burst(&mut alice, "busy", count).await;
        let commits = counter(&server, "roomcast_store_commits_total").await;
        assert_eq!(counter(&server, "roomcast_store_committed_changes_total").await, 400);
        if shared {
            assert!(commits <= 200, "{commits} commits for {count} pipelined sends, {flags:?}");
        } else {
            // One in flight: each send waits for the one before.
            assert_eq!(commits, 400, "--sends-in-flight 1");
        }
    }
}

#[tokio::test]
async fn sends_acknowledged_before_a_sigkill_mid_burst_are_kept() {
    let database = TempDatabase::new();
    let server = start_with(&database.url(), &[]).await;
    let mut alice = connect(&server, "alice").await;
    alice.join("burst").await;
    let count = 2000;
    for i in 0..count {
        let mut frame = send("burst", &format!("c{i}"), &format!("m{i}"));
        frame["ref"] = json!(i);
        alice.send(frame).await;
    }
    // Killed while sends are in flight, as soon as a few are acknowledged.
    alice.recv_where("an ack", |f| frame_type(f) == "ack").await;
    server.signal("KILL");
    let acks: Vec<Value> =
        alice.frames_until_end().await.into_iter().filter(|f| frame_type(f) == "ack").collect();
    assert!(acks.len() < count, "killed mid-burst: {} acks", acks.len());

    let server = start_with(&database.url(), &[]).await;
    let mut reader = connect(&server, "reader").await;
    reader.join("burst").await;
    let stored: HashMap<String, u64> = whole_history(&mut reader, "burst")
        .await
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["offset"].as_u64().unwrap()))
        .collect();
    for ack in &acks {
        let id = ack["id"].as_str().unwrap();
        assert_eq!(stored.get(id), ack["offset"].as_u64().as_ref(), "acked {ack} is kept");
    }
}

#[tokio::test]
async fn a_stopping_server_answers_the_sends_it_took_before_closing() {
    let database = TempDatabase::new();
    let mut server = start_with(&database.url(), &[]).await;
    let mut alice = connect(&server, "alice").await;
    alice.join("stopping").await;
    let count = 2000;
    for i in 0..count {
        let mut frame = send("stopping", &format!("c{i}"), &format!("m{i}"));
        frame["ref"] = json!(i);
        alice.send(frame).await;
    }
    alice.recv_where("an ack", |f| frame_type(f) == "ack").await;
    server.signal("TERM");
    let (frames, code) = alice.frames_until_close().await;
    assert_eq!(code, 1012, "server restarting");
    let refs: Vec<u64> = frames
        .iter()
        .filter(|f| f["ref"].is_u64())
        .inspect(|f| assert_eq!(frame_type(f), "ack", "{f}"))
        .map(|f| f["ref"].as_u64().unwrap())
        .collect();
    // The first ack was read above: the rest follow it, none skipped.
    let expected: Vec<u64> = (1..=refs.len() as u64).collect();
    assert_eq!(refs, expected, "acks in order up to the close");
    assert!(server.wait().await.success());
}

every_engine!(consecutive_commits_reach_every_member_in_offset_order_after_their_acks_never_before);
/// Many connections keep the committer busy over consecutive commits (the
/// publisher fans one batch out while the next commits): each room's events
/// still reach a watcher once each, in offset order with no gap, exactly the
/// acknowledged ones; and each sender sees its own message before its ack.
async fn consecutive_commits_reach_every_member_in_offset_order_after_their_acks_never_before(
    engine: Engine,
) {
    let server = TestServer::with_on(engine, |c| {
        c.limits.frames = Rate::new(100_000.0, 100_000);
        c.limits.messages = Rate::new(100_000.0, 100_000);
        c.limits.user_messages = Rate::new(100_000.0, 100_000);
        // Each sender reads only once its sends are out: room for every
        // member's messages meanwhile.
        c.limits.send_queue = 8192;
        c.limits.send_queue_bytes = 16 << 20;
    })
    .await;
    let rooms = ["lane-a", "lane-b"];
    let (senders, per_sender) = (6, 150);
    let mut watcher = WsClient::connect_as(&server, "watcher", "Watcher").await;
    for room in rooms {
        watcher.join(room).await;
    }
    let mut clients = Vec::new();
    for s in 0..senders {
        let user = format!("sender{s}");
        let mut client = WsClient::connect_as(&server, &user, &user).await;
        for room in rooms {
            client.join(room).await;
        }
        clients.push(client);
    }
    let sending = clients.into_iter().map(|mut client| {
        tokio::spawn(async move {
            for i in 0..per_sender {
                let mut frame = send(rooms[i % 2], &format!("c{i}"), &format!("m{i}"));
                frame["ref"] = json!(i);
                client.send(frame).await;
            }
            // Each ack, and whether the sender had its own message first.
            let mut own: HashSet<String> = HashSet::new();
            let mut acks = Vec::new();
            while acks.len() < per_sender {
                let frame = client.recv().await;
                match frame_type(&frame) {
                    "message" => {
                        own.insert(frame["id"].as_str().unwrap().to_owned());
                    }
                    "ack" => {
                        let id = frame["id"].as_str().unwrap().to_owned();
                        acks.push((id.clone(), own.contains(&id)));
                    }
                    _ => {}
                }
            }
            acks
        })
    });
    let sending: Vec<_> = sending.collect();
    let total = senders * per_sender;
    let mut seen: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    let mut count = 0;
    while count < total {
        let frame = watcher.recv().await;
        if frame_type(&frame) == "message" {
            let room = frame["room"].as_str().unwrap().to_owned();
            let offset = frame["offset"].as_u64().unwrap();
            seen.entry(room).or_default().push((offset, frame["id"].as_str().unwrap().to_owned()));
            count += 1;
        }
    }
    let mut acked: HashSet<String> = HashSet::new();
    for task in sending {
        for (id, own_first) in task.await.expect("a sender") {
            // Through Redis the protocol allows either order.
            if !engine.name().contains("redis") {
                assert!(own_first, "ack for {id} before its message");
            }
            assert!(acked.insert(id), "one ack per message");
        }
    }
    let mut delivered: HashSet<String> = HashSet::new();
    for room in rooms {
        let events = &seen[room];
        let offsets: Vec<u64> = events.iter().map(|(offset, _)| *offset).collect();
        let expected: Vec<u64> = (1..=events.len() as u64).collect();
        assert_eq!(offsets, expected, "{room}: offsets in order, none missing or repeated");
        delivered.extend(events.iter().map(|(_, id)| id.clone()));
    }
    assert_eq!(delivered, acked, "the watcher got exactly the acknowledged messages");
    watcher.expect_silence(std::time::Duration::from_millis(200)).await;
}
