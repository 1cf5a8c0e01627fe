//! Hostile keys and content: quotes, `;`, SQL comments, `LIKE` wildcards,
//! unicode and 4 KiB texts are data, stored and matched exactly.

use std::time::Duration;

use roomcast_server::store::{DataEdit, NewEvent, Outcome, ReadMark, StoreError, UnreadCaps};
use roomcast_shared::RoomEvent;

use crate::{Backend, append1, appended, both_stores, message, now, room};

both_stores!(hostile_keys_are_data_not_sql);

const HOSTILE: &[&str] = &[
    "'",
    "\"",
    "a'; DROP TABLE messages; --",
    "' OR '1'='1",
    "%",
    "_",
    "a%",
    "\\",
    "$1",
    "?",
    "ünï𝄞コード🙂",
    "\u{202e}rtl\u{200b}",
];

async fn hostile_keys_are_data_not_sql(backend: &Backend) {
    let store = backend.open().await;
    // Room names allow only A-Z a-z 0-9 _ . : @ , - (and `_` is a LIKE wildcard).
    let rooms = ["r_1", "r%1", "r.1,@:-"].map(|r| r.replace('%', "x"));
    let long = "é'\";%".repeat(4096 / 6 + 1);
    let mut sent = Vec::new();
    for room_name in &rooms {
        for (i, key) in HOSTILE.iter().enumerate() {
            let content = if i == 0 { long.clone() } else { format!("{key} in {room_name}") };
            // The key as user id, as client_id, and both.
            for (sender, client_id) in [(*key, "plain"), ("plain", *key), (*key, *key)] {
                let outcome =
                    append1(&*store, message(room_name, sender, client_id, &content)).await;
                let RoomEvent::Message(m) = appended(&outcome).clone() else {
                    panic!("not a message")
                };
                assert_eq!((m.sender.id.as_str(), m.client_id.as_str()), (sender, client_id));
                sent.push(m);
            }
        }
    }
    // Each key matched only itself: every resend is a duplicate of its own.
    for m in &sent {
        let again =
            append1(&*store, message(m.room.as_str(), &m.sender.id, &m.client_id, "again")).await;
        assert_eq!(again, Outcome::Duplicate { id: m.id.clone(), offset: m.offset }, "{m:?}");
    }
    // Nothing was dropped or rewritten, the 4 KiB text included.
    for room_name in &rooms {
        let stored = store.messages_before(&room(room_name), None, 1000).await.unwrap();
        let expected: Vec<_> =
            sent.iter().filter(|m| m.room.as_str() == room_name).cloned().collect();
        assert_eq!(stored, expected);
        assert!(stored[0].content.len() >= 4096);
    }
    // One batch over every room and a new one: each message takes its own
    // room's next offset (SQLite reads the rooms' offsets back as JSON).
    let new_room = "r.1,@:-,new";
    let batch: Vec<NewEvent> = rooms
        .iter()
        .map(String::as_str)
        .chain([new_room])
        .map(|room_name| message(room_name, "plain", "batch", "one of a batch"))
        .collect();
    let outcomes = store.append(&batch).await.unwrap();
    let per_room = (HOSTILE.len() * 3) as u64;
    for (event, outcome) in batch.iter().zip(&outcomes) {
        let expected = if event.room().as_str() == new_room { 1 } else { per_room + 1 };
        assert_eq!(appended(outcome).offset(), expected, "{outcome:?}");
    }
    // Edits and deletes by hostile user ids reach only their own message.
    let target = &sent[2];
    let edit = NewEvent::Edit {
        room: target.room.clone(),
        id: target.id.clone(),
        by: Some("%".into()),
        content: "'; --".into(),
        data: DataEdit::Keep,
        edited_at: now(),
    };
    assert_eq!(append1(&*store, edit).await, Outcome::NotTheSender);
    let delete = NewEvent::Delete {
        room: target.room.clone(),
        id: "%".into(),
        by: Some(target.sender.id.clone()),
    };
    assert_eq!(append1(&*store, delete).await, Outcome::NotFound);
    // Read positions and notifications under hostile user ids.
    let marks: Vec<ReadMark> = HOSTILE
        .iter()
        .zip(&sent)
        .map(|(key, m)| ReadMark {
            user_id: (*key).into(),
            room: m.room.clone(),
            id: m.id.clone(),
            read_at: now(),
        })
        .collect();
    store.set_reads(&marks).await.unwrap();
    for (key, m) in HOSTILE.iter().zip(&sent) {
        assert_eq!(store.read(key, &m.room).await.unwrap(), m.offset, "{key:?}");
        assert_eq!(store.read(key, &room("rx1")).await.unwrap(), 0);
    }
    let note = roomcast_shared::Notification {
        id: "'".into(),
        title: long.clone(),
        body: "%".into(),
        data: serde_json::json!({ "'": "\"" }),
        created_at: now(),
    };
    let caps = UnreadCaps { count: 10, bytes: 1 << 20, max_age: Duration::from_secs(60) };
    store.keep_notification("%", &note, &caps).await.unwrap();
    assert!(store.take_notifications("a%", caps.max_age).await.unwrap().is_empty());
    assert!(store.take_notifications("_", caps.max_age).await.unwrap().is_empty());
    assert_eq!(store.take_notifications("%", caps.max_age).await.unwrap(), [note]);
}

both_stores!(a_nul_in_a_key_is_refused_alike_and_spoils_no_batch);

/// PostgreSQL cannot keep NUL in text, SQLite can: both refuse it in keys,
/// only for the change that has it.
async fn a_nul_in_a_key_is_refused_alike_and_spoils_no_batch(backend: &Backend) {
    let store = backend.open().await;
    let outcomes = store
        .append(&[
            message("r", "alice", "ok-1", "fine"),
            message("r", "alice", "bad\0id", "refused"),
            message("r", "alice\0", "ok-2", "refused"),
            message("r", "alice", "ok-3", "a NUL \0 in the text is data"),
        ])
        .await
        .expect("the batch commits");
    assert_eq!(outcomes[1], Outcome::Invalid);
    assert_eq!(outcomes[2], Outcome::Invalid);
    let texts: Vec<String> = store
        .messages_before(&room("r"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["fine", "a NUL \0 in the text is data"]);
    let edit = NewEvent::Edit {
        room: room("r"),
        id: "x\0".into(),
        by: Some("alice".into()),
        content: "c".into(),
        data: DataEdit::Keep,
        edited_at: now(),
    };
    assert_eq!(append1(&*store, edit).await, Outcome::Invalid);
    // A mark under a NUL id is skipped, the rest of its batch kept.
    let fine = store.messages_before(&room("r"), None, 1).await.unwrap().remove(0);
    let marks = ["a\0", "alice"].map(|user_id| ReadMark {
        user_id: user_id.into(),
        room: room("r"),
        id: fine.id.clone(),
        read_at: now(),
    });
    store.set_reads(&marks).await.unwrap();
    assert_eq!(store.read("alice", &room("r")).await.unwrap(), fine.offset);
    assert!(matches!(store.read("a\0", &room("r")).await, Err(StoreError::Invalid)));
    let forever = Duration::from_secs(60);
    assert!(matches!(store.take_notifications("a\0", forever).await, Err(StoreError::Invalid)));
}
