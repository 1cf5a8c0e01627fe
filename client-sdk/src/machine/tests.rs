//! The client logic driven through whole scenarios with a scripted server
//! and a fake clock: connecting, reconnecting, recovering, resending.

use serde_json::{Value, json};

use super::{Core, TokenSource};
use crate::backoff::Backoff;
use crate::effect::{ClientError, ConnectionState, Effect, Event};
use crate::options::Options;

mod pacing;
mod reads;
mod recovery;
mod rejoin;

/// The core plus a record of everything it asked for.
struct Harness {
    core: Core,
    now: u64,
    sent: Vec<Value>,
    events: Vec<Event>,
    opens: usize,
    closes: Vec<u16>,
    fetches: usize,
}

impl Harness {
    fn new(opts: Options, source: TokenSource) -> Self {
        let core = Core::new(opts, source, 1);
        Self {
            core,
            now: 1_000_000,
            sent: vec![],
            events: vec![],
            opens: 0,
            closes: vec![],
            fetches: 0,
        }
    }

    fn fixed() -> Self {
        Self::new(Options::default(), TokenSource::Fixed("t1".into()))
    }

    fn pump(&mut self) {
        for effect in self.core.take_effects() {
            match effect {
                Effect::Open => self.opens += 1,
                Effect::Send(text) => self.sent.push(serde_json::from_str(&text).unwrap()),
                Effect::Close { code, .. } => self.closes.push(code),
                Effect::FetchToken => self.fetches += 1,
                Effect::Emit(event) => self.events.push(event),
            }
        }
    }

    fn server(&mut self, frame: Value) {
        self.core.received(&frame.to_string(), self.now);
        self.pump();
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.core.tick(self.now);
        self.pump();
    }

    /// Runs the clock to the next deadline.
    fn next(&mut self) -> u64 {
        let at = self.core.next_deadline().expect("something is scheduled");
        let waited = at.saturating_sub(self.now);
        self.advance(waited);
        waited
    }

    fn socket_closed(&mut self, code: u16) {
        self.core.closed(code, "", self.now);
        self.pump();
    }

    /// Opens the socket and answers the auth with `ready` as `me`.
    fn open_as(&mut self, me: &str) {
        self.core.opened(self.now);
        self.pump();
        let auth = self.last("auth");
        self.server(json!({"type":"ready","ref":auth["ref"],"session_id":format!("s-{me}"),
            "user":{"id":me,"name":me,"role":null,"avatar":null},"heartbeat_ms":25000}));
    }

    fn sent_of(&self, kind: &str) -> Vec<Value> {
        self.sent.iter().filter(|f| f["type"] == kind).cloned().collect()
    }

    fn last(&self, kind: &str) -> Value {
        self.sent_of(kind).pop().unwrap_or_else(|| panic!("no {kind} frame sent: {:?}", self.sent))
    }

    fn settled(&self, op: u64) -> Option<Result<Value, ClientError>> {
        self.events.iter().find_map(|e| match e {
            Event::Settle { op: o, result } if *o == op => {
                Some(result.clone().map(|text| serde_json::from_str(&text).unwrap()))
            }
            _ => None,
        })
    }

