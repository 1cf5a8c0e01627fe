//! Memory that must not grow forever: the in-memory engine forgets idle
//! users and empty rooms, expires unread notifications and history, and
//! its memory returns near where it started after a burst of 100,000
//! distinct users and rooms (the real binary, its RSS read from /proc):
//! its own counts (at `/metrics`) go back to zero exactly, and its RSS comes
//! back within 16 MiB of its start.

use std::time::Duration;

use roomcast_tests::{RECV_TIMEOUT, ServerProcess, WsClient, claims, frame_type, sign};
use serde_json::json;
use tokio::time::Instant;

const SECRET: &str = "bounds-secret";
const API_KEY: &str = "bounds-key";
const USERS: usize = 100_000;
const ROOMS: usize = 100_000;
/// Connections that join and leave the rooms, a share each.
const JOINERS: usize = 4;
/// Joins (and leaves) sent before reading their replies: within the
/// server's send queue.
const BATCH: usize = 200;
/// How far above its start the RSS may stay once everything is forgotten:
/// the peak is about 100 MiB above it, the tables' smallest sizes and the
/// allocator's kept top of heap a few MiB.
const NEAR_START_KIB: u64 = 16 * 1024;

/// The process's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// One gauge from `/metrics`.
async fn gauge(http: &reqwest::Client, server: &ServerProcess, name: &str) -> i64 {
    let text = http
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("roomcast_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no roomcast_{name} in /metrics:\n{text}"))
}

async fn engine_counts(http: &reqwest::Client, server: &ServerProcess) -> [i64; 3] {
    [
        gauge(http, server, "engine_users").await,
        gauge(http, server, "engine_rooms").await,
        gauge(http, server, "history_bytes").await,
    ]
}

/// Joins and leaves `rooms` on one connection, with a message in some.
async fn join_and_leave(server: &ServerProcess, user: &str, rooms: std::ops::Range<usize>) {
    let token = sign(SECRET, &claims(user, user));
    let mut client = WsClient::connect(&format!("{}?token={token}", server.ws_url())).await;
    client.expect_type("ready").await;
    let rooms: Vec<usize> = rooms.collect();
    for batch in rooms.chunks(BATCH) {
        for i in batch {
            let room = format!("soak-{i}");
            client.send(json!({"type": "join", "room": room})).await;
            if i % 1000 == 0 {
                let content = "x".repeat(1000);
                let send =
                    json!({"type": "send", "room": room, "content": content, "client_id": "c"});
                client.send(send).await;
            }
            client.send(json!({"type": "leave", "room": room})).await;
        }
        let mut left = 0;
        while left < batch.len() {
            let frame = client.recv().await;
            assert_ne!(frame_type(&frame), "error", "{frame}");
            left += usize::from(frame_type(&frame) == "left");
        }
    }
    client.close().await;
}

#[tokio::test]
async fn memory_returns_near_its_start_after_100k_users_and_rooms() {
    let server = ServerProcess::spawn(
        &[
            ["--jwt-secret", SECRET, "--api-key", API_KEY].as_slice(),
            &["--notification-max-age-secs", "10", "--history-max-age-secs", "1"],
            &["--user-idle-secs", "0", "--sweep-interval-ms", "200", "--presence-grace-ms", "50"],
            &["--rate-frames", "1000000", "--rate-messages", "1000000", "--rate-joins", "1000000"],
            &["--rate-user-messages", "1000000", "--rate-api", "1000000"],
        ]
        .concat(),
        &[("ROOMCAST_DEV", "1")],
    )
    .await;
    let http = reqwest::Client::builder().timeout(RECV_TIMEOUT).build().expect("http client");
    // Warm up what every request allocates once, then take the baseline.
    join_and_leave(&server, "warmup", 0..BATCH).await;
    let settled = wait_for_empty(&http, &server).await;
    let base = rss_kib(server.pid());
    let started = Instant::now();

    // Rooms first (forgotten once left and their messages expired), then
    // users (forgotten once their notifications expire, 10 s after).
    let share = ROOMS / JOINERS;
    let joiners =
        (0..JOINERS).map(|j| {
            let server = &server;
            async move {
                join_and_leave(server, &format!("joiner-{j}"), j * share..(j + 1) * share).await
            }
        });
    futures_util::future::join_all(joiners).await;
    for chunk in 0..USERS / 1000 {
        let user_ids: Vec<String> =
            (chunk * 1000..(chunk + 1) * 1000).map(|i| format!("soak-user-{i}")).collect();
        let body = json!({"user_ids": user_ids, "title": "hello", "body": "x".repeat(100)});
        let reply = http
            .post(format!("{}/api/notify", server.http_url()))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .expect("POST /api/notify");
        assert_eq!(reply.status(), 200);
    }
    let peak = rss_kib(server.pid());
    let load = started.elapsed();
    // The next sweep counts them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let [users, ..] = engine_counts(&http, &server).await;
    // Most of them: on a slow machine the first may have expired already.
    assert!(users >= USERS as i64 / 2, "the users were counted: {users}");

    let forgotten = wait_for_empty(&http, &server).await;
    let after = rss_kib(server.pid());
    eprintln!(
        "RSS KiB: start {base}, peak {peak}, after {after} (load {load:?}, settled in {settled:?} and {forgotten:?})"
    );
    // What the engine keeps is checked exactly above (nothing); what the
    // process holds comes back near where it started once the sweep has
    // shrunk its tables and handed the free pages back (`allocator.rs`).
    assert!(
        after < base + NEAR_START_KIB,
        "RSS did not come back near its start after the engine forgot everything: \
         start {base}, peak {peak}, after {after} KiB"
    );
}

/// Waits until the engine keeps no user, room or history, and says how long.
async fn wait_for_empty(http: &reqwest::Client, server: &ServerProcess) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        let counts = engine_counts(http, server).await;
        if counts == [0, 0, 0] {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "the engine still keeps [users, rooms, bytes] {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
