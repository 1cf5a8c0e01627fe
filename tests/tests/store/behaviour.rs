//! What the store keeps: offsets and epochs, exactly-once `send`, edits and
//! deletes, recovery, history pages, read positions and notifications, and
//! that all of it survives reopening.

use std::time::Duration;

use roomcast_server::store::{DataEdit, NewEvent, Outcome, Pruned, ReadMark, Store, UnreadCaps};
use roomcast_shared::{Notification, RoomEvent};
use roomcast_tests::unique_id;
use time::OffsetDateTime;

use crate::{Backend, append1, appended, both_stores, id_of, message, now, replacing, room};

both_stores!(
    offsets_count_per_room_in_one_batch,
    a_resent_client_id_is_a_duplicate_even_after_reopening,
    the_same_client_id_from_two_senders_or_rooms_does_not_collide,
    edits_and_deletes_apply_to_any_retained_message,
    a_delete_erases_the_message_from_the_events,
    events_after_recovers_in_order_with_a_limit,
    a_message_replays_as_sent_after_its_edits,
    history_pages_go_backwards_in_current_state,
    read_positions_are_per_user_per_room_and_never_move_back,
    readers_at_the_same_moment_are_in_byte_order,
    a_batch_whose_room_row_went_fails_and_the_next_creates_it,
    notifications_are_kept_until_taken_once,
    kept_notifications_stay_within_count_bytes_and_age,
    retention_removes_old_messages_and_keeps_offsets_going,
    a_batch_larger_than_a_statement_sees_its_own_earlier_changes,
    concurrent_writers_get_distinct_offsets,
    a_send_resent_to_two_writers_at_once_is_stored_once,
    batches_over_the_same_rooms_in_any_order_do_not_deadlock,
);

async fn offsets_count_per_room_in_one_batch(backend: &Backend) {
    let store = backend.open().await;
    let empty = store.head(&room("a")).await.unwrap();
    assert_eq!(empty.offset, 0);
    assert!(!empty.epoch.is_empty());
    let batch = [
        message("a", "u1", "c1", "one"),
        message("b", "u1", "c2", "two"),
        message("a", "u1", "c3", "three"),
    ];
    let outcomes = store.append(&batch).await.unwrap();
    let offsets: Vec<u64> = outcomes.iter().map(|o| appended(o).offset()).collect();
    assert_eq!(offsets, [1, 1, 2]);
    let head = store.head(&room("a")).await.unwrap();
    assert_eq!((head.epoch.as_str(), head.offset), (empty.epoch.as_str(), 2));
    assert_eq!(store.head(&room("b")).await.unwrap().offset, 1);
    drop(store);
    let reopened = backend.open().await;
    assert_eq!(reopened.head(&room("a")).await.unwrap(), head, "epoch and offset survive");
}

async fn a_resent_client_id_is_a_duplicate_even_after_reopening(backend: &Backend) {
    let store = backend.open().await;
    let first = append1(&*store, message("r", "alice", "same", "hello")).await;
    let RoomEvent::Message(original) = appended(&first).clone() else { panic!("not a message") };
    // In one batch, the second copy sees the first.
    let outcomes = store
        .append(&[message("r", "alice", "k2", "x"), message("r", "alice", "k2", "x")])
        .await
        .unwrap();
    let second_id = match &outcomes[0] {
        Outcome::Appended(RoomEvent::Message(m)) => m.id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(outcomes[1], Outcome::Duplicate { id: second_id, offset: 2 });
    drop(store);
    let store = backend.open().await;
    let again = append1(&*store, message("r", "alice", "same", "hello again")).await;
    assert_eq!(again, Outcome::Duplicate { id: original.id.clone(), offset: 1 });
    assert_eq!(store.head(&room("r")).await.unwrap().offset, 2, "a duplicate takes no offset");
    let history = store.messages_before(&room("r"), None, 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], original);
}

async fn the_same_client_id_from_two_senders_or_rooms_does_not_collide(backend: &Backend) {
    let store = backend.open().await;
    let outcomes = store
        .append(&[
            message("r", "alice", "c", "from alice"),
            message("r", "bob", "c", "from bob"),
            message("other", "alice", "c", "elsewhere"),
        ])
        .await
        .unwrap();
    let offsets: Vec<u64> = outcomes.iter().map(|o| appended(o).offset()).collect();
    assert_eq!(offsets, [1, 2, 1]);
    let history = store.messages_before(&room("r"), None, 10).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["from alice", "from bob"]);
}

