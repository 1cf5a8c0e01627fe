//! What the client does with each frame the server sends.

use roomcast_shared::frame::{Ack, Joined};
use roomcast_shared::{ChatMessage, ReadReceipt, RoomEvent, ServerFrame};

use super::{Core, Phase, Request};
use crate::decode::{Decoded, decode};
use crate::effect::{ClientError, Event};
use crate::payload::{
    HistoryPage, MemberChange, Occupancy, Read, RoomError, RoomOnly, Typing, to_json,
};
use crate::room::{EventOutcome, JoinOutcome};

/// Wait before retrying a refused send when the server names no delay.
const RETRY_DELAY_MS: u64 = 1_000;
/// Transmissions of one send before a refusal (other than for rate) is final.
const MAX_SEND_ATTEMPTS: u32 = 5;

impl Core {
    /// A text frame arrived.
    pub fn received(&mut self, text: &str, now: u64) {
        self.clock = self.clock.max(now);
        // Any frame shows the connection is alive.
        if let Some(conn) = self.conn.as_mut() {
            conn.pong_by = None;
        }
        let Some(Decoded { reference: wire, frame }) = decode(text) else {
            // A frame type this client does not know yet (the protocol may
            // grow): the application may still want it.
            self.emit(Event::Frame(text.to_owned()));
            return;
        };
        let request = wire.and_then(|r| self.requests.remove(&r));
        if request == Some(Request::Ping) {
            return;
        }
        self.emit(Event::Frame(text.to_owned()));
        match frame {
            ServerFrame::Ready { session_id, user, heartbeat_ms, limits } => {
                let authenticating =
                    self.conn.as_ref().is_some_and(|c| c.phase == Phase::Authenticating);
                if authenticating {
                    self.authenticated(session_id, user, heartbeat_ms, limits, now);
                }
            }
            ServerFrame::Joined(joined) => self.joined(joined, now),
            ServerFrame::Message(m) => self.stream_event(RoomEvent::Message(m), now),
            ServerFrame::MessageUpdated(u) => self.stream_event(RoomEvent::MessageUpdated(u), now),
            ServerFrame::MessageDeleted(d) => self.stream_event(RoomEvent::MessageDeleted(d), now),
            ServerFrame::Ack(ack) => {
                if request == Some(Request::Entry) {
                    self.acked(wire, ack, now);
                }
            }
            ServerFrame::Error(error) => {
                let error = ClientError::server(error);
                self.failed(request, wire, error, now);
            }
            ServerFrame::History { room, messages, has_more } => {
                if let Some(Request::History { op, .. }) = request {
                    let page = HistoryPage { room: room.as_str(), messages: &messages, has_more };
                    let reply = to_json(&page);
                    // Older messages the app asked for are kept even beyond
                    // `max_messages` (trimming would drop exactly them).
                    if let Some(r) = self.rooms.get_mut(room.as_str()) {
                        r.state.prepend_history(messages);
                        self.emit(Event::RoomChanged(room.to_string()));
                    }
                    self.settle(op, Ok(reply));
                }
            }
            ServerFrame::Typing { room, user, is_typing } => {
                if let Some(r) = self.rooms.get_mut(room.as_str()) {
                    let payload = to_json(&Typing { room: room.as_str(), user: &user, is_typing });
                    r.state.set_typing(user, is_typing);
                    self.room_event(room.as_str(), "typing", payload);
                    self.emit(Event::RoomChanged(room.to_string()));
                }
            }
            ServerFrame::Read { room, user_id, id, read_at } => {
                let payload = Read { room: room.as_str(), user_id: &user_id, id: &id, read_at };
                self.room_event(room.as_str(), "read", to_json(&payload));
                if let Some(r) = self.rooms.get_mut(room.as_str())
                    && r.state.read(ReadReceipt { user_id, id, read_at })
                {
                    self.emit(Event::RoomChanged(room.to_string()));
                }
            }
            ServerFrame::PresenceDiff(diff) => {
                let name = diff.room.to_string();
                let Some(r) = self.rooms.get_mut(&name) else { return };
                let changed = r.state.apply_diff(&diff);
                // The room's listeners hear each arrival and departure, as
                // they did when each came in a frame of its own.
                for member in &diff.joins {
                    let payload = to_json(&MemberChange { room: &name, user: &member.user });
                    self.room_event(&name, "member_joined", payload);
                }
                for user in &diff.leaves {
                    let payload = to_json(&MemberChange { room: &name, user });
                    self.room_event(&name, "member_left", payload);
                }
                let payload = to_json(&diff);
                self.room_event(&name, "presence_diff", payload);
                if changed {
                    self.emit(Event::RoomChanged(name));
                }
                for presence in diff.updates {
                    self.emit(Event::Presence(presence));
                }
            }
            ServerFrame::Occupancy { room, count } => {
                let name = room.to_string();
                let Some(r) = self.rooms.get_mut(&name) else { return };
                r.state.occupancy(count);
                self.room_event(&name, "occupancy", to_json(&Occupancy { room: &name, count }));
                self.emit(Event::RoomChanged(name));
            }
            ServerFrame::Members(page) => {
                if let Some(Request::Members { op }) = request {
                    let reply = to_json(&page);
                    let name = page.room.to_string();
                    if let Some(r) = self.rooms.get_mut(&name) {
                        r.state.add_members(page);
                        self.emit(Event::RoomChanged(name));
                    }
                    self.settle(op, Ok(reply));
                }
            }
            ServerFrame::Notification(n) => self.emit(Event::Notification(n)),
            ServerFrame::Event(event) => {
                let room = event.room.to_string();
                let payload = to_json(&event);
                self.room_event(&room, "event", payload);
            }
            ServerFrame::Left { .. } | ServerFrame::Pong { .. } => {}
        }
    }

