//! Webhooks against a real HTTP receiver ([`HookServer`]) on both stores:
//! events arrive signed, narrowed to the types a URL asks for, once per id
//! and in order per room after the receiver was down; what fails every
//! attempt is dead-lettered, listed and replayed; a stuck receiver never
//! holds up chat; and an event acknowledged right before a SIGKILL still
//! arrives after the restart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use roomcast_server::config::{Rate, WebhookDelivery, WebhookEndpoint, Webhooks};
use roomcast_server::webhooks::Kind;
use roomcast_tests::hook::Recorded;
use roomcast_tests::server::TempDatabase;
use roomcast_tests::{
    Engine, HookServer, Reply, ServerProcess, TestServer, WsClient, claims, frame_type, sign,
};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::chat::alice_and_bob;

const SECRET: &str = "a-webhook-secret-for-the-tests";

/// Runs a test body on the two stores webhooks need (their outbox lives
/// there): SQLite, and Redis with PostgreSQL.
macro_rules! on_both_stores {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                super::$test(roomcast_tests::Engine::Sqlite).await
            }

            #[tokio::test]
            async fn redis_postgres() {
                super::$test(roomcast_tests::Engine::RedisPostgres).await
            }
        }
    )+};
}

fn endpoint(url: &str, kinds: &[Kind]) -> WebhookEndpoint {
    let kinds = if kinds.is_empty() { Kind::ALL.to_vec() } else { kinds.to_vec() };
    WebhookEndpoint { url: url.parse().expect("a webhook URL"), kinds }
}

/// Quick retries, so that a test of failures takes seconds.
fn quick() -> WebhookDelivery {
    WebhookDelivery {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        ..WebhookDelivery::default()
    }
}

async fn with_webhooks(
    engine: Engine,
    endpoints: Vec<WebhookEndpoint>,
    delivery: WebhookDelivery,
) -> TestServer {
    TestServer::with_on(engine, |config| {
        config.webhooks = Webhooks { endpoints, secret: SECRET.into(), delivery };
        // Senders here send faster than a person.
        let fast = Rate::new(10_000.0, 10_000);
        (config.limits.messages, config.limits.user_messages) = (fast, fast);
    })
    .await
}

/// Whether a delivery's signature is what the documented scheme gives:
/// hex HMAC-SHA256 of `<timestamp>.<body>` under the secret.
fn signed(request: &Recorded, secret: &str) -> bool {
    let (Some(timestamp), Some(signature)) =
        (request.headers.get("roomcast-timestamp"), request.headers.get("roomcast-signature"))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.raw);
    let expected: String =
        mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    expected == *signature
}

fn of_type<'a>(requests: &'a [Recorded], kind: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|r| r.body["type"] == kind).collect()
}

/// The requests answered 2xx: what the server counts as delivered.
fn delivered(requests: &[Recorded]) -> Vec<&Recorded> {
    requests.iter().filter(|r| (200..300).contains(&r.status)).collect()
}

