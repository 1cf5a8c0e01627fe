//! Read positions as the app sees them (the room snapshot JavaScript gets):
//! seeded by every `joined`, the first and each after a reconnect, and
//! never moved back by a stale one.

use serde_json::{Value, json};

use super::{Harness, joined, joined_client, message};

fn read(user: &str, id: &str, at: &str) -> Value {
    json!({"user_id":user,"id":id,"read_at":format!("2026-11-22T{at}Z")})
}

/// The snapshot's `reads` as `user:id` pairs, in its order.
fn positions(h: &Harness) -> Vec<String> {
    let snapshot = h.snapshot("general");
    let reads = snapshot["reads"].as_array().expect("the snapshot lists reads");
    reads.iter().map(|r| format!("{}:{}", r["user_id"].as_str().unwrap(), r["id"])).collect()
}

fn seen_by(h: &Harness, id: &str) -> Vec<String> {
    h.core.room("general").unwrap().seen_by(id).map(str::to_owned).collect()
}

#[test]
fn the_first_joined_shows_who_has_read_what_at_once() {
    let mut h = Harness::fixed();
    h.core.connect(h.now);
    h.pump();
    h.open_as("alice");
    h.core.join("general").unwrap();
    h.pump();
    let join = h.last("join");
    let history = vec![
        message("general", 1, "alice", "a1", "one"),
        message("general", 2, "alice", "a2", "two"),
    ];
    let mut frame = joined(&join["ref"], "general", "e1", 2, history, None);
    frame["reads"] = json!([read("carol", "m2", "10:05:00"), read("bob", "m1", "10:01:00")]);
    h.server(frame);
    assert_eq!(positions(&h), [r#"carol:"m2""#, r#"bob:"m1""#], "latest readers first");
    assert_eq!(seen_by(&h, "m1"), ["bob", "carol"]);
    assert_eq!(seen_by(&h, "m2"), ["carol"]);
    assert!(h.room_events("read").is_empty(), "positions are state, not live `read` events");
}

#[test]
fn a_rejoin_seeds_new_readers_but_never_moves_a_known_one_back() {
    let mut h = joined_client();
    h.server(json!({"type":"read","room":"general","user_id":"bob","id":"m2",
        "read_at":"2026-11-22T10:05:00Z"}));
    assert_eq!(positions(&h), [r#"bob:"m2""#]);
    h.socket_closed(1006);
    h.next();
    h.open_as("alice");
    let rejoin = h.last("join");
    let replay = vec![message("general", 3, "carol", "c3", "three")];
    let mut frame = joined(&rejoin["ref"], "general", "e1", 3, replay, Some(true));
    // Bob's kept position is behind the one this client saw live (a server
    // that lost it): it is not taken, even with a later `read_at`.
    frame["reads"] = json!([read("bob", "m1", "10:09:00"), read("carol", "m3", "10:08:00")]);
    h.server(frame);
    assert_eq!(positions(&h), [r#"carol:"m3""#, r#"bob:"m2""#]);
    assert_eq!(seen_by(&h, "m2"), ["bob", "carol"]);
    assert_eq!(seen_by(&h, "m3"), ["carol"]);
}

#[test]
fn a_position_on_a_message_not_loaded_counts_once_history_brings_it() {
    let mut h = Harness::fixed();
    h.core.connect(h.now);
    h.pump();
    h.open_as("alice");
    h.core.join("general").unwrap();
    h.pump();
    let join = h.last("join");
    let latest = vec![message("general", 3, "alice", "a3", "three")];
    let mut frame = joined(&join["ref"], "general", "e1", 3, latest, None);
    frame["reads"] = json!([read("erin", "m3", "10:09:00"), read("dave", "m1", "10:01:00")]);
    h.server(frame);
    assert_eq!(positions(&h), [r#"erin:"m3""#, r#"dave:"m1""#], "dave's is kept");
    assert_eq!(seen_by(&h, "m3"), ["erin"]);
    let op = h.core.history("general", Some(3), Some(50));
    h.pump();
    let request = h.last("history");
    let older: Vec<Value> = (1..=2)
        .map(|o| {
            let mut m = message("general", o, "alice", &format!("a{o}"), "old");
            m.as_object_mut().unwrap().remove("type");
            m
        })
        .collect();
    h.server(json!({"type":"history","ref":request["ref"],"room":"general","messages":older,
        "has_more":false}));
    assert!(h.settled(op).unwrap().is_ok());
    assert_eq!(seen_by(&h, "m1"), ["dave", "erin"]);
    assert_eq!(seen_by(&h, "m2"), ["erin"]);
}

#[test]
fn a_stale_read_frame_does_not_move_a_position_back() {
    let mut h = joined_client();
    let frame = |id: &str, at: &str| {
        json!({"type":"read","room":"general","user_id":"bob","id":id,
            "read_at":format!("2026-11-22T{at}Z")})
    };
    h.server(frame("m2", "10:05:00"));
    // Another tab of bob's, behind this one, marks an earlier message.
    h.server(frame("m1", "10:06:00"));
    assert_eq!(seen_by(&h, "m2"), ["bob"]);
    assert_eq!(h.room_events("read").len(), 2, "each frame still reaches `read` listeners");
}
