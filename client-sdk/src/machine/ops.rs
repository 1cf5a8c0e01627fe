//! What the application asks of the client: rooms, sends, typing, reads,
//! presence and history. Requests that need an answer return an operation id;
//! the answer comes later as [`Event::Settle`] with that id.

use roomcast_shared::{ClientFrame, Position, RoomName, SetStatus};
use serde_json::Value;

use super::{Core, Request};
use crate::effect::{ClientError, ConnectionState, Effect, Event};
use crate::payload::{Pending, RoomSnapshot, to_json};
use crate::room::RoomState;

impl Core {
    /// Joins `room`, or adds a reference to it when already joined. The
    /// room stays joined (and is re-joined after every reconnect) until as
    /// many [`leave`](Self::leave) calls. The `join` goes out within the
    /// join pace: at once, or at [`next_deadline`](Self::next_deadline).
    pub fn join(&mut self, room: &str) -> Result<(), ClientError> {
        let name =
            RoomName::new(room).map_err(|e| ClientError::new("bad_request", e.to_string()))?;
        let entry = self.rooms.entry(name.to_string()).or_default();
        entry.refs += 1;
        if entry.refs == 1 {
            self.joins_made += 1;
            entry.order = self.joins_made;
            if self.is_ready() {
                self.rejoin(name.as_str(), self.clock);
            }
        }
        Ok(())
    }

    /// Drops one reference to `room`; the last one leaves it, failing its
    /// waiting sends with `left`.
    pub fn leave(&mut self, room: &str) {
        let Some(entry) = self.rooms.get_mut(room) else { return };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs > 0 {
            return;
        }
        // A room whose join still waits for the pace is not joined on the
        // server: there is nothing to leave.
        let on_server = self.rooms.remove(room).is_some_and(|r| r.state.joined || !r.join_waits);
        for entry in self.outbox.remove_room(room) {
            self.settle(entry.op, Err(ClientError::new("left", format!("left {room}"))));
        }
        if self.is_ready()
            && on_server
            && let Ok(name) = RoomName::new(room)
        {
            self.request(Request::Leave, ClientFrame::Leave { room: name });
        }
    }

    /// Whether the application holds `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// Sends a chat message; settles with the ack (`{id, offset, client_id}`).
    pub fn send(&mut self, room: &str, content: String, now: u64) -> u64 {
        self.send_with_data(room, content, None, now)
    }

    /// Sends a chat message with `data` (a JSON object: attachments and
    /// other fields kept with it); settles with the ack.
    pub fn send_with_data(
        &mut self,
        room: &str,
        content: String,
        data: Option<Box<Value>>,
        now: u64,
    ) -> u64 {
        let client_id = self.rng.client_id(now);
        self.enqueue(room, now, |name| ClientFrame::Send { room: name, content, client_id, data })
    }

    /// Edits a message, keeping its data; settles with the ack.
    pub fn edit(&mut self, room: &str, id: String, content: String, now: u64) -> u64 {
        self.edit_with_data(room, id, content, None, now)
    }

    /// Edits a message: `data` replaces its data (`{}` removes it), `None`
    /// keeps it; settles with the ack.
    pub fn edit_with_data(
        &mut self,
        room: &str,
        id: String,
        content: String,
        data: Option<Box<Value>>,
        now: u64,
    ) -> u64 {
        self.enqueue(room, now, |name| ClientFrame::Edit { room: name, id, content, data })
    }

    /// Deletes a message; settles with the ack.
    pub fn delete(&mut self, room: &str, id: String, now: u64) -> u64 {
        self.enqueue(room, now, |name| ClientFrame::Delete { room: name, id })
    }

    /// Queues an outbox request; it goes out when the room is joined, the
    /// room's earlier requests were answered and the pace allows.
    fn enqueue(
        &mut self,
        room: &str,
        now: u64,
        frame: impl FnOnce(RoomName) -> ClientFrame,
    ) -> u64 {
        self.clock = self.clock.max(now);
        self.next_op += 1;
        let op = self.next_op;
        if self.state == ConnectionState::Closed {
            self.settle(op, Err(ClientError::new("closed", "the client is closed")));
            return op;
        }
        let Some(name) = self.rooms.get(room).and_then(|_| RoomName::new(room).ok()) else {
            let error = ClientError::new("not_joined", format!("join {room} first"));
            self.settle(op, Err(error));
            return op;
        };
        let frame = frame(name);
        let is_send = matches!(frame, ClientFrame::Send { .. });
        if self.outbox.push(op, room, frame).is_err() {
            let limit = self.opts.queue_limit;
            let error = ClientError::new("queue_full", format!("{limit} requests already wait"));
            self.settle(op, Err(error));
            return op;
        }
        if is_send && let Some(r) = self.rooms.get_mut(room) {
            // The server ends typing when a message arrives.
            r.typing.clear();
        }
        self.pending_changed(room);
        self.flush(room, now);
        op
    }

