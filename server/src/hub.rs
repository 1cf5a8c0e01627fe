//! This instance's connections and the rooms each has joined: the last hop
//! of every fan-out, from an encoded frame to the connections' queues.
//!
//! Invariants:
//! - A frame is encoded once; every recipient gets a clone of the same bytes.
//! - Delivering never waits: a full queue marks its connection as a slow
//!   consumer (closed with 4009) instead of slowing the room down.
//! - A connection joining a room is *pending* until its `joined` reply is
//!   queued: frames delivered meanwhile are held back, and those the `joined`
//!   reply already replays (by offset) are dropped. So a client sees `joined`
//!   first, then every later event once, in order, whatever the engine.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use roomcast_shared::{CloseCode, Envelope, Ref, RoomName, ServerFrame};
use tungstenite::Utf8Bytes;

use crate::limits::Bucket;
use crate::moderation::{Control, SanctionKind, Sanctions};
use crate::telemetry::Metrics;

pub(crate) mod diffs;
pub(crate) mod queue;

use queue::{Kill, Pushed, Signal};

/// Identifies a connection on this instance.
pub(crate) type ConnId = u64;

/// Serializes a frame for the wire, once.
pub(crate) fn encode(frame: &ServerFrame) -> Utf8Bytes {
    to_text(frame)
}

/// Serializes a room event as its frame, without the copy that building
/// the [`ServerFrame`] would take: both are tagged by `type` with the same
/// names, so the text is the same.
pub(crate) fn encode_event(event: &roomcast_shared::RoomEvent) -> Utf8Bytes {
    to_text(event)
}

/// Serializes a direct reply, echoing the request's `ref`.
pub(crate) fn encode_reply(reference: Option<Ref>, frame: ServerFrame) -> Utf8Bytes {
    to_text(&Envelope::with_ref(reference, frame))
}

fn to_text(value: &impl serde::Serialize) -> Utf8Bytes {
    match serde_json::to_string(value) {
        Ok(text) => text.into(),
        // Our frames hold only strings, numbers and JSON values, which always
        // serialize; this arm exists so that a future mistake is an error
        // frame rather than a panic.
        Err(err) => {
            tracing::error!(%err, "a server frame failed to serialize");
            r#"{"type":"error","code":"internal","message":"frame encoding failed"}"#.into()
        }
    }
}

/// What a connection's writer task sends next.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Frame(Utf8Bytes),
    /// A ping, every heartbeat.
    Ping,
    /// The answer to a client's ping, with its payload.
    Pong(bytes::Bytes),
    /// A close frame; the writer stops after it.
    Close(CloseCode, &'static str),
}

impl Outbound {
    /// What this frame costs its connection's queue (`--send-queue-bytes`):
    /// its payload, shared or not, and its slot.
    pub fn weight(&self) -> usize {
        let payload = match self {
            Self::Frame(text) => text.len(),
            Self::Ping => 0,
            Self::Pong(payload) => payload.len(),
            Self::Close(_, reason) => reason.len(),
        };
        payload + std::mem::size_of::<Self>()
    }
}

/// A frame on its way to a room, with its stream offset when it has one.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The room stream offset (messages, edits, deletes), used to drop what a
    /// pending joiner's `joined` reply already replays.
    pub offset: Option<u64>,
    /// The encoded frame.
    pub text: Utf8Bytes,
}

/// Who in the room does not get a frame.
#[derive(Debug, Clone, Default)]
pub(crate) enum Exclude {
    /// Everyone gets it.
    #[default]
    Nobody,
    /// Not this connection (a joiner does not hear of its own arrival).
    Conn(ConnId),
    /// None of this user's connections (a typer does not see itself typing).
    User(Arc<str>),
}

/// The sending side of one connection, shared by every room it is in.
///
/// The writer task ends when every `Conn` handle is gone (its queue ends)
/// or when the connection is killed.
#[derive(Debug)]
pub(crate) struct Conn {
    pub id: ConnId,
    /// Set once the connection authenticates.
    user_id: OnceLock<Arc<str>>,
    queue: queue::Sender,
}

impl Conn {
    /// The authenticated user's id ("" before authentication).
    pub fn user_id(&self) -> &str {
        self.user_id.get().map_or("", |id| id)
    }

    /// Queues a frame; on overflow, closes the connection as a slow consumer.
    /// Returns whether the frame was queued.
    pub fn push(&self, outbound: Outbound, metrics: &Metrics) -> bool {
        let queued = self.enqueue(outbound, metrics);
        if queued {
            metrics.frames_sent.inc();
        }
        queued
    }

