//! The `roomcast` binary's log, at debug level: no access token in it, and
//! no line a client wrote (a newline in a message id) can pass for
//! one of the server's own.

use std::time::Duration;

use roomcast_tests::{RECV_TIMEOUT, ServerProcess, WsClient, claims, sign};
use serde_json::json;
use tokio::time::Instant;

/// A test secret: dev mode takes a short one, production never does.
const SECRET: &str = "log-test-secret";
/// What a forged line would start with.
const FORGED: &str = "2099-01-01T00:00:00.000000Z  INFO roomcast: forged";

/// Waits until a line of the log satisfies `wanted`; returns the log.
async fn log_until(
    server: &ServerProcess,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let lines = server.output();
        if lines.iter().any(|line| wanted(line)) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no {what} in the log: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_log_holds_no_token_and_no_forged_line() {
    let server =
        ServerProcess::spawn(&["--dev", "--jwt-secret", SECRET], &[("RUST_LOG", "debug")]).await;
    let token = sign(SECRET, &claims("alice", "Alice"));
    let mut alice = WsClient::connect(&format!("{}?token={token}", server.ws_url())).await;
    alice.expect_type("ready").await;

    // A message id is the client's to write, and a refusal logs it.
    alice.join("general").await;
    let id = format!("x\n{FORGED}");
    alice.send(json!({"type": "delete", "room": "general", "id": id})).await;
    let refused = alice.recv_where("the delete refused", |f| f["type"] == "error").await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    // A refresh in a frame: its token must not be logged either.
    alice.send(json!({"type": "auth", "token": format!("{token}x")})).await;
    alice.expect_close().await;

    // The request and the refused frame were logged (at debug level), so
    // what follows is not true merely of an empty log.
    let escaped = format!("x\\n{FORGED}");
    let lines = log_until(&server, "refused delete", |line| line.contains(&escaped)).await;
    assert!(
        lines.iter().any(|line| line.contains("/ws?token=[redacted]")),
        "the upgrade request was not logged: {lines:#?}"
    );
    let signature = token.rsplit('.').next().expect("a signature");
    for line in &lines {
        assert!(!line.contains(signature), "the token is in the log: {line}");
        assert!(!line.starts_with("2099-01-01"), "a client forged a log line: {line}");
    }
}

/// The request ids that lines of a JSON log carry in their `request` span.
fn request_ids(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line["spans"].as_array())
        .flatten()
        .filter(|span| span["name"] == "request")
        .filter_map(|span| span["request_id"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(unix)]
#[tokio::test]
async fn json_logs_carry_request_ids_that_callers_cannot_abuse() {
    let server = ServerProcess::spawn(
        &["--dev", "--jwt-secret", SECRET, "--log-format", "json"],
        &[("RUST_LOG", "debug")],
    )
    .await;
    let http = reqwest::Client::new();
    let health = format!("{}/health", server.http_url());
    let get =
        |id: reqwest::header::HeaderValue| http.get(&health).header("x-request-id", id).send();

    // A caller's well-formed id is kept, logged and echoed.
    let traced = get("trace-42.a:b_c".parse().unwrap()).await.unwrap();
    assert_eq!(traced.headers()["x-request-id"], "trace-42.a:b_c");
    // Any other is replaced by one of ours: too long, spaces, JSON, non-ASCII.
    let hostile: Vec<Vec<u8>> = vec![
        "x".repeat(65).into_bytes(),
        b"two words".to_vec(),
        br#"{"level":"ERROR"}"#.to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
    ];
    for id in &hostile {
        let reply = get(reqwest::header::HeaderValue::from_bytes(id).unwrap()).await.unwrap();
        let given = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&given).is_ok(), "{given} replaced {id:?}");
    }
    // Without one, the request gets ours.
    let plain = http.get(&health).send().await.unwrap();
    let ours = plain.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&ours).is_ok(), "{ours}");

    // A WebSocket: one line ties the upgrade's request id to the connection.
    let token = sign(SECRET, &claims("alice", "Alice"));
    let mut alice = WsClient::connect(&format!("{}?token={token}", server.ws_url())).await;
    alice.expect_type("ready").await;
    alice.join("general").await;
    log_until(&server, "the opened connection", |line| line.contains("connection opened")).await;
    // And the lines of the request that served `plain`, ended by its response.
    log_until(&server, "our request id", |line| line.contains(&ours)).await;

    let lines: Vec<serde_json::Value> = server
        .output()
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object: {e}: {line}"))
        })
        .collect();
    let ids = request_ids(&lines);
    assert!(ids.iter().any(|id| id == "trace-42.a:b_c"), "{ids:?}");
    assert!(ids.contains(&ours), "{ids:?}");
    for id in &hostile {
        let id = String::from_utf8_lossy(id);
        assert!(!ids.iter().any(|logged| *logged == id), "a hostile id was logged: {id}");
    }
    let opened = lines
        .iter()
        .find(|line| line["fields"]["message"] == "connection opened")
        .expect("the connection's opening line");
    let upgrade_id = opened["fields"]["request_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(upgrade_id).is_ok(), "{opened}");
    let upgrade = lines
        .iter()
        .filter_map(|line| line["spans"].as_array())
        .flatten()
        .find(|span| span["request_id"] == upgrade_id)
        .unwrap_or_else(|| panic!("no request span with the upgrade's id {upgrade_id}"));
    assert_eq!(upgrade["uri"], "/ws?token=[redacted]", "{upgrade}");
    assert_eq!(opened["spans"][0]["name"], "conn", "{opened}");
}
