//! Hostile keys and content: quotes, `;`, SQL comments, `LIKE` wildcards,
//! unicode and 4 KiB texts are data, stored and matched exactly.

use roomcast_server::store::{NewEvent, Outcome};
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
    // Edits and deletes by hostile user ids reach only their own message.
    let target = &sent[2];
    let edit = NewEvent::Edit {
        room: target.room.clone(),
        id: target.id.clone(),
        by: Some("%".into()),
        content: "'; --".into(),
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
    for (i, key) in HOSTILE.iter().enumerate() {
        store.set_read(key, &room("r_1"), i as u64 + 1).await.unwrap();
    }
    for (i, key) in HOSTILE.iter().enumerate() {
        assert_eq!(store.read(key, &room("r_1")).await.unwrap(), i as u64 + 1, "{key:?}");
        assert_eq!(store.read(key, &room("rx1")).await.unwrap(), 0);
    }
    let note = roomcast_shared::Notification {
        id: "'".into(),
        title: long.clone(),
        body: "%".into(),
        data: serde_json::json!({ "'": "\"" }),
        created_at: now(),
    };
    store.keep_notification("%", &note).await.unwrap();
    assert!(store.take_notifications("a%").await.unwrap().is_empty());
    assert!(store.take_notifications("_").await.unwrap().is_empty());
    assert_eq!(store.take_notifications("%").await.unwrap(), [note]);
}
