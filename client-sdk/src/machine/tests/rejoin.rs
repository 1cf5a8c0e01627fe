//! Many rooms against a scripted server that keeps the real server's frame,
//! join and message buckets and its strikes (4008): joining 40 rooms at
//! startup and re-joining them all after a reconnect go out within the
//! announced limits, each room recovering from its own position, and a join
//! refused for rate is tried again after the server's delay.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::pacing::{Bucket, open_and_ready};
use super::{Harness, joined, joined_client, message};
use crate::effect::Event;

const ROOMS: usize = 40;

fn room(i: usize) -> String {
    format!("room-{i:02}")
}

/// The rooms' server side, across connections (the history is durable).
struct Server {
    /// Every room's messages, by offset - 1.
    stored: BTreeMap<String, Vec<Value>>,
    /// The join bucket the server enforces, whatever it announces.
    join_limit: (f64, u32),
    /// Frames of `Harness::sent` already answered.
    seen: usize,
    /// `Harness::opens` already answered.
    opens: usize,
    /// Rooms joined on the current connection (only they get broadcasts).
    joined: HashSet<String>,
    frames: Bucket,
    joins: Bucket,
    messages: Bucket,
    strikes: Bucket,
    refusals: usize,
    closed_4008: usize,
    /// Every accepted join: its room and its `since` offset.
    join_log: Vec<(String, Option<u64>)>,
}

impl Server {
    /// `ROOMS` rooms with two messages each.
    fn new(h: &Harness, join_limit: (f64, u32)) -> Self {
        let stored = (0..ROOMS)
            .map(|i| {
                let name = room(i);
                let history =
                    (1..=2).map(|o| message(&name, o, "bob", &format!("b{o}"), "old")).collect();
                (name, history)
            })
            .collect();
        Self {
            stored,
            join_limit,
            seen: h.sent.len(),
            opens: h.opens,
            joined: HashSet::new(),
            frames: Bucket::new(50.0, 100, h.now),
            joins: Bucket::new(join_limit.0, join_limit.1, h.now),
            messages: Bucket::new(10.0, 20, h.now),
            strikes: Bucket::new(1.0, 20, h.now),
            refusals: 0,
            closed_4008: 0,
            join_log: Vec::new(),
        }
    }

    /// Accepts new sockets, with fresh budgets.
    fn accept(&mut self, h: &mut Harness) {
        while self.opens < h.opens {
            self.opens += 1;
            self.joined.clear();
            self.frames = Bucket::new(50.0, 100, h.now);
            self.joins = Bucket::new(self.join_limit.0, self.join_limit.1, h.now);
            self.messages = Bucket::new(10.0, 20, h.now);
            self.strikes = Bucket::new(1.0, 20, h.now);
            self.seen = open_and_ready(h);
        }
    }

    /// Answers what the client sent, until it sends nothing more.
    fn answer(&mut self, h: &mut Harness) {
        while self.seen < h.sent.len() {
            let frame = h.sent[self.seen].clone();
            self.seen += 1;
            let charged = self.frames.take(h.now).and_then(|()| match frame["type"].as_str() {
                Some("join") => self.joins.take(h.now),
                Some("send") => self.messages.take(h.now),
                _ => Ok(()),
            });
            if let Err(wait) = charged {
                self.refusals += 1;
                if self.strikes.take(h.now).is_err() {
                    self.closed_4008 += 1;
                    self.seen = h.sent.len();
                    return h.socket_closed(4008);
                }
                h.server(json!({"type":"error","ref":frame["ref"],"code":"rate_limited",
                    "message":"rate","retry_after_ms":wait}));
                continue;
            }
            match frame["type"].as_str() {
                Some("join") => self.join(h, &frame),
                Some("send") => self.send(h, &frame),
                Some("ping") => h.server(
                    json!({"type":"pong","ref":frame["ref"],"time":"2026-11-22T10:00:00Z"}),
                ),
                _ => {}
            }
        }
    }

