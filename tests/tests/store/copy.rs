//! `roomcast db copy`, run as the real binary: a store filled through the
//! `Store` trait moves to another database (SQLite to PostgreSQL and back)
//! and answers every read there as it did before, with its epoch, so that
//! clients recover; appending goes on from its offsets. A destination with
//! data is refused and left alone, a copy that fails midway leaves nothing
//! behind, and a bad URL is a clear error.

use std::process::Stdio;
use std::time::Duration;

use roomcast_server::store::copy::MAX_BATCH_ROWS;
use roomcast_server::store::outbox::OutboxRow;
use roomcast_server::store::{DataEdit, NewEvent, Outcome, ReadMark, Store, UnreadCaps};
use roomcast_shared::{ChatMessage, Notification, Position, ReadReceipt, RoomEvent};
use roomcast_tests::process::roomcast_binary;
use roomcast_tests::unique_id;
use tokio::sync::OnceCell;

use crate::outbox::{AsWebhooks, bodies};
use crate::{Backend, append1, appended, id_of, message, now, room};

const ROOMS: &[&str] = &["lobby", "dev.team", "r_1.@:,-"];
const USERS: &[&str] = &["alice", "bob", "carol"];
const CAPS: UnreadCaps =
    UnreadCaps { count: 100, bytes: 1 << 20, max_age: Duration::from_secs(3600) };
const MAX_AGE: Duration = Duration::from_secs(3600);

/// What a client or a server could ask a store about [`ROOMS`] and [`USERS`].
#[derive(Debug, PartialEq)]
struct Answers {
    heads: Vec<Position>,
    events: Vec<Vec<RoomEvent>>,
    history: Vec<Vec<ChatMessage>>,
    reads: Vec<Vec<ReadReceipt>>,
    read: Vec<u64>,
}

async fn answers(store: &dyn Store) -> Answers {
    let mut all =
        Answers { heads: vec![], events: vec![], history: vec![], reads: vec![], read: vec![] };
    for name in ROOMS {
        let r = room(name);
        all.heads.push(store.head(&r).await.unwrap());
        all.events.push(store.events_after(&r, 0, 10_000).await.unwrap());
        all.history.push(store.messages_before(&r, None, 10_000).await.unwrap());
        all.reads.push(store.reads(&r, 1_000).await.unwrap());
        for u in USERS {
            all.read.push(store.read(u, &r).await.unwrap());
        }
    }
    all
}

fn notification(title: &str) -> Notification {
    Notification {
        id: unique_id("n"),
        title: title.into(),
        body: format!("body of {title}"),
        data: serde_json::json!({ "nested": [1, "two", null], "q": "'\"%" }),
        created_at: now(),
    }
}

/// Sends, edits, deletes, reads and notifications in every room; the
/// first message of `lobby` (for a resend).
async fn fill(store: &dyn Store, contents: &[String]) -> ChatMessage {
    let mut first = None;
    for (r, name) in ROOMS.iter().enumerate() {
        let mut sent = Vec::new();
        for (i, content) in contents.iter().enumerate() {
            let sender = USERS[i % 2];
            let outcome =
                append1(store, message(name, sender, &format!("c{r}-{i}"), content)).await;
            let RoomEvent::Message(m) = appended(&outcome).clone() else { panic!("not a message") };
            sent.push(m);
        }
        first.get_or_insert_with(|| sent[0].clone());
        // An edit by the sender, a delete by an admin.
        let edit = NewEvent::Edit {
            room: room(name),
            id: sent[1].id.clone(),
            by: Some(sent[1].sender.id.clone()),
            content: format!("edited: {}", contents[contents.len() - 1]),
            data: DataEdit::Keep,
            edited_at: now(),
        };
        appended(&append1(store, edit).await);
        appended(
            &append1(
                store,
                NewEvent::Delete { room: room(name), id: sent[2].id.clone(), by: None },
            )
            .await,
        );
        let marks: Vec<ReadMark> = USERS
            .iter()
            .enumerate()
            .map(|(u, reader)| ReadMark {
                user_id: (*reader).into(),
                room: room(name),
                id: sent[(u + r) % sent.len()].id.clone(),
                read_at: now() - Duration::from_secs((u * 10) as u64),
            })
            .collect();
        store.set_reads(&marks).await.unwrap();
    }
    for (u, reader) in USERS.iter().enumerate() {
        for n in 0..=u {
            let kept = store
                .keep_notification(reader, &notification(&format!("{n} for {reader}")), &CAPS)
                .await
                .unwrap();
            assert!(kept);
        }
    }
    first.expect("at least one room")
}

