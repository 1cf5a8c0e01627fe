//! The least of the server's internals that the criterion benchmarks in
//! `benches/` need: the frame encoder, and a hub with many connections in
//! one room, so the fan-out path can be timed without a network. Not API:
//! hidden from the docs and free to change with the hub.

use std::sync::Arc;

use roomcast_shared::{RoomName, ServerFrame};
use tungstenite::Utf8Bytes;

use crate::hub::queue::{Next, Receiver};
use crate::hub::{Conn, Delivery, Exclude, Hub};
use crate::telemetry::Metrics;

/// A frame encoded for the wire, as the hub queues it.
#[derive(Debug, Clone)]
pub struct Encoded(Utf8Bytes);

impl Encoded {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty (never, for a real frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Encodes a frame the way the server does before fan-out.
pub fn encode(frame: &ServerFrame) -> Encoded {
    Encoded(crate::hub::encode(frame))
}

/// A hub whose connections have all joined one room, with each
/// connection's queue standing in for its writer task.
#[derive(Debug)]
pub struct FanoutRoom {
    hub: Hub,
    room: RoomName,
    /// Kept so the connections stay registered and their queues open.
    _conns: Vec<Arc<Conn>>,
    queues: Vec<Receiver>,
    next_offset: u64,
}

impl FanoutRoom {
    /// `members` connections (of distinct users) in room `bench`, each
    /// with a queue of `queue_len` frames.
    pub fn new(members: usize, queue_len: usize) -> Self {
        let hub = Hub::new(queue_len, usize::MAX, Arc::new(Metrics::default()));
        let room = RoomName::new("bench").expect("a valid room name");
        let mut conns = Vec::with_capacity(members);
        let mut queues = Vec::with_capacity(members);
        for i in 0..members {
            let (conn, queue) = hub.open();
            let user = format!("u{i}");
            let personal = RoomName::personal(&user).expect("a valid user id");
            hub.register(&conn, &user, &personal);
            hub.finish_join(&personal, &conn, None, 0);
            hub.begin_join(&room, &conn, false);
            hub.finish_join(&room, &conn, None, 0);
            conns.push(conn);
            queues.push(queue);
        }
        Self { hub, room, _conns: conns, queues, next_offset: 1 }
    }

    /// Delivers one frame to every member, as the engine does for a message.
    pub fn deliver(&mut self, frame: &Encoded) {
        let delivery = Delivery { offset: Some(self.next_offset), text: frame.0.clone() };
        self.next_offset += 1;
        self.hub.deliver(&self.room, &delivery, &Exclude::Nobody);
    }

    /// Empties every queue, as the writers would; returns the frames taken.
    pub fn drain(&mut self) -> usize {
        let mut taken = 0;
        for queue in &mut self.queues {
            while let Some(Next::Frames(frames)) = queue.try_next(usize::MAX) {
                taken += frames.len();
            }
        }
        taken
    }
}