async fn edits_and_deletes_apply_to_any_retained_message(backend: &Backend) {
    let store = backend.open().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let outcome =
            append1(&*store, message("r", "alice", &format!("c{i}"), &format!("m{i}"))).await;
        let RoomEvent::Message(m) = appended(&outcome) else { panic!("not a message") };
        ids.push(m.id.clone());
    }
    let edited_at = now();
    let edit = |id: &str, by: &str| NewEvent::Edit {
        room: room("r"),
        id: id.into(),
        by: Some(by.into()),
        content: "edited".into(),
        data: DataEdit::Keep,
        edited_at,
    };
    let delete = |id: &str, by: &str| NewEvent::Delete {
        room: room("r"),
        id: id.into(),
        by: Some(by.into()),
    };
    assert_eq!(append1(&*store, edit(&ids[0], "mallory")).await, Outcome::NotTheSender);
    assert_eq!(append1(&*store, delete(&ids[0], "mallory")).await, Outcome::NotTheSender);
    assert_eq!(append1(&*store, edit("no-such-id", "alice")).await, Outcome::NotFound);
    drop(store);
    let store = backend.open().await;
    // The oldest message, after a reopen.
    let edited = append1(&*store, edit(&ids[0], "alice")).await;
    assert_eq!(appended(&edited).offset(), 6);
    assert!(matches!(appended(&edited), RoomEvent::MessageUpdated(u) if u.content == "edited"));
    let deleted = append1(&*store, delete(&ids[1], "alice")).await;
    assert!(matches!(appended(&deleted), RoomEvent::MessageDeleted(d) if d.offset == 7));
    assert_eq!(append1(&*store, edit(&ids[1], "alice")).await, Outcome::NotFound);
    assert_eq!(append1(&*store, delete(&ids[1], "alice")).await, Outcome::NotFound);
    // An admin (no `by`) may change anyone's message.
    let by_admin = NewEvent::Delete { room: room("r"), id: ids[4].clone(), by: None };
    assert!(matches!(appended(&append1(&*store, by_admin).await), RoomEvent::MessageDeleted(_)));
    // A resend of the deleted message is still answered as a duplicate.
    let resend = append1(&*store, message("r", "alice", "c1", "m1")).await;
    assert_eq!(resend, Outcome::Duplicate { id: ids[1].clone(), offset: 2 });

    let history = store.messages_before(&room("r"), None, 10).await.unwrap();
    let shown: Vec<(&str, Option<_>)> =
        history.iter().map(|m| (m.content.as_str(), m.edited_at)).collect();
    assert_eq!(
        shown,
        [("edited", Some(edited_at)), ("", None), ("m2", None), ("m3", None), ("", None)],
        "edits applied, deleted ones as traces, original offsets kept"
    );
    let traces: Vec<bool> = history.iter().map(|m| m.deleted).collect();
    assert_eq!(traces, [false, true, false, false, true]);
    assert!(history.iter().filter(|m| m.deleted).all(|m| m.data.is_none()));
    assert_eq!(history[0].offset, 1);
}

/// What `events_after` replays of each event: `message <content>`,
/// `trace <id>`, `edit <id>` or `deleted <id>`.
async fn replayed(store: &dyn Store, room_name: &str) -> Vec<String> {
    let events = store.events_after(&room(room_name), 0, 100).await.unwrap();
    let offsets: Vec<u64> = events.iter().map(RoomEvent::offset).collect();
    assert_eq!(offsets, (1..=events.len() as u64).collect::<Vec<_>>(), "every offset in place");
    events
        .iter()
        .map(|event| match event {
            RoomEvent::Message(m) if m.deleted => {
                assert!(m.content.is_empty() && m.data.is_none() && m.edited_at.is_none());
                format!("trace {}", m.id)
            }
            RoomEvent::Message(m) => format!("message {}", m.content),
            RoomEvent::MessageUpdated(u) => format!("edit {}", u.id),
            RoomEvent::MessageDeleted(d) => format!("deleted {}", d.id),
        })
        .collect()
}