    fn room_events(&self, kind: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Room { kind: k, payload, .. } if *k == kind => {
                    Some(serde_json::from_str(payload).unwrap())
                }
                _ => None,
            })
            .collect()
    }

    fn snapshot(&self, room: &str) -> Value {
        serde_json::from_str(&self.core.room_snapshot(room).unwrap().1).unwrap()
    }

    fn contents(&self, room: &str) -> Vec<String> {
        let snap = self.snapshot(room);
        snap["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn message(room: &str, offset: u64, sender: &str, client_id: &str, content: &str) -> Value {
    json!({"type":"message","room":room,"id":format!("m{offset}"),"offset":offset,"client_id":client_id,
        "sender":{"id":sender,"name":sender,"role":null,"avatar":null},"content":content,
        "created_at":"2026-11-22T10:00:00Z"})
}

fn joined(
    reference: &Value,
    room: &str,
    epoch: &str,
    offset: u64,
    messages: Vec<Value>,
    recovered: Option<bool>,
) -> Value {
    let mut frame = json!({"type":"joined","ref":reference,"room":room,"epoch":epoch,"offset":offset,
        "members":[],"messages":messages});
    if let Some(r) = recovered {
        frame["recovered"] = json!(r);
    }
    frame
}

/// A connected client that joined `general` (epoch `e1`, offset 2).
fn joined_client() -> Harness {
    let mut h = Harness::fixed();
    h.core.connect(h.now);
    h.pump();
    h.open_as("alice");
    h.core.join("general").unwrap();
    h.pump();
    let join = h.last("join");
    let history =
        vec![message("general", 1, "bob", "b1", "one"), message("general", 2, "bob", "b2", "two")];
    h.server(joined(&join["ref"], "general", "e1", 2, history, None));
    h
}

#[test]
fn connects_authenticates_and_joins() {
    let mut h = Harness::fixed();
    assert_eq!(h.core.state(), ConnectionState::Idle);
    h.core.connect(h.now);
    h.pump();
    assert_eq!((h.opens, h.core.state()), (1, ConnectionState::Connecting));
    h.open_as("alice");
    assert_eq!(h.last("auth")["token"], "t1");
    assert_eq!(h.core.state(), ConnectionState::Open);
    assert_eq!(h.core.session_id(), Some("s-alice"));
    assert!(h.events.iter().any(|e| matches!(e, Event::Connected { .. })));
    h.core.join("general").unwrap();
    h.pump();
    let join = h.last("join");
    assert_eq!(join["history"], 50);
    assert!(join.get("since").is_none(), "a first join has nothing to recover");
    h.server(joined(
        &join["ref"],
        "general",
        "e1",
        1,
        vec![message("general", 1, "bob", "b1", "hi")],
        None,
    ));
    assert_eq!(h.contents("general"), ["hi"]);
    assert_eq!(h.snapshot("general")["joined"], true);
}

#[test]
fn a_send_settles_with_its_ack_and_appears_once() {
    let mut h = joined_client();
    let op = h.core.send("general", "hello".into(), h.now);
    h.pump();
    let send = h.last("send");
    let client_id = send["client_id"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("c-"));
    assert_eq!(h.snapshot("general")["pending"][0]["content"], "hello");
    // The server broadcasts to the sender first, then acks.
    h.server(message("general", 3, "alice", &client_id, "hello"));
    h.server(json!({"type":"ack","ref":send["ref"],"id":"m3","offset":3,"client_id":client_id}));
    let ack = h.settled(op).unwrap().unwrap();
    assert_eq!((ack["id"].as_str(), ack["offset"].as_u64()), (Some("m3"), Some(3)));
    assert_eq!(h.contents("general"), ["one", "two", "hello"]);
    assert_eq!(h.snapshot("general")["pending"], json!([]));
    let settles = h.events.iter().filter(|e| matches!(e, Event::Settle { .. })).count();
    assert_eq!(settles, 1, "the ack after the echo settles nothing again");
}

#[test]
fn sends_while_disconnected_queue_and_go_out_after_the_rejoin() {
    let mut h = joined_client();
    h.socket_closed(1006);
    assert_eq!(h.core.state(), ConnectionState::Reconnecting);
    let a = h.core.send("general", "queued 1".into(), h.now);
    let b = h.core.send("general", "queued 2".into(), h.now);
    h.pump();
    assert!(h.sent_of("send").is_empty());
    assert_eq!(h.snapshot("general")["pending"].as_array().unwrap().len(), 2);
    h.next();
    assert_eq!(h.opens, 2);
    h.open_as("alice");
    let rejoin = h.last("join");
    assert_eq!(rejoin["since"], json!({"epoch":"e1","offset":2}));
    assert!(h.sent_of("send").is_empty(), "sends wait for the room's joined");
    h.server(joined(&rejoin["ref"], "general", "e1", 2, vec![], Some(true)));
    // One at a time: the second goes out once the first was answered.
    for (offset, content) in [(3_u64, "queued 1"), (4, "queued 2")] {
        let sends = h.sent_of("send");
        assert_eq!(sends.len() as u64, offset - 2, "one in flight: {sends:?}");
        let s = sends.last().unwrap();
        assert_eq!(s["content"], content);
        h.server(json!({"type":"ack","ref":s["ref"],"id":format!("m{offset}"),"offset":offset,"client_id":s["client_id"]}));
    }
    assert!(h.settled(a).unwrap().is_ok() && h.settled(b).unwrap().is_ok());
}

#[test]
fn backoff_grows_then_resets_after_a_stable_connection() {
    let backoff =
        Backoff { min_delay_ms: 100, max_delay_ms: 1_000, factor: 2.0, max_attempts: None };
    let opts = Options { backoff, ..Options::default() };
    let mut h = Harness::new(opts, TokenSource::Fixed("t".into()));
    h.core.connect(h.now);
    h.pump();
    for attempt in 0..6u32 {
        h.socket_closed(1006);
        assert_eq!(h.core.state(), ConnectionState::Reconnecting);
        assert_eq!(h.core.attempts(), attempt + 1);
        let waited = h.next();
        let ceiling = (100u64 << attempt).min(1_000);
        assert!(waited <= ceiling, "attempt {attempt}: waited {waited} > {ceiling}");
        assert_eq!(h.opens, attempt as usize + 2);
    }
    h.open_as("alice");
    assert_eq!(h.core.attempts(), 6, "not reset before the connection is stable");
    h.advance(5_000);
    assert_eq!(h.core.attempts(), 0);
    h.socket_closed(1006);
    assert!(h.next() <= 100, "back to the first delay");
}

#[test]
fn gives_up_after_max_attempts() {
    let mut opts = Options::default();
    opts.backoff.max_attempts = Some(3);
    let mut h = Harness::new(opts, TokenSource::Fixed("t".into()));
    h.core.connect(h.now);
    h.pump();
    h.core.join("general").unwrap();
    let op = h.core.send("general", "never delivered".into(), h.now);
    h.pump();
    for _ in 0..2 {
        h.socket_closed(1006);
        h.next();
    }
    h.socket_closed(1006);
    assert_eq!(h.core.state(), ConnectionState::Closed);
    assert_eq!(h.opens, 3);
    assert_eq!(h.settled(op).unwrap().unwrap_err().code, "gave_up");
    assert!(h.core.next_deadline().is_none());
}

#[test]
fn a_server_restart_reconnects_at_once_with_jitter() {
    let mut h = joined_client();
    h.socket_closed(1012);
    assert_eq!(h.core.attempts(), 0, "a restart is not a failure");
    assert!(h.next() <= Options::default().restart_jitter_ms);
    assert_eq!(h.opens, 2);
}

#[test]
fn never_reconnects_after_close_or_policy_codes() {
    let mut h = joined_client();
    let op = h.core.send("general", "x".into(), h.now);
    h.core.close(h.now);
    h.pump();
    assert_eq!(h.closes, [1000]);
    assert_eq!(h.core.state(), ConnectionState::Closed);
    assert_eq!(h.settled(op).unwrap().unwrap_err().code, "closed");
    assert!(h.core.next_deadline().is_none());
    // A late close event of the old socket changes nothing.
    h.socket_closed(1006);
    assert_eq!(h.core.state(), ConnectionState::Closed);

    let mut h = joined_client();
    h.socket_closed(1009);
    assert_eq!(h.core.state(), ConnectionState::Closed);
}

#[test]
fn unauthorized_fetches_one_fresh_token_then_gives_up() {
    let mut h = Harness::new(Options::default(), TokenSource::Provider);
    h.core.connect(h.now);
    h.pump();
    assert_eq!((h.fetches, h.opens), (1, 0), "the provider runs before the socket opens");
    h.core.token_ready("old".into(), h.now);
    h.pump();
    h.open_as("alice");
    h.socket_closed(4001);
    assert_eq!(h.core.state(), ConnectionState::Reconnecting);
    h.next();
    assert_eq!(h.fetches, 2);
    h.core.token_ready("fresh".into(), h.now);
    h.pump();
    h.core.opened(h.now);
    h.pump();
    assert_eq!(h.last("auth")["token"], "fresh");
    h.socket_closed(4001);
    assert_eq!(h.core.state(), ConnectionState::Closed);

    let mut h = joined_client();
    h.socket_closed(4001);
    assert_eq!(h.core.state(), ConnectionState::Closed, "a fixed token cannot be refreshed");
}

#[test]
fn a_failing_token_provider_backs_off() {
    let mut h = Harness::new(Options::default(), TokenSource::Provider);
    h.core.connect(h.now);
    h.pump();
    h.core.token_failed("backend down".into(), h.now);
    h.pump();
    assert_eq!(h.core.state(), ConnectionState::Reconnecting);
    assert!(h.events.iter().any(|e| matches!(e, Event::Error(err) if err.code == "token")));
    h.next();
    assert_eq!(h.fetches, 2);
}

#[test]
fn refreshes_the_token_before_it_expires() {
    // No pings in this test: nothing answers them.
    let opts = Options { ping_interval_ms: Some(u64::MAX / 4), ..Options::default() };
    let mut h = Harness::new(opts, TokenSource::Provider);
    h.core.connect(h.now);
    h.pump();
    // exp = now + 10 minutes: {"sub":"a","exp":...}
    let exp = h.now / 1000 + 600;
    let payload = format!("{{\"sub\":\"a\",\"name\":\"A\",\"exp\":{exp}}}");
    let token = format!("e30.{}.sig", base64url(payload.as_bytes()));
    h.core.token_ready(token, h.now);
    h.pump();
    h.open_as("alice");
    while h.fetches < 2 {
        h.next();
        if h.now > (exp * 1000) {
            panic!("no refresh before expiry");
        }
    }
    assert!(h.now <= exp * 1000 - Options::default().refresh_before_ms);
    h.core.token_ready("renewed".into(), h.now);
    h.pump();
    assert_eq!(h.last("auth")["token"], "renewed");
    assert_eq!(h.core.state(), ConnectionState::Open, "refreshed without reconnecting");
    assert_eq!(h.opens, 1);
}

#[test]
fn a_silent_connection_is_declared_dead() {
    let mut h = joined_client();
    h.advance(25_000);
    let ping = h.last("ping");
    assert!(ping["ref"].is_u64());
    // Something arrives: alive.
    h.server(json!({"type":"pong","ref":ping["ref"],"time":"2026-11-22T10:00:00Z"}));
    assert!(
        !h.events.iter().any(|e| matches!(e, Event::Frame(f) if f.contains("pong"))),
        "internal pongs are not surfaced"
    );
    h.advance(25_000);
    h.advance(Options::default().pong_timeout_ms);
    assert_eq!(h.closes, [4000]);
    assert_eq!(h.core.state(), ConnectionState::Reconnecting);
}

#[test]
fn coming_online_retries_at_once() {
    let mut h = joined_client();
    for _ in 0..5 {
        h.socket_closed(1006);
        h.next();
    }
    h.socket_closed(1006);
    let opens = h.opens;
    h.core.wake(h.now);
    h.pump();
    assert_eq!(h.opens, opens + 1);
}

#[test]
fn the_outbox_is_bounded() {
    let opts = Options { queue_limit: 2, ..Options::default() };
    let mut h = Harness::new(opts, TokenSource::Fixed("t".into()));
    h.core.join("general").unwrap();
    let ops: Vec<u64> = (0..3).map(|i| h.core.send("general", format!("m{i}"), h.now)).collect();
    h.pump();
    assert!(h.settled(ops[0]).is_none() && h.settled(ops[1]).is_none());
    assert_eq!(h.settled(ops[2]).unwrap().unwrap_err().code, "queue_full");
    let op = h.core.send("elsewhere", "x".into(), h.now);
    h.pump();
    assert_eq!(h.settled(op).unwrap().unwrap_err().code, "not_joined");
}

#[test]
fn a_rate_limited_send_is_retried_after_the_servers_delay() {
    let mut h = joined_client();
    let op = h.core.send("general", "hello".into(), h.now);
    h.pump();
    let first = h.last("send");
    h.server(json!({"type":"error","ref":first["ref"],"code":"rate_limited",
        "message":"slow down","retry_after_ms":700}));
    assert!(h.settled(op).is_none(), "not failed: retried later");
    assert_eq!(h.snapshot("general")["pending"][0]["content"], "hello");
    let later = h.core.send("general", "after it".into(), h.now);
    h.pump();
    assert_eq!(h.sent_of("send").len(), 1, "nothing overtakes the refused send");
    assert_eq!(h.next(), 700);
    let again = h.last("send");
    assert_eq!(again["client_id"], first["client_id"]);
    assert_ne!(again["ref"], first["ref"]);
    // Refused again and again (another tab drains the user's budget):
    // waiting fixes that, so the send never fails and keeps its place.
    for _ in 0..20 {
        let last = h.last("send");
        assert_eq!(last["content"], "hello");
        h.server(json!({"type":"error","ref":last["ref"],"code":"rate_limited",
            "message":"no","retry_after_ms":100}));
        assert!(h.next() >= 100, "waits as told");
    }
    assert!(h.settled(op).is_none());
    let last = h.last("send");
    assert_eq!(last["content"], "hello");
    h.server(
        json!({"type":"ack","ref":last["ref"],"id":"m3","offset":3,"client_id":last["client_id"]}),
    );
    assert!(h.settled(op).unwrap().is_ok());
    h.next();
    let next = h.last("send");
    assert_eq!(next["content"], "after it", "then the next, in order (paced)");
    assert!(h.settled(later).is_none());
}

#[test]
fn a_refused_send_fails_at_once() {
    let mut h = joined_client();
    let op = h.core.send("general", "x".repeat(10), h.now);
    h.pump();
    let send = h.last("send");
    h.server(json!({"type":"error","ref":send["ref"],"code":"too_large","message":"too long"}));
    assert_eq!(h.settled(op).unwrap().unwrap_err().code, "too_large");
    assert_eq!(h.snapshot("general")["pending"], json!([]));
}

#[test]
fn a_send_the_backend_rejects_fails_with_its_reason_and_is_not_retried() {
    let mut h = joined_client();
    let op = h.core.send("general", "see evil.example".into(), h.now);
    h.pump();
    let send = h.last("send");
    h.server(json!({"type":"error","ref":send["ref"],"code":"rejected",
        "message":"No links to that site","reason_code":"blocked_link"}));
    let error = h.settled(op).unwrap().unwrap_err();
    assert_eq!(error.code, "rejected");
    assert_eq!(error.message, "No links to that site");
    assert_eq!(error.reason_code.as_deref(), Some("blocked_link"));
    assert!(!error.is_retryable());
    assert_eq!(h.snapshot("general")["pending"], json!([]), "not kept in the outbox");
    h.now += 60_000;
    h.core.tick(h.now);
    h.pump();
    assert_eq!(h.sent_of("send").len(), 1, "never sent again");
}

#[test]
fn rooms_are_reference_counted() {
    let mut h = joined_client();
    h.core.join("general").unwrap();
    h.pump();
    assert_eq!(h.sent_of("join").len(), 1, "already joined");
    h.core.leave("general");
    h.pump();
    assert!(h.sent_of("leave").is_empty());
    h.core.leave("general");
    h.pump();
    assert_eq!(h.last("leave")["room"], "general");
    assert!(!h.core.has_room("general"));
    assert!(h.core.join("not a room!").is_err());
}

#[test]
fn typing_is_throttled_and_ends_after_a_pause() {
    let mut h = joined_client();
    for _ in 0..6 {
        h.core.typing("general", true, h.now);
        h.advance(100);
    }
    h.pump();
    assert_eq!(h.sent_of("typing").len(), 2, "at 0 ms and 500 ms");
    h.advance(3_000);
    assert_eq!(h.last("typing")["is_typing"], false);
}

fn bob(status: &str) -> Value {
    json!({"user":{"id":"bob","name":"Bob","role":null,"avatar":null},"user_id":"bob",
        "status":status,"custom":null,"last_seen":"2026-11-22T10:00:00Z"})
}

#[test]
fn typing_members_and_presence_update_the_snapshot() {
    let mut h = joined_client();
    h.server(json!({"type":"presence_diff","room":"general","count":2,"joins":[bob("online")]}));
    assert_eq!(h.room_events("member_joined")[0]["user"]["id"], "bob", "announced as before");
    assert_eq!(h.snapshot("general")["member_count"], 2);
    h.server(
        json!({"type":"typing","room":"general","user":{"id":"bob","name":"Bob"},"is_typing":true}),
    );
    assert_eq!(h.snapshot("general")["typing"], json!([{"id":"bob","name":"Bob"}]));
    h.server(json!({"type":"presence_diff","room":"general","count":2,"updates":[{"user_id":"bob",
        "status":"away","custom":"Lunch","last_seen":"2026-11-22T10:00:00Z"}]}));
    assert_eq!(h.snapshot("general")["members"][0]["status"], "away");
    h.server(json!({"type":"occupancy","room":"general","count":1500}));
    assert_eq!(h.snapshot("general")["member_count"], 1500);
    let version = h.core.room_version("general");
    h.socket_closed(1006);
    assert_eq!(h.snapshot("general")["typing"], json!([]), "stale after a disconnect");
    assert_eq!(h.snapshot("general")["joined"], false);
    assert_ne!(h.core.room_version("general"), version, "snapshots are rebuilt");
}

#[test]
fn a_diff_that_says_bob_left_removes_him_and_his_typing() {
    let mut h = joined_client();
    h.server(json!({"type":"presence_diff","room":"general","count":2,"joins":[bob("online")]}));
    h.server(
        json!({"type":"typing","room":"general","user":{"id":"bob","name":"Bob"},"is_typing":true}),
    );
    h.server(json!({"type":"presence_diff","room":"general","count":1,
        "leaves":[{"id":"bob","name":"Bob","role":null,"avatar":null}]}));
    let snap = h.snapshot("general");
    assert_eq!(
        (&snap["members"], &snap["typing"], &snap["member_count"]),
        (&json!([]), &json!([]), &json!(1))
    );
    assert_eq!(h.room_events("member_left")[0]["user"]["id"], "bob");
}

#[test]
fn members_pages_from_the_joined_cursor_until_everyone_is_loaded() {
    let mut h = Harness::fixed();
    h.core.connect(h.now);
    h.pump();
    h.open_as("alice");
    h.core.join("hall").unwrap();
    h.pump();
    let join = h.last("join");
    let mut reply = joined(&join["ref"], "hall", "e1", 0, vec![], None);
    reply["count"] = json!(2);
    reply["members"] = json!([bob("online")]);
    reply["cursor"] = json!("0,bob,Bob");
    h.server(reply);
    assert_eq!(h.snapshot("hall")["more_members"], true);

    let op = h.core.members("hall", Some(50));
    h.pump();
    let request = h.last("members");
    assert_eq!((&request["cursor"], &request["limit"]), (&json!("0,bob,Bob"), &json!(50)));
    h.server(json!({"type":"members","ref":request["ref"],"room":"hall","count":2,
        "members":[{"user":{"id":"cy","name":"Cy","role":null,"avatar":null},"user_id":"cy",
        "status":"online","custom":null,"last_seen":"2026-11-22T10:00:00Z"}]}));
    let page = h.settled(op).expect("settled").expect("a page");
    assert_eq!(page["members"][0]["user"]["id"], "cy");
    let snap = h.snapshot("hall");
    assert_eq!(snap["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(snap["more_members"], false);

    // Everyone is loaded: no request, an empty page at once.
    let op = h.core.members("hall", None);
    h.pump();
    assert_eq!(h.sent_of("members").len(), 1);
    assert_eq!(h.settled(op).expect("settled").expect("a page")["members"], json!([]));
    // A room not joined is refused without a request.
    let op = h.core.members("elsewhere", None);
    h.pump();
    assert_eq!(h.settled(op).expect("settled").unwrap_err().code, "not_joined");
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
