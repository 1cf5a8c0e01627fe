//! The backend's hooks against a real HTTP receiver ([`HookServer`]): the
//! publish hook allows, rejects or rewrites every `send` and `edit`, and
//! fails closed or open; the connect hook signs in a client by its session
//! cookie, refuses it, fails, and answers refreshes.

use std::time::Duration;

use roomcast_server::config::{ConnectHook, FailureMode, PublishHook};
use roomcast_tests::{Engine, HookServer, Reply, TestServer, WsClient, every_engine, frame_type};
use serde_json::{Value, json};

use crate::chat::{alice_and_bob, send};

const QUIET: Duration = Duration::from_millis(300);
/// The hook timeout of these tests: short, so that a slow hook is quick to test.
const TIMEOUT: Duration = Duration::from_millis(500);

async fn with_publish_hook(engine: Engine, url: &str, on_failure: FailureMode) -> TestServer {
    let url = reqwest::Url::parse(url).expect("a hook URL");
    TestServer::with_on(engine, |config| {
        config.hooks.publish = Some(PublishHook { url, timeout: TIMEOUT, on_failure });
    })
    .await
}

async fn history(client: &mut WsClient) -> Vec<Value> {
    let reply = client.call(json!({"type": "history", "room": "general"})).await;
    assert_eq!(frame_type(&reply), "history", "{reply}");
    reply["messages"].as_array().expect("messages").clone()
}

every_engine!(a_rejected_message_is_neither_stored_nor_broadcast);
async fn a_rejected_message_is_neither_stored_nor_broadcast(engine: Engine) {
    let hook = HookServer::start(Reply::Json(
        200,
        json!({"action": "reject", "code": "blocked_link", "reason": "No links to that site"}),
    ))
    .await;
    let server = with_publish_hook(engine, &hook.url(), FailureMode::Closed).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    let refused = alice.call(send("see evil.example", "c1")).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("rejected"))
    );
    assert_eq!(refused["message"], "No links to that site");
    assert_eq!(refused["reason_code"], "blocked_link");
    bob.expect_silence(QUIET).await;
    alice.expect_silence(QUIET).await;
    assert!(history(&mut bob).await.is_empty(), "nothing stored");

    // The hook saw who sent what where.
    let asked = hook.requests();
    assert_eq!(asked.len(), 1);
    let body = &asked[0].body;
    assert_eq!(body["type"], "send");
    assert_eq!(body["room"], "general");
    assert_eq!(body["content"], "see evil.example");
    assert_eq!(body["client_id"], "c1");
    assert_eq!(
        (body["user"]["id"].as_str(), body["user"]["name"].as_str()),
        (Some("alice"), Some("Alice"))
    );
    assert_eq!(asked[0].headers["content-type"], "application/json");

    // A retry of the same client_id is asked again, not answered from a
    // cache: the backend may have changed its mind.
    hook.answer(Reply::allow());
    let ack = alice.call(send("see evil.example", "c1")).await;
    assert_eq!(frame_type(&ack), "ack", "{ack}");
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(bob.expect_type("message").await["content"], "see evil.example");
}

every_engine!(a_rewritten_message_reaches_everyone_with_its_data);
async fn a_rewritten_message_reaches_everyone_with_its_data(engine: Engine) {
    let hook = HookServer::start(Reply::allow()).await;
    hook.answer_with(|asked| {
        let content = asked["content"].as_str().unwrap_or_default().replace("darn", "****");
        Reply::Json(
            200,
            json!({"action": "allow", "content": content, "data": {"mentions": ["bob"], "flag": 1}}),
        )
    });
    let server = with_publish_hook(engine, &hook.url(), FailureMode::Closed).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;

    let ack = alice.call(send("darn it @bob", "c1")).await;
    assert_eq!(frame_type(&ack), "ack", "{ack}");
    let expected_data = json!({"mentions": ["bob"], "flag": 1});
    for client in [&mut alice, &mut bob] {
        let message = client.expect_type("message").await;
        assert_eq!(message["content"], "**** it @bob");
        assert_eq!(message["data"], expected_data);
    }
    // History has them, and so does a late joiner's `joined`.
    let kept = history(&mut bob).await;
    assert_eq!(kept.len(), 1);
    assert_eq!((&kept[0]["content"], &kept[0]["data"]), (&json!("**** it @bob"), &expected_data));
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let joined = carol.call(json!({"type": "join", "room": "general", "history": 10})).await;
    assert_eq!(joined["messages"][0]["data"], expected_data, "{joined}");
    bob.recv_arrival("carol").await;
    // A message the hook attaches nothing to carries no `data` at all.
    hook.answer(Reply::allow());
    alice.call(send("plain", "c2")).await;
    let plain = bob.expect_type("message").await;
    assert!(plain.get("data").is_none(), "{plain}");
}

