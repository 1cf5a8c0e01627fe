//! A message's `data` (a JSON object beside its content, by convention
//! `attachments`): sent by a client or the HTTP API, kept exactly (empty
//! arrays, long numbers) through the live broadcast, history, recovery,
//! edits that keep, replace or remove it, and a restart; refused with a
//! clear error when it is oversized, too deep, not an object, or when a
//! message would have neither content nor data; seen by the publish hook
//! and by webhooks.

use std::time::Duration;

use roomcast_server::config::{FailureMode, PublishHook, Rate, WebhookEndpoint, Webhooks};
use roomcast_server::webhooks::Kind;
use roomcast_tests::server::TempDatabase;
use roomcast_tests::{Engine, HookServer, Reply, TestServer, WsClient, every_engine, frame_type};
use serde_json::{Value, json};

use crate::chat::alice_and_bob;

const QUIET: Duration = Duration::from_millis(300);

/// Data that a lossy JSON round trip would change: an empty array and an
/// empty object, a 17-digit integer, a float, nesting and non-ASCII text.
fn attachments() -> Value {
    json!({
        "attachments": [
            {"url": "https://example.com/files/plan.png", "name": "plan é.png",
             "type": "image/png", "size": 12_345_678_901_234_567_u64},
            {"url": "https://example.com/files/notes.txt", "name": "notes.txt"}
        ],
        "tags": [],
        "meta": {},
        "ratio": 0.1,
        "kind": {"direction": "inbound", "channel": {"name": "email", "depth": [1, [2, [3]]]}}
    })
}

fn send_with(content: &str, client_id: &str, data: Value) -> Value {
    json!({"type": "send", "room": "general", "content": content, "client_id": client_id, "data": data})
}

fn edit(id: &str, content: &str, data: Option<Value>) -> Value {
    let mut frame = json!({"type": "edit", "room": "general", "id": id, "content": content});
    if let Some(data) = data {
        frame["data"] = data;
    }
    frame
}

async fn history(client: &mut WsClient) -> Vec<Value> {
    let reply = client.call(json!({"type": "history", "room": "general"})).await;
    assert_eq!(frame_type(&reply), "history", "{reply}");
    reply["messages"].as_array().expect("messages").clone()
}

every_engine!(data_travels_with_the_message_live_in_history_and_in_recovery);
async fn data_travels_with_the_message_live_in_history_and_in_recovery(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    // An attachment alone: empty content beside data.
    let ack = alice.call(send_with("", "c1", attachments())).await;
    assert_eq!(frame_type(&ack), "ack", "{ack}");
    let id = ack["id"].as_str().expect("an id").to_owned();
    for client in [&mut alice, &mut bob] {
        let message = client.expect_type("message").await;
        assert_eq!((&message["content"], &message["data"]), (&json!(""), &attachments()));
    }
    let kept = history(&mut bob).await;
    assert_eq!(kept[0]["data"], attachments(), "history");

    // Bob drops off at this position; alice edits and sends meanwhile.
    let position = position_now(&server).await;
    bob.close().await;

    // Content alone keeps the data...
    alice.call_ok(edit(&id, "the plan", None), "ack").await;
    let kept_data = alice.expect_type("message_updated").await;
    assert_eq!(kept_data["data"], attachments(), "an edit without data keeps it");
    // ...data replaces it...
    let replaced = json!({"attachments": [{"url": "https://example.com/v2.png"}], "n": []});
    alice.call_ok(edit(&id, "", Some(replaced.clone())), "ack").await;
    assert_eq!(alice.expect_type("message_updated").await["data"], replaced);
    // ...and a later message has its own.
    alice.call_ok(send_with("second", "c2", json!({"x": 1})), "ack").await;
    alice.expect_type("message").await;

    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let since = json!({"type": "join", "room": "general", "since": position});
    let joined = bob.call_ok(since, "joined").await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let events = joined["messages"].as_array().expect("recovered events");
    let types: Vec<&str> = events.iter().map(frame_type).collect();
    assert_eq!(types, ["message_updated", "message_updated", "message"], "{joined}");
    assert_eq!(events[0]["data"], attachments());
    assert_eq!(events[1]["data"], replaced);
    assert_eq!(events[2]["data"], json!({"x": 1}));

    // `{}` removes it; the message keeps its content.
    alice.call_ok(edit(&id, "no files", Some(json!({}))), "ack").await;
    let removed = bob.expect_type("message_updated").await;
    assert!(removed.get("data").is_none(), "{removed}");
    let kept = history(&mut bob).await;
    assert_eq!((&kept[0]["content"], kept[0].get("data")), (&json!("no files"), None));
    assert_eq!(kept[1]["data"], json!({"x": 1}));

    // The backend's publish carries data as well, in the API's history too.
    let reply = server
        .api_post(
            "/api/rooms/general/messages",
            json!({"data": attachments(), "client_id": "api-1"}),
        )
        .await;
    reply.expect(201);
    let message = bob.expect_type("message").await;
    assert_eq!((&message["content"], &message["data"]), (&json!(""), &attachments()));
    let page = server.api_get("/api/rooms/general/messages").await.expect(200);
    assert_eq!(page["messages"][2]["data"], attachments(), "{page}");

    if engine == Engine::Memory {
        return;
    }
    // What a store or Redis keeps is still there after a restart.
    drop((alice, bob));
    let server = server.restart().await;
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    carol.join("general").await;
    let kept = history(&mut carol).await;
    let data: Vec<Option<&Value>> = kept.iter().map(|m| m.get("data")).collect();
    assert_eq!(data, [None, Some(&json!({"x": 1})), Some(&attachments())]);
}

