//! The wasm build's allocator under a long-running client: thousands of
//! dropped connections, each with sends queued while down, a recovering
//! rejoin, resends, acks and the room's messages. The heap must settle: once
//! warm, the WebAssembly memory stops growing (freed blocks are reused, not
//! leaked or fragmented into ever more pages). Runs in Node
//! (`wasm-bindgen-test-runner`), with the allocator the package ships.
#![cfg(target_arch = "wasm32")]

use roomcast_client::{Core, Effect, Options, TokenSource};
use serde_json::{Value, json};
use wasm_bindgen_test::*;

/// A core and the frames it sent since the last look.
struct Client {
    core: Core,
    now: u64,
    sent: Vec<Value>,
    opens: usize,
}

impl Client {
    fn pump(&mut self) {
        for effect in self.core.take_effects() {
            match effect {
                Effect::Open => self.opens += 1,
                Effect::Send(text) => self.sent.push(serde_json::from_str(&text).expect("json")),
                _ => {}
            }
        }
    }

    fn server(&mut self, frame: Value) {
        self.core.received(&frame.to_string(), self.now);
        self.pump();
    }

    fn take(&mut self, kind: &str) -> Vec<Value> {
        let (of_kind, rest) =
            std::mem::take(&mut self.sent).into_iter().partition(|f| f["type"] == kind);
        self.sent = rest;
        of_kind
    }

    /// Runs the clock until the core opens a socket, then authenticates.
    fn reconnect(&mut self) {
        let opens = self.opens;
        while self.opens == opens {
            let at = self.core.next_deadline().expect("a reconnect is scheduled");
            self.now = at.max(self.now);
            self.core.tick(self.now);
            self.pump();
        }
        self.core.opened(self.now);
        self.pump();
        let auth = self.take("auth").pop().expect("auth sent");
        self.server(json!({"type":"ready","ref":auth["ref"],"session_id":"s1",
            "user":{"id":"alice","name":"alice","role":null,"avatar":null},"heartbeat_ms":25000}));
    }
}

fn message(offset: u64, client_id: &Value, content: &Value) -> Value {
    json!({"type":"message","room":"general","id":format!("m{offset}"),"offset":offset,
        "client_id":client_id,"sender":{"id":"alice","name":"alice","role":null,"avatar":null},
        "content":content,"created_at":"2026-11-22T10:00:00Z"})
}

/// One dropped connection: `sends` messages queued while down, then the
/// rejoin recovers, the outbox resends, the server acks and echoes each.
fn cycle(c: &mut Client, epoch: &str, offset: &mut u64, sends: usize) {
    c.core.closed(1006, "", c.now);
    c.pump();
    for i in 0..sends {
        c.core.send("general", format!("message {i} of a long conversation"), c.now);
    }
    c.pump();
    c.reconnect();
    let join = c.take("join").pop().expect("rejoin sent");
    c.server(json!({"type":"joined","ref":join["ref"],"room":"general","epoch":epoch,
        "offset":*offset,"members":[],"messages":[],"recovered":true}));
    // The outbox paces its sends: ack what went out, let the clock run
    // until it sends more, until nothing waits.
    while c.core.pending_sends("general").next().is_some() {
        let sends = c.take("send");
        if sends.is_empty() {
            c.now = c.core.next_deadline().expect("a paced send is scheduled").max(c.now);
            c.core.tick(c.now);
            c.pump();
        }
        for send in sends {
            *offset += 1;
            c.server(json!({"type":"ack","ref":send["ref"],"id":format!("m{offset}"),
                "offset":*offset,"client_id":send["client_id"]}));
            c.server(message(*offset, &send["client_id"], &send["content"]));
        }
    }
    let _ = c.core.room_snapshot("general");
    c.sent.clear();
}

fn pages() -> usize {
    core::arch::wasm32::memory_size::<0>()
}

#[wasm_bindgen_test]
fn the_heap_settles_under_reconnects_and_the_outbox() {
    let core = Core::new(Options::default(), TokenSource::Fixed("t1".into()), 7);
    let mut c = Client { core, now: 1_000_000, sent: vec![], opens: 0 };
    c.core.connect(c.now);
    c.pump();
    c.reconnect();
    c.core.join("general").expect("join");
    c.pump();
    let join = c.take("join").pop().expect("join sent");
    c.server(json!({"type":"joined","ref":join["ref"],"room":"general","epoch":"e1",
        "offset":0,"members":[],"messages":[]}));
    let mut offset = 0;
    // Warm up: the room's history fills to its bound.
    for _ in 0..200 {
        cycle(&mut c, "e1", &mut offset, 20);
    }
    let warm = pages();
    for _ in 0..1000 {
        cycle(&mut c, "e1", &mut offset, 20);
    }
    let after = pages();
    console_log!(
        "wasm memory: {warm} pages warm, {after} after 1000 more reconnects ({offset} sent)"
    );
    assert!(after <= warm + 1, "memory grew from {warm} to {after} pages of 64 KiB");
}