    /// Sends the room's next outbox entry if it is joined on an open
    /// connection, nothing of the room is in flight and the pace allows
    /// (else the pace says when to try again); then a `read` marked while
    /// disconnected.
    pub(super) fn flush(&mut self, room: &str, now: u64) {
        if !self.is_ready() || !self.rooms.get(room).is_some_and(|r| r.state.joined) {
            return;
        }
        if self.outbox.ready_to_send(room, now) {
            match self.pace.take_with(&mut self.frame_pace, now) {
                Ok(()) => {
                    self.next_ref += 1;
                    let r = self.next_ref;
                    if let Some(frame) = self.outbox.mark_sent(room, r) {
                        let text = super::frame_text(Some(r), frame);
                        self.requests.insert(r, Request::Entry);
                        self.effects.push(Effect::Send(text));
                    }
                }
                Err(at) => self.send_at = Some(self.send_at.map_or(at, |s| s.min(at))),
            }
        }
        self.send_read(room);
    }

    /// Sends the `read` marked while the room was not joined, once it is.
    fn send_read(&mut self, room: &str) {
        if !self.is_ready() || !self.rooms.get(room).is_some_and(|r| r.state.joined) {
            return;
        }
        if let Some(id) = self.rooms.get_mut(room).and_then(|r| r.unsent_read.take())
            && let Ok(name) = RoomName::new(room)
        {
            self.send_frame(None, &ClientFrame::Read { room: name, id });
        }
    }