fn contents() -> Vec<String> {
    (0..7).map(|i| format!("message {i}")).collect()
}

/// The `roomcast` binary, built once per test binary.
async fn binary() -> &'static std::path::Path {
    static BINARY: OnceCell<std::path::PathBuf> = OnceCell::const_new();
    BINARY.get_or_init(roomcast_binary).await
}

/// What `roomcast db copy` answered.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `roomcast db copy --from FROM --to TO` and any `extra` flags.
async fn db_copy(from: &str, to: &str, extra: &[&str]) -> Run {
    let output = tokio::process::Command::new(binary().await)
        .args(["db", "copy", "--from", from, "--to", to])
        .args(extra)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .env_remove("ROOMCAST_COPY_BATCH_ROWS")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("db copy ended within 60 s")
        .expect("running roomcast db copy");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn url(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite(path) => format!("sqlite://{}", path.display()),
        Backend::Postgres(url) => url.clone(),
    }
}

/// Copies `from` into `to`, which must succeed; its summary line.
async fn copied(from: &Backend, to: &Backend, extra: &[&str]) -> String {
    let run = db_copy(&url(from), &url(to), extra).await;
    assert!(run.success, "db copy failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// Everything the copied store answers alike, then what a client and a
/// server do next on it: recover from an old `since`, resend, append,
/// take notifications.
async fn assert_moved(source: &dyn Store, destination: &dyn Store, first: &ChatMessage) {
    let before = answers(source).await;
    let after = answers(destination).await;
    assert_eq!(after, before);
    assert!(before.heads.iter().all(|head| head.offset > 0));
    // A client's `since` from the old store recovers on the new one.
    let lobby = room("lobby");
    let since = Position { epoch: before.heads[0].epoch.clone(), offset: 3 };
    assert_eq!(after.heads[0].epoch, since.epoch, "the epoch moved with the offsets");
    let recovered = destination.events_after(&lobby, since.offset, 100).await.unwrap();
    assert_eq!(recovered, source.events_after(&lobby, since.offset, 100).await.unwrap());
    assert_eq!(recovered.first().map(RoomEvent::offset), Some(4));
    // An old client_id is still a duplicate.
    let resend = message("lobby", &first.sender.id, &first.client_id, "again");
    let again = append1(destination, resend).await;
    assert_eq!(again, Outcome::Duplicate { id: first.id.clone(), offset: first.offset });
    // Appending goes on from the copied offsets.
    let next = append1(destination, message("lobby", "carol", &unique_id("new"), "next")).await;
    assert_eq!(appended(&next).offset(), before.heads[0].offset + 1);
    assert_eq!(destination.head(&lobby).await.unwrap().epoch, since.epoch);
    // Kept notifications move in order, and one kept after them comes last.
    let later = notification("after the move");
    assert!(destination.keep_notification("carol", &later, &CAPS).await.unwrap());
    for reader in USERS {
        let mut expected = source.take_notifications(reader, MAX_AGE).await.unwrap();
        if *reader == "carol" {
            expected.push(later.clone());
        }
        assert!(!expected.is_empty());
        assert_eq!(destination.take_notifications(reader, MAX_AGE).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn sqlite_moves_to_postgres_with_its_epoch_offsets_reads_and_notifications() {
    let (source, destination) = (Backend::sqlite().await, Backend::postgres().await);
    let first = fill(&*source.open().await, &contents()).await;
    // Pages of 4 rows: every table takes several, and ends mid-page.
    let summary = copied(&source, &destination, &["--batch-rows", "4"]).await;
    // A message's event is its row of `messages`; `events` holds the
    // edit and the delete of each room.
    let (events, messages) = (ROOMS.len() * 2, ROOMS.len() * contents().len());
    assert!(summary.contains(&format!("events {events} = {events}")), "{summary}");
    assert!(summary.contains(&format!("messages {messages} = {messages}")), "{summary}");
    assert!(summary.contains("read_positions 9 = 9"), "{summary}");
    assert!(summary.contains("notifications 6 = 6"), "{summary}");
    assert_moved(&*source.open().await, &*destination.open().await, &first).await;
}

#[tokio::test]
async fn postgres_moves_back_to_sqlite_and_sqlite_to_sqlite() {
    let (origin, postgres) = (Backend::sqlite().await, Backend::postgres().await);
    let first = fill(&*origin.open().await, &contents()).await;
    copied(&origin, &postgres, &[]).await;
    let back = Backend::sqlite().await;
    copied(&postgres, &back, &["--batch-rows", "1"]).await;
    let again = Backend::sqlite().await;
    copied(&back, &again, &[]).await;
    assert_moved(&*origin.open().await, &*again.open().await, &first).await;
}

#[tokio::test]
async fn hostile_values_round_trip_exactly() {
    let (source, destination) = (Backend::sqlite().await, Backend::postgres().await);
    let long = "é'\";%🙂\\".repeat(4096 / 12);
    let hostile: Vec<String> = [
        "'",
        "\"",
        "a'; DROP TABLE messages; --",
        "%",
        "_",
        "\\x00",
        "$1",
        "ünï𝄞コード🙂",
        "\u{202e}rtl\u{200b}",
        long.as_str(),
    ]
    .map(String::from)
    .into();
    let first = fill(&*source.open().await, &hostile).await;
    let store = source.open().await;
    // Hostile keys too: as a sender, a client_id and a reader.
    let mut keyed = Vec::new();
    for key in &hostile[..9] {
        let outcome = append1(&*store, message("lobby", key, key, &long)).await;
        let RoomEvent::Message(m) = appended(&outcome).clone() else { panic!("not a message") };
        store
            .set_reads(&[ReadMark {
                user_id: key.clone(),
                room: room("lobby"),
                id: m.id.clone(),
                read_at: now(),
            }])
            .await
            .unwrap();
        let mut n = notification(key);
        n.body = long.clone();
        assert!(store.keep_notification(key, &n, &CAPS).await.unwrap());
        keyed.push((m, n));
    }
    copied(&source, &destination, &["--batch-rows", "3"]).await;
    let moved = destination.open().await;
    for (m, n) in &keyed {
        assert_eq!(moved.read(&m.sender.id, &room("lobby")).await.unwrap(), m.offset);
        let resend = message("lobby", &m.sender.id, &m.client_id, "again");
        let again = append1(&*moved, resend).await;
        assert_eq!(again, Outcome::Duplicate { id: m.id.clone(), offset: m.offset });
        let taken = moved.take_notifications(&m.sender.id, MAX_AGE).await.unwrap();
        assert_eq!(taken, std::slice::from_ref(n));
        assert_eq!(
            store.take_notifications(&m.sender.id, MAX_AGE).await.unwrap(),
            std::slice::from_ref(n)
        );
    }
    assert_moved(&*store, &*moved, &first).await;
}

#[tokio::test]
async fn a_destination_with_data_is_refused_and_left_unchanged() {
    let source = Backend::sqlite().await;
    fill(&*source.open().await, &contents()).await;
    // PostgreSQL holding one message; SQLite holding only a notification.
    let postgres = Backend::postgres().await;
    append1(&*postgres.open().await, message("lobby", "zed", "z1", "live data")).await;
    let sqlite = Backend::sqlite().await;
    let store = sqlite.open().await;
    assert!(store.keep_notification("zed", &notification("live"), &CAPS).await.unwrap());
    drop(store);
    for (destination, holds) in [(&postgres, "messages: 1"), (&sqlite, "notifications: 1")] {
        let before = answers(&*destination.open().await).await;
        let run = db_copy(&url(&source), &url(destination), &[]).await;
        assert!(!run.success, "a copy into live data must fail: {}", run.stdout);
        assert!(run.stderr.contains("already holds data"), "{}", run.stderr);
        assert!(run.stderr.contains(holds), "{}", run.stderr);
        assert!(!run.stdout.contains("copied"), "{}", run.stdout);
        let store = destination.open().await;
        assert_eq!(answers(&*store).await, before, "the destination is unchanged");
    }
    let left = sqlite.open().await.take_notifications("zed", MAX_AGE).await.unwrap();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn a_copy_failing_midway_leaves_the_destination_empty_and_can_run_again() {
    let (source, destination) = (Backend::sqlite().await, Backend::postgres().await);
    let first = fill(&*source.open().await, &contents()).await;
    // A read position PostgreSQL cannot hold (NUL in text), written behind
    // the store's back: rooms, events and messages are copied before it.
    let Backend::Sqlite(path) = &source else { unreachable!() };
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query(
        "INSERT INTO read_positions (user_id, room, pos, id, read_at, at) \
         VALUES ('nul', 'lobby', 1, 'x', $1, 0)",
    )
    .bind("a\0b")
    .execute(&raw)
    .await
    .unwrap();
    let empty = answers(&*destination.open().await).await;
    let run = db_copy(&url(&source), &url(&destination), &["--batch-rows", "2"]).await;
    assert!(!run.success, "the copy must fail: {}", run.stdout);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    let after = answers(&*destination.open().await).await;
    assert_eq!(after, empty, "nothing of the failed copy is left");
    assert!(after.heads.iter().all(|head| head.offset == 0));
    // Fixed, it runs again into the same destination.
    sqlx::query("DELETE FROM read_positions WHERE user_id = 'nul'").execute(&raw).await.unwrap();
    raw.close().await;
    copied(&source, &destination, &[]).await;
    assert_moved(&*source.open().await, &*destination.open().await, &first).await;
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    let source = Backend::sqlite().await;
    fill(&*source.open().await, &contents()).await;
    let target = Backend::sqlite().await;
    let Backend::Sqlite(target_path) = &target else { unreachable!() };
    let missing = target_path.with_file_name("missing.db");
    let refused = format!("postgres://postgres@127.0.0.1:{}/x", closed_port());
    let cases = [
        (
            "mysql://root@localhost/db".to_owned(),
            url(&target),
            "neither sqlite://PATH nor postgres://",
        ),
        (url(&source), "redis://127.0.0.1/0".to_owned(), "--to: a `redis` URL is neither"),
        (format!("sqlite://{}", missing.display()), url(&target), "no SQLite file at"),
        (url(&source), refused, "Connection refused"),
        (url(&source), url(&source), "the same database"),
    ];
    for (from, to, says) in cases {
        let run = db_copy(&from, &to, &[]).await;
        assert!(!run.stderr.contains("root@"), "a URL is not echoed: {}", run.stderr);
        assert!(!run.success, "{from} -> {to} must fail: {}", run.stdout);
        assert!(run.stderr.contains(says), "{from} -> {to}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
    assert!(!target_path.exists(), "a refused copy creates no destination");
    assert!(!missing.exists(), "a missing source is not created");
    let run = db_copy(&url(&source), &url(&target), &["--batch-rows", "0"]).await;
    assert!(!run.success && run.stderr.contains("--batch-rows"), "{}", run.stderr);
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    listener.local_addr().expect("its address").port()
}

/// The widest table, `webhook_outbox`, in pages of the largest size
/// (SQLite's bound on parameters), each row with the message it names: a
/// delete after the move still erases the message's webhook event.
#[tokio::test]
async fn the_webhook_outbox_moves_in_the_largest_pages_and_still_erases() {
    // Into SQLite, whose bound is the tighter.
    let (source, destination) = (Backend::postgres().await, Backend::sqlite().await);
    let store = source.open().await;
    let send = message("r", "alice", "c1", "secret");
    let id = id_of(&send);
    store.append_recorded(&[send], &AsWebhooks).await.unwrap();
    let live: Vec<OutboxRow> = (0..MAX_BATCH_ROWS)
        .map(|i| OutboxRow {
            endpoint: "http://b/".into(),
            room: "r".into(),
            event_id: format!("live-{i}"),
            kind: "presence",
            body: format!("{{\"n\":{i}}}"),
            at: now(),
            message_id: Some(format!("m-{i}")),
        })
        .collect();
    store.enqueue(&live).await.unwrap();
    let batch = MAX_BATCH_ROWS.to_string();
    copied(&source, &destination, &["--batch-rows", &batch]).await;

    let moved = destination.open().await;
    let all = moved.pending("http://b/", 0, live.len() + 1).await.unwrap();
    assert_eq!(all.len(), live.len(), "every row moved");
    assert!(all.iter().zip(&live).all(|(r, l)| r.event_id == l.event_id && r.body == l.body));
    let delete = NewEvent::Delete { room: room("r"), id, by: None };
    moved.append_recorded(&[delete], &AsWebhooks).await.unwrap();
    let text = serde_json::to_string(&bodies(&*moved).await).unwrap();
    assert!(!text.contains("secret") && text.contains("message_deleted"), "{text}");
}
