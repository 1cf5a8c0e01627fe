//! One joined room on the client: its recovery position (`epoch`, `offset`),
//! and what a UI shows (messages in offset order without duplicates,
//! members, who is typing, who has read how far).
//!
//! Invariant: `position.offset` is the offset of the last stream event
//! applied; an event at or below it is a duplicate and is dropped, one more
//! than one above it reveals a gap and is not applied (the client re-joins
//! with `since` instead, and the server replays the gap in order).

use roomcast_shared::frame::{Joined, MembersPage, PresenceDiff};
use roomcast_shared::{ChatMessage, Member, Position, ReadReceipt, RoomEvent, Status, UserRef};

use crate::receipts::Receipts;

/// What applying a `joined` reply meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The first join of this room: its latest messages are loaded.
    Loaded,
    /// A re-join replayed what was missed; these are the events that were
    /// new (already deduplicated, in offset order).
    Recovered(Vec<RoomEvent>),
    /// The server could not replay the gap (new epoch, gap too old): the
    /// room was reloaded from `joined.messages` and the app should redraw.
    Reset,
}

/// What a stream event (`message`, `message_updated`, `message_deleted`)
/// did to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// It was new and is applied.
    Applied,
    /// It was seen before (its offset is at or below the position).
    Duplicate,
    /// Events between the position and this one are missing: re-join.
    Gap,
    /// The room has no position yet (no `joined` on this connection).
    NotJoined,
}

/// The client's state of one room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomState {
    /// Where the client is in the room's stream: what a re-join recovers from.
    pub position: Option<Position>,
    /// Whether a `joined` arrived on the current connection (events are only
    /// applied then, and sends wait for it).
    pub joined: bool,
    /// Messages in offset order, at most `max_messages`, each id once.
    pub messages: Vec<ChatMessage>,
    /// The room's members the client knows, with their presence: those who
    /// look online first, then by name. In a big room, the pages loaded so
    /// far (see `members_cursor`).
    pub members: Vec<Member>,
    /// How many members the room has (`joined`, `presence_diff`,
    /// `occupancy`, `members`).
    pub member_count: u64,
    /// Where the next page of members starts; `None` once `members` holds
    /// everyone.
    pub members_cursor: Option<String>,
    /// Other users typing right now.
    pub typing: Vec<UserRef>,
    /// Each user's latest read position, from `joined.reads` and `read`
    /// frames; kept across reconnects and never moved back.
    pub reads: Receipts,
    /// How many times the room was reset (recovery impossible).
    pub resets: u32,
    /// Bumped on every change of what a UI shows, so snapshots are rebuilt
    /// only when something changed.
    pub version: u64,
}

impl RoomState {
    /// Applies a `joined` reply, recovering or resetting as it says, and
    /// merges the read positions it carries.
    pub fn apply_joined(&mut self, joined: Joined, max_messages: usize) -> JoinOutcome {
        self.joined = true;
        self.members = joined.members;
        sort_members(&mut self.members);
        self.member_count = joined.count;
        self.members_cursor = joined.cursor;
        self.typing.clear();
        self.version += 1;
        let position = Position { epoch: joined.epoch.clone(), offset: joined.offset };
        let outcome = match (self.position.take(), joined.recovered) {
            (Some(since), Some(true)) if since.epoch == joined.epoch => {
                self.position = Some(since);
                let fresh: Vec<RoomEvent> = joined
                    .messages
                    .into_iter()
                    .filter(|e| self.apply_event(e.clone()) == EventOutcome::Applied)
                    .collect();
                JoinOutcome::Recovered(fresh)
            }
            (None, _) => {
                self.messages.clear();
                self.load(joined.messages);
                JoinOutcome::Loaded
            }
            // recovered: false, or an epoch that does not match ours.
            (Some(_), _) => {
                self.messages.clear();
                self.load(joined.messages);
                self.resets += 1;
                JoinOutcome::Reset
            }
        };
        // The room's latest offset is where the stream continues, whatever
        // `messages` held (it may hold only the latest n).
        self.position = Some(position);
        self.trim(max_messages);
        // After the messages, so that positions compare by their offsets.
        let messages = &self.messages;
        self.reads.merge_joined(joined.reads, |id| offset_of(messages, id));
        outcome
    }

    /// Loads `history`-style messages (the latest n) without touching the position.
    fn load(&mut self, events: Vec<RoomEvent>) {
        for event in events {
            if let RoomEvent::Message(m) = event {
                self.insert(m);
            }
        }
    }