on_both_stores!(a_message_arrives_signed_with_its_id_and_type);
async fn a_message_arrives_signed_with_its_id_and_type(engine: Engine) {
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    let server = with_webhooks(engine, vec![endpoint(&hook.url(), &[])], quick()).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    let ack = alice.say("general", "hello backend").await;

    let requests = hook.wait_for("the message", |r| !of_type(r, "message").is_empty()).await;
    let message = of_type(&requests, "message")[0];
    assert!(signed(message, SECRET), "signature of {:?}", message.headers);
    assert!(!signed(message, "another-secret-of-some-length"), "a wrong secret must not verify");
    let body = &message.body;
    assert_eq!(body["room"], "general");
    assert_eq!(body["data"]["content"], "hello backend");
    assert_eq!(body["data"]["id"], ack["id"]);
    assert_eq!(body["data"]["offset"], ack["offset"]);
    assert_eq!(message.headers["roomcast-event-id"], body["id"].as_str().unwrap());
    assert_eq!(message.headers["roomcast-event-type"], "message");
    assert_eq!(message.headers["content-type"], "application/json");
    let sent: i64 = message.headers["roomcast-timestamp"].parse().expect("Unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - sent).abs() < 300, "a timestamp within five minutes: {sent} vs {now}");
    // The body is the documented shape, which the shared type reads.
    let event: roomcast_shared::webhook::WebhookEvent =
        serde_json::from_slice(&message.raw).expect("a WebhookEvent");
    assert_eq!(event.id, body["id"].as_str().unwrap());
}

on_both_stores!(a_url_takes_only_the_types_it_names_and_live_events_arrive);
async fn a_url_takes_only_the_types_it_names_and_live_events_arrive(engine: Engine) {
    let all = HookServer::start(Reply::Json(200, json!({}))).await;
    let joins = HookServer::start(Reply::Json(204, json!({}))).await;
    let endpoints = vec![
        endpoint(&all.url(), &[]),
        endpoint(&joins.url(), &[Kind::MemberJoined, Kind::MemberLeft]),
    ];
    let server = with_webhooks(engine, endpoints, quick()).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let ack = alice.say("general", "read me").await;
    bob.expect_type("message").await;
    bob.send(json!({"type": "read", "room": "general", "id": ack["id"]})).await;
    alice.send(json!({"type": "presence", "status": "away"})).await;
    server
        .api_post("/api/notify", json!({"user_ids": ["bob"], "title": "Hi", "body": "there"}))
        .await
        .expect(200);
    bob.recv_until("notification").await;
    bob.call_ok(json!({"type": "leave", "room": "general"}), "left").await;
    alice.call_ok(json!({"type": "leave", "room": "general"}), "left").await;

    let wanted = [
        "room_occupied",
        "member_joined",
        "message",
        "read",
        "presence",
        "notification_delivered",
        "member_left",
        "room_vacated",
    ];
    let requests = all
        .wait_for("every type", |r| {
            wanted.iter().all(|kind| !of_type(r, kind).is_empty())
                && of_type(r, "member_left").len() == 2
        })
        .await;
    // The room filled once and emptied once; personal rooms are no one's
    // to join or leave.
    for kind in ["room_occupied", "room_vacated"] {
        let events = of_type(&requests, kind);
        assert_eq!(events.len(), 1, "{kind}");
        assert_eq!(events[0].body["room"], "general");
    }
    let rooms: HashSet<&str> = requests.iter().filter_map(|r| r.body["room"].as_str()).collect();
    assert!(rooms.iter().all(|room| *room == "general"), "{rooms:?}");
    let read = of_type(&requests, "read")[0];
    assert_eq!(
        (read.body["room"].as_str(), &read.body["data"]["id"]),
        (Some("general"), &ack["id"])
    );
    let notified = of_type(&requests, "notification_delivered")[0];
    assert_eq!(notified.body["data"]["user_id"], "bob");
    assert_eq!(notified.body["data"]["notification"]["title"], "Hi");
    assert!(
        of_type(&requests, "presence").iter().any(|p| p.body["data"]["status"] == "away"),
        "alice's status change"
    );
    let left: Vec<&Value> =
        of_type(&requests, "member_left").iter().map(|r| &r.body["data"]["user_id"]).collect();
    assert_eq!(left, [&json!("bob"), &json!("alice")]);
    let joined: HashSet<&str> = of_type(&requests, "member_joined")
        .iter()
        .filter_map(|j| j.body["data"]["user"]["id"].as_str())
        .collect();
    assert_eq!(joined, HashSet::from(["alice", "bob"]));

    let narrowed = joins
        .wait_for("joins and leaves", |r| {
            of_type(r, "member_joined").len() >= 2 && of_type(r, "member_left").len() >= 2
        })
        .await;
    // Wait for what the first receiver got after the leave, then check
    // nothing else reached the narrow one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kinds: HashSet<String> = joins
        .requests()
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(kinds, HashSet::from(["member_joined".to_owned(), "member_left".to_owned()]));
    // One event, one id, the same for every endpoint.
    let id = |requests: &[&Recorded]| requests[0].body["id"].clone();
    let left_ids = (id(&of_type(&requests, "member_left")), id(&of_type(&narrowed, "member_left")));
    assert_eq!(left_ids.0, left_ids.1);
}

on_both_stores!(a_receiver_down_for_a_while_gets_everything_once_in_order_per_room);
async fn a_receiver_down_for_a_while_gets_everything_once_in_order_per_room(engine: Engine) {
    let (hook, down) = receiver_down().await;
    let endpoints = vec![endpoint(&hook.url(), &[Kind::Message, Kind::MessageUpdated])];
    // A read-ahead far below the backlog: the rest waits in the database
    // and is read as deliveries make room.
    let server = with_webhooks(engine, endpoints, WebhookDelivery { buffer: 4, ..quick() }).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let rooms = ["north", "south", "east"];
    for room in rooms {
        alice.join(room).await;
    }
    let mut acks = Vec::new();
    for i in 0..30 {
        let room = rooms[i % rooms.len()];
        let ack = alice.say(room, &format!("m{i}")).await;
        if i % 7 == 0 {
            let edit = json!({"type": "edit", "room": room, "id": ack["id"], "content": "edited"});
            alice.call_ok(edit, "ack").await;
        }
        acks.push(ack);
    }
    // Failed attempts (503) are retried while the receiver is down.
    hook.wait_for("failed attempts", |r| r.len() >= 10).await;
    down.store(false, Ordering::SeqCst);
    let expected = 30 + 5;
    let requests = hook.wait_for("every event", |r| delivered(r).len() >= expected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = {
        let later = hook.requests();
        assert!(later.len() >= requests.len());
        later
    };
    let ok = delivered(&requests);
    let mut seen = HashSet::new();
    for request in &ok {
        assert!(seen.insert(request.body["id"].clone()), "delivered twice: {}", request.body);
    }
    assert_eq!(ok.len(), expected, "each event delivered once");
    let mut last: HashMap<String, u64> = HashMap::new();
    for request in &ok {
        let room = request.body["room"].as_str().unwrap().to_owned();
        let offset = request.body["data"]["offset"].as_u64().unwrap();
        let previous = last.insert(room.clone(), offset).unwrap_or(0);
        assert!(offset > previous, "{room}: offset {offset} after {previous}");
    }
    let messages: HashSet<&Value> = of_type(&requests, "message")
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| &r.body["data"]["id"])
        .collect();
    assert!(acks.iter().all(|ack| messages.contains(&ack["id"])), "every acked message");
}

on_both_stores!(a_message_deleted_while_its_receiver_is_down_arrives_erased);
/// A receiver down when a message is sent, edited and deleted gets, once
/// it is back, the message's events erased (its trace, an edit without
/// content) then the delete: the rows the deliverer held in memory while
/// the receiver failed are read again before they are posted.
async fn a_message_deleted_while_its_receiver_is_down_arrives_erased(engine: Engine) {
    let (hook, down) = receiver_down().await;
    let kinds = [Kind::Message, Kind::MessageUpdated, Kind::MessageDeleted];
    let server = with_webhooks(engine, vec![endpoint(&hook.url(), &kinds)], quick()).await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("vault").await;
    let ack = alice.say("vault", "the secret password").await;
    let edit =
        json!({"type": "edit", "room": "vault", "id": ack["id"], "content": "secret, again"});
    alice.call_ok(edit, "ack").await;
    hook.wait_for("failed attempts", |r| r.len() >= 3).await;
    alice.call_ok(json!({"type": "delete", "room": "vault", "id": ack["id"]}), "ack").await;
    // Held in memory longer than a fresh read.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    down.store(false, Ordering::SeqCst);
    let deleted = |r: &[Recorded]| delivered(r).iter().any(|d| d.body["type"] == "message_deleted");
    let requests = hook.wait_for("the delete", deleted).await;
    let ok = delivered(&requests);
    let types: Vec<&str> = ok.iter().map(|r| r.body["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["message", "message_updated", "message_deleted"], "each once, in order");
    for request in &ok {
        assert!(!request.body.to_string().contains("secret"), "erased: {}", request.body);
    }
    assert_eq!(ok[0].body["data"]["deleted"], true, "the message as its trace");
    assert_eq!(ok[0].body["data"]["id"], ack["id"]);
    assert_eq!(ok[1].body["data"]["content"], "", "the edit without its text");
    assert!(ok.iter().all(|r| signed(r, SECRET)), "signed as delivered");
}

/// A receiver that answers 503 until the flag is cleared, then 200.
async fn receiver_down() -> (HookServer, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(true));
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    let flag = down.clone();
    hook.answer_with(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::Raw(503, "down for maintenance".into())
        } else {
            Reply::Json(200, json!({}))
        }
    });
    (hook, down)
}

