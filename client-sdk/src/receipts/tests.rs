//! Read positions through a room's state: seeded by `joined`, moved by
//! `read` frames, never moved back, resolved when their message arrives.

use roomcast_shared::frame::{Joined, MAX_JOINED_READS};
use roomcast_shared::{ChatMessage, ReadReceipt, RoomEvent, RoomName};
use serde_json::json;
use time::OffsetDateTime;

use crate::room::RoomState;

fn message(offset: u64) -> ChatMessage {
    serde_json::from_value(json!({"room":"r","id":format!("m{offset}"),"offset":offset,
        "client_id":format!("c{offset}"),"sender":{"id":"bob","name":"Bob","role":null,"avatar":null},
        "content":format!("#{offset}"),"created_at":"2026-11-22T10:00:00Z"}))
    .unwrap()
}

fn events(offsets: impl IntoIterator<Item = u64>) -> Vec<RoomEvent> {
    offsets.into_iter().map(|o| RoomEvent::Message(message(o))).collect()
}

/// `user` read message `id` at second `at` of the day.
fn receipt(user: &str, id: &str, at: i64) -> ReadReceipt {
    let read_at = OffsetDateTime::from_unix_timestamp(1_795_000_000 + at).unwrap();
    ReadReceipt { user_id: user.into(), id: id.into(), read_at }
}

fn joined(
    offset: u64,
    messages: Vec<RoomEvent>,
    recovered: Option<bool>,
    reads: Vec<ReadReceipt>,
) -> Joined {
    Joined {
        room: RoomName::new("r").unwrap(),
        epoch: "e".into(),
        offset,
        count: 0,
        members: vec![],
        cursor: None,
        messages,
        recovered,
        reads,
    }
}

fn seen(room: &RoomState, id: &str) -> Vec<String> {
    room.seen_by(id).map(str::to_owned).collect()
}

#[test]
fn a_joined_with_reads_shows_who_has_seen_what_at_once() {
    let mut room = RoomState::default();
    let reads = vec![receipt("carol", "m3", 20), receipt("bob", "m2", 10)];
    room.apply_joined(joined(3, events(1..=3), None, reads), 100);
    assert_eq!(seen(&room, "m1"), ["bob", "carol"]);
    assert_eq!(seen(&room, "m2"), ["bob", "carol"]);
    assert_eq!(seen(&room, "m3"), ["carol"]);
    let order: Vec<&str> = room.reads.latest_first().iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(order, ["carol", "bob"]);
}

#[test]
fn a_rejoin_with_an_older_read_does_not_move_a_newer_one_back() {
    let mut room = RoomState::default();
    room.apply_joined(joined(3, events(1..=3), None, vec![]), 100);
    assert!(room.read(receipt("bob", "m3", 30)));
    room.disconnected();
    // The rejoin's positions are older: by offset, even with a later
    // `read_at` (another node's clock), and by time for carol, whose
    // position names a message not loaded here.
    assert!(room.read(receipt("carol", "m99", 30)));
    let stale = vec![receipt("bob", "m2", 40), receipt("carol", "m1", 20)];
    room.apply_joined(joined(3, vec![], Some(true), stale), 100);
    assert_eq!(room.reads.get("bob").map(|r| r.id.as_str()), Some("m3"));
    assert_eq!(room.reads.get("carol").map(|r| r.id.as_str()), Some("m99"));
    assert_eq!(seen(&room, "m3"), ["bob"]);
}

#[test]
fn a_read_frame_never_moves_a_position_back() {
    let mut room = RoomState::default();
    room.apply_joined(joined(3, events(1..=3), None, vec![]), 100);
    assert!(room.read(receipt("bob", "m3", 10)));
    let version = room.version;
    assert!(!room.read(receipt("bob", "m1", 20)), "an earlier message, read later");
    assert!(!room.read(receipt("bob", "m3", 30)), "the same message again");
    assert_eq!(room.version, version, "nothing to redraw");
    assert_eq!(seen(&room, "m3"), ["bob"]);
}

#[test]
fn a_newer_read_moves_forward_by_offset_or_else_by_time() {
    let mut room = RoomState::default();
    let reads = vec![receipt("bob", "m1", 10), receipt("carol", "m1", 10)];
    room.apply_joined(joined(3, events(1..=3), None, reads), 100);
    assert!(room.read(receipt("bob", "m2", 5)), "a later message wins, whatever the clock");
    assert_eq!(seen(&room, "m2"), ["bob"]);
    assert!(!room.read(receipt("carol", "m77", 5)), "not loaded and older: kept out");
    assert!(room.read(receipt("carol", "m78", 15)), "not loaded but newer: taken");
    assert_eq!(seen(&room, "m1"), ["bob"], "m78 is not loaded, so it shows nothing yet");
}

#[test]
fn a_read_of_a_message_not_loaded_counts_once_history_brings_it() {
    let mut room = RoomState::default();
    // Dave read m2 long ago; only m4 and m5 are loaded.
    let reads = vec![receipt("erin", "m5", 20), receipt("dave", "m2", 10)];
    room.apply_joined(joined(5, events(4..=5), None, reads), 100);
    assert_eq!(seen(&room, "m4"), ["erin"]);
    assert_eq!(room.reads.get("dave").map(|r| r.id.as_str()), Some("m2"), "kept");
    room.prepend_history((1..=3).map(message).collect());
    assert_eq!(seen(&room, "m1"), ["dave", "erin"]);
    assert_eq!(seen(&room, "m2"), ["dave", "erin"]);
    assert_eq!(seen(&room, "m3"), ["erin"]);
}

#[test]
fn a_joined_listing_too_many_or_repeated_readers_is_bounded() {
    let mut room = RoomState::default();
    // A server that sends more than the protocol allows, and one reader twice
    // (the first entry is the latest, but it names the earlier message).
    let mut reads = vec![receipt("bob", "m1", 50), receipt("bob", "m2", 40)];
    reads.extend((0..MAX_JOINED_READS + 50).map(|i| receipt(&format!("u{i:03}"), "m1", 30)));
    room.apply_joined(joined(2, events(1..=2), None, reads), 100);
    assert_eq!(room.reads.len(), MAX_JOINED_READS - 1, "bob and the first 98 others");
    assert_eq!(room.reads.get("bob").map(|r| r.id.as_str()), Some("m2"));
}
