//! The store end to end, on the real binary: what was acknowledged survives
//! SIGKILL (messages, edits, deletes, read positions, unread
//! notifications), a client recovers across the restart as if nothing
//! happened, history pages back to the very first message, and the
//! database flags are checked at start.

use std::collections::BTreeMap;
use std::time::Duration;

use roomcast_tests::process::run_to_exit;
use roomcast_tests::server::TempDatabase;
use roomcast_tests::{Engine, ServerProcess, TestServer, WsClient, claims, frame_type, sign};
use serde_json::{Value, json};

/// A short dev secret: these servers run in dev mode.
const SECRET: &str = "durable-test";
const API_KEY: &str = "durable-key";

/// A dev server on `database`, with rates no test sender reaches.
async fn start(database: &str) -> ServerProcess {
    start_with(database, &[]).await
}

/// [`start`] with more flags.
pub(crate) async fn start_with(database: &str, more: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--dev",
        "--jwt-secret",
        SECRET,
        "--api-key",
        API_KEY,
        "--database-url",
        database,
        "--rate-frames",
        "100000",
        "--rate-messages",
        "100000",
        "--rate-user-messages",
        "100000",
    ];
    args.extend(more);
    ServerProcess::spawn(&args, &[]).await
}

pub(crate) async fn connect(server: &ServerProcess, user: &str) -> WsClient {
    let mut client = WsClient::connect(&server.ws_url()).await.labelled(user);
    let token = sign(SECRET, &claims(user, &format!("name of {user}")));
    let ready = client.call(json!({"type": "auth", "token": token})).await;
    assert_eq!(frame_type(&ready), "ready", "{user}: {ready}");
    client
}

/// A Redis server and a PostgreSQL database of their own, for instances
/// started with [`on_both`].
async fn redis_and_postgres() -> (roomcast_tests::RedisServer, String) {
    let redis = roomcast_tests::RedisServer::start().await;
    (redis, roomcast_tests::RoomcastPostgres::shared().database().await)
}

/// An instance on `redis` and the PostgreSQL `database`.
async fn on_both(database: &str, redis: &roomcast_tests::RedisServer) -> ServerProcess {
    start_with(database, &["--redis-url", redis.url().as_str()]).await
}

/// Sends every frame at once (each with a `ref`), then collects the replies
/// in order; frames that are not replies are dropped.
async fn pipelined(client: &mut WsClient, frames: Vec<Value>) -> Vec<Value> {
    let count = frames.len();
    for (i, mut frame) in frames.into_iter().enumerate() {
        frame["ref"] = json!(format!("p{i}"));
        client.send(frame).await;
    }
    let mut replies: BTreeMap<usize, Value> = BTreeMap::new();
    while replies.len() < count {
        let frame = client.recv().await;
        let index = frame["ref"].as_str().and_then(|r| r.strip_prefix('p')?.parse().ok());
        if let Some(i) = index {
            replies.insert(i, frame);
        }
    }
    replies.into_values().collect()
}

pub(crate) fn send(room: &str, client_id: &str, content: &str) -> Value {
    json!({"type": "send", "room": room, "content": content, "client_id": client_id})
}

/// What the room holds, as a reader sees it: id to current content, in
/// offset order; a deleted message's content is empty (its trace).
#[derive(Debug, Default, Clone, PartialEq)]
struct Model(BTreeMap<u64, (String, String)>);

impl Model {
    fn apply(&mut self, event: &Value) {
        let offset = event["offset"].as_u64().expect("an offset");
        let id = event["id"].as_str().expect("an id").to_owned();
        match frame_type(event) {
            "message" => {
                self.0.insert(offset, (id, event["content"].as_str().unwrap().to_owned()));
            }
            "message_updated" => {
                if let Some(entry) = self.0.values_mut().find(|(i, _)| *i == id) {
                    entry.1 = event["content"].as_str().unwrap().to_owned();
                }
            }
            "message_deleted" => {
                if let Some(entry) = self.0.values_mut().find(|(i, _)| *i == id) {
                    entry.1.clear();
                }
            }
            other => panic!("not a room event: {other}"),
        }
    }
}

