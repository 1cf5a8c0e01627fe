//! Upgrading a store written by an earlier version: the migrations up to
//! 0005 are applied to a new database, which is filled as that version
//! wrote it, then the store opens it and applies the rest. A message
//! deleted before the upgrade (whose row still held its content, as rows
//! deleted before deletes emptied them do, and whose events all of it)
//! leaves no text behind, an edit made before the upgrade is found by a
//! delete made after it, and the messages' keys, rebuilt with their table,
//! still answer a resend.

use std::path::{Path, PathBuf};

use roomcast_server::store::{NewEvent, Outcome, Store};
use roomcast_shared::webhook::{WebhookEvent, WebhookPayload};
use roomcast_shared::{ChatMessage, MessageDeleted, MessageUpdated, RoomEvent};
use roomcast_tests::unique_id;
use sqlx::migrate::Migrator;

use crate::{Backend, append1, both_stores, message as message_event, now, room, user};

both_stores!(an_upgrade_erases_what_earlier_deletes_left);

/// The version before `0006_erase.sql`.
const BEFORE: u32 = 6;

/// A copy of `backend`'s migrations older than [`BEFORE`], in a temporary
/// directory (the same files, so the same checksums).
fn older_migrations(backend: &Backend) -> PathBuf {
    let kind = match backend {
        Backend::Sqlite(_) => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/migrations").join(kind);
    let target = std::env::temp_dir().join(unique_id("roomcast-old-migrations"));
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: u32 = name.split('_').next().unwrap().parse().unwrap();
        if version < BEFORE {
            std::fs::copy(&path, target.join(&name)).unwrap();
        }
    }
    target
}

fn message(id: &str, offset: u64, content: &str) -> ChatMessage {
    ChatMessage {
        room: room("r"),
        id: id.into(),
        offset,
        client_id: format!("c-{id}"),
        sender: user("alice"),
        content: content.into(),
        created_at: now(),
        edited_at: None,
        data: Some(Box::new(serde_json::json!({"note": content}))),
        deleted: false,
    }
}

fn edit(id: &str, offset: u64, content: &str) -> RoomEvent {
    RoomEvent::MessageUpdated(MessageUpdated {
        room: room("r"),
        id: id.into(),
        offset,
        content: content.into(),
        edited_at: now(),
        data: None,
    })
}

/// Events as (offset, body), and messages with their `deleted` column.
type OldRows = (Vec<(u64, String)>, Vec<(ChatMessage, bool)>);

/// The rows an earlier version wrote: `gone` sent, edited and deleted (its
/// row still holding its content), `kept` sent and edited.
fn old_rows() -> OldRows {
    // Texts with NUL, which PostgreSQL's `jsonb` would refuse.
    let (gone, kept) = (message("gone", 1, "secret\0one"), message("kept", 2, "kept"));
    let events = [
        RoomEvent::Message(gone.clone()),
        RoomEvent::Message(kept.clone()),
        edit("gone", 3, "secret\0edit"),
        edit("kept", 4, "kept, edited\0"),
        RoomEvent::MessageDeleted(MessageDeleted { room: room("r"), id: "gone".into(), offset: 5 }),
    ];
    let events = events.iter().map(|e| (e.offset(), serde_json::to_string(e).unwrap())).collect();
    (events, vec![(gone, true), (kept, false)])
}

/// The webhook events of [`old_rows`]' sends and first edit, by id.
fn old_webhook_events() -> Vec<(String, WebhookEvent)> {
    let (events, _) = old_rows();
    let events = events.iter().map(|(_, body)| serde_json::from_str::<RoomEvent>(body).unwrap());
    events
        .filter(|e| !matches!(e, RoomEvent::MessageDeleted(_)))
        .take(3)
        .map(|e| {
            let id = format!("evt-{}", e.offset());
            let event = WebhookEvent {
                id: id.clone(),
                created_at: now(),
                room: Some(room("r")),
                payload: e.into(),
            };
            (id, event)
        })
        .collect()
}