/// The room's position now, as a client there would have it: its epoch
/// and the offset of its last event (asked by a connection of its own).
async fn position_now(server: &TestServer) -> Value {
    let mut dave = WsClient::connect_as(server, "dave", "Dave").await;
    let joined = dave.call_ok(json!({"type": "join", "room": "general"}), "joined").await;
    dave.close().await;
    json!({"epoch": joined["epoch"], "offset": joined["offset"]})
}

#[tokio::test]
async fn data_survives_a_kill_of_the_binary_with_its_sqlite_file() {
    let dir = TempDatabase::new();
    let flags = ["--max-message-data-bytes", "1024"];
    let server = crate::durable::start_with(&dir.url(), &flags).await;
    let mut alice = crate::durable::connect(&server, "alice").await;
    alice.join("general").await;
    alice.call_ok(send_with("", "c1", attachments()), "ack").await;
    alice.expect_type("message").await;
    // The flag is the bound.
    let big = json!({"text": "x".repeat(1024)});
    alice.send(send_with("big", "c2", big)).await;
    alice.expect_error("too_large").await;
    server.signal("KILL");

    let server = crate::durable::start_with(&dir.url(), &flags).await;
    let mut alice = crate::durable::connect(&server, "alice").await;
    let joined =
        alice.call_ok(json!({"type": "join", "room": "general", "history": 10}), "joined").await;
    let messages = joined["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{joined}");
    assert_eq!(messages[0]["data"], attachments());
}