    /// [`Conn::push`] without counting the frame in `frames_sent`: for pings
    /// and pongs, and for a fan-out, which counts its deliveries once rather
    /// than one shared counter update each.
    pub fn enqueue(&self, outbound: Outbound, metrics: &Metrics) -> bool {
        match self.queue.push(outbound) {
            Pushed::Queued => true,
            Pushed::Full => {
                if self.queue.kill((CloseCode::SLOW_CONSUMER, "send queue overflowed")) {
                    metrics.slow_consumers.inc();
                    tracing::warn!(conn = self.id, user = self.user_id(), "slow consumer, closing");
                }
                false
            }
            // The writer is gone or the connection was killed: it is closing.
            Pushed::Closed => false,
        }
    }

    /// Resolves when the connection must close at once, or when the hub
    /// has something for its session (for its reader).
    pub async fn signalled(&self) -> Signal {
        self.queue.signalled().await
    }

    /// Closes the connection at once with `kill`'s close frame; returns
    /// whether this call closed it.
    pub fn kill(&self, kill: Kill) -> bool {
        self.queue.kill(kill)
    }
}

/// One connection's membership in one room.
#[derive(Debug)]
struct Membership {
    conn: Arc<Conn>,
    /// `Some` while the `joined` reply is being prepared: frames wait here.
    held: Mutex<Option<Vec<Delivery>>>,
    /// Whether the join asked for every member's changes even in a big
    /// room (`member_events`), rather than its occupancy.
    member_events: bool,
}

impl Membership {
    /// Queues or holds the frame; returns whether it was queued now (the
    /// caller counts those in `frames_sent`).
    fn deliver(&self, delivery: &Delivery, metrics: &Metrics) -> bool {
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = held.as_mut() {
                held.push(delivery.clone());
                return false;
            }
        }
        self.conn.enqueue(Outbound::Frame(delivery.text.clone()), metrics)
    }
}

/// This instance's connections and rooms.
#[derive(Debug)]
pub(crate) struct Hub {
    rooms: DashMap<RoomName, HashMap<ConnId, Arc<Membership>>>,
    conns: DashMap<ConnId, Arc<Conn>>,
    /// Connections per user, for `/health` and the per-user limit.
    users: DashMap<Arc<str>, usize>,
    /// Open connections (authenticated or not) per remote IP address.
    ips: DashMap<std::net::IpAddr, usize>,
    /// Each connected user's message budget over all their connections;
    /// dropped with the user's last connection.
    user_rates: DashMap<Arc<str>, Bucket>,
    next_id: AtomicU64,
    /// Frames each connection's queue holds at most (`--send-queue`).
    queue_len: usize,
    /// Bytes each connection's queue holds at most (`--send-queue-bytes`).
    queue_bytes: usize,
    metrics: Arc<Metrics>,
    /// Membership and presence changes per room since the last flush
    /// (`diffs.rs`).
    changes: DashMap<RoomName, diffs::RoomChanges>,
    /// The bans and mutes in force (`moderation.rs`).
    pub sanctions: Sanctions,
    /// Rooms the server took a connection out of (`Hub::control`), until
    /// its session takes them ([`Hub::take_evictions`]).
    evictions: DashMap<ConnId, Vec<RoomName>>,
}

