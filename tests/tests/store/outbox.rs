//! The webhook outbox, alike on both stores: rows written with the events
//! of an append, read in order per
//! endpoint, deleted when delivered, dead-lettered, replayed, orphaned, and
//! the delivery lease.

use roomcast_server::store::outbox::{EventRows, OutboxRow};
use roomcast_server::store::{NewEvent, Store};
use roomcast_shared::RoomEvent;
use roomcast_shared::webhook::{WebhookEvent, WebhookPayload};
use time::OffsetDateTime;

use crate::{Backend, both_stores, id_of, message, replacing, room};

/// One row per event for each of two endpoints, as webhooks would.
struct TwoEndpoints;

impl EventRows for TwoEndpoints {
    fn rows_for(&self, event: &RoomEvent, at: OffsetDateTime, rows: &mut Vec<OutboxRow>) {
        for endpoint in ["http://a/", "http://b/"] {
            rows.push(OutboxRow {
                endpoint: endpoint.into(),
                room: event.room().as_str().into(),
                event_id: format!("evt-{}-{}", event.room().as_str(), event.offset()),
                kind: "message",
                body: format!("{{\"offset\":{}}}", event.offset()),
                at,
                message_id: None,
            });
        }
    }
}

fn live(endpoint: &str, room: &str, id: &str) -> OutboxRow {
    OutboxRow {
        endpoint: endpoint.into(),
        room: room.into(),
        event_id: id.into(),
        kind: "presence",
        body: format!("{{\"id\":\"{id}\"}}"),
        at: OffsetDateTime::now_utc(),
        message_id: None,
    }
}

/// One row per event for one endpoint, with the body and message id the
/// server writes.
pub struct AsWebhooks;

impl EventRows for AsWebhooks {
    fn rows_for(&self, event: &RoomEvent, at: OffsetDateTime, rows: &mut Vec<OutboxRow>) {
        let payload = WebhookPayload::from(event.clone());
        let event = WebhookEvent {
            id: format!("evt-{}", event.offset()),
            created_at: at,
            room: Some(event.room().clone()),
            payload,
        };
        rows.push(OutboxRow {
            endpoint: "http://a/".into(),
            room: event.room.as_ref().map_or_else(String::new, |r| r.as_str().into()),
            event_id: event.id.clone(),
            kind: "event",
            body: serde_json::to_string(&event).unwrap(),
            at,
            message_id: event.payload.message_id().map(str::to_owned),
        });
    }
}

/// Every body the outbox holds for `http://a/`, waiting or dead, in order.
pub async fn bodies(store: &dyn Store) -> Vec<WebhookEvent> {
    let mut rows = store.pending("http://a/", 0, 100).await.unwrap();
    rows.extend(store.dead_letters(None, 0, 100).await.unwrap().into_iter().map(|d| d.row));
    rows.sort_by_key(|row| row.seq);
    rows.iter().map(|row| serde_json::from_str(&row.body).unwrap()).collect()
}

async fn pending_ids(store: &dyn Store, endpoint: &str) -> Vec<String> {
    let rows = store.pending(endpoint, 0, 1_000).await.expect("pending");
    rows.into_iter().map(|row| row.event_id).collect()
}

both_stores!(an_append_writes_each_events_rows_in_its_transaction);
async fn an_append_writes_each_events_rows_in_its_transaction(backend: &Backend) {
    let store = backend.open().await;
    let batch = [
        message("r1", "alice", "c1", "one"),
        message("r2", "alice", "c1", "two"),
        message("r1", "alice", "c1", "a resend: a duplicate, no event"),
        NewEvent::Delete { room: room("r1"), id: "missing".into(), by: None },
    ];
    store.append_recorded(&batch, &TwoEndpoints).await.expect("append");
    assert_eq!(pending_ids(&*store, "http://a/").await, ["evt-r1-1", "evt-r2-1"]);
    assert_eq!(pending_ids(&*store, "http://b/").await, ["evt-r1-1", "evt-r2-1"]);
    assert!(pending_ids(&*store, "http://c/").await.is_empty());
    // A plain append writes none.
    store.append(&[message("r1", "bob", "c9", "quiet")]).await.expect("append");
    assert_eq!(pending_ids(&*store, "http://a/").await.len(), 2);
    // The rows survive reopening, in order, with their bodies.
    let reopened = backend.open().await;
    let rows = reopened.pending("http://a/", 0, 10).await.unwrap();
    assert_eq!(rows[0].body, "{\"offset\":1}");
    assert!(rows[0].seq < rows[1].seq);
    assert_eq!(reopened.pending("http://a/", rows[0].seq, 10).await.unwrap().len(), 1, "after");
    assert_eq!(reopened.pending("http://a/", 0, 1).await.unwrap().len(), 1, "limit");
}