/// A delete erases the message from the events recovery replays, not only
/// from history: whether its edits came in earlier commits, before a
/// reopen, or in the same batch as the send and the delete. Other
/// messages' edits stay.
async fn a_delete_erases_the_message_from_the_events(backend: &Backend) {
    let store = backend.open().await;
    let delete = |id: &str| NewEvent::Delete { room: room("r"), id: id.into(), by: None };
    let (early, kept) =
        (message("r", "alice", "c1", "secret one"), message("r", "bob", "c2", "kept"));
    let (early_id, kept_id) = (id_of(&early), id_of(&kept));
    store.append(&[early, kept]).await.unwrap();
    append1(&*store, replacing(&early_id, "secret edit")).await;
    append1(&*store, replacing(&kept_id, "kept, edited")).await;
    drop(store);
    let store = backend.open().await;
    assert!(matches!(append1(&*store, delete(&early_id)).await, Outcome::Appended(_)));
    let batched = message("r", "alice", "c3", "secret two");
    let batched_id = id_of(&batched);
    let outcomes = store
        .append(&[batched, replacing(&batched_id, "secret edit two"), delete(&batched_id)])
        .await
        .unwrap();
    // What happened is what is published: the batch's own events as sent.
    assert!(
        matches!(&outcomes[0], Outcome::Appended(RoomEvent::Message(m)) if m.content == "secret two")
    );

    let events = store.events_after(&room("r"), 0, 100).await.unwrap();
    assert!(!serde_json::to_string(&events).unwrap().contains("secret"), "{events:?}");
    assert_eq!(
        replayed(&*store, "r").await,
        [
            format!("trace {early_id}"),
            "message kept".to_owned(),
            format!("deleted {early_id}"),
            format!("edit {kept_id}"),
            format!("deleted {early_id}"),
            format!("trace {batched_id}"),
            format!("deleted {batched_id}"),
            format!("deleted {batched_id}"),
        ]
    );
    // The kept message's edit is still there, and erased once it goes too.
    append1(&*store, delete(&kept_id)).await;
    let replay = replayed(&*store, "r").await;
    assert_eq!(
        (&replay[1], &replay[3]),
        (&format!("trace {kept_id}"), &format!("deleted {kept_id}"))
    );
}

/// A message's `message` event replays as it was sent, whatever its row
/// holds since: edited in later commits (before and after a reopen), or in
/// the commit that sent it; a limit cuts the merged replay anywhere.
async fn a_message_replays_as_sent_after_its_edits(backend: &Backend) {
    let store = backend.open().await;
    let first = message("r", "alice", "c1", "as sent");
    let first_id = id_of(&first);
    append1(&*store, first).await;
    append1(&*store, replacing(&first_id, "first edit")).await;
    drop(store);
    let store = backend.open().await;
    append1(&*store, replacing(&first_id, "second edit")).await;
    let batched = message("r", "bob", "c2", "batched as sent");
    let batched_id = id_of(&batched);
    store.append(&[batched, replacing(&batched_id, "batched edit")]).await.unwrap();
    append1(&*store, message("r", "carol", "c3", "plain")).await;

    let expected = [
        "message as sent".to_owned(),
        format!("edit {first_id}"),
        format!("edit {first_id}"),
        "message batched as sent".to_owned(),
        format!("edit {batched_id}"),
        "message plain".to_owned(),
    ];
    assert_eq!(replayed(&*store, "r").await, expected);
    let events = store.events_after(&room("r"), 0, 10).await.unwrap();
    let RoomEvent::Message(m) = &events[0] else { panic!("not a message: {events:?}") };
    assert_eq!((m.edited_at, &m.data), (None, &None), "the message as sent");
    for since in 0..6 {
        for limit in 1..4 {
            let page = store.events_after(&room("r"), since, limit).await.unwrap();
            let end = (since as usize + limit).min(events.len());
            assert_eq!(page, events[since as usize..end], "since {since}, limit {limit}");
        }
    }
    // History shows the current state.
    let history = store.messages_before(&room("r"), None, 10).await.unwrap();
    let contents: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["second edit", "batched edit", "plain"]);
}

