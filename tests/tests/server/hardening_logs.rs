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