/// Pages `history` back from the newest to the first message.
pub(crate) async fn whole_history(client: &mut WsClient, room: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let mut frame = json!({"type": "history", "room": room, "limit": 100});
        if let Some(before) = before {
            frame["before"] = json!(before);
        }
        let page = client.call_ok(frame, "history").await;
        let messages = page["messages"].as_array().expect("messages").clone();
        before = messages.first().and_then(|m| m["offset"].as_u64());
        all.splice(0..0, messages);
        if page["has_more"] != true {
            return all;
        }
    }
}

#[tokio::test]
async fn a_killed_server_keeps_everything_it_acknowledged() {
    let database = TempDatabase::new();
    let server = start(&database.url()).await;
    let room = "durable";
    let mut alice = connect(&server, "alice").await;
    let mut bob = connect(&server, "bob").await;
    let joined = alice.join(room).await;
    let epoch = joined["epoch"].clone();
    bob.join(room).await;

    // 1,000 messages that bob sees; he reads up to the last and leaves.
    let first: Vec<Value> =
        (0..1000).map(|i| send(room, &format!("c{i}"), &format!("m{i}"))).collect();
    let acks = pipelined(&mut alice, first).await;
    assert!(
        acks.iter().all(|a| frame_type(a) == "ack"),
        "{:?}",
        acks.iter().find(|a| frame_type(a) != "ack")
    );
    let seen_up_to = acks[999]["offset"].as_u64().unwrap();
    bob.recv_where("the 1,000th message", |f| f["offset"].as_u64() == Some(seen_up_to)).await;
    bob.send(json!({"type": "read", "room": room, "id": acks[999]["id"]})).await;
    // A read is durable within a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    bob.close().await;

    // 200 more, edits of old and new messages, deletes.
    let more: Vec<Value> =
        (1000..1200).map(|i| send(room, &format!("c{i}"), &format!("m{i}"))).collect();
    let more_acks = pipelined(&mut alice, more).await;
    let all_acks: Vec<Value> = acks.iter().chain(&more_acks).cloned().collect();
    let id = |i: usize| all_acks[i]["id"].clone();
    let mut changes = Vec::new();
    for i in [1, 2, 500, 1100, 1199] {
        changes.push(
            json!({"type": "edit", "room": room, "id": id(i), "content": format!("edited {i}")}),
        );
    }
    for i in [0, 3, 700, 1150] {
        changes.push(json!({"type": "delete", "room": room, "id": id(i)}));
    }
    let change_acks = pipelined(&mut alice, changes).await;
    assert!(change_acks.iter().all(|a| frame_type(a) == "ack"), "{change_acks:?}");
    let last = change_acks.last().unwrap()["offset"].as_u64().unwrap();
    assert_eq!(last, 1209, "1,200 messages, 5 edits and 4 deletes");

    // Carol is offline: her notification waits in the store.
    let notified = reqwest::Client::new()
        .post(format!("{}/api/notify", server.http_url()))
        .bearer_auth(API_KEY)
        .json(&json!({"user_ids": ["carol"], "title": "kept", "body": "across a crash"}))
        .send()
        .await
        .expect("POST /api/notify");
    assert_eq!(notified.status(), 200);

    let metrics = reqwest::get(format!("{}/metrics", server.http_url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let counter = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    assert_eq!(counter("roomcast_store_committed_changes_total"), 1209, "{metrics}");
    let commits = counter("roomcast_store_commits_total");
    assert!((1..=1209).contains(&commits), "{commits} commits");
    assert_eq!(counter("roomcast_store_commit_failures_total"), 0);

    // Killed right after the last acknowledgement.
    server.signal("KILL");
    let server = start(&database.url()).await;

    // Bob recovers exactly what he missed.
    let mut bob = connect(&server, "bob").await;
    let since =
        json!({"type": "join", "room": room, "since": {"epoch": epoch, "offset": seen_up_to}});
    let rejoined = bob.call_ok(since, "joined").await;
    assert_eq!(rejoined["recovered"], true, "{}", roomcast_tests::brief(&rejoined));
    assert_eq!((&rejoined["epoch"], rejoined["offset"].as_u64()), (&epoch, Some(last)));
    let replayed = rejoined["messages"].as_array().unwrap();
    let offsets: Vec<u64> = replayed.iter().map(|e| e["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (seen_up_to + 1..=last).collect::<Vec<_>>(), "exactly the missed events");
    let kinds: Vec<&str> = replayed.iter().map(frame_type).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "message").count(), 200);
    assert_eq!(kinds.iter().filter(|k| **k == "message_updated").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "message_deleted").count(), 4);

    // History pages back to the very first message, edits applied,
    // deleted ones as traces without their content.
    let history = whole_history(&mut bob, room).await;
    let mut expected: Vec<(String, String)> =
        (0..1200).map(|i| (id(i).as_str().unwrap().to_owned(), format!("m{i}"))).collect();
    for i in [1, 2, 500, 1100, 1199] {
        expected[i].1 = format!("edited {i}");
    }
    for i in [0, 3, 700, 1150] {
        expected[i].1 = String::new();
    }
    let got: Vec<(String, String)> = history
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    let traces: Vec<usize> = (0..1200).filter(|&i| history[i]["deleted"] == true).collect();
    assert_eq!(traces, [0, 3, 700, 1150]);
    assert_eq!(history[1]["content"], "edited 1", "the first message left as it was");

    // Bob's read position is there for whoever joins.
    let mut carol = connect(&server, "carol").await;
    let notification = carol.expect_type("notification").await;
    assert_eq!(
        (&notification["title"], &notification["body"]),
        (&json!("kept"), &json!("across a crash"))
    );
    let joined = carol.join(room).await;
    let reads = joined["reads"].as_array().expect("reads");
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!((&reads[0]["user_id"], &reads[0]["id"]), (&json!("bob"), &id(999)));

    // Exactly once across the restart, and changes to any retained message.
    let mut alice = connect(&server, "alice").await;
    alice.join(room).await;
    let again = alice.call_ok(send(room, "c5", "resent after the crash"), "ack").await;
    assert_eq!((&again["id"], &again["offset"]), (&all_acks[5]["id"], &all_acks[5]["offset"]));
    let edit = json!({"type": "edit", "room": room, "id": id(4), "content": "still editable"});
    assert_eq!(alice.call_ok(edit, "ack").await["offset"], last + 1, "offsets continue");
    let next = alice.say(room, "after the crash").await;
    assert_eq!(next["offset"], last + 2);
}

#[tokio::test]
async fn without_a_database_flag_the_data_lives_under_the_working_directory() {
    let dir = TempDatabase::new();
    let path = dir.url().trim_start_matches("sqlite://").to_owned();
    let cwd = std::path::Path::new(&path).parent().unwrap().to_owned();
    let args = ["--dev", "--jwt-secret", SECRET, "--api-key", API_KEY];
    let server = ServerProcess::spawn_in(&cwd, &args, &[]).await;
    let mut alice = connect(&server, "alice").await;
    alice.join("here").await;
    alice.say("here", "kept on disk").await;
    assert!(cwd.join("roomcast-data/roomcast.db").is_file(), "the default database file");
    server.signal("KILL");
    let server = ServerProcess::spawn_in(&cwd, &args, &[]).await;
    let mut alice = connect(&server, "alice").await;
    let joined =
        alice.call_ok(json!({"type": "join", "room": "here", "history": 10}), "joined").await;
    assert_eq!(joined["messages"][0]["content"], "kept on disk");
}

#[tokio::test]
async fn a_clean_stop_leaves_the_database_whole_in_its_file() {
    let database = TempDatabase::new();
    let path = std::path::PathBuf::from(database.url().trim_start_matches("sqlite://"));
    let mut server = start(&database.url()).await;
    let mut alice = connect(&server, "alice").await;
    alice.join("kept").await;
    alice.say("kept", "in the file").await;
    let wal = path.with_extension("db-wal");
    assert!(wal.is_file(), "a running server writes through the WAL");
    drop(alice);
    server.signal("INT");
    assert!(server.wait().await.success(), "the server stops cleanly");
    // The WAL was copied into the database and removed: the file alone is
    // a complete copy (storage.md, backup).
    assert!(!wal.exists(), "the WAL is left behind");
    assert!(!path.with_extension("db-shm").exists(), "the WAL index is left behind");
    let server = start(&database.url()).await;
    let mut alice = connect(&server, "alice").await;
    let joined =
        alice.call_ok(json!({"type": "join", "room": "kept", "history": 10}), "joined").await;
    assert_eq!(joined["messages"][0]["content"], "in the file");
}

#[tokio::test]
async fn database_flags_are_checked_at_start() {
    let base = ["--dev", "--jwt-secret", SECRET, "--api-key", API_KEY];
    let cases: [(&[&str], &str); 4] = [
        (&["--redis-url", "redis://127.0.0.1:1", "--database-url", "sqlite://x.db"], "postgres://"),
        (&["--database-url", "mysql://somewhere/db"], "sqlite://PATH, postgres://... or memory"),
        (&["--database-url", " "], "--database-url is empty"),
        (&["--database-url", "sqlite:///proc/no/such/dir/roomcast.db"], "cannot open the database"),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = base.iter().chain(args).copied().collect();
        let (started, output) = run_to_exit(&args, &[]).await;
        assert!(!started, "{args:?} started: {output}");
        assert!(output.contains(message), "{args:?}: expected {message:?} in {output}");
    }
    // A password in the URL is not printed.
    let args = ["--database-url", "postgres://roomcast:hunter2@127.0.0.1:1/roomcast"];
    let args: Vec<&str> = base.iter().chain(&args).copied().collect();
    let (started, output) = run_to_exit(&args, &[]).await;
    assert!(!started, "{output}");
    assert!(output.contains("cannot open the database") && !output.contains("hunter2"), "{output}");
}

/// A reader following the room: its model of the room and its position.
struct Reader {
    client: WsClient,
    model: Model,
    epoch: Value,
    offset: u64,
}

impl Reader {
    /// Joins `room` fresh, or from the position of `known` (a reconnect),
    /// applying what the `joined` reply recovers on top of it.
    async fn join(server: &ServerProcess, room: &str, known: Option<Reader>) -> Self {
        Self::join_as("reader", server, room, known).await
    }

    async fn join_as(
        user: &str,
        server: &ServerProcess,
        room: &str,
        known: Option<Reader>,
    ) -> Self {
        let mut client = connect(server, user).await;
        let mut frame = json!({"type": "join", "room": room});
        if let Some(known) = &known {
            frame["since"] = json!({"epoch": known.epoch, "offset": known.offset});
        }
        let joined = client.call_ok(frame, "joined").await;
        if known.is_some() {
            assert_eq!(joined["recovered"], true, "{}", roomcast_tests::brief(&joined));
        }
        let (model, offset) = known.map_or_else(Default::default, |k| (k.model, k.offset));
        let mut reader = Self { client, model, epoch: joined["epoch"].clone(), offset };
        for event in joined["messages"].as_array().unwrap() {
            reader.take(event);
        }
        assert_eq!(reader.offset, joined["offset"].as_u64().unwrap(), "recovered up to the head");
        reader
    }

    /// Applies a room event: the next offset, never a gap or a repeat.
    fn take(&mut self, event: &Value) {
        let offset = event["offset"].as_u64().unwrap();
        assert_eq!(offset, self.offset + 1, "events in order, none missed: {event}");
        self.offset = offset;
        self.model.apply(event);
    }

    /// Takes live events until it is at `offset`.
    async fn follow(&mut self, offset: u64) {
        while self.offset < offset {
            let frame = self.client.recv().await;
            if frame["offset"].is_u64() && frame["ref"].is_null() {
                self.take(&frame);
            }
        }
    }

    /// Rejoins from its position: a reconnect.
    async fn reconnect(self, server: &ServerProcess, room: &str) -> Self {
        Self::join(server, room, Some(self)).await
    }
}

/// Random sends, resends, edits, deletes, SIGKILLs with restarts and
/// reconnects: what was acknowledged is what a reader following the room
/// sees and what history holds, each message once.
#[tokio::test]
async fn random_sends_changes_and_kills_never_lose_or_duplicate_an_acknowledged_message() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let seed: u64 =
        std::env::var("ROOMCAST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        });
    println!("seed {seed} (ROOMCAST_SEED={seed} repeats this run)");
    let mut rng = StdRng::seed_from_u64(seed);
    let database = TempDatabase::new();
    let room = "model";
    let mut server = start(&database.url()).await;
    let mut writer = connect(&server, "writer").await;
    writer.join(room).await;
    let mut reader = Reader::join(&server, room, None).await;
    // What was acknowledged, applied as the server said.
    let mut truth = Model::default();
    let mut sent: Vec<(String, Value)> = Vec::new();
    let mut last = 0;
    for step in 0..80 {
        let live: Vec<String> = truth
            .0
            .values()
            .filter(|(_, content)| !content.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        match rng.random_range(0..100) {
            0..45 => {
                let client_id = format!("s{step}");
                let content = format!("message {step}");
                let ack = writer.call_ok(send(room, &client_id, &content), "ack").await;
                last = ack["offset"].as_u64().unwrap();
                truth.0.insert(last, (ack["id"].as_str().unwrap().to_owned(), content));
                sent.push((client_id, ack));
            }
            45..55 if !sent.is_empty() => {
                let (client_id, original) = &sent[rng.random_range(0..sent.len())];
                let again = writer.call_ok(send(room, client_id, "resent"), "ack").await;
                assert_eq!(
                    (&again["id"], &again["offset"]),
                    (&original["id"], &original["offset"])
                );
            }
            55..65 if !live.is_empty() => {
                let id = &live[rng.random_range(0..live.len())];
                let content = format!("edited at {step}");
                let edit = json!({"type": "edit", "room": room, "id": id, "content": content});
                last = writer.call_ok(edit, "ack").await["offset"].as_u64().unwrap();
                truth.apply(&json!({"type": "message_updated", "offset": last, "id": id, "content": content}));
            }
            65..72 if !live.is_empty() => {
                let id = &live[rng.random_range(0..live.len())];
                let delete = json!({"type": "delete", "room": room, "id": id});
                last = writer.call_ok(delete, "ack").await["offset"].as_u64().unwrap();
                truth.apply(&json!({"type": "message_deleted", "offset": last, "id": id}));
            }
            72..80 => {
                server.signal("KILL");
                let _ = server.wait().await;
                server = start(&database.url()).await;
                writer = connect(&server, "writer").await;
                writer.join(room).await;
                reader = reader.reconnect(&server, room).await;
            }
            80..88 => reader = reader.reconnect(&server, room).await,
            _ => reader.follow(last).await,
        }
    }
    reader.follow(last).await;
    assert_eq!(reader.model, truth, "seed {seed}: the reader sees what was acknowledged");
    let history = whole_history(&mut reader.client, room).await;
    let stored: Vec<(String, String)> = history
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(stored, truth.0.into_values().collect::<Vec<_>>(), "seed {seed}: history");
}

/// Two instances on Redis and one PostgreSQL: events of one room sent on
/// both at once reach readers on both in one order, none missed; then both
/// are killed, Redis loses everything (`FLUSHALL`, restart), and the
/// restarted instances still hold everything, epochs and offsets included.
#[tokio::test]
async fn two_instances_on_postgres_survive_redis_losing_everything() {
    let (mut redis, database) = redis_and_postgres().await;
    let (a, b) = (on_both(&database, &redis).await, on_both(&database, &redis).await);
    let room = "shared";
    let carol = Reader::join_as("carol", &a, room, None).await;
    let dave = Reader::join_as("dave", &b, room, None).await;
    let mut alice = connect(&a, "alice").await;
    let mut bob = connect(&b, "bob").await;
    alice.join(room).await;
    bob.join(room).await;
    // Sent on both instances at once: their publishes cross in Redis.
    let from = |who: &str| -> Vec<Value> {
        (0..150).map(|i| send(room, &format!("{who}{i}"), &format!("{who} {i}"))).collect()
    };
    let (alice_acks, bob_acks) =
        tokio::join!(pipelined(&mut alice, from("alice")), pipelined(&mut bob, from("bob")));
    let mut truth = Model::default();
    for (acks, who) in [(&alice_acks, "alice"), (&bob_acks, "bob")] {
        for (i, ack) in acks.iter().enumerate() {
            assert_eq!(frame_type(ack), "ack", "{ack}");
            let entry = (ack["id"].as_str().unwrap().to_owned(), format!("{who} {i}"));
            assert!(
                truth.0.insert(ack["offset"].as_u64().unwrap(), entry).is_none(),
                "one offset each"
            );
        }
    }
    let last = *truth.0.keys().last().unwrap();
    assert_eq!(last, 300, "offsets 1 to 300, none skipped");
    let (mut carol, mut dave) = (carol, dave);
    tokio::join!(carol.follow(last), dave.follow(last));
    assert_eq!(carol.model, truth, "a reader on the first instance sees every event in order");
    assert_eq!(dave.model, truth, "and one on the second");
    bob.send(json!({"type": "read", "room": room, "id": alice_acks[149]["id"]})).await;
    let notified = reqwest::Client::new()
        .post(format!("{}/api/notify", b.http_url()))
        .bearer_auth(API_KEY)
        .json(&json!({"user_ids": ["erin"], "title": "kept", "body": "through a Redis flush"}))
        .send()
        .await
        .expect("POST /api/notify");
    assert_eq!(notified.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = dave.offset;
    let more =
        pipelined(&mut alice, (0..20).map(|i| send(room, &format!("late{i}"), "late")).collect())
            .await;
    let last = more.last().unwrap()["offset"].as_u64().unwrap();

    // Both instances die; Redis loses everything.
    a.signal("KILL");
    b.signal("KILL");
    redis.flush_all().await;
    redis.restart().await;
    let (a, b) = (on_both(&database, &redis).await, on_both(&database, &redis).await);

    let epoch = dave.epoch.clone();
    let dave = Reader::join_as("dave", &a, room, Some(dave)).await;
    assert_eq!((dave.epoch.clone(), dave.offset), (epoch, last), "recovered on the other instance");
    assert_eq!(dave.offset - seen, 20, "exactly the missed events");
    let mut erin = connect(&b, "erin").await;
    let notification = erin.expect_type("notification").await;
    assert_eq!(notification["body"], "through a Redis flush");
    let joined = erin.join(room).await;
    assert_eq!(joined["reads"][0]["user_id"], "bob", "{}", joined["reads"]);
    assert_eq!(joined["reads"][0]["id"], alice_acks[149]["id"]);
    let history = whole_history(&mut erin, room).await;
    assert_eq!(history.len(), 320);
    let mut bob = connect(&a, "bob").await;
    bob.join(room).await;
    let again = bob.call_ok(send(room, "bob7", "resent"), "ack").await;
    assert_eq!((&again["id"], &again["offset"]), (&bob_acks[7]["id"], &bob_acks[7]["offset"]));
    assert_eq!(bob.say(room, "after the flush").await["offset"], last + 1);
}

/// Redis restarting under two running instances: a message committed while
/// it was away (its publish failed) reaches the room's members on both
/// instances once their subscriptions are back, without waiting for the
/// room's next event, and once.
#[tokio::test]
async fn what_was_committed_while_redis_was_away_arrives_when_it_is_back() {
    let (mut redis, database) = redis_and_postgres().await;
    let (a, b) = (on_both(&database, &redis).await, on_both(&database, &redis).await);
    let room = "outage";
    let mut alice = connect(&a, "alice").await;
    let mut bob = connect(&b, "bob").await;
    alice.join(room).await;
    bob.join(room).await;
    alice.say(room, "before").await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(client.recv_until("message").await["content"], "before");
    }

    redis.stop().await;
    let ack = alice.call_ok(send(room, "during-1", "during the outage"), "ack").await;
    assert_eq!(ack["offset"], 2, "committed: {ack}");
    redis.restart().await;

    // Each instance's subscriber reconnects on its own schedule (backing
    // off while Redis was down).
    for (who, client) in [("bob", &mut bob), ("alice", &mut alice)] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let message = loop {
            let frames = client.collect_for(Duration::from_millis(250)).await;
            if let Some(message) = frames.into_iter().find(|f| f["type"] == "message") {
                break message;
            }
            assert!(tokio::time::Instant::now() < deadline, "{who} never got it");
        };
        let got = (&message["offset"], &message["content"]);
        assert_eq!(got, (&json!(2), &json!("during the outage")), "{who}");
    }
    // Live again, each event once.
    let next = alice.say(room, "after").await;
    assert_eq!(next["offset"], 3);
    let message = bob.recv_until("message").await;
    assert_eq!(message["offset"], 3, "no repeat of the one caught up: {message}");
    bob.expect_silence(Duration::from_millis(300)).await;
}

/// Commits `count` messages to `room` straight into the server's
/// PostgreSQL, as another instance would, without publishing them; returns
/// each one's `message` frame.
async fn committed_elsewhere(server: &TestServer, room: &str, count: usize) -> Vec<String> {
    use roomcast_server::store::{NewEvent, Outcome, PostgresStore, Store};
    let url = server.config().database_url.clone().expect("a database");
    let store = PostgresStore::connect(&url).await.expect("the test's database");
    let changes: Vec<NewEvent> = (1..=count)
        .map(|i| NewEvent::Message {
            room: roomcast_shared::RoomName::new(room).unwrap(),
            id: format!("m{i}"),
            client_id: format!("c{i}"),
            sender: roomcast_shared::UserInfo {
                id: "other".into(),
                name: "Other".into(),
                role: None,
                avatar: None,
            },
            content: format!("message {i}"),
            data: None,
            created_at: time::OffsetDateTime::now_utc(),
        })
        .collect();
    store
        .append(&changes)
        .await
        .expect("committed")
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Appended(event) => {
                serde_json::to_string(&roomcast_shared::ServerFrame::from(event)).unwrap()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Events of one room published out of order by instances (and one never
/// published: its instance died after the commit) reach clients in offset
/// order, the unpublished one read from the store, repeats dropped.
#[tokio::test]
async fn crossing_publishes_reach_clients_in_offset_order() {
    let server = TestServer::start_on(Engine::RedisPostgres).await;
    let mut reader = WsClient::connect_as(&server, "reader", "Reader").await;
    reader.join("crossing").await;
    // Another instance commits three messages...
    let frames = committed_elsewhere(&server, "crossing", 3).await;
    // ...and publishes the third, then the first again and the first: the
    // second never.
    let redis = server.redis().expect("a redis-server");
    let channel = "rc:ch:8:crossing";
    for offset in [3, 1, 1] {
        redis.publish(channel, &format!("{offset}\t\t{}", frames[offset - 1])).await;
    }
    let mut offsets = Vec::new();
    while offsets.len() < 3 {
        let frame = reader.recv_until("message").await;
        offsets.push(frame["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, [1, 2, 3], "in order, the skipped one from the store");
    reader.expect_silence(Duration::from_millis(300)).await;
}

/// A client that saw events on another instance and rejoins here before
/// this instance's fan-in brought them (or never will: their publish was
/// lost) recovers from the store, not from a reset, and then gets each
/// later event once.
#[tokio::test]
async fn a_rejoin_ahead_of_this_instance_recovers_from_the_store() {
    let server = TestServer::start_on(Engine::RedisPostgres).await;
    let mut reader = WsClient::connect_as(&server, "reader", "Reader").await;
    let epoch = reader.join("ahead").await["epoch"].clone();
    // Committed and seen elsewhere up to offset 2; this instance heard of none.
    committed_elsewhere(&server, "ahead", 3).await;
    let mut bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let since = json!({"type": "join", "room": "ahead", "since": {"epoch": epoch, "offset": 2}});
    let joined = bob.call_ok(since, "joined").await;
    assert_eq!(joined["recovered"], true, "recovered, not reset: {joined}");
    assert_eq!(joined["offset"], 3);
    let replayed: Vec<&Value> = joined["messages"].as_array().unwrap().iter().collect();
    assert_eq!(replayed.len(), 1, "exactly what it missed: {joined}");
    assert_eq!(replayed[0]["offset"], 3);
    // An offset no instance has reached is still a reset.
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let beyond = json!({"type": "join", "room": "ahead", "since": {"epoch": epoch, "offset": 4}});
    assert_eq!(carol.call_ok(beyond, "joined").await["recovered"], false);
    // The next event brings the skipped ones to the reader; Bob, who has
    // them, gets only the new one.
    let ack = reader.say("ahead", "after the gap").await;
    assert_eq!(ack["offset"], 4);
    let mut offsets = Vec::new();
    while offsets.len() < 4 {
        offsets.push(reader.recv_until("message").await["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, [1, 2, 3, 4], "the reader's, in order");
    let next = bob.recv_until("message").await;
    assert_eq!(next["offset"], 4, "Bob's next is the new one: {next}");
    bob.expect_silence(Duration::from_millis(300)).await;
}

/// `--retention-days` removes older messages at start, keeps the rest and
/// the room's offsets; a retention shorter than the recovery window is
/// refused.
#[tokio::test]
async fn retention_removes_old_messages_at_start() {
    use roomcast_server::store::{NewEvent, SqliteStore, Store};
    let database = TempDatabase::new();
    let path = database.url().trim_start_matches("sqlite://").to_owned();
    let store = SqliteStore::open(std::path::Path::new(&path)).await.expect("a store");
    let now = time::OffsetDateTime::now_utc();
    let message = |i: u32, created_at| NewEvent::Message {
        room: roomcast_shared::RoomName::new("kept").unwrap(),
        id: format!("m{i}"),
        client_id: format!("c{i}"),
        sender: roomcast_shared::UserInfo {
            id: "alice".into(),
            name: "Alice".into(),
            role: None,
            avatar: None,
        },
        content: format!("message {i}"),
        data: None,
        created_at,
    };
    let old = now - Duration::from_secs(3 * 86_400);
    store.append(&[message(1, old), message(2, old), message(3, now)]).await.expect("stored");
    store.close().await;

    let server =
        start_with(&database.url(), &["--retention-days", "1", "--history-max-age-secs", "3600"])
            .await;
    let mut alice = connect(&server, "alice").await;
    alice.join("kept").await;
    // Retention runs at start, beside the first requests: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let history = loop {
        let history = whole_history(&mut alice, "kept").await;
        if history.len() == 1 || tokio::time::Instant::now() > deadline {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let contents: Vec<&str> = history.iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["message 3"]);
    assert_eq!(alice.say("kept", "next").await["offset"], 4, "offsets continue");

    let args = ["--dev", "--database-url", "memory", "--retention-days", "1"];
    let (started, output) = run_to_exit(&args, &[]).await;
    assert!(!started && output.contains("recovery window"), "{output}");
}
