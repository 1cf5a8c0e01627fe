//! The outbox against a scripted server that keeps the real server's rate
//! limits (a token bucket per connection, strikes that close with 4008),
//! deduplicates by `client_id`, answers with the `ack` before or after the
//! echo, and dies between storing a message and answering: whatever the
//! schedule, every message is stored once, in the order the user sent it,
//! and never refused for rate.

use serde_json::{Value, json};

use super::{Harness, joined_client, message};

/// The server's token bucket (`server/src/limits.rs`) on the test clock.
pub(super) struct Bucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    at: u64,
}

impl Bucket {
    pub(super) fn new(per_sec: f64, burst: u32, now: u64) -> Self {
        Self { per_sec, burst: f64::from(burst), tokens: f64::from(burst), at: now }
    }

    /// Takes a token, or says how many milliseconds until one is there.
    pub(super) fn take(&mut self, now: u64) -> Result<(), u64> {
        let elapsed = now.saturating_sub(self.at) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.per_sec * 1000.0).ceil() as u64)
        }
    }
}

/// The server's default limits, as `ready` announces them.
pub(super) fn limits() -> Value {
    json!({"messages":{"per_sec":10.0,"burst":20},"user_messages":{"per_sec":20.0,"burst":40},
        "frames":{"per_sec":50.0,"burst":100},"joins":{"per_sec":5.0,"burst":10}})
}

/// One room's server side, across restarts (the history is durable).
struct Server {
    /// Every message of `general`, by offset - 1.
    stored: Vec<Value>,
    up: bool,
    /// Frames of `Harness::sent` already answered.
    seen: usize,
    /// `Harness::opens` already answered.
    opens: usize,
    messages: Bucket,
    strikes: Bucket,
    refusals: usize,
    closed_4008: usize,
    ack_first: bool,
}

impl Server {
    fn new(h: &Harness, ack_first: bool) -> Self {
        let bob =
            |offset, content| message("general", offset, "bob", &format!("b{offset}"), content);
        Self {
            stored: vec![bob(1, "one"), bob(2, "two")],
            up: true,
            seen: h.sent.len(),
            opens: h.opens,
            messages: Bucket::new(10.0, 20, h.now),
            strikes: Bucket::new(1.0, 20, h.now),
            refusals: 0,
            closed_4008: 0,
            ack_first,
        }
    }

    /// Accepts a new socket (fresh budgets) or refuses it while down.
    fn accept(&mut self, h: &mut Harness) {
        while self.opens < h.opens {
            self.opens += 1;
            if !self.up {
                h.socket_closed(1006);
                continue;
            }
            self.messages = Bucket::new(10.0, 20, h.now);
            self.strikes = Bucket::new(1.0, 20, h.now);
            self.seen = open_and_ready(h);
        }
    }

    /// Answers what the client sent, until it sends nothing more.
    fn answer(&mut self, h: &mut Harness) {
        while self.up && self.seen < h.sent.len() {
            let frame = h.sent[self.seen].clone();
            self.seen += 1;
            match frame["type"].as_str() {
                Some("join") => {
                    let since = frame["since"]["offset"].as_u64().unwrap_or(0) as usize;
                    let offset = self.stored.len();
                    h.server(json!({"type":"joined","ref":frame["ref"],"room":"general","epoch":"e1",
                        "offset":offset,"members":[],"messages":self.stored[since..],"recovered":true}));
                }
                Some("send") => self.send(h, &frame),
                _ => {}
            }
        }
    }

    fn send(&mut self, h: &mut Harness, frame: &Value) {
        let client_id = frame["client_id"].as_str().unwrap();
        if let Some(at) = self.stored.iter().position(|m| m["client_id"] == client_id) {
            let ack = json!({"type":"ack","ref":frame["ref"],"id":format!("m{}", at + 1),
                "offset":at + 1,"client_id":client_id});
            return h.server(ack);
        }
        if let Err(wait) = self.messages.take(h.now) {
            self.refusals += 1;
            if self.strikes.take(h.now).is_err() {
                self.closed_4008 += 1;
                return h.socket_closed(4008);
            }
            return h.server(json!({"type":"error","ref":frame["ref"],"code":"rate_limited",
                "message":"message rate","retry_after_ms":wait}));
        }
        let offset = self.stored.len() as u64 + 1;
        let content = frame["content"].as_str().unwrap();
        let echo = message("general", offset, "alice", client_id, content);
        self.stored.push(echo.clone());
        let ack = json!({"type":"ack","ref":frame["ref"],"id":format!("m{offset}"),
            "offset":offset,"client_id":client_id});
        if self.ack_first {
            h.server(ack);
            h.server(echo);
        } else {
            h.server(echo);
            h.server(ack);
        }
    }

