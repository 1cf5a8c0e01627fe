//! The fallback transport (`GET /sse`, `POST /sse/{key}`): a real HTTP
//! client reading the event stream and posting frames, beside WebSocket
//! clients in the same rooms, on every engine.

use std::time::Duration;

use roomcast_tests::{Engine, TestServer, WsClient, every_engine, frame_type};
use serde_json::{Value, json};

/// How long anything the server should do may take.
const WAIT: Duration = Duration::from_secs(10);

/// A fallback client: the event stream, and POSTs to its key.
struct SseClient {
    http: reqwest::Client,
    base: String,
    stream: reqwest::Response,
    buffer: String,
    key: String,
}

/// One event of the stream.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

impl SseClient {
    /// Opens the stream (with `?token=` when given) and reads its `open`.
    async fn open(server: &TestServer, token: Option<&str>) -> Self {
        let http = reqwest::Client::new();
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        let stream =
            http.get(format!("{}/sse{query}", server.http_url())).send().await.expect("GET /sse");
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        let mut client = Self {
            http,
            base: server.http_url(),
            stream,
            buffer: String::new(),
            key: String::new(),
        };
        let open = client.event().await.expect("an open event");
        assert_eq!(open.name, "open", "{open:?}");
        client.key = serde_json::from_str::<Value>(&open.data).expect("JSON")["key"]
            .as_str()
            .expect("a key")
            .to_owned();
        client
    }

    /// The next event (comments skipped), or `None` when the stream ended.
    async fn event(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event { name: "message".into(), data: String::new() };
                let mut comment = true;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event.name = name.into();
                        comment = false;
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data.push_str(data);
                        comment = false;
                    }
                }
                if comment {
                    continue;
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.chunk())
                .await
                .expect("the stream went quiet")
                .expect("the stream failed")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next server frame.
    async fn recv(&mut self) -> Value {
        let event = self.event().await.expect("the stream ended");
        assert_eq!(event.name, "message", "{event:?}");
        serde_json::from_str(&event.data).expect("a JSON frame")
    }

    /// The first server frame of type `kind`.
    async fn recv_until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame_type(&frame) == kind {
                return frame;
            }
        }
    }

    /// POSTs `body` to this stream's key; the status.
    async fn post_raw(&self, key: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let reply = self
            .http
            .post(format!("{}/sse/{key}", self.base))
            .body(body)
            .send()
            .await
            .expect("POST /sse/{key}");
        let status = reply.status().as_u16();
        let text = reply.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, frame: Value) {
        let (status, body) = self.post_raw(&self.key, frame.to_string()).await;
        assert_eq!(status, 202, "{body}");
    }
}

/// A fallback client signed in as `user_id`, in `room`.
async fn joined(server: &TestServer, user_id: &str, room: &str) -> SseClient {
    joined_with(server, user_id, room).await.0
}

/// A fallback client signed in as `user_id`, in `room`, and its `joined`.
async fn joined_with(server: &TestServer, user_id: &str, room: &str) -> (SseClient, Value) {
    let mut client = SseClient::open(server, Some(&server.token(user_id, user_id))).await;
    let ready = client.recv().await;
    assert_eq!(frame_type(&ready), "ready", "{ready}");
    client.post(json!({"type": "join", "ref": 1, "room": room})).await;
    let joined = client.recv_until("joined").await;
    (client, joined)
}