impl Hub {
    pub fn new(queue_len: usize, queue_bytes: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            rooms: DashMap::new(),
            conns: DashMap::new(),
            users: DashMap::new(),
            user_rates: DashMap::new(),
            ips: DashMap::new(),
            next_id: AtomicU64::new(1),
            queue_len,
            queue_bytes,
            metrics,
            changes: DashMap::new(),
            sanctions: Sanctions::default(),
            evictions: DashMap::new(),
        }
    }

    /// A new connection: its handle and the queue its writer drains (which
    /// also tells the writer when the connection is killed).
    pub fn open(&self) -> (Arc<Conn>, queue::Receiver) {
        let (queue, rx) = queue::queue(self.queue_len, self.queue_bytes);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (Arc::new(Conn { id, user_id: OnceLock::new(), queue }), rx)
    }

    /// Registers an authenticated connection, already a member of its
    /// user's personal room (where notifications arrive), its frames held
    /// until [`Hub::finish_join`]. Returns whether the personal room had no
    /// local member before.
    pub fn register(&self, conn: &Arc<Conn>, user_id: &str, personal: &RoomName) -> bool {
        let user_id: Arc<str> = user_id.into();
        let _ = conn.user_id.set(user_id.clone());
        self.conns.insert(conn.id, conn.clone());
        *self.users.entry(user_id).or_default() += 1;
        let membership = Arc::new(Membership {
            conn: conn.clone(),
            held: Mutex::new(Some(Vec::new())),
            member_events: false,
        });
        let mut members = self.rooms.entry(personal.clone()).or_default();
        let first = members.is_empty();
        members.insert(conn.id, membership);
        first
    }

    /// Removes a connection from every room it is in; returns the rooms that
    /// have no local member left.
    pub fn unregister<'a>(
        &self,
        conn: &Conn,
        rooms: impl IntoIterator<Item = &'a RoomName>,
    ) -> Vec<RoomName> {
        let emptied = rooms.into_iter().filter(|room| self.leave(room, conn.id)).cloned().collect();
        self.evictions.remove(&conn.id);
        if self.conns.remove(&conn.id).is_none() {
            return emptied;
        }
        if let dashmap::Entry::Occupied(mut entry) = self.users.entry(conn.user_id().into()) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                self.user_rates.remove(entry.key());
                entry.remove();
            }
        }
        emptied
    }

    /// Starts (or restarts) a join: from now on the room's frames for this
    /// connection are held until [`Hub::finish_join`]. `member_events`: it
    /// gets every member's changes even in a big room. Returns whether the
    /// room had no local member before (the engine should watch it).
    pub fn begin_join(&self, room: &RoomName, conn: &Arc<Conn>, member_events: bool) -> bool {
        let membership = Arc::new(Membership {
            conn: conn.clone(),
            held: Mutex::new(Some(Vec::new())),
            member_events,
        });
        let mut members = self.rooms.entry(room.clone()).or_default();
        let first = members.is_empty();
        members.insert(conn.id, membership);
        first
    }

    /// Queues `first` (the `joined` reply), then the frames held since
    /// [`Hub::begin_join`] that it does not already contain (offsets up to
    /// `replayed_to`), and lets frames flow directly again. With nothing
    /// first (the join failed), every held frame is released.
    pub fn finish_join(
        &self,
        room: &RoomName,
        conn: &Conn,
        first: impl IntoIterator<Item = Utf8Bytes>,
        replayed_to: u64,
    ) {
        let Some(members) = self.rooms.get(room) else { return };
        let Some(membership) = members.get(&conn.id) else { return };
        let mut held = membership.held.lock().unwrap_or_else(|e| e.into_inner());
        for frame in first {
            conn.push(Outbound::Frame(frame), &self.metrics);
        }
        for delivery in held.take().unwrap_or_default() {
            if delivery.offset.is_none_or(|offset| offset > replayed_to) {
                conn.push(Outbound::Frame(delivery.text), &self.metrics);
            }
        }
    }

    /// Removes a connection from a room; returns whether that left the room
    /// without local members (the engine may stop watching it).
    pub fn leave(&self, room: &RoomName, conn: ConnId) -> bool {
        if let dashmap::Entry::Occupied(mut entry) = self.rooms.entry(room.clone())
            && entry.get_mut().remove(&conn).is_some()
            && entry.get().is_empty()
        {
            entry.remove();
            return true;
        }
        false
    }

    /// Takes one message from the user's budget (see `Limits::user_messages`).
    pub fn charge_user(
        &self,
        user_id: &str,
        rate: crate::limits::Rate,
    ) -> Result<(), std::time::Duration> {
        match self.user_rates.get_mut(user_id) {
            Some(mut bucket) => bucket.take(rate),
            None => {
                let mut bucket = Bucket::new(rate);
                let taken = bucket.take(rate);
                self.user_rates.insert(user_id.into(), bucket);
                taken
            }
        }
    }

    /// Counts a connection from `ip` in, unless `limit` are open already
    /// (which addresses are limited at all is `client_ip`'s to say). Undo
    /// with [`Hub::ip_closed`].
    pub fn ip_opened(&self, ip: std::net::IpAddr, limit: usize) -> bool {
        let mut open = self.ips.entry(ip).or_default();
        if *open >= limit {
            return false;
        }
        *open += 1;
        true
    }

    /// Counts a connection from `ip` out.
    pub fn ip_closed(&self, ip: std::net::IpAddr) {
        if let dashmap::Entry::Occupied(mut open) = self.ips.entry(ip) {
            *open.get_mut() -= 1;
            if *open.get() == 0 {
                open.remove();
            }
        }
    }

    /// How many connections `user_id` has open on this instance.
    pub fn connections_of(&self, user_id: &str) -> usize {
        self.users.get(user_id).map_or(0, |n| *n)
    }

    /// Whether any local connection is in `room`.
    pub fn has_members(&self, room: &RoomName) -> bool {
        self.rooms.contains_key(room)
    }

    /// Delivers a frame to this instance's members of `room`.
    pub fn deliver(&self, room: &RoomName, delivery: &Delivery, exclude: &Exclude) {
        let Some(members) = self.rooms.get(room) else { return };
        let mut queued = 0;
        for membership in members.values() {
            if !excluded(&membership.conn, exclude) && membership.deliver(delivery, &self.metrics) {
                queued += 1;
            }
        }
        self.metrics.frames_sent.inc_by(queued);
    }

    /// Delivers a frame once to each connection in any of `rooms`.
    pub fn deliver_many(&self, rooms: &[RoomName], delivery: &Delivery, exclude: &Exclude) {
        if let [room] = rooms {
            return self.deliver(room, delivery, exclude);
        }
        let mut seen = HashSet::new();
        let mut queued = 0;
        for room in rooms {
            let Some(members) = self.rooms.get(room) else { continue };
            for membership in members.values() {
                if !excluded(&membership.conn, exclude)
                    && seen.insert(membership.conn.id)
                    && membership.deliver(delivery, &self.metrics)
                {
                    queued += 1;
                }
            }
        }
        self.metrics.frames_sent.inc_by(queued);
    }

    /// Applies a control call to this instance's connections (every
    /// instance applies each one; see `moderation.rs`). Returns how many
    /// connections it touched here.
    pub fn control(&self, control: &Control) -> usize {
        match control {
            Control::Disconnect { user_id } => {
                let Ok(personal) = RoomName::personal(user_id) else { return 0 };
                let kill = (CloseCode::DISCONNECTED, "disconnected by the server");
                self.conns_of(&personal, user_id).iter().filter(|conn| conn.kill(kill)).count()
            }
            Control::Remove { room, user_id } => self.evict(room, user_id),
            Control::Sanction { sanction, on } => {
                self.sanctions.set(sanction, *on);
                if *on && sanction.kind == SanctionKind::Ban {
                    return self.evict(&sanction.room, &sanction.user_id);
                }
                0
            }
        }
    }

    /// `user_id`'s connections among `room`'s local members.
    fn conns_of(&self, room: &RoomName, user_id: &str) -> Vec<Arc<Conn>> {
        let Some(members) = self.rooms.get(room) else { return Vec::new() };
        members
            .values()
            .filter(|membership| membership.conn.user_id() == user_id)
            .map(|membership| membership.conn.clone())
            .collect()
    }

    /// Tells each of `user_id`'s sessions in `room` to leave it: the session
    /// owns its rooms, so it leaves as if the client had asked.
    fn evict(&self, room: &RoomName, user_id: &str) -> usize {
        let conns = self.conns_of(room, user_id);
        for conn in &conns {
            self.evictions.entry(conn.id).or_default().push(room.clone());
            conn.queue.nudge();
        }
        conns.len()
    }

    /// The rooms the server took `conn` out of since the last call.
    pub fn take_evictions(&self, conn: ConnId) -> Vec<RoomName> {
        self.evictions.remove(&conn).map(|(_, rooms)| rooms).unwrap_or_default()
    }

    /// Open connections, distinct users and rooms with members, on this instance.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.conns.len(), self.users.len(), self.rooms.len())
    }
}