async fn events_after_recovers_in_order_with_a_limit(backend: &Backend) {
    let store = backend.open().await;
    let batch: Vec<NewEvent> =
        (0..10).map(|i| message("r", "u", &format!("c{i}"), &format!("m{i}"))).collect();
    store.append(&batch).await.unwrap();
    let first = append1(&*store, message("r", "u", "c0", "again")).await;
    assert!(matches!(first, Outcome::Duplicate { offset: 1, .. }));
    let events = store.events_after(&room("r"), 4, 3).await.unwrap();
    let offsets: Vec<u64> = events.iter().map(RoomEvent::offset).collect();
    assert_eq!(offsets, [5, 6, 7]);
    assert!(store.events_after(&room("r"), 10, 5).await.unwrap().is_empty());
    assert!(store.events_after(&room("elsewhere"), 0, 5).await.unwrap().is_empty());
    assert_eq!(store.events_after(&room("r"), 0, 100).await.unwrap().len(), 10);
    // Hostile bounds: offsets past what a database integer holds, a limit
    // of everything.
    assert!(store.events_after(&room("r"), u64::MAX, usize::MAX).await.unwrap().is_empty());
    assert!(store.events_after(&room("r"), i64::MAX as u64, 5).await.unwrap().is_empty());
    assert_eq!(store.events_after(&room("r"), 0, usize::MAX).await.unwrap().len(), 10);
}

async fn history_pages_go_backwards_in_current_state(backend: &Backend) {
    let store = backend.open().await;
    let batch: Vec<NewEvent> =
        (1..=7).map(|i| message("r", "u", &format!("c{i}"), &format!("m{i}"))).collect();
    store.append(&batch).await.unwrap();
    let latest = store.messages_before(&room("r"), None, 3).await.unwrap();
    let offsets: Vec<u64> = latest.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [5, 6, 7], "the newest, oldest first");
    let older = store.messages_before(&room("r"), Some(5), 3).await.unwrap();
    assert_eq!(older.iter().map(|m| m.offset).collect::<Vec<_>>(), [2, 3, 4]);
    let oldest = store.messages_before(&room("r"), Some(2), 3).await.unwrap();
    assert_eq!(oldest.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["m1"]);
    assert!(store.messages_before(&room("r"), Some(1), 3).await.unwrap().is_empty());
}

/// Sends `count` messages to `room_name`; their ids, oldest first.
async fn sent_ids(store: &dyn Store, room_name: &str, count: usize) -> Vec<String> {
    let batch: Vec<NewEvent> = (0..count)
        .map(|i| message(room_name, "poster", &unique_id("c"), &format!("m{i}")))
        .collect();
    let outcomes = store.append(&batch).await.unwrap();
    outcomes
        .iter()
        .map(|o| match appended(o) {
            RoomEvent::Message(m) => m.id.clone(),
            other => panic!("not a message: {other:?}"),
        })
        .collect()
}

fn mark(user_id: &str, room_name: &str, id: &str, read_at: OffsetDateTime) -> ReadMark {
    ReadMark { user_id: user_id.into(), room: room(room_name), id: id.into(), read_at }
}

async fn read_positions_are_per_user_per_room_and_never_move_back(backend: &Backend) {
    let store = backend.open().await;
    let r = sent_ids(&*store, "r", 9).await;
    let s = sent_ids(&*store, "s", 9).await;
    assert_eq!(store.read("alice", &room("r")).await.unwrap(), 0);
    let t = now();
    store
        .set_reads(&[
            mark("alice", "r", &r[4], t),
            mark("alice", "r", &r[2], t + Duration::from_secs(1)),
            mark("bob", "r", &r[0], t + Duration::from_secs(2)),
            mark("alice", "s", &s[8], t),
            // Ids of no message of the room are not kept.
            mark("carol", "r", &s[3], t),
            mark("carol", "r", "no-such-message", t),
        ])
        .await
        .unwrap();
    drop(store);
    let store = backend.open().await;
    assert_eq!(store.read("alice", &room("r")).await.unwrap(), 5);
    assert_eq!(store.read("bob", &room("r")).await.unwrap(), 1);
    assert_eq!(store.read("alice", &room("s")).await.unwrap(), 9);
    assert_eq!(store.read("bob", &room("s")).await.unwrap(), 0);
    assert_eq!(store.read("carol", &room("r")).await.unwrap(), 0);
    let reads = store.reads(&room("r"), 10).await.unwrap();
    let seen: Vec<(&str, &str)> =
        reads.iter().map(|r| (r.user_id.as_str(), r.id.as_str())).collect();
    assert_eq!(seen, [("bob", r[0].as_str()), ("alice", r[4].as_str())], "latest readers first");
    assert_eq!(reads[1].read_at, t, "read_at round-trips");
    assert_eq!(store.reads(&room("r"), 1).await.unwrap().len(), 1, "at most the limit");
    store.set_reads(&[mark("alice", "r", &r[7], t + Duration::from_secs(5))]).await.unwrap();
    assert_eq!(store.read("alice", &room("r")).await.unwrap(), 8);
    assert_eq!(store.reads(&room("r"), 10).await.unwrap()[0].user_id, "alice");
}