every_engine!(edits_go_through_the_hook);
async fn edits_go_through_the_hook(engine: Engine) {
    let hook = HookServer::start(Reply::allow()).await;
    let server = with_publish_hook(engine, &hook.url(), FailureMode::Closed).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let id = alice.call(send("first", "c1")).await["id"].as_str().expect("an id").to_owned();
    bob.expect_type("message").await;

    hook.answer(Reply::Json(200, json!({"action": "reject", "reason": "Edits are closed"})));
    let edit = json!({"type": "edit", "room": "general", "id": id, "content": "changed"});
    let refused = alice.call(edit.clone()).await;
    assert_eq!(refused["code"], "rejected", "{refused}");
    assert!(refused.get("reason_code").is_none(), "no code given: {refused}");
    bob.expect_silence(QUIET).await;

    hook.answer(Reply::Json(200, json!({"action": "allow", "content": "changed (moderated)"})));
    assert_eq!(frame_type(&alice.call(edit).await), "ack");
    assert_eq!(bob.expect_type("message_updated").await["content"], "changed (moderated)");
    let asked = hook.requests();
    let last = &asked.last().expect("asked").body;
    assert_eq!((last["type"].as_str(), last["id"].as_str()), (Some("edit"), Some(id.as_str())));
    assert!(last.get("client_id").is_none(), "{last}");
    assert_eq!(history(&mut bob).await[0]["content"], "changed (moderated)");
}

/// Hooks that fail, each in its own way.
async fn failing_hooks() -> Vec<(&'static str, String, Option<HookServer>)> {
    let mut hooks = Vec::new();
    for (what, reply) in [
        ("slow", Reply::Slow(TIMEOUT * 4, json!({"action": "allow"}))),
        ("garbage", Reply::Raw(200, "<html>oops</html>".into())),
        ("huge", Reply::Huge),
        ("500", Reply::Json(500, json!({"action": "allow"}))),
        ("wrong type", Reply::Json(200, json!({"action": "allow", "content": 5}))),
        (
            "content over the limit",
            Reply::Json(200, json!({"action": "allow", "content": "x".repeat(5000)})),
        ),
        (
            "data over the bound",
            Reply::Json(200, json!({"action": "allow", "data": "x".repeat(9000)})),
        ),
    ] {
        let hook = HookServer::start(reply).await;
        hooks.push((what, hook.url(), Some(hook)));
    }
    hooks.push(("unreachable", HookServer::unreachable_url().await, None));
    hooks
}

#[tokio::test]
async fn a_failing_hook_refuses_messages_when_closed() {
    for (what, url, _hook) in failing_hooks().await {
        let server = with_publish_hook(Engine::Memory, &url, FailureMode::Closed).await;
        let (mut alice, mut bob) = alice_and_bob(&server).await;
        let refused = alice.call(send("hello", "c1")).await;
        assert_eq!(refused["code"], "unavailable", "{what}: {refused}");
        assert!(
            !refused["message"].as_str().unwrap_or_default().contains("127.0.0.1"),
            "{what}: the hook's address is not told: {refused}"
        );
        bob.expect_silence(QUIET).await;
        assert!(history(&mut bob).await.is_empty(), "{what}: nothing stored");
        alice.assert_usable().await;
    }
}

#[tokio::test]
async fn a_failing_hook_lets_messages_through_as_sent_when_open() {
    for (what, url, _hook) in failing_hooks().await {
        let server = with_publish_hook(Engine::Memory, &url, FailureMode::Open).await;
        let (mut alice, mut bob) = alice_and_bob(&server).await;
        let ack = alice.call(send("hello", "c1")).await;
        assert_eq!(frame_type(&ack), "ack", "{what}: {ack}");
        let message = bob.expect_type("message").await;
        assert_eq!(message["content"], "hello", "{what}: as sent");
        assert!(message.get("data").is_none(), "{what}: {message}");
    }
}

