//! Scenarios of reconnecting with rooms joined: resending the outbox,
//! recovering missed events, resetting when recovery is impossible.

use serde_json::json;

use super::{joined, joined_client, message};

#[test]
fn unacked_sends_are_resent_with_the_same_client_id() {
    let mut h = joined_client();
    let op = h.core.send("general", "in flight".into(), h.now);
    h.pump();
    let first = h.last("send");
    h.socket_closed(1006);
    h.next();
    h.open_as("alice");
    let rejoin = h.last("join");
    h.server(joined(&rejoin["ref"], "general", "e1", 2, vec![], Some(true)));
    let again = h.last("send");
    assert_eq!(again["client_id"], first["client_id"]);
    assert_ne!(again["ref"], first["ref"]);
    h.server(json!({"type":"ack","ref":again["ref"],"id":"m3","offset":3,"client_id":again["client_id"]}));
    assert_eq!(h.settled(op).unwrap().unwrap()["id"], "m3");
}

#[test]
fn a_send_the_recovery_replays_is_settled_not_resent() {
    let mut h = joined_client();
    let op = h.core.send("general", "landed".into(), h.now);
    h.pump();
    let first = h.last("send");
    let client_id = first["client_id"].as_str().unwrap();
    // The server stored it, but the connection died before the echo and ack.
    h.socket_closed(1006);
    h.next();
    h.open_as("alice");
    let rejoin = h.last("join");
    let replay = vec![message("general", 3, "alice", client_id, "landed")];
    h.server(joined(&rejoin["ref"], "general", "e1", 3, replay, Some(true)));
    assert_eq!(h.sent_of("send").len(), 1, "not sent a second time");
    assert_eq!(h.settled(op).unwrap().unwrap()["offset"], 3);
    assert_eq!(h.contents("general"), ["one", "two", "landed"]);
}

#[test]
fn recovery_applies_missed_events_in_order_without_duplicates() {
    let mut h = joined_client();
    h.socket_closed(1006);
    h.next();
    h.open_as("alice");
    let rejoin = h.last("join");
    let replay = vec![
        message("general", 2, "bob", "b2", "two"), // already seen: dropped
        message("general", 3, "bob", "b3", "three"),
        json!({"type":"message_updated","room":"general","id":"m1","offset":4,"content":"one (edited)","edited_at":"2026-11-22T10:01:00Z"}),
        json!({"type":"message_deleted","room":"general","id":"m2","offset":5}),
    ];
    h.server(joined(&rejoin["ref"], "general", "e1", 5, replay, Some(true)));
    // The deleted message stays in its place as what it left.
    assert_eq!(h.contents("general"), ["one (edited)", "", "three"]);
    let trace = &h.snapshot("general")["messages"][1];
    assert_eq!((&trace["id"], &trace["deleted"]), (&json!("m2"), &json!(true)), "{trace}");
    assert_eq!(h.room_events("message").len(), 1, "only the missed message is new");
    assert_eq!(h.room_events("updated").len(), 1);
    assert_eq!(h.room_events("deleted").len(), 1);
    assert!(h.room_events("reset").is_empty());
    // A late duplicate broadcast changes nothing.
    h.server(message("general", 3, "bob", "b3", "three"));
    assert_eq!(h.contents("general"), ["one (edited)", "", "three"]);
    // The position moved on: the next event continues the stream.
    h.server(message("general", 6, "bob", "b6", "six"));
    assert_eq!(h.contents("general"), ["one (edited)", "", "three", "six"]);
}

#[test]
fn failed_recovery_resets_the_room() {
    let mut h = joined_client();
    h.socket_closed(1012);
    h.next();
    h.open_as("alice");
    let rejoin = h.last("join");
    let latest = vec![message("general", 1, "carol", "c1", "after the restart")];
    h.server(joined(&rejoin["ref"], "general", "e2", 1, latest, Some(false)));
    assert_eq!(h.room_events("reset"), [json!({"room":"general"})]);
    assert_eq!(h.contents("general"), ["after the restart"]);
    assert_eq!(h.snapshot("general")["resets"], 1);
    // The new epoch is the position from now on.
    h.socket_closed(1006);
    h.next();
    h.open_as("alice");
    assert_eq!(h.last("join")["since"], json!({"epoch":"e2","offset":1}));
}

#[test]
fn a_gap_in_the_stream_rejoins_with_since() {
    let mut h = joined_client();
    let joins = h.sent_of("join").len();
    h.server(message("general", 5, "bob", "b5", "five"));
    assert_eq!(h.contents("general"), ["one", "two"], "not applied across a gap");
    assert_eq!(h.sent_of("join").len(), joins + 1);
    assert_eq!(h.last("join")["since"], json!({"epoch":"e1","offset":2}));
}

#[test]
fn a_transport_switch_reconnects_at_once_and_loses_or_doubles_nothing() {
    let mut h = joined_client();
    let op = h.core.send("general", "during the switch".into(), h.now);
    h.pump();
    let first = h.last("send");
    let attempts = h.core.attempts();
    h.core.reconnect(h.now);
    h.pump();
    assert_eq!(h.closes, [1000], "the old transport is closed");
    assert!(h.events.iter().any(|e| matches!(
        e,
        crate::effect::Event::Disconnected { code: 1000, reconnect: true, .. }
    )));
    assert_eq!(h.next(), 0, "the new connection opens at once, without jitter");
    assert_eq!(h.opens, 2);
    assert_eq!(h.core.attempts(), attempts, "a switch is not a failed attempt");
    h.open_as("alice");
    let rejoin = h.last("join");
    assert_eq!(rejoin["since"]["offset"], 2, "the rejoin recovers from where it was");
    // The server had stored the send before the switch: the replay settles
    // it, and it is neither resent nor shown twice.
    let client_id = first["client_id"].as_str().unwrap();
    let replay = vec![
        message("general", 3, "alice", client_id, "during the switch"),
        message("general", 4, "bob", "b4", "missed"),
    ];
    h.server(joined(&rejoin["ref"], "general", "e1", 4, replay, Some(true)));
    assert_eq!(h.sent_of("send").len(), 1);
    assert_eq!(h.settled(op).unwrap().unwrap()["offset"], 3);
    assert_eq!(h.contents("general"), ["one", "two", "during the switch", "missed"]);
}

#[test]
fn a_switch_is_ignored_unless_the_connection_is_ready() {
    let mut h = super::Harness::fixed();
    h.core.connect(h.now);
    h.pump();
    h.core.reconnect(h.now);
    h.pump();
    assert!(h.closes.is_empty(), "an attempt in progress is left alone");
    assert_eq!(h.opens, 1);
}