/// A `/metrics` counter or gauge's value (0 when absent).
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server.get("/metrics").await.text;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("roomcast_{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

on_both_stores!(what_fails_every_attempt_is_dead_lettered_listed_and_replayed);
async fn what_fails_every_attempt_is_dead_lettered_listed_and_replayed(engine: Engine) {
    let hook = HookServer::start(Reply::Raw(500, "broken".into())).await;
    let delivery = WebhookDelivery { max_attempts: 3, ..quick() };
    let server =
        with_webhooks(engine, vec![endpoint(&hook.url(), &[Kind::Message])], delivery).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    let ack = alice.say("general", "doomed").await;
    hook.wait_for("three attempts", |r| r.len() >= 3).await;

    let page = loop {
        let page = server.api_get("/api/webhooks/dead-letters").await.expect(200);
        if !page["dead_letters"].as_array().unwrap().is_empty() {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let dead = &page["dead_letters"][0];
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["endpoint"], hook.url());
    assert!(dead["error"].as_str().unwrap().contains("500"), "{dead}");
    assert_eq!(dead["event"]["data"]["id"], ack["id"]);
    assert_eq!(hook.requests().len(), 3, "no attempt after the last");
    assert_eq!(metric(&server, "webhook_dead_lettered_total").await, 1.0);
    assert!(metric(&server, "webhook_failures_total").await >= 3.0);

    // Filtered by another endpoint: none.
    let other = server.api_get("/api/webhooks/dead-letters?endpoint=http://elsewhere/").await;
    assert_eq!(other.expect(200)["dead_letters"], json!([]));

    hook.answer(Reply::Json(200, json!({})));
    let replayed = server
        .api_post("/api/webhooks/dead-letters/replay", json!({"seqs": [dead["seq"]]}))
        .await
        .expect(200);
    assert_eq!(replayed["replayed"], 1);
    let requests = hook.wait_for("the replay", |r| !delivered(r).is_empty()).await;
    assert_eq!(delivered(&requests)[0].body["id"], dead["event"]["id"], "the same event id");
    let after = server.api_get("/api/webhooks/dead-letters").await.expect(200);
    assert_eq!(after["dead_letters"], json!([]));
}

on_both_stores!(dead_letter_requests_are_checked);
async fn dead_letter_requests_are_checked(engine: Engine) {
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    let server = with_webhooks(engine, vec![endpoint(&hook.url(), &[])], quick()).await;
    for query in ["limit=0", "limit=100000", "limit=-1", "after=x", "limit=1001"] {
        let reply = server.api_get(&format!("/api/webhooks/dead-letters?{query}")).await;
        reply.expect_error(400, "bad_request");
    }
    let long = "x".repeat(5_000);
    let reply = server.api_get(&format!("/api/webhooks/dead-letters?endpoint={long}")).await;
    reply.expect_error(400, "bad_request");
    let replay = "/api/webhooks/dead-letters/replay";
    for body in [json!({}), json!({"all": true, "seqs": [1]}), json!({"seqs": "all"}), json!([])] {
        server.api_post(replay, body).await.expect_error(400, "bad_request");
    }
    let many: Vec<i64> = (0..1_001).collect();
    server.api_post(replay, json!({"seqs": many})).await.expect_error(413, "too_large");
    // Unknown seqs replay nothing; all replays nothing when none is dead.
    let none = server.api_post(replay, json!({"seqs": [i64::MAX, -5]})).await.expect(200);
    assert_eq!(none["replayed"], 0);
    assert_eq!(server.api_post(replay, json!({"all": true})).await.expect(200)["replayed"], 0);
    // Without the API key: refused like every API call.
    let anonymous = reqwest::get(format!("{}/api/webhooks/dead-letters", server.http_url())).await;
    assert_eq!(anonymous.unwrap().status(), 401);
}

on_both_stores!(a_stuck_receiver_never_holds_up_chat);
async fn a_stuck_receiver_never_holds_up_chat(engine: Engine) {
    // Answers after a minute: every delivery hangs until its timeout.
    let hook = HookServer::start(Reply::Slow(Duration::from_secs(60), json!({}))).await;
    let delivery = WebhookDelivery { timeout: Duration::from_secs(30), concurrency: 2, ..quick() };
    let server = with_webhooks(engine, vec![endpoint(&hook.url(), &[])], delivery).await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    hook.wait_for("a delivery in flight", |r| !r.is_empty()).await;
    for i in 0..50 {
        alice.say("general", &format!("m{i}")).await;
        assert_eq!(frame_type(&bob.recv_until("message").await), "message");
    }
    // Every message was acknowledged and broadcast while the receiver held
    // its first requests: at most `concurrency` rooms are in flight.
    assert!(hook.requests().len() <= 2, "{} requests", hook.requests().len());
}

on_both_stores!(hostile_answers_are_failed_attempts_and_retried);
async fn hostile_answers_are_failed_attempts_and_retried(engine: Engine) {
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    // Popped from the end: a timeout, a redirect (never followed), then a
    // 200 whose body never ends (what an answer says does not matter).
    let answers = Arc::new(std::sync::Mutex::new(vec![
        Reply::Huge,
        Reply::Raw(302, String::new()),
        Reply::Slow(Duration::from_secs(5), json!({})),
    ]));
    let script = answers.clone();
    hook.answer_with(move |_| script.lock().unwrap().pop().unwrap_or(Reply::Json(200, json!({}))));
    let delivery = WebhookDelivery { timeout: Duration::from_millis(500), ..quick() };
    let server =
        with_webhooks(engine, vec![endpoint(&hook.url(), &[Kind::Message])], delivery).await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    alice.say("general", "through it all").await;
    hook.wait_for("three attempts", |r| r.len() >= 3).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(&server, "webhook_delivered_total").await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&server, "webhook_failures_total").await, 2.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = hook.requests();
    assert_eq!(requests.len(), 3, "delivered at the third attempt, then nothing more");
    let ids: HashSet<&Value> = requests.iter().map(|r| &r.body["id"]).collect();
    assert_eq!(ids.len(), 1, "one event, retried");
}

/// With the real binary: events acknowledged right before a SIGKILL, while
/// the receiver is down, reach it after the restart.
#[tokio::test]
async fn an_event_acked_before_a_sigkill_arrives_after_the_restart() {
    let (hook, down) = receiver_down().await;
    let database = TempDatabase::new();
    let url = format!("{}#types=message", hook.url());
    let args = [
        "--dev",
        "--jwt-secret",
        "webhook-test",
        "--database-url",
        &database.url(),
        "--webhook-url",
        &url,
        "--webhook-secret",
        SECRET,
        "--webhook-retry-initial-ms",
        "50",
        "--webhook-retry-max-ms",
        "200",
    ];
    let mut server = ServerProcess::spawn(&args, &[]).await;
    let mut alice = WsClient::connect(&server.ws_url()).await;
    let token = sign("webhook-test", &claims("alice", "Alice"));
    alice.call_ok(json!({"type": "auth", "token": token}), "ready").await;
    alice.join("general").await;
    let mut ids = HashSet::new();
    for i in 0..20 {
        let ack = alice.say("general", &format!("before the crash {i}")).await;
        ids.insert(ack["id"].as_str().unwrap().to_owned());
    }
    server.signal("KILL");
    server.wait().await;
    down.store(false, Ordering::SeqCst);

    let restarted = ServerProcess::spawn(&args, &[]).await;
    let requests = hook
        .wait_for("every acked message", |r| {
            let got: HashSet<&str> =
                delivered(r).iter().filter_map(|r| r.body["data"]["id"].as_str()).collect();
            ids.iter().all(|id| got.contains(id.as_str()))
        })
        .await;
    assert!(delivered(&requests).iter().all(|r| signed(r, SECRET)));
    drop(restarted);
}

/// Two instances on Redis and one PostgreSQL: one of them delivers (the
/// lease holder), so an event sent on either arrives once and each room in
/// order; when that instance stops, the other takes over.
#[tokio::test]
async fn two_instances_deliver_each_event_once_and_take_over() {
    let redis = roomcast_tests::RedisServer::start().await;
    let database = roomcast_tests::RoomcastPostgres::shared().database().await;
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    let configure = |config: &mut roomcast_server::config::Config| {
        config.redis_url = Some(redis.url());
        config.database_url = Some(database.clone());
        config.webhooks = Webhooks {
            endpoints: vec![endpoint(&hook.url(), &[Kind::Message])],
            secret: SECRET.into(),
            delivery: quick(),
        };
    };
    let (a, b) = (TestServer::with(configure).await, TestServer::with(configure).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    alice.join("shared").await;
    bob.join("shared").await;
    for i in 0..10 {
        alice.say("shared", &format!("a{i}")).await;
        bob.say("shared", &format!("b{i}")).await;
    }
    let requests = hook.wait_for("20 messages", |r| delivered(r).len() >= 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.requests().len(), requests.len(), "nothing delivered twice");
    let offsets: Vec<u64> =
        requests.iter().map(|r| r.body["data"]["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (1..=20).collect::<Vec<_>>(), "once each, in the room's order");

    // Whichever held the lease, the survivor delivers after it stops.
    a.stop().await;
    bob.say("shared", "after the first instance stopped").await;
    let requests = hook
        .wait_for("the message sent after the stop", |r| {
            r.iter().any(|r| r.body["data"]["content"] == "after the first instance stopped")
        })
        .await;
    assert_eq!(delivered(&requests).len(), 21);
}

/// Two instances on Redis and one PostgreSQL: when one is killed, the
/// survivor undoes its users' memberships at the end of its lease and
/// records what their leaving would have recorded (`member_left`,
/// `room_vacated`, the `presence` going offline), for rooms the dead
/// instance alone had members in.
#[cfg(unix)]
#[tokio::test]
async fn a_killed_instance_members_leave_through_the_survivor() {
    const LEASE: Duration = Duration::from_millis(1200);
    const CLUSTER_SECRET: &str = "cluster-secret-shared-by-every-instance";
    let redis = roomcast_tests::RedisServer::start().await;
    let database = roomcast_tests::RoomcastPostgres::shared().database().await;
    let hook = HookServer::start(Reply::Json(200, json!({}))).await;
    let kinds = [Kind::MemberJoined, Kind::MemberLeft, Kind::RoomVacated, Kind::Presence];
    let lease_ms = LEASE.as_millis().to_string();
    let url = format!("{}#types=member_joined,member_left,room_vacated,presence", hook.url());
    let doomed = ServerProcess::spawn(
        &[
            "--redis-url",
            &redis.url(),
            "--database-url",
            &database,
            "--jwt-secret",
            CLUSTER_SECRET,
            "--api-key",
            "cluster-key",
            "--instance-lease-ms",
            &lease_ms,
            "--webhook-url",
            &url,
            "--webhook-secret",
            SECRET,
        ],
        &[],
    )
    .await;
    let survivor = TestServer::with(|config| {
        config.redis_url = Some(redis.url());
        config.database_url = Some(database.clone());
        config.jwt_secret = CLUSTER_SECRET.into();
        config.timing.instance_lease = LEASE;
        config.webhooks = Webhooks {
            endpoints: vec![endpoint(&hook.url(), &kinds)],
            secret: SECRET.into(),
            delivery: quick(),
        };
    })
    .await;

    // Bob is on the doomed instance only, in a room of his own and in one
    // he shares with alice, who is on the survivor.
    let mut alice = WsClient::connect_as(&survivor, "alice", "Alice").await;
    alice.join("shared").await;
    let token = survivor.token("bob", "Bob");
    let mut bob = WsClient::connect_with_query_token(&doomed.ws_url(), &token, "bob").await;
    bob.join("shared").await;
    bob.join("bobs-own").await;
    hook.wait_for("bob's joins", |r| {
        of_type(r, "member_joined").iter().filter(|j| j.body["data"]["user"]["id"] == "bob").count()
            == 2
    })
    .await;

    doomed.signal("KILL");
    let bob = |r: &&Recorded| r.body["data"]["user_id"] == "bob";
    let requests = hook
        .wait_for("bob's departures", |r| {
            of_type(r, "member_left").len() == 2
                && !of_type(r, "room_vacated").is_empty()
                && of_type(r, "presence")
                    .iter()
                    .any(|p| bob(p) && p.body["data"]["status"] == "offline")
        })
        .await;
    let left: HashSet<(&str, &str)> = of_type(&requests, "member_left")
        .iter()
        .filter_map(|r| Some((r.body["room"].as_str()?, r.body["data"]["user_id"].as_str()?)))
        .collect();
    assert_eq!(left, HashSet::from([("shared", "bob"), ("bobs-own", "bob")]));
    let vacated: Vec<&Value> =
        of_type(&requests, "room_vacated").iter().map(|r| &r.body["room"]).collect();
    assert_eq!(vacated, [&json!("bobs-own")], "alice is still in the shared room");
    let presence: Vec<&Value> = of_type(&requests, "presence")
        .into_iter()
        .filter(bob)
        .map(|r| &r.body["data"]["status"])
        .collect();
    assert_eq!(
        presence,
        [&json!("online"), &json!("offline")],
        "bob came online, then went offline"
    );
    assert!(delivered(&requests).iter().all(|r| signed(r, SECRET)));
    // Once: the reaping is done by one instance, and nothing more comes.
    tokio::time::sleep(LEASE).await;
    assert_eq!(of_type(&hook.requests(), "member_left").len(), 2, "each departure once");
    drop(alice);
}
