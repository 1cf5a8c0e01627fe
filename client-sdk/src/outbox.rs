//! The outbox: sends, edits and deletes waiting for their ack, in order.
//!
//! An entry stays until the server acknowledges it (or refuses it for a
//! reason retrying cannot fix). A room has at most one entry in flight: the
//! next goes out when the previous one was answered, so a refusal for rate
//! or a lost connection can never let a later message overtake an earlier
//! one. While disconnected, entries wait; after a reconnect and the room's
//! `joined`, they go out again with the same `client_id`, and the server's
//! idempotency turns at-least-once delivery into exactly-once display. The outbox is bounded so that a long outage cannot grow memory
//! without limit.

use roomcast_shared::ClientFrame;

/// A request that waits for its ack.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The operation id the caller's promise waits on.
    pub op: u64,
    /// The room it belongs to (sends wait for that room's `joined`).
    pub room: String,
    /// The frame to (re)send: `send`, `edit` or `delete`.
    pub frame: ClientFrame,
    /// The `ref` of its transmission on the current connection, if sent.
    pub wire_ref: Option<u64>,
    /// How many times it was transmitted.
    pub attempts: u32,
    /// When a refused transmission (rate limited) may be tried again; the
    /// entry is not sent before.
    pub retry_at: Option<u64>,
}

impl Entry {
    /// The idempotency key, for sends.
    pub fn client_id(&self) -> Option<&str> {
        match &self.frame {
            ClientFrame::Send { client_id, .. } => Some(client_id),
            _ => None,
        }
    }
}

/// The outbox is full: the caller's send fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Pending requests, oldest first. A vector, not a deque: entries leave
/// from anywhere (by `ref`, `client_id` or room), never only from the
/// front, and the deque's code cost the wasm 1.9 KB gzip.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    entries: Vec<Entry>,
    limit: usize,
}