every_engine!(messages_go_both_ways_with_websocket_clients_and_sends_are_acked);
async fn messages_go_both_ways_with_websocket_clients_and_sends_are_acked(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut native = WsClient::connect_as(&server, "bob", "Bob").await;
    native.join("general").await;
    let mut alice = joined(&server, "alice", "general").await;
    alice
        .post(json!({"type": "send", "ref": 2, "room": "general", "content": "over SSE", "client_id": "c-1"}))
        .await;
    let ack = alice.recv_until("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    let message = native.recv_until("message").await;
    assert_eq!((&message["content"], &message["id"]), (&json!("over SSE"), &ack["id"]));

    native
        .send(json!({"type": "send", "room": "general", "content": "over /ws", "client_id": "c-2"}))
        .await;
    // Her own message may come first.
    let message = loop {
        let message = alice.recv_until("message").await;
        if message["content"] != "over SSE" {
            break message;
        }
    };
    assert_eq!(message["content"], "over /ws");
    assert_eq!(message["sender"]["id"], "bob");
}

every_engine!(a_reopened_stream_recovers_exactly_what_it_missed);
async fn a_reopened_stream_recovers_exactly_what_it_missed(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let mut native = WsClient::connect_as(&server, "bob", "Bob").await;
    native.join("general").await;
    let (mut alice, first) = joined_with(&server, "alice", "general").await;
    native
        .send(json!({"type": "send", "room": "general", "content": "seen", "client_id": "c-1"}))
        .await;
    let seen = alice.recv_until("message").await;
    drop(alice);
    for i in 0..3 {
        let content = format!("missed {i}");
        native.send(json!({"type": "send", "room": "general", "content": content, "client_id": format!("m-{i}")})).await;
        native.recv_until("ack").await;
    }
    let mut again = SseClient::open(&server, Some(&server.token("alice", "alice"))).await;
    again.recv_until("ready").await;
    let since = json!({"epoch": first["epoch"], "offset": seen["offset"]});
    again.post(json!({"type": "join", "ref": 1, "room": "general", "since": since})).await;
    let joined = again.recv_until("joined").await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let mut contents: Vec<_> = joined["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    // With Redis, a message acked from the store may reach the room's
    // stream just after the join read it: it then comes live, once.
    while contents.len() < 3 {
        contents.push(again.recv_until("message").await["content"].clone());
    }
    assert_eq!(contents, [json!("missed 0"), json!("missed 1"), json!("missed 2")], "{joined}");
}

#[tokio::test]
async fn a_retried_send_is_acked_once_with_the_same_id() {
    let server = TestServer::start().await;
    let mut alice = joined(&server, "alice", "general").await;
    let send =
        json!({"type": "send", "room": "general", "content": "once", "client_id": "c-retry"});
    alice.post(send.clone()).await;
    let first = alice.recv_until("ack").await;
    alice.post(send).await;
    let second = alice.recv_until("ack").await;
    assert_eq!(first["id"], second["id"]);
    let mut native = WsClient::connect_as(&server, "bob", "Bob").await;
    let joined = native.call(json!({"type": "join", "room": "general", "history": 10})).await;
    let messages = joined["messages"].as_array().expect("messages");
    assert_eq!(messages.iter().filter(|m| m["content"] == "once").count(), 1, "{joined}");
}

#[tokio::test]
async fn without_a_token_the_stream_waits_for_an_auth_frame() {
    let server = TestServer::start().await;
    let mut client = SseClient::open(&server, None).await;
    client.post(json!({"type": "auth", "ref": 1, "token": server.token("alice", "Alice")})).await;
    let ready = client.recv().await;
    assert_eq!((frame_type(&ready), &ready["user"]["id"]), ("ready", &json!("alice")), "{ready}");
}

#[tokio::test]
async fn a_bad_token_gets_an_error_then_a_close_event_and_the_stream_ends() {
    let server = TestServer::start().await;
    let mut client = SseClient::open(&server, Some("not-a-jwt")).await;
    let error = client.recv().await;
    assert_eq!((frame_type(&error), &error["code"]), ("error", &json!("unauthorized")), "{error}");
    let close = client.event().await.expect("a close event");
    assert_eq!(close.name, "close");
    assert_eq!(serde_json::from_str::<Value>(&close.data).expect("JSON")["code"], 4001);
    assert!(client.event().await.is_none(), "the stream ends after close");
    // Its key is gone with it.
    let (status, body) = client.post_raw(&client.key, r#"{"type":"ping"}"#).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{body}");
}

#[tokio::test]
async fn hostile_posts_get_a_clear_error() {
    let server = TestServer::start().await;
    let mut alice = joined(&server, "alice", "general").await;
    // Keys that were never given out: empty-looking, guessed, huge.
    for key in ["0", &"0".repeat(32), &"a".repeat(4000), "..%2F..%2Fapi"] {
        let (status, body) = alice.post_raw(key, r#"{"type":"ping"}"#).await;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")), "{key}: {body}");
    }
    let key = alice.key.clone();
    let limit = server.config().limits.max_frame_bytes;
    let (status, body) = alice.post_raw(&key, vec![b' '; limit + 1]).await;
    assert_eq!((status, &body["error"]["code"]), (413, &json!("too_large")), "{body}");
    let (status, body) = alice.post_raw(&key, vec![0xff, 0xfe]).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_request")), "{body}");
    // A frame the session cannot read is answered on the stream, as on /ws.
    let (status, _) = alice.post_raw(&key, "{not json").await;
    assert_eq!(status, 202);
    let error = alice.recv_until("error").await;
    assert_eq!(error["code"], "bad_request", "{error}");
    // And the connection stays.
    alice.post(json!({"type": "ping", "ref": 9})).await;
    assert_eq!(alice.recv_until("pong").await["ref"], 9);
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_its_rooms_and_its_key_is_gone() {
    let server = TestServer::with(|config| {
        config.timing.heartbeat = Duration::from_millis(500);
        config.timing.presence_grace = Duration::from_millis(100);
    })
    .await;
    let mut native = WsClient::connect_as(&server, "bob", "Bob").await;
    native.call(json!({"type": "join", "room": "general", "member_events": true})).await;
    let alice = joined(&server, "alice", "general").await;
    native.recv_arrival("alice").await;
    let key = alice.key.clone();
    let poster = alice.http.clone();
    // The stream is read no more: the server finds out at its next write.
    drop(alice);
    native.recv_departure("alice").await;
    let reply = poster
        .post(format!("{}/sse/{key}", server.http_url()))
        .body(r#"{"type":"ping"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(reply.status(), 404);
}

#[tokio::test]
async fn a_stream_that_is_not_read_is_closed_as_a_slow_consumer_and_the_server_stays() {
    let server = TestServer::with(|config| config.limits.send_queue_bytes = 64 * 1024).await;
    let alice = joined(&server, "alice", "firehose").await;
    // Alice's client stops reading; a backend floods the room with far more
    // than her queue, the stream's few chunks and the sockets' buffers hold.
    let flood = 4000;
    let content = "x".repeat(1000);
    for i in 0..flood {
        let body = json!({"content": content, "client_id": format!("f-{i}")});
        server.api_post("/api/rooms/firehose/messages", body).await.expect(201);
    }
    // What she reads is what was written before the close, then the end.
    let mut alice = alice;
    let mut delivered = 0;
    while let Some(event) = alice.event().await {
        if event.data.contains("\"type\":\"message\"") {
            delivered += 1;
        }
    }
    assert!(delivered < flood, "all {flood} messages were held for a client that did not read");
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    bob.join("firehose").await;
}

#[tokio::test]
async fn pages_of_other_sites_can_neither_open_a_stream_nor_post_to_one() {
    let server = TestServer::start().await;
    let alice = joined(&server, "alice", "general").await;
    let http = reqwest::Client::new();
    let token = server.token("mallory", "Mallory");
    let opened = http
        .get(format!("{}/sse?token={token}", server.http_url()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(opened.status(), 403);
    let posted = http
        .post(format!("{}/sse/{}", server.http_url(), alice.key))
        .header("origin", "https://evil.example")
        .body(r#"{"type":"send","room":"general","content":"forged","client_id":"x"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 403);
    // A local page (dev mode) may.
    let posted = http
        .post(format!("{}/sse/{}", server.http_url(), alice.key))
        .header("origin", "http://localhost:5173")
        .body(r#"{"type":"ping"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status(), 202);
}

#[tokio::test]
async fn an_allowed_page_of_another_origin_gets_cors_headers() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let token = server.token("alice", "Alice");
    let opened = http
        .get(format!("{}/sse?token={token}", server.http_url()))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["access-control-allow-origin"], "http://localhost:5173");
    // A POST with a JSON content type is preflighted.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{}/sse/0", server.http_url()))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("OPTIONS");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://localhost:5173");
}