    /// A `joined` reply: recover or reset, then send what waited for it.
    fn joined(&mut self, joined: Joined, now: u64) {
        let name = joined.room.to_string();
        let max = self.opts.max_messages;
        let Some(room) = self.rooms.get_mut(&name) else { return };
        self.join_pace.accepted(now);
        let outcome = room.state.apply_joined(joined, max);
        match outcome {
            JoinOutcome::Loaded => {}
            JoinOutcome::Recovered(events) => {
                for event in events {
                    self.announce(&name, event);
                }
            }
            JoinOutcome::Reset => {
                let payload = to_json(&RoomOnly { room: &name });
                self.room_event(&name, "reset", payload);
            }
        }
        // Sends that reached the server before the connection dropped are in
        // the recovered or reloaded messages: settle them instead of resending.
        let mine: Vec<ChatMessage> = match (self.user(), self.rooms.get(&name)) {
            (Some(me), Some(room)) => {
                room.state.messages.iter().filter(|m| m.sender.id == me.id).cloned().collect()
            }
            _ => Vec::new(),
        };
        for m in mine {
            self.echoed(&m, now);
        }
        let payload = to_json(&RoomOnly { room: &name });
        self.room_event(&name, "joined", payload);
        self.emit(Event::RoomChanged(name.clone()));
        self.flush(&name, now);
    }

    /// A `message`, `message_updated` or `message_deleted` frame.
    fn stream_event(&mut self, event: RoomEvent, now: u64) {
        let name = match &event {
            RoomEvent::Message(m) => m.room.to_string(),
            RoomEvent::MessageUpdated(u) => u.room.to_string(),
            RoomEvent::MessageDeleted(d) => d.room.to_string(),
        };
        if let RoomEvent::Message(m) = &event {
            self.echoed(m, now);
        }
        let Some(room) = self.rooms.get_mut(&name) else { return };
        match room.state.apply_event(event.clone()) {
            EventOutcome::Applied => {
                let max = self.opts.max_messages;
                room.state.trim(max);
                self.announce(&name, event);
                self.emit(Event::RoomChanged(name));
            }
            // The server promises no gaps on one connection; if one shows
            // anyway, a re-join with `since` replays it in order.
            EventOutcome::Gap => self.rejoin(&name, now),
            EventOutcome::Duplicate | EventOutcome::NotJoined => {}
        }
    }

    /// Tells the room's listeners about a stream event.
    fn announce(&mut self, room: &str, event: RoomEvent) {
        let kind = match &event {
            RoomEvent::Message(_) => "message",
            RoomEvent::MessageUpdated(_) => "updated",
            RoomEvent::MessageDeleted(_) => "deleted",
        };
        let payload = match event {
            RoomEvent::Message(m) => to_json(&m),
            RoomEvent::MessageUpdated(u) => to_json(&u),
            RoomEvent::MessageDeleted(d) => to_json(&d),
        };
        self.room_event(room, kind, payload);
    }

