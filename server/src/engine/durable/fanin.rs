//! The fan-in of room events from every instance (Redis with a store):
//! the Redis subscriber hands each room event here without waiting, and one
//! task puts each room's events in offset order through
//! [`Recent::receive`](super::recent::Recent::receive), reading from the
//! store what two instances' crossing publishes skipped.
//!
//! The queue is bounded. When it is full an event is not queued and its
//! room is marked behind: the task then reads what the room's window lacks
//! from the store (every published event was committed first), so nothing
//! is lost, only delivered later. A room is marked behind too when its
//! subscription is confirmed again: after Redis was away, events published
//! meanwhile (Redis keeps none for an absent subscriber), or committed
//! while the publish failed, arrive without waiting for the room's next.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use roomcast_shared::{RoomEvent, RoomName};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tungstenite::Utf8Bytes;

use super::recent::Recent;
use crate::engine::RoomEventSink;
use crate::hub::Hub;

/// Room events waiting for the fan-in task.
const QUEUE: usize = 16 * 1024;

/// One room event as it arrived: its frame's text.
#[derive(Debug)]
struct Arrived {
    room: RoomName,
    text: Utf8Bytes,
}

/// The fan-in's entrance, handed to the engine before the task starts.
#[derive(Debug)]
pub(in crate::engine) struct FanIn {
    queue: mpsc::Sender<Arrived>,
    /// Rooms with an event that found the queue full.
    behind: Mutex<HashSet<RoomName>>,
    /// Wakes the task when a room falls behind.
    nudge: tokio::sync::Notify,
}

/// The fan-in's exit, taken by the task.
#[derive(Debug)]
pub(in crate::engine) struct Arrivals(mpsc::Receiver<Arrived>);

impl FanIn {
    pub fn new() -> (Arc<Self>, Arrivals) {
        let (queue, arrivals) = mpsc::channel(QUEUE);
        let fanin = Self { queue, behind: Mutex::default(), nudge: tokio::sync::Notify::new() };
        (Arc::new(fanin), Arrivals(arrivals))
    }

    fn take_behind(&self) -> Vec<RoomName> {
        let mut behind = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        behind.drain().collect()
    }

    /// Puts arriving events in order until every entrance is dropped.
    pub(super) fn start(
        self: Arc<Self>,
        mut arrivals: Arrivals,
        recent: Arc<Recent>,
        hub: Arc<Hub>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let arrived = tokio::select! {
                    arrived = arrivals.0.recv() => arrived,
                    () = self.nudge.notified() => {
                        for room in self.take_behind() {
                            recent.catch_up(&room, &hub).await;
                        }
                        continue;
                    }
                };
                let Some(Arrived { room, text }) = arrived else { return };
                match serde_json::from_str::<RoomEvent>(text.as_str()) {
                    Ok(event) if *event.room() == room => recent.receive(&event, text, &hub).await,
                    _ => tracing::warn!(%room, "unreadable room event from Redis"),
                }
            }
        })
    }
}

impl RoomEventSink for FanIn {
    fn offer(&self, room: RoomName, text: Utf8Bytes) {
        if let Err(err) = self.queue.try_send(Arrived { room, text }) {
            let room = match err {
                mpsc::error::TrySendError::Full(arrived) => arrived.room,
                // Shutting down: nobody is left to deliver to.
                mpsc::error::TrySendError::Closed(_) => return,
            };
            tracing::warn!(%room, "fan-in queue full; the room catches up from the store");
            self.missed(room);
        }
    }

    fn missed(&self, room: RoomName) {
        self.behind.lock().unwrap_or_else(|p| p.into_inner()).insert(room);
        self.nudge.notify_one();
    }
}