    /// Applies a stream event that arrived on its own.
    pub fn apply_event(&mut self, event: RoomEvent) -> EventOutcome {
        let Some(position) = self.position.as_mut().filter(|_| self.joined) else {
            return EventOutcome::NotJoined;
        };
        let offset = event.offset();
        if offset <= position.offset {
            return EventOutcome::Duplicate;
        }
        if offset > position.offset + 1 {
            return EventOutcome::Gap;
        }
        position.offset = offset;
        match event {
            RoomEvent::Message(m) => self.insert(m),
            RoomEvent::MessageUpdated(u) => {
                if let Some(m) = self.messages.iter_mut().find(|m| m.id == u.id) {
                    m.content = u.content;
                    m.edited_at = Some(u.edited_at);
                    // The update tells the data the message has now.
                    m.data = u.data;
                }
            }
            RoomEvent::MessageDeleted(d) => {
                // It stays in its place as what it left, as history shows it.
                if let Some(m) = self.messages.iter_mut().find(|m| m.id == d.id) {
                    m.delete();
                }
            }
        }
        self.version += 1;
        EventOutcome::Applied
    }

    /// Adds older messages from a `history` reply (each id once, in order).
    pub fn prepend_history(&mut self, messages: Vec<ChatMessage>) {
        for m in messages {
            self.insert(m);
        }
        self.version += 1;
    }

    /// Inserts a message at its offset, unless its id is already shown.
    fn insert(&mut self, message: ChatMessage) {
        if self.messages.iter().any(|m| m.id == message.id) {
            return;
        }
        let at = self.messages.partition_point(|m| m.offset < message.offset);
        self.messages.insert(at, message);
    }

    /// Drops the oldest messages beyond `max`.
    pub fn trim(&mut self, max: usize) {
        if self.messages.len() > max {
            self.messages.drain(..self.messages.len() - max);
        }
    }

    /// The connection dropped: events wait for the next `joined`, and typing
    /// indicators are stale.
    pub fn disconnected(&mut self) {
        if self.joined || !self.typing.is_empty() {
            self.joined = false;
            self.typing.clear();
            self.version += 1;
        }
    }

    /// A `typing` frame from another user.
    pub fn set_typing(&mut self, user: UserRef, is_typing: bool) {
        let at = self.typing.iter().position(|u| u.id == user.id);
        match (at, is_typing) {
            (None, true) => self.typing.push(user),
            (Some(i), false) => {
                self.typing.remove(i);
            }
            _ => return,
        }
        self.version += 1;
    }

    /// A `read` frame: a user has read up to a message. Returns whether
    /// that moved their position (it never moves back).
    pub fn read(&mut self, receipt: ReadReceipt) -> bool {
        let messages = &self.messages;
        let moved = self.reads.merge(receipt, |id| offset_of(messages, id));
        if moved {
            self.version += 1;
        }
        moved
    }

    /// Who has read message `id` (or a later one), by user id. A position
    /// on a message that is not loaded counts once it is.
    pub fn seen_by<'a>(&'a self, id: &str) -> impl Iterator<Item = &'a str> {
        // Messages are in offset order: a read of `id` or a later message is
        // one of the messages from `id` on (few, for a recent message).
        let at = self.messages.iter().position(|m| m.id == id);
        let later = at.map_or(&[][..], |at| &self.messages[at..]);
        self.reads
            .iter()
            .filter(move |read| later.iter().any(|m| m.id == read.id))
            .map(|read| read.user_id.as_str())
    }

    /// A `presence_diff`: who left, who came (or came back), whose status
    /// changed. Applying every diff keeps the list equal to the room's.
    /// Returns whether what a UI shows changed (a member's own arrival, which
    /// `joined` already listed, or a `last_seen` moving on, does not).
    pub fn apply_diff(&mut self, diff: &PresenceDiff) -> bool {
        let before = (shown(&self.members), self.member_count);
        for user in &diff.leaves {
            self.members.retain(|m| m.user.id != user.id);
            self.typing.retain(|u| u.id != user.id);
        }
        for member in &diff.joins {
            match self.members.iter_mut().find(|m| m.user.id == member.user.id) {
                Some(known) => *known = member.clone(),
                None => self.members.push(member.clone()),
            }
        }
        for presence in &diff.updates {
            if let Some(m) = self.members.iter_mut().find(|m| m.user.id == presence.user_id) {
                m.presence = presence.clone();
            }
        }
        sort_members(&mut self.members);
        self.member_count = diff.count;
        let changed = (shown(&self.members), self.member_count) != before;
        if changed {
            self.version += 1;
        }
        changed
    }

    /// An `occupancy` frame: the count of a big room.
    pub fn occupancy(&mut self, count: u64) {
        if self.member_count != count {
            self.member_count = count;
            self.version += 1;
        }
    }

    /// A page of members (`members` reply): adds those not known yet and
    /// moves the cursor on.
    pub fn add_members(&mut self, page: MembersPage) {
        for member in page.members {
            if !self.members.iter().any(|m| m.user.id == member.user.id) {
                self.members.push(member);
            }
        }
        sort_members(&mut self.members);
        self.member_count = page.count;
        self.members_cursor = page.cursor;
        self.version += 1;
    }
}