    /// Our own message arrived: its send is done, whether or not the ack
    /// follows (it may have been lost with the previous connection, and
    /// with Redis it usually comes first).
    fn echoed(&mut self, m: &ChatMessage, now: u64) {
        let mine = self.user().is_some_and(|me| me.id == m.sender.id);
        if let Some(entry) = mine.then(|| self.outbox.remove_by_client_id(&m.client_id)).flatten() {
            let ack =
                Ack { id: m.id.clone(), offset: m.offset, client_id: Some(m.client_id.clone()) };
            self.settle(entry.op, Ok(to_json(&ack)));
            self.answered(&entry.room, now);
        }
    }

    /// An `ack` for an outbox entry.
    fn acked(&mut self, wire_ref: Option<u64>, ack: Ack, now: u64) {
        let Some(entry) = wire_ref.and_then(|r| self.outbox.remove_by_ref(r)) else { return };
        self.settle(entry.op, Ok(to_json(&ack)));
        self.answered(&entry.room, now);
    }

    /// An outbox entry of `room` was accepted: the room's next one may go.
    fn answered(&mut self, room: &str, now: u64) {
        self.pace.accepted(now);
        self.pending_changed(room);
        self.flush(room, now);
    }

    /// An `error` frame: fail the request it answers, or report it.
    fn failed(
        &mut self,
        request: Option<Request>,
        wire: Option<u64>,
        error: ClientError,
        now: u64,
    ) {
        match request {
            // Refused for rate: the entry goes out again, before any later
            // one of its room, once the server's delay has passed, and the
            // pace slows down. Waiting fixes this, so it never fails.
            Some(Request::Entry) if error.code == "rate_limited" => {
                let Some(r) = wire else { return };
                let wait = error.retry_after_ms.unwrap_or(RETRY_DELAY_MS).max(1);
                self.pace.refused(now, wait);
                self.outbox.retry_later(r, now + wait);
            }
            // Refused for now (a backing service down): the same, a few
            // times at most.
            Some(Request::Entry) if error.is_retryable() => {
                let Some(r) = wire else { return };
                if self.outbox.attempts(r).is_some_and(|n| n < MAX_SEND_ATTEMPTS) {
                    let wait = error.retry_after_ms.unwrap_or(RETRY_DELAY_MS).max(1);
                    self.outbox.retry_later(r, now + wait);
                } else if let Some(entry) = self.outbox.remove_by_ref(r) {
                    self.settle(entry.op, Err(error));
                    self.pending_changed(&entry.room);
                    self.flush(&entry.room, now);
                }
            }
            Some(Request::Entry) => {
                let entry = wire.and_then(|r| self.outbox.remove_by_ref(r));
                if let Some(entry) = entry {
                    self.settle(entry.op, Err(error));
                    self.pending_changed(&entry.room);
                    self.flush(&entry.room, now);
                }
            }
            Some(Request::History { op, .. } | Request::Members { op }) => {
                self.settle(op, Err(error));
            }
            // A join refused for rate: the room is joined again once the
            // server's delay has passed, and the join pace slows down.
            // Waiting fixes this, so the room and its sends never fail.
            Some(Request::Join(room)) if error.code == "rate_limited" => {
                let wait = error.retry_after_ms.unwrap_or(RETRY_DELAY_MS).max(1);
                self.join_pace.refused(now, wait);
                self.rejoin(&room, now);
            }
            Some(Request::Join(room)) => {
                // The join was refused: what waits for it cannot be sent.
                for entry in self.outbox.remove_room(&room) {
                    self.settle(entry.op, Err(error.clone()));
                }
                let payload = to_json(&RoomError { code: &error.code, message: &error.message });
                self.room_event(&room, "error", payload);
                self.pending_changed(&room);
                self.emit(Event::Error(error));
            }
            _ => self.emit(Event::Error(error)),
        }
    }

    pub(super) fn room_event(&mut self, room: &str, kind: &'static str, payload: String) {
        self.emit(Event::Room { room: room.to_owned(), kind, payload });
    }

    /// The room's pending sends changed.
    pub(super) fn pending_changed(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.state.version += 1;
            self.emit(Event::RoomChanged(room.to_owned()));
        }
    }
}