    fn join(&mut self, h: &mut Harness, frame: &Value) {
        let name = frame["room"].as_str().unwrap().to_owned();
        let since = frame["since"]["offset"].as_u64();
        let stored = &self.stored[&name];
        let from = since.unwrap_or(0) as usize;
        let reply = joined(
            &frame["ref"],
            &name,
            "e1",
            stored.len() as u64,
            stored[from..].to_vec(),
            since.map(|_| true),
        );
        self.join_log.push((name.clone(), since));
        self.joined.insert(name);
        h.server(reply);
    }

    fn send(&mut self, h: &mut Harness, frame: &Value) {
        let name = frame["room"].as_str().unwrap().to_owned();
        let client_id = frame["client_id"].as_str().unwrap();
        let offset = self.stored[&name].len() as u64 + 1;
        let content = frame["content"].as_str().unwrap();
        let echo = message(&name, offset, "alice", client_id, content);
        self.stored.get_mut(&name).unwrap().push(echo.clone());
        h.server(json!({"type":"ack","ref":frame["ref"],"id":format!("m{offset}"),
            "offset":offset,"client_id":client_id}));
        h.server(echo);
    }

    /// Bob writes in `name`; the client hears it if joined on this connection.
    fn broadcast(&mut self, h: &mut Harness, name: &str, content: &str) {
        let stored = self.stored.get_mut(name).unwrap();
        let offset = stored.len() as u64 + 1;
        let m = message(name, offset, "bob", &format!("b{offset}"), content);
        stored.push(m.clone());
        if self.joined.contains(name) && h.core.is_ready() {
            h.server(m);
        }
    }

    /// Runs the clock and answers until `done`, for at most a minute.
    fn run_until(&mut self, h: &mut Harness, done: impl Fn(&Harness) -> bool) {
        let start = h.now;
        loop {
            self.accept(h);
            self.answer(h);
            if done(h) {
                return;
            }
            let (joins, refusals, closes) = (self.join_log.len(), self.refusals, self.closed_4008);
            assert!(
                h.now - start < 60_000,
                "not done in a minute: {joins} joins, {refusals} refusals, {closes} closes 4008"
            );
            h.next();
        }
    }
}

fn all_joined(h: &Harness) -> bool {
    (0..ROOMS).all(|i| h.snapshot(&room(i))["joined"] == true)
        && (0..ROOMS).all(|i| h.core.pending_sends(&room(i)).next().is_none())
}

/// A client joins `ROOMS` rooms at startup, hears a few messages in each,
/// loses its connection, misses a few more, sends in two rooms while
/// disconnected, and reconnects. Returns the client and the server.
fn forty_rooms_reconnect(join_limit: (f64, u32)) -> (Harness, Server, usize) {
    let mut h = Harness::fixed();
    let mut server = Server::new(&h, join_limit);
    h.core.connect(h.now);
    h.pump();
    server.accept(&mut h);
    for i in 0..ROOMS {
        h.core.join(&room(i)).unwrap();
        h.pump();
    }
    server.run_until(&mut h, all_joined);
    let startup: Vec<String> = server.join_log.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(startup, (0..ROOMS).map(room).collect::<Vec<_>>(), "joined in the app's order");
    // Each room at its own position: 2 to 4.
    for i in 0..ROOMS {
        for n in 0..i % 3 {
            server.broadcast(&mut h, &room(i), &format!("heard {n}"));
        }
    }
    h.socket_closed(1006);
    for i in (0..ROOMS).filter(|i| i.is_multiple_of(4)) {
        server.broadcast(&mut h, &room(i), "missed");
    }
    h.core.send(&room(37), "queued 37".into(), h.now);
    h.core.send(&room(12), "queued 12".into(), h.now);
    h.pump();
    let before = server.join_log.len();
    server.run_until(&mut h, all_joined);
    (h, server, before)
}