both_stores!(delivered_rows_go_and_failed_ones_become_dead_letters_that_replay);
async fn delivered_rows_go_and_failed_ones_become_dead_letters_that_replay(backend: &Backend) {
    let store = backend.open().await;
    let rows: Vec<OutboxRow> = (0..5).map(|i| live("http://a/", "r", &format!("e{i}"))).collect();
    store.enqueue(&rows).await.expect("enqueue");
    store.enqueue(&[]).await.expect("nothing to write");
    let pending = store.pending("http://a/", 0, 10).await.unwrap();
    let seq = |i: usize| pending[i].seq;
    assert_eq!(store.body(seq(0)).await.unwrap().as_deref(), Some("{\"id\":\"e0\"}"));
    store.delivered(&[seq(0), seq(1)]).await.unwrap();
    assert_eq!(store.body(seq(0)).await.unwrap(), None, "a delivered row is gone");
    store.failed(seq(2), 1, "answered HTTP 503", false).await.unwrap();
    store.failed(seq(3), 4, "answered HTTP 500", true).await.unwrap();
    let left = store.pending("http://a/", 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(), ["e2", "e4"]);
    assert_eq!(left[0].attempts, 1, "attempts are kept");
    let depth = store.depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (2, 1));
    assert!(depth.oldest_at.is_some());

    let dead = store.dead_letters(None, 0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].row.event_id.as_str(), dead[0].row.attempts), ("e3", 4));
    assert_eq!(dead[0].error, "answered HTTP 500");
    assert_eq!(dead[0].endpoint, "http://a/");
    assert!(store.dead_letters(Some("http://b/"), 0, 10).await.unwrap().is_empty());
    assert_eq!(store.dead_letters(Some("http://a/"), 0, 10).await.unwrap().len(), 1);
    assert!(store.dead_letters(None, seq(3), 10).await.unwrap().is_empty(), "after");

    // Only configured endpoints' letters replay; unknown seqs replay nothing.
    assert_eq!(store.replay(&["http://b/"], None).await.unwrap(), 0);
    assert_eq!(store.replay(&["http://a/"], Some(&[i64::MAX, -1])).await.unwrap(), 0);
    assert_eq!(store.replay(&["http://a/"], Some(&[seq(3)])).await.unwrap(), 1);
    let back = store.pending("http://a/", 0, 10).await.unwrap();
    assert_eq!(back.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(), ["e2", "e3", "e4"]);
    assert_eq!(back[1].attempts, 0, "a replay starts counting again");
    assert_eq!(store.depth().await.unwrap().dead, 0);

    // Expired dead letters go; waiting rows never do.
    store.failed(seq(4), 9, "gone", true).await.unwrap();
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    assert_eq!(store.prune_dead(later).await.unwrap(), 1);
    assert_eq!(store.depth().await.unwrap().pending, 2);
}

both_stores!(a_large_enqueue_keeps_every_row_in_order);
/// More rows than one statement takes, with bodies and rooms a hostile
/// client could shape (quotes, separators, long text, no room), and with
/// and without a message id: every row back, in order, as written.
async fn a_large_enqueue_keeps_every_row_in_order(backend: &Backend) {
    let store = backend.open().await;
    let rows: Vec<OutboxRow> = (0..2_345)
        .map(|i| OutboxRow {
            room: if i % 7 == 0 { String::new() } else { format!("r',\"){i}") },
            body: format!("{{\"i\":{i},\"t\":\"{}\"}}", "é'".repeat(i % 300)),
            message_id: (i % 2 == 0).then(|| format!("m{i}")),
            ..live("http://a/", "", &format!("e{i}"))
        })
        .collect();
    store.enqueue(&rows).await.expect("enqueue");
    let back = store.pending("http://a/", 0, 3_000).await.unwrap();
    assert_eq!(back.len(), rows.len());
    for (row, written) in back.iter().zip(&rows) {
        assert_eq!(
            (&row.event_id, &row.room, &row.body),
            (&written.event_id, &written.room, &written.body)
        );
        assert_eq!(row.kind, written.kind);
    }
    assert!(back.windows(2).all(|w| w[0].seq < w[1].seq), "in the order written");
}

