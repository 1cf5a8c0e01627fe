//! Bad input: each malformed or refused frame gets an `error` with the right
//! code (and its `ref` when one could be read) and the connection stays
//! usable; oversized WebSocket frames close the connection with 1009.
//! Every server test runs on both engines (a refusal must not depend on
//! where the state is kept).

use roomcast_tests::{Engine, TestServer, WsClient, every_engine, frame_type};
use serde_json::{Value, json};

/// A frame as sent, the error code it must get, and the `ref` the error must
/// echo (`Null` when the frame has none that could be read).
struct Row {
    frame: String,
    code: &'static str,
    reference: Value,
}

fn row(frame: impl Into<String>, code: &'static str, reference: Value) -> Row {
    Row { frame: frame.into(), code, reference }
}

fn rows() -> Vec<Row> {
    let long_room = "x".repeat(129);
    let too_long = "a".repeat(100);
    vec![
        // Not a frame at all.
        row("not json", "bad_request", Value::Null),
        row("{\"type\": \"ping\"", "bad_request", Value::Null),
        row("[1, 2, 3]", "bad_request", Value::Null),
        row("42", "bad_request", Value::Null),
        row("", "bad_request", Value::Null),
        // Unknown or missing type.
        row(r#"{"type": "teleport", "ref": "t1"}"#, "bad_request", json!("t1")),
        row(r#"{"type": "teleport", "ref": 5}"#, "bad_request", json!(5)),
        row(r#"{"ref": "t2"}"#, "bad_request", json!("t2")),
        row(r#"{"type": 7, "ref": "t3"}"#, "bad_request", json!("t3")),
        // Missing fields.
        row(r#"{"type": "join", "ref": "m1"}"#, "bad_request", json!("m1")),
        row(
            r#"{"type": "send", "room": "general", "content": "hi", "ref": "m2"}"#,
            "bad_request",
            json!("m2"),
        ),
        row(
            r#"{"type": "send", "room": "general", "client_id": "c", "ref": "m3"}"#,
            "bad_request",
            json!("m3"),
        ),
        row(r#"{"type": "auth", "ref": "m4"}"#, "bad_request", json!("m4")),
        // A key with a control character (NUL cannot even be stored).
        row(
            r#"{"type": "send", "room": "general", "content": "hi", "client_id": "a\u0000b", "ref": "k1"}"#,
            "bad_request",
            json!("k1"),
        ),
        row(
            r#"{"type": "send", "room": "general", "content": "hi", "client_id": "a\nb", "ref": "k2"}"#,
            "bad_request",
            json!("k2"),
        ),
        // An edit naming a message id with NUL: no such message.
        row(
            r#"{"type": "edit", "room": "general", "id": "x\u0000", "content": "c", "ref": "k3"}"#,
            "not_found",
            json!("k3"),
        ),
        row(
            r#"{"type": "edit", "room": "general", "id": "x", "ref": "m5"}"#,
            "bad_request",
            json!("m5"),
        ),
        // Wrong types.
        row(r#"{"type": "join", "room": 42, "ref": "w1"}"#, "bad_request", json!("w1")),
        row(
            r#"{"type": "send", "room": "general", "content": 5, "client_id": "c", "ref": "w2"}"#,
            "bad_request",
            json!("w2"),
        ),
        row(
            r#"{"type": "typing", "room": "general", "is_typing": "yes", "ref": "w3"}"#,
            "bad_request",
            json!("w3"),
        ),
        row(
            r#"{"type": "history", "room": "general", "limit": "ten", "ref": "w4"}"#,
            "bad_request",
            json!("w4"),
        ),
        row(
            r#"{"type": "presence", "status": "sleeping", "ref": "w5"}"#,
            "bad_request",
            json!("w5"),
        ),
        row(
            r#"{"type": "join", "room": "general", "since": {"epoch": "e"}, "ref": "w6"}"#,
            "bad_request",
            json!("w6"),
        ),
        // Invalid room names.
        row(r#"{"type": "join", "room": "has space", "ref": "n1"}"#, "bad_request", json!("n1")),
        row(r#"{"type": "join", "room": "", "ref": "n2"}"#, "bad_request", json!("n2")),
        row(
            format!(r#"{{"type": "join", "room": "{long_room}", "ref": "n3"}}"#),
            "bad_request",
            json!("n3"),
        ),
        row(r#"{"type": "join", "room": "slash/", "ref": "n4"}"#, "bad_request", json!("n4")),
        // Well formed, but refused.
        row(r#"{"type": "join", "room": "user:bob", "ref": "f1"}"#, "forbidden", json!("f1")),
        row(
            r#"{"type": "send", "room": "elsewhere", "content": "x", "client_id": "c", "ref": "f2"}"#,
            "forbidden",
            json!("f2"),
        ),
        row(
            r#"{"type": "read", "room": "elsewhere", "id": "x", "ref": "f3"}"#,
            "forbidden",
            json!("f3"),
        ),
        row(
            r#"{"type": "edit", "room": "general", "id": "nope", "content": "x", "ref": "f4"}"#,
            "not_found",
            json!("f4"),
        ),
        row(
            r#"{"type": "delete", "room": "general", "id": "nope", "ref": "f5"}"#,
            "not_found",
            json!("f5"),
        ),
        row(
            format!(
                r#"{{"type": "send", "room": "general", "content": "{too_long}", "client_id": "c", "ref": "l1"}}"#
            ),
            "too_large",
            json!("l1"),
        ),
    ]
}

every_engine!(each_bad_frame_gets_its_error_and_the_connection_stays_usable);
async fn each_bad_frame_gets_its_error_and_the_connection_stays_usable(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.max_content_bytes = 64).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;

    let mut failures = Vec::new();
    for row in rows() {
        alice.send_text(&row.frame).await;
        let reply = alice.recv().await;
        let ok = frame_type(&reply) == "error"
            && reply["code"] == row.code
            && reply["message"].is_string()
            && (row.reference.is_null() || reply["ref"] == row.reference);
        if !ok {
            failures.push(format!(
                "{:.80} -> expected {} (ref {}), got {reply}",
                row.frame, row.code, row.reference
            ));
        }
        // Each error leaves the connection open and in order.
        alice.assert_usable().await;
    }
    assert!(failures.is_empty(), "{} rows failed:\n{}", failures.len(), failures.join("\n"));

    // Nothing above was sent: the room is still empty.
    let history = alice.call(json!({"type": "history", "room": "general"})).await;
    assert_eq!(history["messages"], json!([]), "{history}");
}

every_engine!(unknown_fields_are_ignored);
async fn unknown_fields_are_ignored(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.send(json!({"type": "ping", "ref": "p", "future_field": {"x": 1}})).await;
    let pong = alice.expect_type("pong").await;
    assert_eq!(pong["ref"], "p");
    assert!(pong["time"].is_string(), "{pong}");
    let joined = alice.call(json!({"type": "join", "room": "general", "color": "blue"})).await;
    assert_eq!(frame_type(&joined), "joined", "{joined}");
}

every_engine!(a_binary_frame_is_a_bad_request);
async fn a_binary_frame_is_a_bad_request(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.send_binary(br#"{"type": "ping"}"#).await;
    alice.expect_error("bad_request").await;
    alice.assert_usable().await;
}

every_engine!(bad_frames_before_auth_get_errors_and_keep_the_connection);
async fn bad_frames_before_auth_get_errors_and_keep_the_connection(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut client = WsClient::connect(&server.ws_url()).await;
    client.send_text("not json").await;
    let error = client.expect_type("error").await;
    assert!(matches!(error["code"].as_str(), Some("bad_request" | "unauthorized")), "{error}");
    client
        .send_text(
            r#"{"type": "send", "room": "general", "content": "x", "client_id": "c", "ref": 9}"#,
        )
        .await;
    let error = client.expect_error("unauthorized").await;
    assert_eq!(error["ref"], 9);
    client.assert_usable().await;
}

every_engine!(a_frame_over_the_frame_limit_closes_with_1009);
async fn a_frame_over_the_frame_limit_closes_with_1009(engine: Engine) {
    let server = TestServer::with_on(engine, |c| c.limits.max_frame_bytes = 4096).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("general").await;

    let big =
        json!({"type": "send", "room": "general", "content": "a".repeat(8192), "client_id": "big"});
    alice.send(big).await;
    assert_eq!(alice.expect_close().await, 1009);
    // Other connections are not affected, and nothing was sent.
    let history = bob.call_ok(json!({"type": "history", "room": "general"}), "history").await;
    assert_eq!(history["messages"], json!([]));
}

every_engine!(content_over_its_limit_inside_a_smaller_frame_is_too_large);
async fn content_over_its_limit_inside_a_smaller_frame_is_too_large(engine: Engine) {
    let server = TestServer::with_on(engine, |c| {
        c.limits.max_frame_bytes = 4096;
        c.limits.max_content_bytes = 100;
    })
    .await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let frame =
        json!({"type": "send", "room": "general", "content": "a".repeat(3000), "client_id": "c"});
    let error = alice.call(frame).await;
    assert_eq!(error["code"], "too_large", "{error}");
    alice.assert_usable().await;
}

/// Where docs/security.md keeps the table of bad frames, generated from
/// [`rows`] so that it cannot go stale.
const TABLE_START: &str = "<!-- bad-input-table:start -->";
const TABLE_END: &str = "<!-- bad-input-table:end -->";

fn render_table() -> String {
    let mut table = String::from("| frame sent | `error` code | `ref` echoed |\n|---|---|---|\n");
    for row in rows() {
        let mut frame = row.frame.replace('|', "\\|");
        if frame.chars().count() > 70 {
            let kept: String = frame.chars().take(60).collect();
            frame = format!("{kept}… ({} bytes)", row.frame.len());
        }
        let frame = if frame.is_empty() { "(empty)".to_owned() } else { format!("`{frame}`") };
        let reference =
            if row.reference.is_null() { "-".to_owned() } else { format!("`{}`", row.reference) };
        table.push_str(&format!("| {frame} | `{}` | {reference} |\n", row.code));
    }
    table
}

#[test]
fn the_security_doc_lists_every_bad_frame_tested() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md");
    let doc = std::fs::read_to_string(&path).expect("docs/security.md");
    let (Some(start), Some(end)) = (doc.find(TABLE_START), doc.find(TABLE_END)) else {
        panic!("docs/security.md lacks the {TABLE_START} / {TABLE_END} markers");
    };
    let table = render_table();
    assert_eq!(
        doc[start + TABLE_START.len()..end].trim(),
        table.trim(),
        "docs/security.md is stale: put this table between its markers:\n{table}"
    );
}

every_engine!(a_request_that_is_not_a_websocket_upgrade_gets_a_json_error);
async fn a_request_that_is_not_a_websocket_upgrade_gets_a_json_error(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    server.get("/ws").await.expect_error(400, "bad_request");

    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
    let mut request = server.ws_url().into_client_request().expect("a request");
    request.headers_mut().insert("sec-websocket-version", "8".parse().expect("a header value"));
    match tokio_tungstenite::connect_async(request).await {
        Err(Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("version 13"), "{body}");
        }
        other => panic!("an old WebSocket version was not refused: {other:?}"),
    }
}

every_engine!(a_known_path_with_another_method_gets_a_json_405);
async fn a_known_path_with_another_method_gets_a_json_405(engine: Engine) {
    use reqwest::Method;

    let server = TestServer::start_on(engine).await;
    let key = Some(server.api_key());
    for (method, path, key) in [
        (Method::DELETE, "/api/notify", key),
        (Method::PUT, "/api/rooms/lobby/messages", key),
        (Method::POST, "/health", None),
        (Method::POST, "/ws", None),
    ] {
        let reply = server.http(method.clone(), path, key, None).await;
        reply.expect_error(405, "bad_request");
        let message = reply.json()["error"]["message"].to_string();
        assert!(message.contains(method.as_str()) && message.contains(path), "{message}");
    }
}