async fn with_connect_hook(url: &str) -> TestServer {
    with_connect_hook_rechecking(url, None).await
}

async fn with_connect_hook_rechecking(url: &str, recheck: Option<Duration>) -> TestServer {
    let url = reqwest::Url::parse(url).expect("a hook URL");
    TestServer::with(|config| {
        config.hooks.connect = Some(ConnectHook { url, timeout: TIMEOUT, recheck });
    })
    .await
}

fn alice_session() -> Reply {
    Reply::Json(
        200,
        json!({"user": {"id": "alice", "name": "Alice", "role": "member"}, "rooms": ["team-*"]}),
    )
}

/// Connects with a session cookie and a header that must not be forwarded.
async fn connect_with_cookie(server: &TestServer) -> WsClient {
    WsClient::connect_with(
        &server.ws_url(),
        None,
        &[("cookie", "sid=s3cr3t"), ("user-agent", "test-agent"), ("x-internal", "no")],
    )
    .await
}

#[tokio::test]
async fn a_session_cookie_signs_in_as_the_hooks_user() {
    let hook = HookServer::start(alice_session()).await;
    let server = with_connect_hook(&hook.url()).await;
    let mut alice = connect_with_cookie(&server).await;
    let ready = alice.expect_type("ready").await;
    assert_eq!(
        ready["user"],
        json!({"id": "alice", "name": "Alice", "role": "member", "avatar": null})
    );
    let asked = hook.requests();
    assert_eq!(asked.len(), 1);
    let headers = &asked[0].body["headers"];
    assert_eq!(headers["cookie"], "sid=s3cr3t");
    assert_eq!(headers["user-agent"], "test-agent");
    assert!(
        headers.get("x-internal").is_none() && headers.get("sec-websocket-key").is_none(),
        "{headers}"
    );
    assert_eq!(asked[0].body["remote_addr"], "127.0.0.1");
    // The hook's rooms apply like a token's claim.
    let refused = alice.call(json!({"type": "join", "room": "general"})).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let joined = alice.call(json!({"type": "join", "room": "team-a"})).await;
    assert_eq!(frame_type(&joined), "joined", "{joined}");

    // A connection without a cookie is not asked about: it signs in with a token.
    let bob = WsClient::connect_as(&server, "bob", "Bob").await;
    assert_eq!(bob.ready["user"]["id"], "bob");
    assert_eq!(hook.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_or_invalid_session_is_closed() {
    for (reply, close) in [
        (Reply::Json(401, json!({"error": "no session"})), 4001),
        (Reply::Json(403, json!({})), 4001),
        (Reply::Json(200, json!({"user": {"id": "a,b", "name": "A"}})), 1013),
        (Reply::Raw(200, "garbage".into()), 1013),
        (Reply::Slow(TIMEOUT * 4, json!({"user": {"id": "alice", "name": "Alice"}})), 1013),
        (Reply::Json(502, json!({})), 1013),
        (Reply::Huge, 1013),
    ] {
        let hook = HookServer::start(reply.clone()).await;
        let server = with_connect_hook(&hook.url()).await;
        let mut client = connect_with_cookie(&server).await;
        let (frames, code) = client.frames_until_close().await;
        assert_eq!(code, close, "{reply:?}: {frames:?}");
        let expected = if close == 4001 { "unauthorized" } else { "unavailable" };
        assert_eq!(frames.last().map(|f| f["code"].clone()), Some(json!(expected)), "{reply:?}");
        assert!(frames.iter().all(|f| frame_type(f) != "ready"), "{reply:?}: {frames:?}");
    }
}

#[tokio::test]
async fn a_refresh_without_a_token_asks_the_hook_again() {
    let hook = HookServer::start(alice_session()).await;
    let server = with_connect_hook(&hook.url()).await;
    let mut alice = connect_with_cookie(&server).await;
    alice.expect_type("ready").await;

    hook.answer(Reply::Json(200, json!({"user": {"id": "alice", "name": "Alice B."}})));
    let ready = alice.call(json!({"type": "auth"})).await;
    assert_eq!((frame_type(&ready), &ready["user"]["name"]), ("ready", &json!("Alice B.")));
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(hook.requests()[1].body["headers"]["cookie"], "sid=s3cr3t", "the upgrade's cookie");
    // No rooms list any more: any public room.
    assert_eq!(frame_type(&alice.call(json!({"type": "join", "room": "general"})).await), "joined");

    // Another user for the same connection is refused, the connection stays.
    hook.answer(Reply::Json(200, json!({"user": {"id": "mallory", "name": "M"}})));
    assert_eq!(alice.call(json!({"type": "auth"})).await["code"], "forbidden");
    alice.assert_usable().await;

    // The session ended: the connection is closed like an expired token's.
    hook.answer(Reply::Json(401, json!({})));
    alice.send(json!({"type": "auth"})).await;
    let (_, code) = alice.frames_until_close().await;
    assert_eq!(code, 4001);
}

/// Unprompted, every `--connect-hook-recheck-secs`: a failed call keeps the
/// connection (a backend down for a while signs no one out), a new
/// profile is taken silently, and a session ended in the backend closes
/// the connection with 4001.
#[tokio::test]
async fn the_hook_is_asked_again_on_its_own_and_an_ended_session_is_closed() {
    const RECHECK: Duration = Duration::from_millis(1000);
    let hook = HookServer::start(alice_session()).await;
    let server = with_connect_hook_rechecking(&hook.url(), Some(RECHECK)).await;
    let mut alice = connect_with_cookie(&server).await;
    alice.expect_type("ready").await;
    alice.join("team-a").await;

    hook.answer(Reply::Json(503, json!({})));
    hook.wait_for("a recheck that fails", |r| r.len() >= 2).await;
    alice.assert_usable().await;

    let renamed = json!({"user": {"id": "alice", "name": "Alice B."}, "rooms": ["team-*"]});
    hook.answer(Reply::Json(200, renamed));
    let asked = hook.requests().len();
    hook.wait_for("a recheck that answers", |r| r.len() > asked).await;
    let ack = alice.say("team-a", "still here").await;
    let history = alice.call(json!({"type": "history", "room": "team-a"})).await;
    let sent = history["messages"].as_array().unwrap().iter().find(|m| m["id"] == ack["id"]);
    assert_eq!(sent.map(|m| &m["sender"]["name"]), Some(&json!("Alice B.")), "{history}");
    assert!(
        alice
            .collect_for(Duration::from_millis(100))
            .await
            .iter()
            .all(|f| frame_type(f) != "ready"),
        "a recheck says nothing to the client"
    );

    hook.answer(Reply::Json(401, json!({})));
    let (frames, code) = alice.frames_until_close().await;
    assert_eq!(code, 4001, "{frames:?}");
    assert_eq!(frames.last().map(|f| &f["code"]), Some(&json!("unauthorized")));
    assert!(
        hook.requests().iter().all(|r| r.body["headers"]["cookie"] == "sid=s3cr3t"),
        "asked with the upgrade's cookie each time"
    );
}

#[tokio::test]
async fn a_revoked_user_is_disconnected_and_the_hook_keeps_them_out() {
    let hook = HookServer::start(alice_session()).await;
    let server = with_connect_hook(&hook.url()).await;
    let mut alice = connect_with_cookie(&server).await;
    alice.expect_type("ready").await;
    let mut second = connect_with_cookie(&server).await;
    second.expect_type("ready").await;

    // The backend deactivates alice: its sessions end, then it closes her
    // connections through the API.
    hook.answer(Reply::Json(401, json!({"error": "account deactivated"})));
    let reply = server
        .http(reqwest::Method::POST, "/api/users/alice/disconnect", Some(server.api_key()), None)
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    for client in [&mut alice, &mut second] {
        let (_, code) = client.frames_until_close().await;
        assert_eq!(code, 4003, "every connection of the user is closed");
    }
    // Her client comes back with the same cookie, as a browser would: the
    // hook is asked again, and she is refused.
    let mut again = connect_with_cookie(&server).await;
    let (frames, code) = again.frames_until_close().await;
    assert_eq!(code, 4001, "{frames:?}");
    assert!(frames.iter().all(|f| frame_type(f) != "ready"), "{frames:?}");
    assert_eq!(hook.requests().len(), 3, "one question per connection");
}