    /// [`flush`](Self::flush) for every room.
    pub(super) fn flush_all(&mut self, now: u64) {
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            self.flush(&name, now);
        }
    }

    /// Queues a `join` of `room` and sends what the join pace allows.
    pub(super) fn rejoin(&mut self, room: &str, now: u64) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.join_waits = true;
        }
        self.flush_joins(now);
    }

    /// Sends the waiting joins the join and frame paces allow on an open
    /// connection, rooms with waiting sends first, then in the order the
    /// application joined them; the pace says when to send the rest.
    pub(super) fn flush_joins(&mut self, now: u64) {
        self.join_at = None;
        if !self.is_ready() {
            return;
        }
        while let Some(room) = self.next_join() {
            if let Err(at) = self.join_pace.take_with(&mut self.frame_pace, now) {
                self.join_at = Some(at);
                return;
            }
            if let Some(r) = self.rooms.get_mut(&room) {
                r.join_waits = false;
            }
            self.send_join(&room);
        }
    }

    /// The waiting join to send first.
    fn next_join(&self) -> Option<String> {
        let waiting = self.rooms.iter().filter(|(_, r)| r.join_waits);
        let first =
            waiting.min_by_key(|(name, r)| (self.outbox.of_room(name).next().is_none(), r.order));
        first.map(|(name, _)| name.clone())
    }

    /// Sends `join`, with `since` when the room has a position to recover from.
    fn send_join(&mut self, room: &str) {
        let Ok(name) = RoomName::new(room) else { return };
        let since: Option<Position> = self.rooms.get(room).and_then(|r| r.state.position.clone());
        let history = Some(self.opts.history.min(roomcast_shared::MAX_HISTORY_LIMIT));
        self.request(
            Request::Join(room.to_owned()),
            ClientFrame::Join { room: name, since, history, member_events: None },
        );
    }

    /// The user typed (`true`) or stopped (`false`); throttled, and ended
    /// by itself after a pause.
    pub fn typing(&mut self, room: &str, is_typing: bool, now: u64) {
        let ready = self.is_ready();
        let (throttle, idle) = (self.opts.typing_throttle_ms, self.opts.typing_idle_ms);
        let Some(r) = self.rooms.get_mut(room).filter(|r| ready && r.state.joined) else { return };
        if let Some(value) = r.typing.set(is_typing, now, throttle, idle) {
            self.send_typing(room, value);
        }
    }

    pub(super) fn send_typing(&mut self, room: &str, is_typing: bool) {
        if let Ok(name) = RoomName::new(room) {
            self.send_frame(None, &ClientFrame::Typing { room: name, is_typing });
        }
    }

    /// Marks `room` read up to message `id` (sent once joined).
    pub fn mark_read(&mut self, room: &str, id: String) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        r.unsent_read = Some(id);
        self.send_read(room);
    }

    /// Asks for older messages; settles with `{room, messages, has_more}`,
    /// and the messages join the room's snapshot.
    pub fn history(&mut self, room: &str, before: Option<u64>, limit: Option<u16>) -> u64 {
        self.next_op += 1;
        let op = self.next_op;
        match RoomName::new(room) {
            Err(e) => self.settle(op, Err(ClientError::new("bad_request", e.to_string()))),
            Ok(_) if !self.is_ready() => {
                self.settle(op, Err(ClientError::new("disconnected", "not connected")))
            }
            Ok(name) => {
                let what = Request::History { op, room: room.to_owned() };
                self.request(what, ClientFrame::History { room: name, before, limit });
            }
        }
        op
    }

    /// Loads the room's next page of members (at most `limit`, default 100);
    /// settles with `{room, count, members, cursor}`, and the members join
    /// the room's snapshot. Once every member is loaded, it settles at once
    /// with no members.
    pub fn members(&mut self, room: &str, limit: Option<u16>) -> u64 {
        self.next_op += 1;
        let op = self.next_op;
        let joined = self.rooms.get(room).filter(|r| r.state.joined);
        match (RoomName::new(room), joined) {
            (Err(e), _) => self.settle(op, Err(ClientError::new("bad_request", e.to_string()))),
            (Ok(_), None) => {
                self.settle(op, Err(ClientError::new("not_joined", "the room is not joined")))
            }
            (Ok(name), Some(r)) => match r.state.members_cursor.clone() {
                None => {
                    let page = roomcast_shared::MembersPage {
                        room: name,
                        count: r.state.member_count,
                        members: Vec::new(),
                        cursor: None,
                    };
                    self.settle(op, Ok(to_json(&page)));
                }
                Some(cursor) => {
                    let frame = ClientFrame::Members { room: name, cursor: Some(cursor), limit };
                    self.request(Request::Members { op }, frame);
                }
            },
        }
        op
    }

    /// Sets the user's status, now and after every reconnect.
    pub fn set_status(&mut self, status: SetStatus, custom: Option<String>) {
        self.status = Some((status, custom.clone()));
        if self.is_ready() {
            self.send_frame(None, &ClientFrame::Presence { status, custom });
        }
    }

    /// Sends a frame the application built itself, if connected.
    pub fn send_raw(&mut self, text: String) -> bool {
        if self.is_ready() {
            self.effects.push(crate::effect::Effect::Send(text));
        }
        self.is_ready()
    }

    /// What the client knows of `room`: messages, members, typing, receipts.
    pub fn room(&self, room: &str) -> Option<&RoomState> {
        self.rooms.get(room).map(|r| &r.state)
    }

    /// The sends of `room` still waiting for their ack, oldest first: each
    /// one's operation id, `client_id`, content and data.
    pub fn pending_sends<'a>(&'a self, room: &'a str) -> impl Iterator<Item = PendingSend<'a>> {
        self.outbox.of_room(room).filter_map(|e| match &e.frame {
            ClientFrame::Send { content, client_id, data, .. } => {
                Some(PendingSend { op: e.op, client_id, content, data: data.as_deref() })
            }
            _ => None,
        })
    }

    /// When the next reconnect attempt starts, while waiting for it.
    pub fn retry_at(&self) -> Option<u64> {
        self.retry_at
    }

    /// The version of `room`'s snapshot: it changes whenever the snapshot does.
    pub fn room_version(&self, room: &str) -> Option<u64> {
        self.rooms.get(room).map(|r| r.state.version)
    }

    /// The snapshot of `room` as JSON, with the version it reflects:
    /// `{room, joined, messages, pending, members, typing, reads, resets}`.
    pub fn room_snapshot(&self, room: &str) -> Option<(u64, String)> {
        let r = self.rooms.get(room)?;
        let pending = self
            .pending_sends(room)
            .map(|p| Pending { client_id: p.client_id, content: p.content, data: p.data })
            .collect();
        let snapshot = RoomSnapshot {
            room,
            joined: r.state.joined,
            messages: &r.state.messages,
            pending,
            members: &r.state.members,
            member_count: r.state.member_count,
            more_members: r.state.members_cursor.is_some(),
            typing: &r.state.typing,
            reads: r.state.reads.latest_first(),
            resets: r.state.resets,
        };
        Some((r.state.version, to_json(&snapshot)))
    }

    /// Reports an error the host ran into (a socket that could not be
    /// created, a callback that threw).
    pub fn emit_error(&mut self, code: &str, message: String) {
        self.emit(Event::Error(ClientError::new(code, message)));
    }
}

/// A send waiting for its ack ([`Core::pending_sends`]).
#[derive(Debug, Clone, Copy)]
pub struct PendingSend<'a> {
    /// The operation id `send` returned.
    pub op: u64,
    /// Its idempotency key.
    pub client_id: &'a str,
    /// Its text.
    pub content: &'a str,
    /// Its data, if any.
    pub data: Option<&'a Value>,
}