fn excluded(conn: &Conn, exclude: &Exclude) -> bool {
    match exclude {
        Exclude::Nobody => false,
        Exclude::Conn(id) => conn.id == *id,
        Exclude::User(user) => conn.user_id() == &**user,
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn an_event_encodes_as_its_frame() {
        use roomcast_shared::{ChatMessage, MessageDeleted, RoomEvent, RoomName};
        let room = RoomName::new("general").unwrap();
        let message: ChatMessage = serde_json::from_value(serde_json::json!({
            "room": "general", "id": "m1", "offset": 7, "client_id": "c1",
            "sender": {"id": "alice", "name": "Alice"}, "content": "hé \"quoted\"",
            "created_at": "2026-11-22T10:15:20Z", "data": {"k": [1, 2]}
        }))
        .unwrap();
        let deleted = MessageDeleted { room, id: "m1".into(), offset: 8 };
        for event in [RoomEvent::Message(message), RoomEvent::MessageDeleted(deleted)] {
            assert_eq!(encode_event(&event), encode(&ServerFrame::from(event.clone())));
        }
    }

    #[test]
    fn connections_per_ip_are_counted() {
        let hub = Hub::new(8, usize::MAX, Arc::new(Metrics::default()));
        let remote: IpAddr = "203.0.113.7".parse().unwrap();
        assert!(hub.ip_opened(remote, 2));
        assert!(hub.ip_opened(remote, 2));
        assert!(!hub.ip_opened(remote, 2), "a third connection is over the limit");
        hub.ip_closed(remote);
        assert!(hub.ip_opened(remote, 2), "a closed one frees its slot");
    }
}