/// What a UI shows of the members: who, in which order, how they are.
fn shown(members: &[Member]) -> Vec<(String, String, Status, Option<String>)> {
    members
        .iter()
        .map(|m| {
            let custom = m.presence.custom.clone();
            (m.user.id.clone(), m.user.name.clone(), m.presence.status, custom)
        })
        .collect()
}

/// Members in the order the server lists them: those who look online first,
/// then by name, then by id.
fn sort_members(members: &mut Vec<Member>) {
    crate::sort::sort_by(members, |a, b| {
        let hidden = |m: &Member| m.presence.status == Status::Offline;
        (hidden(a), &a.user.name, &a.user.id).cmp(&(hidden(b), &b.user.name, &b.user.id))
    });
}

/// The offset of loaded message `id`; recent messages are searched first,
/// as read positions usually name one of them.
fn offset_of(messages: &[ChatMessage], id: &str) -> Option<u64> {
    messages.iter().rev().find(|m| m.id == id).map(|m| m.offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(offset: u64) -> RoomEvent {
        serde_json::from_value(json!({"type":"message","room":"r","id":format!("m{offset}"),
            "offset":offset,"client_id":format!("c{offset}"),
            "sender":{"id":"bob","name":"Bob","role":null,"avatar":null},
            "content":format!("#{offset}"),"created_at":"2026-11-22T10:00:00Z"}))
        .unwrap()
    }

    fn joined(
        epoch: &str,
        offset: u64,
        messages: Vec<RoomEvent>,
        recovered: Option<bool>,
    ) -> Joined {
        Joined {
            room: roomcast_shared::RoomName::new("r").unwrap(),
            epoch: epoch.into(),
            offset,
            count: 0,
            members: vec![],
            cursor: None,
            messages,
            recovered,
            reads: vec![],
        }
    }

    fn offsets(room: &RoomState) -> Vec<u64> {
        room.messages.iter().map(|m| m.offset).collect()
    }

    #[test]
    fn events_are_deduplicated_by_offset_and_gaps_detected() {
        let mut room = RoomState::default();
        assert_eq!(room.apply_event(event(1)), EventOutcome::NotJoined);
        assert_eq!(
            room.apply_joined(joined("e", 2, vec![event(1), event(2)], None), 100),
            JoinOutcome::Loaded
        );
        assert_eq!(room.apply_event(event(2)), EventOutcome::Duplicate);
        assert_eq!(room.apply_event(event(4)), EventOutcome::Gap);
        assert_eq!(room.apply_event(event(3)), EventOutcome::Applied);
        assert_eq!(offsets(&room), [1, 2, 3]);
        assert_eq!(room.position, Some(Position { epoch: "e".into(), offset: 3 }));
    }

    #[test]
    fn an_update_sets_the_data_the_message_has_now() {
        let mut room = RoomState::default();
        let mut first = event(1);
        if let RoomEvent::Message(m) = &mut first {
            m.data = Some(Box::new(json!({"attachments": [{"url": "https://e.x/a.png"}]})));
        }
        room.apply_joined(joined("e", 1, vec![first], None), 100);
        let update = |offset: u64, data: Option<serde_json::Value>| {
            let mut frame = json!({"type": "message_updated", "room": "r", "id": "m1",
                "offset": offset, "content": "edited", "edited_at": "2026-11-22T10:01:00Z"});
            if let Some(data) = data {
                frame["data"] = data;
            }
            serde_json::from_value::<RoomEvent>(frame).unwrap()
        };
        room.apply_event(update(2, Some(json!({"n": 2}))));
        assert_eq!(room.messages[0].data.as_deref(), Some(&json!({"n": 2})));
        // Absent: the message has no data any more.
        room.apply_event(update(3, None));
        assert_eq!((room.messages[0].content.as_str(), &room.messages[0].data), ("edited", &None));
    }

    #[test]
    fn recovery_keeps_only_new_events_and_moves_the_position() {
        let mut room = RoomState::default();
        room.apply_joined(joined("e", 2, vec![event(1), event(2)], None), 100);
        room.disconnected();
        let outcome =
            room.apply_joined(joined("e", 4, vec![event(2), event(3), event(4)], Some(true)), 100);
        assert_eq!(outcome, JoinOutcome::Recovered(vec![event(3), event(4)]));
        assert_eq!(offsets(&room), [1, 2, 3, 4]);
        assert_eq!(room.position.as_ref().map(|p| p.offset), Some(4));
    }

    #[test]
    fn an_unrecoverable_gap_or_a_new_epoch_resets() {
        let mut room = RoomState::default();
        room.apply_joined(joined("e", 2, vec![event(1), event(2)], None), 100);
        room.disconnected();
        assert_eq!(
            room.apply_joined(joined("e", 9, vec![event(9)], Some(false)), 100),
            JoinOutcome::Reset
        );
        assert_eq!(offsets(&room), [9]);
        room.disconnected();
        // A server that claims recovery across epochs is not believed.
        assert_eq!(
            room.apply_joined(joined("f", 1, vec![event(1)], Some(true)), 100),
            JoinOutcome::Reset
        );
        assert_eq!(room.resets, 2);
        assert_eq!(room.position, Some(Position { epoch: "f".into(), offset: 1 }));
    }

    #[test]
    fn history_prepends_in_order_and_the_list_is_bounded() {
        let mut room = RoomState::default();
        room.apply_joined(joined("e", 5, vec![event(4), event(5)], None), 3);
        let older: Vec<ChatMessage> = [1, 2, 4]
            .into_iter()
            .map(|o| match event(o) {
                RoomEvent::Message(m) => m,
                _ => unreachable!(),
            })
            .collect();
        room.prepend_history(older);
        assert_eq!(offsets(&room), [1, 2, 4, 5]);
        room.trim(3);
        assert_eq!(offsets(&room), [2, 4, 5]);
    }

    fn member(id: &str, name: &str, status: &str) -> Member {
        serde_json::from_value(json!({"user":{"id":id,"name":name,"role":null,"avatar":null},
            "user_id":id,"status":status,"custom":null,"last_seen":"2026-11-22T10:00:00Z"}))
        .unwrap()
    }

    fn ids(room: &RoomState) -> Vec<&str> {
        room.members.iter().map(|m| m.user.id.as_str()).collect()
    }

    #[test]
    fn diffs_pages_and_counts_keep_the_member_list() {
        let mut room = RoomState::default();
        let mut first = joined("e", 0, vec![], None);
        first.members = vec![member("bob", "Bob", "online"), member("al", "Al", "offline")];
        first.count = 5;
        first.cursor = Some("0,bob,Bob".into());
        room.apply_joined(first, 100);
        assert_eq!(ids(&room), ["bob", "al"], "online first");
        assert_eq!((room.member_count, room.members_cursor.as_deref()), (5, Some("0,bob,Bob")));

        let diff: PresenceDiff = serde_json::from_value(json!({"room":"r","count":5,
            "joins":[member("cy", "Cy", "busy"), member("bob", "Bob", "away")],
            "leaves":[{"id":"al","name":"Al","role":null,"avatar":null}],
            "updates":[{"user_id":"zed","status":"away","custom":null,
                "last_seen":"2026-11-22T10:00:00Z"}]}))
        .unwrap();
        assert!(room.apply_diff(&diff));
        assert_eq!(ids(&room), ["bob", "cy"], "a leave, a join and a rejoin applied");
        let version = room.version;
        let again: PresenceDiff = serde_json::from_value(json!({"room":"r","count":5,
            "joins":[member("cy", "Cy", "busy")]}))
        .unwrap();
        assert!(!room.apply_diff(&again), "news of what is shown already changes nothing");
        assert_eq!(room.version, version);
        assert_eq!(room.members[0].presence.status, Status::Away);

        let page: MembersPage = serde_json::from_value(json!({"room":"r","count":6,
            "members":[member("cy", "Cy", "busy"), member("dee", "Dee", "online")]}))
        .unwrap();
        room.add_members(page);
        assert_eq!(ids(&room), ["bob", "cy", "dee"], "each member once");
        assert_eq!((room.member_count, room.members_cursor.as_deref()), (6, None));
        room.occupancy(1200);
        assert_eq!(room.member_count, 1200);
    }
}