macro_rules! write_old {
    ($pool:expr) => {{
        let pool = $pool;
        let (events, messages) = old_rows();
        sqlx::query("INSERT INTO rooms (room, latest) VALUES ('r', 5)")
            .execute(&pool)
            .await
            .unwrap();
        for (pos, body) in events {
            sqlx::query("INSERT INTO events (room, pos, at, body) VALUES ('r', $1, 0, $2)")
                .bind(pos as i64)
                .bind(body)
                .execute(&pool)
                .await
                .unwrap();
        }
        // Rows the upgrade cannot read (an edit cut short, a deleted
        // message that is not JSON) are left as they are, not a failed start.
        sqlx::query(
            "INSERT INTO events (room, pos, at, body) \
             VALUES ('junk', 1, 0, '{\"type\":\"message_updated\",')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO messages (room, id, sender, client_id, pos, at, body, deleted) \
             VALUES ('junk', 'bad', 'alice', 'c-bad', 1, 0, '{', $1)",
        )
        .bind(true)
        .execute(&pool)
        .await
        .unwrap();
        // Webhook events waiting and dead, as that version wrote them (no
        // message named): `gone`'s send and edit, `kept`'s send.
        for (seq, (id, event)) in old_webhook_events().into_iter().enumerate() {
            sqlx::query(
                "INSERT INTO webhook_outbox (endpoint, room, event_id, kind, body, at, dead) \
                 VALUES ('http://a/', 'r', $1, $2, $3, 0, $4)",
            )
            .bind(id)
            .bind(if matches!(event.payload, WebhookPayload::Message(_)) {
                "message"
            } else {
                "message_updated"
            })
            .bind(serde_json::to_string(&event).unwrap())
            .bind(seq == 0)
            .execute(&pool)
            .await
            .unwrap();
        }
        for (m, deleted) in messages {
            sqlx::query(
                "INSERT INTO messages (room, id, sender, client_id, pos, at, body, deleted) \
                 VALUES ('r', $1, 'alice', $2, $3, 0, $4, $5)",
            )
            .bind(&m.id)
            .bind(&m.client_id)
            .bind(m.offset as i64)
            .bind(serde_json::to_string(&m).unwrap())
            .bind(deleted)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }};
}

async fn an_upgrade_erases_what_earlier_deletes_left(backend: &Backend) {
    let dir = older_migrations(backend);
    let migrator = Migrator::new(dir.as_path()).await.unwrap();
    match backend {
        Backend::Sqlite(path) => {
            let options =
                sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            write_old!(pool);
        }
        Backend::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            write_old!(pool);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();

    let store = backend.open().await;
    let junk = store.events_after(&room("junk"), 0, 10).await;
    assert!(junk.is_err(), "the unreadable edit is still there, unread: {junk:?}");
    let events = store.events_after(&room("r"), 0, 10).await.unwrap();
    let history = store.messages_before(&room("r"), None, 10).await.unwrap();
    let text = serde_json::to_string(&(&events, &history)).unwrap();
    assert!(!text.contains("secret"), "nothing of the deleted message: {text}");
    assert!(matches!(&events[0], RoomEvent::Message(m) if m.deleted && m.id == "gone"));
    assert!(matches!(&events[2], RoomEvent::MessageDeleted(d) if d.id == "gone" && d.offset == 3));
    assert!(matches!(&events[3], RoomEvent::MessageUpdated(u) if u.content == "kept, edited\0"));
    let trace = &history[0];
    assert!(trace.deleted && trace.content.is_empty() && trace.data.is_none(), "{trace:?}");
    let webhooks = webhook_bodies(&*store).await;
    assert!(!webhooks.contains("secret"), "nor of its webhook events: {webhooks}");
    assert!(webhooks.contains("\"content\":\"kept\""), "the others' stay: {webhooks}");

    // The edit from before the upgrade is found by a delete after it.
    let delete = NewEvent::Delete { room: room("r"), id: "kept".into(), by: None };
    assert!(matches!(append1(&*store, delete).await, Outcome::Appended(_)));
    let events = store.events_after(&room("r"), 0, 10).await.unwrap();
    assert!(matches!(&events[3], RoomEvent::MessageDeleted(d) if d.id == "kept" && d.offset == 4));
    assert!(!serde_json::to_string(&events).unwrap().contains("kept, edited"));
    let webhooks = webhook_bodies(&*store).await;
    assert!(!webhooks.contains("\"content\":\"kept\""), "its webhook event too: {webhooks}");

    // A resend of a message from before the upgrade is its duplicate; a
    // new message takes the next offset.
    let resend = append1(&*store, message_event("r", "alice", "c-kept", "again")).await;
    assert_eq!(resend, Outcome::Duplicate { id: "kept".into(), offset: 2 });
    let new = append1(&*store, message_event("r", "alice", "c-new", "new")).await;
    assert!(matches!(&new, Outcome::Appended(RoomEvent::Message(m)) if m.offset == 7), "{new:?}");
}

/// The bodies of the webhook events waiting and dead, joined.
async fn webhook_bodies(store: &dyn Store) -> String {
    let mut bodies: Vec<String> =
        store.pending("http://a/", 0, 100).await.unwrap().into_iter().map(|r| r.body).collect();
    let dead = store.dead_letters(None, 0, 100).await.unwrap();
    assert_eq!(dead.len(), 1, "the dead letter is still there");
    bodies.extend(dead.into_iter().map(|d| d.row.body));
    assert_eq!(bodies.len(), 3, "every event is still there");
    bodies.join("\n")
}
