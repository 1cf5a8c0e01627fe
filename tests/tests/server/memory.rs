//! Memory a client can make the server hold: a client that asks for large
//! replies and never reads them is closed with 4009 once its connection
//! holds `--send-queue-bytes`, so the server's resident memory stays
//! within a few MiB of that bound. Runs the real binary and reads its
//! `VmRSS` from /proc.

use std::time::Duration;

use roomcast_tests::{RawWs, ServerProcess, claims, raw, sign};
use serde_json::json;

/// Long enough for a server outside dev mode (32 bytes at least).
const SECRET: &str = "memory-test-secret-of-at-least-32-bytes";
const API_KEY: &str = "memory-test-key";

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// Fills `room` with 100 messages of 4,000 bytes through the HTTP API.
async fn fill_room(server: &ServerProcess, room: &str) {
    let http = reqwest::Client::new();
    let url = format!("{}/api/rooms/{room}/messages", server.http_url());
    for i in 0..100 {
        let body = json!({"content": format!("{i:04}{}", "m".repeat(3996))});
        let reply = http.post(&url).bearer_auth(API_KEY).json(&body).send().await.expect("POST");
        assert_eq!(reply.status(), 201, "{:?}", reply.text().await);
    }
}

/// A client that asks for 100-message history pages 45 times a second and
/// never reads; returns once the server has closed it (its writes fail) or
/// after `limit`. Returns whether it was closed.
async fn flood_history(addr: String, user: String, limit: Duration) -> bool {
    let mut ws = RawWs::connect(&addr).await;
    let token = sign(SECRET, &claims(&user, &user));
    ws.write(&raw::text(&json!({"type": "auth", "token": token}).to_string())).await.unwrap();
    ws.write(&raw::text(r#"{"type":"join","room":"big","history":0}"#)).await.unwrap();
    let request = raw::text(r#"{"type":"history","room":"big","limit":100}"#);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / 45));
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        tick.tick().await;
        // A write the server no longer reads blocks: bounded by the deadline.
        match tokio::time::timeout_at(deadline, ws.write(&request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return true,
            Err(_) => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_client_that_never_reads_cannot_make_the_server_hold_more_than_its_bound() {
    let mut server =
        ServerProcess::spawn(&["--jwt-secret", SECRET, "--api-key", API_KEY], &[]).await;
    let pid = server.pid();
    fill_room(&server, "big").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(pid);

    // Four connections of one user, as in the report.
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr().to_owned();
            tokio::spawn(flood_history(addr, "hog".into(), Duration::from_secs(8)))
        })
        .collect();
    let mut peak = before;
    while !flooders.iter().all(|f| f.is_finished()) {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let growth_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("VmRSS before {before} KiB, peak {peak} KiB: +{growth_mib:.1} MiB");
    // Four connections of 1 MiB each, plus the replies being built and the
    // allocator's slack.
    assert!(growth_mib < 24.0, "the server grew by {growth_mib:.1} MiB (bound 4 x 1 MiB)");
    for flooder in flooders {
        assert!(flooder.await.unwrap(), "a client that never reads was not closed");
    }

    // The server is still well.
    let health = reqwest::get(format!("{}/health", server.http_url())).await.unwrap();
    assert_eq!(health.status(), 200);
    server.signal("TERM");
    server.wait().await;
}