impl Outbox {
    /// An empty outbox holding at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Self { entries: Vec::new(), limit }
    }

    /// Queues a request (not yet sent).
    pub fn push(&mut self, op: u64, room: &str, frame: ClientFrame) -> Result<(), Full> {
        if self.entries.len() >= self.limit {
            return Err(Full);
        }
        let entry =
            Entry { op, room: room.to_owned(), frame, wire_ref: None, attempts: 0, retry_at: None };
        self.entries.push(entry);
        Ok(())
    }

    /// Whether the oldest entry of `room` may go out at `now`: the entries
    /// of a room go out one at a time, each after the previous one was
    /// answered, so that the server stores them in the order they were
    /// made whatever it refuses for now and whatever the connection loses.
    pub fn ready_to_send(&self, room: &str, now: u64) -> bool {
        self.entries
            .iter()
            .find(|e| e.room == room)
            .is_some_and(|e| e.wire_ref.is_none() && e.retry_at.is_none_or(|at| now >= at))
    }

    /// Marks the oldest entry of `room` as sent with `wire_ref` and returns
    /// its frame (call after [`ready_to_send`](Self::ready_to_send)).
    pub fn mark_sent(&mut self, room: &str, wire_ref: u64) -> Option<&ClientFrame> {
        let e = self.entries.iter_mut().find(|e| e.room == room)?;
        e.wire_ref = Some(wire_ref);
        e.retry_at = None;
        e.attempts += 1;
        Some(&e.frame)
    }

    /// The connection dropped: every entry in flight is unsent again, and a
    /// new connection starts with a fresh rate budget.
    pub fn disconnected(&mut self) {
        for e in &mut self.entries {
            e.wire_ref = None;
            e.retry_at = None;
        }
    }

    /// How often the entry sent with `wire_ref` was transmitted.
    pub fn attempts(&self, wire_ref: u64) -> Option<u32> {
        self.entries.iter().find(|e| e.wire_ref == Some(wire_ref)).map(|e| e.attempts)
    }

    /// The server refused the entry sent with `wire_ref` for now: it is sent
    /// again once [`due`](Self::due) at `at`.
    pub fn retry_later(&mut self, wire_ref: u64, at: u64) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.wire_ref == Some(wire_ref)) {
            e.wire_ref = None;
            e.retry_at = Some(at);
        }
    }

    /// When the next refused entry may be retried.
    pub fn next_retry(&self) -> Option<u64> {
        self.entries.iter().filter_map(|e| e.retry_at).min()
    }

    /// Makes the entries whose retry time came sendable again; returns their
    /// rooms, to flush.
    pub fn due(&mut self, now: u64) -> Vec<String> {
        let mut rooms: Vec<String> = Vec::new();
        for e in self.entries.iter_mut().filter(|e| e.retry_at.is_some_and(|at| now >= at)) {
            e.retry_at = None;
            if !rooms.contains(&e.room) {
                rooms.push(e.room.clone());
            }
        }
        rooms
    }

    /// Removes and returns the entry sent with `wire_ref` (its ack or error
    /// arrived).
    pub fn remove_by_ref(&mut self, wire_ref: u64) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.wire_ref == Some(wire_ref))?;
        Some(self.entries.remove(at))
    }

    /// Removes and returns the send with this `client_id` (its `message`
    /// arrived, before its ack or replayed by recovery).
    pub fn remove_by_client_id(&mut self, client_id: &str) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.client_id() == Some(client_id))?;
        Some(self.entries.remove(at))
    }

    /// Removes and returns every entry of `room` (the room was left).
    pub fn remove_room(&mut self, room: &str) -> Vec<Entry> {
        let (gone, kept) =
            std::mem::take(&mut self.entries).into_iter().partition(|e| e.room == room);
        self.entries = kept;
        gone
    }

    /// Removes and returns everything (the client was closed).
    pub fn drain(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.entries)
    }

    /// Entries of `room`, oldest first (for the room's pending messages).
    pub fn of_room<'a>(&'a self, room: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.room == room)
    }

    /// How many entries wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_shared::RoomName;

    fn send(room: &str, client_id: &str) -> ClientFrame {
        ClientFrame::Send {
            room: RoomName::new(room).unwrap(),
            content: format!("hello {client_id}"),
            client_id: client_id.into(),
            data: None,
        }
    }

    #[test]
    fn is_bounded() {
        let mut o = Outbox::new(2);
        assert_eq!(o.push(1, "a", send("a", "c1")), Ok(()));
        assert_eq!(o.push(2, "a", send("a", "c2")), Ok(()));
        assert_eq!(o.push(3, "a", send("a", "c3")), Err(Full));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn a_room_has_one_entry_in_flight_and_resends_in_order_with_the_same_client_id() {
        let mut o = Outbox::new(10);
        o.push(1, "a", send("a", "c1")).unwrap();
        o.push(2, "b", send("b", "c2")).unwrap();
        o.push(3, "a", send("a", "c3")).unwrap();
        assert_eq!(o.mark_sent("a", 1), Some(&send("a", "c1")));
        assert!(!o.ready_to_send("a", 0), "the next waits for the first's answer");
        assert!(o.ready_to_send("b", 0), "rooms do not wait for each other");
        // The ack of the first arrives: the next goes out, then the
        // connection drops before its ack.
        assert_eq!(o.remove_by_ref(1).map(|e| e.op), Some(1));
        assert_eq!(o.mark_sent("a", 2), Some(&send("a", "c3")));
        o.disconnected();
        assert!(o.ready_to_send("a", 0));
        assert_eq!(o.mark_sent("a", 7), Some(&send("a", "c3")), "same frame, same client_id");
        assert_eq!(o.of_room("a").next().unwrap().attempts, 2);
    }

    #[test]
    fn a_message_echo_settles_a_send_before_its_ack() {
        let mut o = Outbox::new(10);
        o.push(1, "a", send("a", "c1")).unwrap();
        assert_eq!(o.remove_by_client_id("c1").map(|e| e.op), Some(1));
        assert!(o.remove_by_client_id("c1").is_none());
        assert!(o.is_empty());
    }

    #[test]
    fn a_refused_entry_waits_for_its_retry_time() {
        let mut o = Outbox::new(10);
        o.push(1, "a", send("a", "c1")).unwrap();
        o.push(2, "a", send("a", "c2")).unwrap();
        assert_eq!(o.mark_sent("a", 1), Some(&send("a", "c1")));
        assert_eq!(o.attempts(1), Some(1));
        o.retry_later(1, 500);
        assert!(!o.ready_to_send("a", 499), "not before its time, nor the one after it");
        assert_eq!(o.next_retry(), Some(500));
        assert!(o.due(499).is_empty());
        assert_eq!(o.due(500), ["a"]);
        assert!(o.ready_to_send("a", 500));
        assert_eq!(o.mark_sent("a", 3), Some(&send("a", "c1")), "the refused one first");
        assert_eq!(o.of_room("a").next().unwrap().attempts, 2);
    }

    #[test]
    fn leaving_a_room_removes_its_entries_only() {
        let mut o = Outbox::new(10);
        o.push(1, "a", send("a", "c1")).unwrap();
        o.push(2, "b", send("b", "c2")).unwrap();
        assert_eq!(o.remove_room("a").len(), 1);
        assert_eq!(o.len(), 1);
        assert_eq!(o.drain().len(), 1);
    }
}