#[tokio::test]
async fn hostile_data_is_refused_with_an_error_and_nothing_is_kept() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let limits = server.config().limits.clone();

    let nested = |levels: usize| {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        value
    };
    let cases = [
        (
            "oversized",
            send_with("x", "c1", json!({"t": "x".repeat(limits.max_message_data_bytes)})),
            "too_large",
        ),
        (
            "too deep",
            send_with("x", "c2", json!({"d": nested(limits.max_message_data_depth)})),
            "bad_request",
        ),
        ("a string", send_with("x", "c3", json!("text")), "bad_request"),
        ("a number", send_with("x", "c4", json!(42)), "bad_request"),
        ("an array", send_with("x", "c5", json!([{"url": "https://example.com"}])), "bad_request"),
        ("neither content nor data", send_with("", "c6", Value::Null), "bad_request"),
        ("blank content, empty data", send_with("  ", "c7", json!({})), "bad_request"),
    ];
    for (what, frame, code) in cases {
        let refused = alice.call(frame).await;
        assert_eq!(
            (frame_type(&refused), refused["code"].as_str()),
            ("error", Some(code)),
            "{what}: {refused}"
        );
    }
    // Deeper than any JSON parser here follows: an error frame, not a close.
    let text = format!(
        r#"{{"type":"send","ref":9,"room":"general","content":"x","client_id":"c8","data":{{"d":{}}}}}"#,
        nested(1000)
    );
    alice.send_text(&text).await;
    let refused = alice.expect_error("bad_request").await;
    assert!(refused.get("type").is_some(), "{refused}");
    let id = alice.say("general", "plain").await["id"].as_str().expect("an id").to_owned();
    bob.expect_type("message").await;
    // An edit to nothing at all is refused too, and an oversized one.
    let refused = alice.call(edit(&id, "", None)).await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    let big = json!({"t": "x".repeat(limits.max_message_data_bytes)});
    assert_eq!(alice.call(edit(&id, "x", Some(big))).await["code"], "too_large");
    let refused = alice.call(edit(&id, "", Some(json!({})))).await;
    assert_eq!(refused["code"], "bad_request", "removing data from a message with no text");

    bob.expect_silence(QUIET).await;
    alice.assert_usable().await;
    let kept = history(&mut bob).await;
    assert_eq!(kept.len(), 1);
    assert_eq!((&kept[0]["content"], kept[0].get("data")), (&json!("plain"), None));

    // The same bounds on the HTTP API.
    let path = "/api/rooms/general/messages";
    let api = [
        (
            json!({"content": "x", "data": {"t": "x".repeat(limits.max_message_data_bytes)}}),
            413,
            "too_large",
        ),
        (
            json!({"content": "x", "data": {"d": nested(limits.max_message_data_depth)}}),
            400,
            "bad_request",
        ),
        (json!({"content": "x", "data": "text"}), 400, "bad_request"),
        (json!({"data": {}}), 400, "bad_request"),
        (json!({}), 400, "bad_request"),
    ];
    for (body, status, code) in api {
        server.api_post(path, body).await.expect_error(status, code);
    }
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_publish_hook_sees_the_data_and_may_replace_it() {
    let hook = HookServer::start(Reply::allow()).await;
    let url = reqwest::Url::parse(&hook.url()).expect("a hook URL");
    let server = TestServer::with(|config| {
        let timeout = Duration::from_secs(2);
        config.hooks.publish = Some(PublishHook { url, timeout, on_failure: FailureMode::Closed });
    })
    .await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    // Allowed as sent: the client's data is kept.
    alice.call_ok(send_with("", "c1", attachments()), "ack").await;
    assert_eq!(bob.expect_type("message").await["data"], attachments());
    let asked = hook.requests();
    assert_eq!(asked[0].body["data"], attachments(), "the hook saw the data");

    // The hook's own data replaces the client's (it saw it, so it can merge).
    hook.answer_with(|asked| {
        let mut data = asked["data"].clone();
        data["scanned"] = json!(true);
        Reply::Json(200, json!({"action": "allow", "data": data}))
    });
    alice.call_ok(send_with("hi", "c2", json!({"a": 1})), "ack").await;
    assert_eq!(bob.expect_type("message").await["data"], json!({"a": 1, "scanned": true}));

    // An edit's data reaches the hook, and the hook's answer is the edit's.
    let id = history(&mut bob).await[0]["id"].as_str().expect("an id").to_owned();
    hook.answer(Reply::Json(200, json!({"action": "allow", "data": {"by": "hook"}})));
    alice.call_ok(edit(&id, "edited", Some(json!({"b": 2}))), "ack").await;
    assert_eq!(bob.expect_type("message_updated").await["data"], json!({"by": "hook"}));
    let asked = hook.requests();
    let last = &asked.last().expect("the edit was asked").body;
    assert_eq!((&last["type"], &last["data"]), (&json!("edit"), &json!({"b": 2})));

    // A hook that strips the data off an attachment-only message leaves
    // nothing to store: refused, not stored empty.
    hook.answer(Reply::Json(200, json!({"action": "allow", "data": {}})));
    let refused = alice.call(send_with("", "c3", attachments())).await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn webhooks_carry_the_data_of_messages_and_edits() {
    let receiver = HookServer::start(Reply::Json(200, json!({}))).await;
    let url = receiver.url().parse().expect("a webhook URL");
    let endpoint = WebhookEndpoint { url, kinds: vec![Kind::Message, Kind::MessageUpdated] };
    let server = TestServer::with_on(Engine::Sqlite, |config| {
        config.webhooks = Webhooks {
            endpoints: vec![endpoint],
            secret: "secret".into(),
            delivery: Default::default(),
        };
        let fast = Rate::new(10_000.0, 10_000);
        (config.limits.messages, config.limits.user_messages) = (fast, fast);
    })
    .await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    let id = alice.call_ok(send_with("", "c1", attachments()), "ack").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    alice.call_ok(edit(&id, "with a caption", None), "ack").await;

    let requests = receiver.wait_for("both events", |r| r.len() >= 2).await;
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    assert_eq!(
        (&bodies[0]["type"], &bodies[0]["data"]["data"]),
        (&json!("message"), &attachments())
    );
    assert_eq!(
        (&bodies[1]["type"], &bodies[1]["data"]["data"]),
        (&json!("message_updated"), &attachments()),
        "an edit that keeps the data tells the backend what the message has"
    );
}