    /// Dies: what reached it is stored, nothing is answered.
    fn crash(&mut self, h: &mut Harness) {
        for frame in h.sent.iter().skip(self.seen) {
            let client_id = &frame["client_id"];
            if frame["type"] == "send" && !self.stored.iter().any(|m| m["client_id"] == *client_id)
            {
                let offset = self.stored.len() as u64 + 1;
                let content = frame["content"].as_str().unwrap();
                let client_id = client_id.as_str().unwrap();
                self.stored.push(message("general", offset, "alice", client_id, content));
            }
        }
        self.seen = h.sent.len();
        self.up = false;
        h.socket_closed(1006);
    }
}

/// The user sends `total` messages, one every 100 ms (the server's default
/// rate), while the server goes down at each `(at, for)` of `outages`
/// (milliseconds from the start). Returns what the server stored from
/// alice, and the server.
fn run(ack_first: bool, total: usize, outages: &[(u64, u64)]) -> (Vec<String>, Server) {
    let mut h = joined_client();
    let mut server = Server::new(&h, ack_first);
    let start = h.now;
    let mut ops = Vec::new();
    let mut outage = 0;
    let mut steps = 0;
    while ops.len() < total || h.core.pending_sends("general").next().is_some() {
        steps += 1;
        assert!(h.now - start < 120_000 && steps < 100_000, "not delivered in two minutes");
        let user_at = (ops.len() < total).then(|| start + 100 * ops.len() as u64);
        let down_at = outages.get(outage).map(|(at, _)| start + at);
        let up_at = outages.get(outage).filter(|_| !server.up).map(|(at, f)| start + at + f);
        let at = [user_at, h.core.next_deadline(), down_at.filter(|_| server.up), up_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        h.advance(at.saturating_sub(h.now));
        if down_at.is_some_and(|d| server.up && h.now >= d) {
            server.crash(&mut h);
        } else if up_at.is_some_and(|u| h.now >= u) {
            server.up = true;
            outage += 1;
        }
        if user_at == Some(h.now) {
            ops.push(h.core.send("general", format!("A-{}", ops.len()), h.now));
            h.pump();
        }
        server.accept(&mut h);
        server.answer(&mut h);
    }
    for op in ops {
        assert!(h.settled(op).expect("settled").is_ok(), "op {op} failed");
    }
    let mine: Vec<String> = server
        .stored
        .iter()
        .filter(|m| m["sender"]["id"] == "alice")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    let shown: Vec<String> =
        h.contents("general").into_iter().filter(|c| c.starts_with("A-")).collect();
    assert_eq!(shown, mine, "the client shows what the server stored, in its order");
    (mine, server)
}

fn numbered(total: usize) -> Vec<String> {
    (0..total).map(|i| format!("A-{i}")).collect()
}

#[test]
fn a_backlog_from_an_outage_goes_out_in_order_without_a_refusal() {
    // Three seconds down: 30 messages wait, then go out with new ones.
    for ack_first in [true, false] {
        let (stored, server) = run(ack_first, 80, &[(1_000, 3_000)]);
        assert_eq!(stored, numbered(80), "ack first: {ack_first}");
        assert_eq!((server.refusals, server.closed_4008), (0, 0), "ack first: {ack_first}");
    }
}

#[test]
fn any_number_of_restarts_keeps_each_message_once_and_in_order() {
    let outages = [(500, 1_200), (2_300, 50), (2_600, 4_000), (7_000, 300), (7_500, 900)];
    for ack_first in [true, false] {
        let (stored, server) = run(ack_first, 100, &outages);
        assert_eq!(stored, numbered(100), "ack first: {ack_first}");
        assert_eq!((server.refusals, server.closed_4008), (0, 0), "ack first: {ack_first}");
    }
}

/// The socket opened: the client sends `auth`, and the scripted server
/// answers `ready` with the default limits. Returns how many frames the
/// client has sent by then.
pub(super) fn open_and_ready(h: &mut Harness) -> usize {
    h.core.opened(h.now);
    h.pump();
    let seen = h.sent.len();
    let auth = h.last("auth");
    h.server(json!({"type":"ready","ref":auth["ref"],"session_id":"s","heartbeat_ms":25000,
        "user":{"id":"alice","name":"alice","role":null,"avatar":null},"limits":limits()}));
    seen
}