both_stores!(rows_of_removed_endpoints_are_dead_lettered);
async fn rows_of_removed_endpoints_are_dead_lettered(backend: &Backend) {
    let store = backend.open().await;
    let rows = [live("http://a/", "r", "kept"), live("http://old/", "r", "orphan")];
    store.enqueue(&rows).await.unwrap();
    assert_eq!(store.orphan(&["http://a/"]).await.unwrap(), 1);
    assert_eq!(pending_ids(&*store, "http://a/").await, ["kept"]);
    let dead = store.dead_letters(None, 0, 10).await.unwrap();
    assert_eq!(dead[0].row.event_id, "orphan");
    assert!(dead[0].error.contains("no longer configured"), "{}", dead[0].error);
}

both_stores!(one_owner_holds_the_lease_until_it_expires_or_is_released);
async fn one_owner_holds_the_lease_until_it_expires_or_is_released(backend: &Backend) {
    let store = backend.open().await;
    assert!(store.lease("a", 1_000, 11_000).await.unwrap(), "free: taken");
    assert!(store.lease("a", 3_000, 13_000).await.unwrap(), "renewed by its owner");
    assert!(!store.lease("b", 5_000, 15_000).await.unwrap(), "held by another");
    assert!(store.lease("b", 13_001, 23_001).await.unwrap(), "expired: taken over");
    assert!(!store.lease("a", 14_000, 24_000).await.unwrap(), "the old owner lost it");
    store.release("a").await.unwrap();
    assert!(!store.lease("a", 14_000, 24_000).await.unwrap(), "only the owner releases");
    store.release("b").await.unwrap();
    assert!(store.lease("a", 14_000, 24_000).await.unwrap(), "released: taken at once");
}

both_stores!(a_delete_erases_its_messages_webhook_events_waiting_or_dead);
/// A delete erases the text of its message from the webhook events not
/// delivered yet, dead letters included, in its transaction: the `message`
/// becomes the trace, each `message_updated` keeps its place without
/// content or data. Whether the send and edits came in earlier commits,
/// before a reopen, or in the delete's own batch; other messages' events
/// stay as they are.
async fn a_delete_erases_its_messages_webhook_events_waiting_or_dead(backend: &Backend) {
    let store = backend.open().await;
    let (gone, kept) =
        (message("r", "alice", "c1", "secret one"), message("r", "bob", "c2", "kept"));
    let (gone_id, kept_id) = (id_of(&gone), id_of(&kept));
    store.append_recorded(&[gone, kept], &AsWebhooks).await.unwrap();
    store.append_recorded(&[replacing(&gone_id, "secret edit")], &AsWebhooks).await.unwrap();
    store.append_recorded(&[replacing(&kept_id, "kept, edited")], &AsWebhooks).await.unwrap();
    // The send's row failed for good: a dead letter.
    let first = store.pending("http://a/", 0, 1).await.unwrap().remove(0);
    store.failed(first.seq, 20, "answered HTTP 500", true).await.unwrap();

    let store = backend.open().await;
    let delete = NewEvent::Delete { room: room("r"), id: gone_id.clone(), by: None };
    store.append_recorded(&[delete], &AsWebhooks).await.unwrap();
    let events = bodies(&*store).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("secret"), "nothing of the deleted message: {text}");
    assert_eq!(events.len(), 5, "no event went: {text}");
    let payloads: Vec<&WebhookPayload> = events.iter().map(|e| &e.payload).collect();
    assert!(matches!(payloads[0], WebhookPayload::Message(m) if m.id == gone_id && m.deleted));
    assert!(matches!(payloads[1], WebhookPayload::Message(m) if m.content == "kept"));
    assert!(
        matches!(payloads[2], WebhookPayload::MessageUpdated(u)
            if u.id == gone_id && u.content.is_empty() && u.data.is_none() && u.offset == 3),
        "{:?}",
        payloads[2]
    );
    assert!(
        matches!(payloads[3], WebhookPayload::MessageUpdated(u) if u.content == "kept, edited")
    );
    assert!(matches!(payloads[4], WebhookPayload::MessageDeleted(d) if d.id == gone_id));
    assert_eq!(events[0].id, "evt-1", "an erased event keeps its id");
    assert_eq!(store.depth().await.unwrap().dead, 1, "and its place");

    // A send, its edit and its delete in one batch.
    let send = message("r", "alice", "c3", "secret three");
    let id = id_of(&send);
    let delete = NewEvent::Delete { room: room("r"), id: id.clone(), by: None };
    store
        .append_recorded(&[send, replacing(&id, "secret four"), delete], &AsWebhooks)
        .await
        .unwrap();
    let text = serde_json::to_string(&bodies(&*store).await).unwrap();
    assert!(!text.contains("secret"), "nothing of a message deleted in its batch: {text}");
}