#[test]
fn forty_rooms_rejoin_within_the_join_limit_each_from_its_own_position() {
    let (h, server, before) = forty_rooms_reconnect((5.0, 10));
    assert_eq!((server.refusals, server.closed_4008), (0, 0), "no refusal, no 4008");
    assert_eq!(h.opens, 2, "one reconnect, no loop");
    let rejoins = &server.join_log[before..];
    assert_eq!(rejoins.len(), ROOMS, "each room re-joined once: {rejoins:?}");
    let first: Vec<&str> = rejoins[..2].iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(first, ["room-12", "room-37"], "rooms with waiting sends first");
    let rest: Vec<String> = rejoins[2..].iter().map(|(r, _)| r.clone()).collect();
    let expected: Vec<String> = (0..ROOMS).filter(|i| ![12, 37].contains(i)).map(room).collect();
    assert_eq!(rest, expected, "then in the app's order");
    for (name, since) in rejoins {
        let i: usize = name["room-".len()..].parse().unwrap();
        assert_eq!(*since, Some(2 + (i % 3) as u64), "{name} recovers from its own position");
        let missed = h.contents(name).iter().filter(|c| *c == "missed").count();
        assert_eq!(missed, usize::from(i.is_multiple_of(4)), "{name} recovered what it missed");
    }
    for i in [12, 37] {
        let mine = server.stored[&room(i)].iter().filter(|m| m["sender"]["id"] == "alice");
        assert_eq!(mine.count(), 1, "the send queued in {} went out once", room(i));
    }
}

#[test]
fn a_server_tighter_than_it_announced_refuses_some_rejoins_but_never_closes_4008() {
    // The server enforces two joins a second with bursts of four while
    // announcing five and ten: refusals happen, the client waits as told
    // and slows down, and every room is re-joined on the same connection.
    let (h, server, before) = forty_rooms_reconnect((2.0, 4));
    assert!(server.refusals > 0, "the tighter bucket refused something");
    assert_eq!(server.closed_4008, 0, "never closed for refusals");
    assert_eq!(h.opens, 2, "one reconnect, no loop");
    let rejoined: HashSet<&str> =
        server.join_log[before..].iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rejoined.len(), ROOMS);
}

#[test]
fn a_join_refused_for_rate_is_retried_after_retry_after_ms() {
    let mut h = joined_client();
    h.core.join("second").unwrap();
    h.pump();
    let join = h.last("join");
    let op = h.core.send("second", "waits for the join".into(), h.now);
    h.pump();
    h.server(json!({"type":"error","ref":join["ref"],"code":"rate_limited",
        "message":"join rate","retry_after_ms":700}));
    assert!(h.settled(op).is_none(), "the send still waits");
    assert!(h.room_events("error").is_empty(), "the room did not fail");
    assert!(!h.events.iter().any(|e| matches!(e, Event::Error(_))));
    assert_eq!(h.core.next_deadline(), Some(h.now + 700));
    let joins = h.sent_of("join").len();
    h.advance(699);
    assert_eq!(h.sent_of("join").len(), joins, "not before retry_after_ms");
    h.advance(1);
    let again = h.last("join");
    assert_eq!((again["room"].as_str(), h.sent_of("join").len()), (Some("second"), joins + 1));
    assert!(h.sent_of("send").is_empty(), "the send waits for the room's join");
    h.server(joined(&again["ref"], "second", "e1", 0, vec![], None));
    assert_eq!(h.snapshot("second")["joined"], true);
    assert_eq!(h.last("send")["content"], "waits for the join");
}

#[test]
fn leaving_a_room_whose_join_waits_for_the_pace_sends_neither_join_nor_leave() {
    let mut h = joined_client();
    // Five joins go at once (half the default burst), `general` took one:
    // room-04 and room-05 wait.
    for i in 0..6 {
        h.core.join(&room(i)).unwrap();
    }
    h.pump();
    let joins = h.sent_of("join").len();
    h.core.leave(&room(5));
    h.pump();
    assert!(h.sent_of("leave").is_empty(), "never joined on the server");
    h.advance(2_000);
    assert_eq!(h.sent_of("join").len(), joins + 1, "only the room still held is joined");
    assert_eq!(h.last("join")["room"], room(4));
}