/// Ties in `reads` go by user id compared byte by byte, on both stores,
/// whatever PostgreSQL's own collation (the harness makes its cluster with
/// a linguistic one, as most are): a locale would put `B` after `a` and
/// ignore `_` and spaces.
async fn readers_at_the_same_moment_are_in_byte_order(backend: &Backend) {
    let store = backend.open().await;
    let r = sent_ids(&*store, "r", 1).await;
    let users = ["b", "B", "_x", "a", "Á", "a b", "ab", "10", "9", "z", "Z"];
    let t = now();
    let marks: Vec<ReadMark> = users.iter().map(|u| mark(u, "r", &r[0], t)).collect();
    store.set_reads(&marks).await.unwrap();
    let mut expected = users.to_vec();
    expected.sort_unstable();
    let reads = store.reads(&room("r"), 20).await.unwrap();
    let seen: Vec<&str> = reads.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(seen, expected);
}

/// Runs `sql` on the backend's database beside the store, as an operator
/// would.
async fn by_hand(backend: &Backend, sql: &str) {
    match backend {
        Backend::Sqlite(path) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// Roomcast deletes no room's row, so once a room's row is committed a
/// store stops creating it in each batch. Should the row go anyway (by
/// hand), the batch that needs it fails, whole, rather than guess the
/// room's offsets; the next batch creates it again.
async fn a_batch_whose_room_row_went_fails_and_the_next_creates_it(backend: &Backend) {
    let store = backend.open().await;
    append1(&*store, message("gone", "alice", "c1", "one")).await;
    append1(&*store, message("kept", "alice", "c1", "one")).await;
    by_hand(backend, "DELETE FROM rooms WHERE room = 'gone'").await;
    let batch = [message("kept", "alice", "c2", "two"), message("gone", "alice", "c2", "two")];
    let failed = store.append(&batch).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(store.head(&room("kept")).await.unwrap().offset, 1, "nothing of it was kept");
    let again = append1(&*store, message("gone", "alice", "c3", "three")).await;
    assert!(matches!(again, Outcome::Appended(_)), "{again:?}");
}

fn notification(title: &str) -> Notification {
    Notification {
        id: unique_id("n"),
        title: title.into(),
        body: format!("body of {title}"),
        data: serde_json::json!({ "nested": [1, "two", null] }),
        created_at: now(),
    }
}

const ROOMY: UnreadCaps =
    UnreadCaps { count: 100, bytes: 1 << 20, max_age: Duration::from_secs(3600) };

async fn notifications_are_kept_until_taken_once(backend: &Backend) {
    let store = backend.open().await;
    let kept: Vec<Notification> = (0..4).map(|i| notification(&format!("t{i}"))).collect();
    for n in &kept {
        assert!(store.keep_notification("alice", n, &ROOMY).await.unwrap());
    }
    let bobs = notification("for bob");
    store.keep_notification("bob", &bobs, &ROOMY).await.unwrap();
    drop(store);
    let store = backend.open().await;
    let max_age = ROOMY.max_age;
    assert_eq!(store.take_notifications("alice", max_age).await.unwrap(), kept);
    assert!(store.take_notifications("alice", max_age).await.unwrap().is_empty(), "taken once");
    assert_eq!(store.take_notifications("bob", max_age).await.unwrap(), [bobs]);
    assert!(store.take_notifications("carol", max_age).await.unwrap().is_empty());
}

async fn kept_notifications_stay_within_count_bytes_and_age(backend: &Backend) {
    let store = backend.open().await;
    let notes: Vec<Notification> = (0..6).map(|i| notification(&format!("t{i}"))).collect();
    let size = serde_json::to_string(&notes[0]).unwrap().len();
    // By count: the newest three stay.
    let caps = UnreadCaps { count: 3, ..ROOMY };
    for n in &notes {
        store.keep_notification("alice", n, &caps).await.unwrap();
    }
    assert_eq!(store.take_notifications("alice", ROOMY.max_age).await.unwrap(), notes[3..]);
    // By bytes: two fit (the titles are of one length).
    let caps = UnreadCaps { bytes: 2 * size + size / 2, ..ROOMY };
    for n in &notes {
        store.keep_notification("bob", n, &caps).await.unwrap();
    }
    assert_eq!(store.take_notifications("bob", ROOMY.max_age).await.unwrap(), notes[4..]);
    // One bigger than the budget alone is not kept, and drops nothing.
    store.keep_notification("carol", &notes[0], &ROOMY).await.unwrap();
    let tiny = UnreadCaps { bytes: size - 1, ..ROOMY };
    assert!(!store.keep_notification("carol", &notes[1], &tiny).await.unwrap());
    assert_eq!(store.take_notifications("carol", ROOMY.max_age).await.unwrap(), notes[..1]);
    // By age: taken only while young; expired ones are pruned.
    store.keep_notification("dave", &notes[0], &ROOMY).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(store.take_notifications("dave", Duration::from_millis(10)).await.unwrap().is_empty());
    store.keep_notification("erin", &notes[0], &ROOMY).await.unwrap();
    let pruned =
        store.prune(None, OffsetDateTime::now_utc() + Duration::from_secs(1)).await.unwrap();
    assert_eq!((pruned.notifications, pruned.events), (1, 0));
    assert!(store.take_notifications("erin", ROOMY.max_age).await.unwrap().is_empty());
}

async fn retention_removes_old_messages_and_keeps_offsets_going(backend: &Backend) {
    let store = backend.open().await;
    let old = OffsetDateTime::now_utc() - Duration::from_secs(3 * 86_400);
    let mut batch: Vec<NewEvent> = (0..3)
        .map(|i| {
            let mut event = message("r", "alice", &format!("old{i}"), &format!("old {i}"));
            if let NewEvent::Message { created_at, .. } = &mut event {
                *created_at = old;
            }
            event
        })
        .collect();
    batch.push(message("r", "alice", "new", "new"));
    store.append(&batch).await.unwrap();
    let head = store.head(&room("r")).await.unwrap();
    let cutoff = OffsetDateTime::now_utc() - Duration::from_secs(86_400);
    let pruned = store.prune(Some(cutoff), cutoff).await.unwrap();
    // A message's event is its row: nothing else to prune.
    assert_eq!((pruned.events, pruned.messages), (0, 3));
    let left = store.messages_before(&room("r"), None, 10).await.unwrap();
    assert_eq!(left.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["new"]);
    assert_eq!(store.events_after(&room("r"), 0, 10).await.unwrap().len(), 1);
    assert_eq!(store.head(&room("r")).await.unwrap(), head, "the head stays");
    let next = append1(&*store, message("r", "alice", "after", "after")).await;
    assert_eq!(appended(&next).offset(), 5, "offsets are never reused");
    // The key of a pruned message is forgotten with it.
    let again = append1(&*store, message("r", "alice", "old0", "again")).await;
    assert_eq!(appended(&again).offset(), 6);
    let nothing = store.prune(Some(cutoff), cutoff).await.unwrap();
    assert_eq!(nothing, Pruned::default());
}

async fn concurrent_writers_get_distinct_offsets(backend: &Backend) {
    // Two handles, as two instances (PostgreSQL) or two pools on one file.
    let (a, b) = (backend.open().await, backend.open().await);
    let (mut x, y) = tokio::join!(write(&*a, "a"), write(&*b, "b"));
    x.extend(y);
    x.sort_unstable();
    assert_eq!(x, (1..=40).collect::<Vec<u64>>());
    assert_eq!(a.head(&room("r")).await.unwrap(), b.head(&room("r")).await.unwrap());
}

/// Appends ten batches of two messages from `sender`; their offsets.
async fn write(store: &dyn roomcast_server::store::Store, sender: &str) -> Vec<u64> {
    let mut offsets = Vec::new();
    for i in 0..10 {
        let batch = [
            message("r", sender, &format!("c{i}"), "x"),
            message("r", sender, &format!("d{i}"), "y"),
        ];
        for outcome in store.append(&batch).await.expect("append") {
            offsets.push(appended(&outcome).offset());
        }
    }
    offsets
}

async fn a_send_resent_to_two_writers_at_once_is_stored_once(backend: &Backend) {
    // A client resending through two instances at the same moment.
    let (a, b) = (backend.open().await, backend.open().await);
    for round in 0..20 {
        let key = format!("k{round}");
        let (x, y) = tokio::join!(
            append1(&*a, message("r", "alice", &key, "once")),
            append1(&*b, message("r", "alice", &key, "once")),
        );
        let (stored, duplicate) = match (&x, &y) {
            (Outcome::Appended(RoomEvent::Message(m)), d)
            | (d, Outcome::Appended(RoomEvent::Message(m))) => (m, d),
            _ => panic!("round {round}: neither stored it: {x:?} {y:?}"),
        };
        assert_eq!(*duplicate, Outcome::Duplicate { id: stored.id.clone(), offset: stored.offset });
    }
    assert_eq!(a.head(&room("r")).await.unwrap().offset, 20);
}

async fn batches_over_the_same_rooms_in_any_order_do_not_deadlock(backend: &Backend) {
    let (a, b) = (backend.open().await, backend.open().await);
    for round in 0..20 {
        let forward = [
            message("x", "u", &format!("f{round}"), "1"),
            message("y", "u", &format!("g{round}"), "2"),
        ];
        let backward = [
            message("y", "v", &format!("f{round}"), "3"),
            message("x", "v", &format!("g{round}"), "4"),
        ];
        let (f, r) = tokio::join!(a.append(&forward), b.append(&backward));
        let (f, r) = (f.expect("forward batch"), r.expect("backward batch"));
        // Outcomes stay in the order of the batch.
        assert_eq!(appended(&f[0]).clone().room_of(), "x");
        assert_eq!(appended(&r[0]).clone().room_of(), "y");
    }
    assert_eq!(a.head(&room("x")).await.unwrap().offset, 40);
}

trait RoomOf {
    fn room_of(self) -> String;
}

impl RoomOf for RoomEvent {
    fn room_of(self) -> String {
        match self {
            RoomEvent::Message(m) => m.room.as_str().to_owned(),
            RoomEvent::MessageUpdated(m) => m.room.as_str().to_owned(),
            RoomEvent::MessageDeleted(m) => m.room.as_str().to_owned(),
        }
    }
}

/// A batch of 1,200 changes over 7 rooms, in one transaction, written in
/// several statements: later changes see earlier ones (resends are
/// duplicates, edits and deletes find messages sent before them).
async fn a_batch_larger_than_a_statement_sees_its_own_earlier_changes(backend: &Backend) {
    let store = backend.open().await;
    let mut batch: Vec<NewEvent> = (0..1000)
        .map(|i| message(&format!("r{}", i % 7), "alice", &format!("c{i}"), "x"))
        .collect();
    let ids: Vec<String> = batch
        .iter()
        .map(|e| match e {
            NewEvent::Message { id, .. } => id.clone(),
            _ => unreachable!(),
        })
        .collect();
    for (i, id) in ids.iter().enumerate().take(100) {
        batch.push(message(&format!("r{}", i % 7), "alice", &format!("c{i}"), "resent"));
        let room_name = format!("r{}", i % 7);
        batch.push(NewEvent::Edit {
            room: room(&room_name),
            id: id.clone(),
            by: Some("alice".into()),
            content: format!("edited {i}"),
            data: DataEdit::Keep,
            edited_at: now(),
        });
    }
    let outcomes = store.append(&batch).await.unwrap();
    assert_eq!(outcomes.len(), 1200);
    for i in 0..100 {
        let sent = appended(&outcomes[i]).offset();
        assert_eq!(outcomes[1000 + 2 * i], Outcome::Duplicate { id: ids[i].clone(), offset: sent });
        assert!(matches!(appended(&outcomes[1001 + 2 * i]), RoomEvent::MessageUpdated(_)));
    }
    let mut total = 0;
    for r in 0..7 {
        let head = store.head(&room(&format!("r{r}"))).await.unwrap().offset;
        let events = store.events_after(&room(&format!("r{r}")), 0, 10_000).await.unwrap();
        let offsets: Vec<u64> = events.iter().map(RoomEvent::offset).collect();
        assert_eq!(offsets, (1..=head).collect::<Vec<_>>(), "consecutive in r{r}");
        total += head;
    }
    assert_eq!(total, 1100, "1,000 messages and 100 edits, no resend");
    let first = store.messages_before(&room("r0"), None, 1000).await.unwrap();
    assert_eq!(first[0].content, "edited 0");
}
