//! One room's stream kept in memory: events in offset order, the current
//! state of the messages they describe, and the idempotency keys of those
//! messages, all bounded by count and age; the engine bounds all rooms
//! together by bytes, dropping the oldest events first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use roomcast_shared::{
    ChatMessage, MessageDeleted, MessageUpdated, Position, ReadReceipt, RoomEvent, RoomName,
};
use time::OffsetDateTime;

use crate::config::HistoryLimits;
use crate::engine::{Appended, Change, EngineError, MAX_READERS, Page, Snapshot};
use crate::error::json_len;

#[derive(Debug)]
struct Stored {
    event: RoomEvent,
    at: Instant,
    /// What keeping the event costs (see [`cost`]).
    bytes: usize,
}

/// About what one kept event costs in memory: its text twice (the event,
/// and the message's current state beside it) and the fixed parts of both,
/// with the map entries that find them (room names included). An estimate the budget counts in,
/// not an allocator's exact figure.
fn cost(event: &RoomEvent) -> usize {
    const FIXED: usize = 512;
    let text = match event {
        RoomEvent::Message(m) => {
            m.content.len()
                + m.id.len()
                + m.client_id.len()
                + m.sender.id.len()
                + m.sender.name.len()
                + m.sender.role.as_ref().map_or(0, String::len)
                + m.sender.avatar.as_ref().map_or(0, String::len)
                + m.data.as_ref().map_or(0, |data| json_len(data))
        }
        RoomEvent::MessageUpdated(u) => {
            u.content.len() + u.id.len() + u.data.as_ref().map_or(0, |data| json_len(data))
        }
        RoomEvent::MessageDeleted(d) => d.id.len(),
    };
    FIXED + 2 * text
}

/// A room's stream. Not thread-safe by itself: the engine locks it.
#[derive(Debug)]
pub(crate) struct RoomStream {
    room: RoomName,
    epoch: String,
    last_offset: u64,
    /// Every kept event, oldest first; offsets are consecutive.
    events: VecDeque<Stored>,
    /// Kept messages in their current state, by offset (deleted ones as
    /// what they leave: see [`ChatMessage::delete`]).
    messages: BTreeMap<u64, ChatMessage>,
    /// Message id to its offset, for edits and deletes.
    by_id: HashMap<String, u64>,
    /// (sender, client_id) to the original (id, offset), for idempotent sends.
    /// A pair, never one joined string: ids holding `:` cannot collide.
    by_client_id: HashMap<(String, String), (String, u64)>,
    /// What the kept events cost, the sum of their [`cost`].
    bytes: usize,
    /// Each reader's latest read, with the offset of the message read (at
    /// most [`MAX_READERS`]; the earliest readers go first).
    reads: HashMap<String, (u64, ReadReceipt)>,
    /// The engine forgot this stream (empty, no members): whoever still holds
    /// it must look the room up again.
    pub retired: bool,
}

impl RoomStream {
    pub fn new(room: RoomName, epoch: String) -> Self {
        Self {
            room,
            epoch,
            last_offset: 0,
            events: VecDeque::new(),
            messages: BTreeMap::new(),
            by_id: HashMap::new(),
            by_client_id: HashMap::new(),
            bytes: 0,
            reads: HashMap::new(),
            retired: false,
        }
    }

    /// Keeps a reader's position when it names a kept message later than
    /// the one kept for them.
    pub fn keep_read(&mut self, receipt: ReadReceipt) {
        let Some(&offset) = self.by_id.get(&receipt.id) else { return };
        if self.reads.get(&receipt.user_id).is_some_and(|(kept, _)| *kept >= offset) {
            return;
        }
        if self.reads.len() >= MAX_READERS && !self.reads.contains_key(&receipt.user_id) {
            let earliest =
                self.reads.iter().min_by_key(|(_, (_, r))| r.read_at).map(|(u, _)| u.clone());
            if let Some(user) = earliest {
                self.reads.remove(&user);
            }
        }
        self.reads.insert(receipt.user_id.clone(), (offset, receipt));
    }

    /// The latest readers' positions first, at most `limit`.
    pub fn reads(&self, limit: usize) -> Vec<ReadReceipt> {
        let mut reads: Vec<ReadReceipt> = self.reads.values().map(|(_, r)| r.clone()).collect();
        reads.sort_by(|a, b| b.read_at.cmp(&a.read_at).then_with(|| a.user_id.cmp(&b.user_id)));
        reads.truncate(limit);
        reads
    }

    /// What the kept events cost, in bytes (an estimate).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// When the oldest kept event was appended.
    pub fn oldest_at(&self) -> Option<Instant> {
        self.events.front().map(|s| s.at)
    }

    /// Applies a change and returns the appended event (not yet broadcast).
    pub fn apply(
        &mut self,
        change: Change,
        limits: &HistoryLimits,
    ) -> Result<Appended, EngineError> {
        let now = OffsetDateTime::now_utc();
        let offset = self.last_offset + 1;
        let (id, event) = match change {
            Change::Message { sender, content, client_id, data } => {
                let key = (sender.id.clone(), client_id);
                if let Some((id, offset)) = self.by_client_id.get(&key) {
                    return Ok(Appended { id: id.clone(), offset: *offset, event: None });
                }
                let id = uuid::Uuid::now_v7().to_string();
                let message = ChatMessage {
                    room: self.room.clone(),
                    id: id.clone(),
                    offset,
                    client_id: key.1.clone(),
                    sender,
                    content,
                    created_at: now,
                    edited_at: None,
                    data,
                    deleted: false,
                };
                self.by_client_id.insert(key, (id.clone(), offset));
                self.by_id.insert(id.clone(), offset);
                self.messages.insert(offset, message.clone());
                (id, RoomEvent::Message(message))
            }
            Change::Edit { id, content, data, sender } => {
                let message = self.own_message(&id, sender.as_deref())?;
                message.content.clone_from(&content);
                message.edited_at = Some(now);
                data.apply(&mut message.data);
                let data = message.data.clone();
                let event = MessageUpdated {
                    room: self.room.clone(),
                    id: id.clone(),
                    offset,
                    content,
                    edited_at: now,
                    data,
                };
                (id, RoomEvent::MessageUpdated(event))
            }
            Change::Delete { id, sender } => {
                let message = self.own_message(&id, sender.as_deref())?;
                message.delete();
                let from = message.offset;
                self.erase(&id, from);
                (
                    id.clone(),
                    RoomEvent::MessageDeleted(MessageDeleted {
                        room: self.room.clone(),
                        id,
                        offset,
                    }),
                )
            }
        };
        self.last_offset = offset;
        let bytes = cost(&event);
        self.bytes += bytes;
        self.events.push_back(Stored { event: event.clone(), at: Instant::now(), bytes });
        self.prune(limits);
        Ok(Appended { id, offset, event: Some(event) })
    }

    /// Erases message `id` (sent at offset `from`) from the kept events:
    /// a replay gives its trace and never its content ([`RoomEvent::erase`]).
    fn erase(&mut self, id: &str, from: u64) {
        let skip = usize::try_from(from.saturating_sub(self.first_offset())).unwrap_or(usize::MAX);
        for stored in self.events.iter_mut().skip(skip) {
            if stored.event.erase(id) {
                let bytes = cost(&stored.event);
                self.bytes = self.bytes - stored.bytes + bytes;
                stored.bytes = bytes;
            }
        }
    }

    fn own_message(
        &mut self,
        id: &str,
        sender: Option<&str>,
    ) -> Result<&mut ChatMessage, EngineError> {
        let message = self
            .by_id
            .get(id)
            .and_then(|offset| self.messages.get_mut(offset))
            .filter(|message| !message.deleted)
            .ok_or_else(|| EngineError::MessageNotFound(id.to_owned()))?;
        match sender {
            Some(sender) if message.sender.id != sender => {
                Err(EngineError::NotTheSender(id.to_owned()))
            }
            _ => Ok(message),
        }
    }

    /// Drops events over the count or age limit, and what only they kept.
    pub fn prune(&mut self, limits: &HistoryLimits) {
        while let Some(oldest) = self.events.front() {
            let too_many = self.events.len() > limits.max_events;
            if !too_many && oldest.at.elapsed() <= limits.max_age {
                break;
            }
            self.drop_oldest();
        }
    }

    /// Drops the oldest kept event and what only it kept. A later `since`
    /// from before it is no longer recoverable (see `snapshot`).
    pub fn drop_oldest(&mut self) {
        let Some(Stored { event, bytes, .. }) = self.events.pop_front() else { return };
        self.bytes -= bytes;
        if let RoomEvent::Message(message) = event {
            self.messages.remove(&message.offset);
            if self.by_id.get(&message.id) == Some(&message.offset) {
                self.by_id.remove(&message.id);
            }
            self.by_client_id.remove(&(message.sender.id, message.client_id));
        }
    }

    /// The offset of the oldest kept event (one past the last when empty).
    fn first_offset(&self) -> u64 {
        self.events.front().map_or(self.last_offset + 1, |s| s.event.offset())
    }

    /// What a joiner gets: recovery from `since`, else the latest messages.
    pub fn snapshot(&self, since: Option<&Position>, history: usize) -> Snapshot {
        let recovered = since.map(|since| {
            since.epoch == self.epoch
                && since.offset <= self.last_offset
                && since.offset + 1 >= self.first_offset()
        });
        let events = match (since, recovered) {
            (Some(since), Some(true)) => {
                let skip = (since.offset + 1 - self.first_offset()) as usize;
                self.events.iter().skip(skip).map(|s| s.event.clone()).collect()
            }
            _ => self.latest(history).into_iter().map(RoomEvent::Message).collect(),
        };
        Snapshot { epoch: self.epoch.clone(), offset: self.last_offset, events, recovered }
    }

    fn latest(&self, count: usize) -> Vec<ChatMessage> {
        let mut latest: Vec<_> = self.messages.values().rev().take(count).cloned().collect();
        latest.reverse();
        latest
    }

    /// The newest `limit` messages below `before`, oldest first.
    pub fn history(&self, before: Option<u64>, limit: usize) -> Page {
        let below = self.messages.range(..before.unwrap_or(u64::MAX));
        let mut messages: Vec<_> = below.rev().take(limit + 1).map(|(_, m)| m.clone()).collect();
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        messages.reverse();
        Page { messages, has_more }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use roomcast_shared::UserInfo;

    use super::*;
    use crate::engine::DataEdit;

    fn user(id: &str) -> UserInfo {
        UserInfo { id: id.into(), name: id.into(), role: None, avatar: None }
    }

    fn send(
        stream: &mut RoomStream,
        from: &str,
        client_id: &str,
        limits: &HistoryLimits,
    ) -> Appended {
        let change = Change::Message {
            sender: user(from),
            content: format!("hi {client_id}"),
            client_id: client_id.into(),
            data: None,
        };
        stream.apply(change, limits).unwrap()
    }

    fn stream() -> RoomStream {
        RoomStream::new(RoomName::new("general").unwrap(), "e1".into())
    }

    fn limits(max_events: usize) -> HistoryLimits {
        HistoryLimits { max_events, max_age: Duration::from_secs(3600), memory_bytes: usize::MAX }
    }

    fn at(epoch: &str, offset: u64) -> Position {
        Position { epoch: epoch.into(), offset }
    }

    #[test]
    fn offsets_are_consecutive_and_sends_idempotent() {
        let (mut s, l) = (stream(), limits(10));
        let first = send(&mut s, "alice", "c1", &l);
        let second = send(&mut s, "alice", "c2", &l);
        assert_eq!((first.offset, second.offset), (1, 2));
        let again = send(&mut s, "alice", "c1", &l);
        assert!(again.event.is_none());
        assert_eq!((again.id, again.offset), (first.id, 1));
        // The same key from another sender is another message.
        assert_eq!(send(&mut s, "bob", "c1", &l).offset, 3);
    }

    #[test]
    fn edits_and_deletes_take_offsets_and_check_the_sender() {
        let (mut s, l) = (stream(), limits(10));
        let id = send(&mut s, "alice", "c1", &l).id;
        let not_yours = Change::Edit {
            id: id.clone(),
            content: "x".into(),
            data: DataEdit::Keep,
            sender: Some("bob".into()),
        };
        assert!(matches!(s.apply(not_yours, &l), Err(EngineError::NotTheSender(_))));
        let edit = Change::Edit {
            id: id.clone(),
            content: "edited".into(),
            data: DataEdit::Keep,
            sender: Some("alice".into()),
        };
        assert_eq!(s.apply(edit, &l).unwrap().offset, 2);
        assert_eq!(s.history(None, 10).messages[0].content, "edited");
        assert_eq!(s.apply(Change::Delete { id: id.clone(), sender: None }, &l).unwrap().offset, 3);
        let trace = &s.history(None, 10).messages[0];
        assert!(trace.deleted && trace.content.is_empty() && trace.edited_at.is_none());
        // The replay keeps every offset and no content: the message as its
        // trace, its edit as another delete.
        let replay = s.snapshot(Some(&at("e1", 0)), 0).events;
        assert!(matches!(&replay[0], RoomEvent::Message(m) if m == trace), "{replay:?}");
        assert!(matches!(&replay[1], RoomEvent::MessageDeleted(d) if d.id == id && d.offset == 2));
        assert!(matches!(&replay[2], RoomEvent::MessageDeleted(d) if d.id == id && d.offset == 3));
        assert_eq!(s.bytes(), replay.iter().map(cost).sum::<usize>(), "the costs follow");
        let gone = Change::Delete { id: id.clone(), sender: None };
        assert!(matches!(s.apply(gone, &l), Err(EngineError::MessageNotFound(_))));
        let edit_gone =
            Change::Edit { id, content: "x".into(), data: DataEdit::Keep, sender: None };
        assert!(matches!(s.apply(edit_gone, &l), Err(EngineError::MessageNotFound(_))));
    }

    #[test]
    fn recovery_replays_what_was_missed_or_says_it_cannot() {
        let (mut s, l) = (stream(), limits(3));
        for i in 0..5 {
            send(&mut s, "alice", &format!("c{i}"), &l);
        }
        // Offsets 3..=5 are kept.
        let replay = s.snapshot(Some(&at("e1", 2)), 0);
        assert_eq!(replay.recovered, Some(true));
        assert_eq!(replay.events.iter().map(RoomEvent::offset).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(s.snapshot(Some(&at("e1", 5)), 0).events.len(), 0);
        assert_eq!(s.snapshot(Some(&at("e1", 1)), 0).recovered, Some(false), "gap too old");
        assert_eq!(s.snapshot(Some(&at("e1", 6)), 0).recovered, Some(false), "from the future");
        assert_eq!(s.snapshot(Some(&at("e0", 5)), 2).recovered, Some(false), "other epoch");
        assert_eq!(s.snapshot(Some(&at("e0", 5)), 2).events.len(), 2, "latest history instead");
        assert_eq!(s.snapshot(None, 10).recovered, None);
    }

    #[test]
    fn history_pages_backwards() {
        let (mut s, l) = (stream(), limits(100));
        for i in 0..5 {
            send(&mut s, "alice", &format!("c{i}"), &l);
        }
        let page = s.history(None, 2);
        assert_eq!(page.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [4, 5]);
        assert!(page.has_more);
        let page = s.history(Some(4), 10);
        assert_eq!(page.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(!page.has_more);
    }

    #[test]
    fn pruning_forgets_idempotency_keys_with_their_messages() {
        let (mut s, l) = (stream(), limits(1));
        send(&mut s, "alice", "c1", &l);
        send(&mut s, "alice", "c2", &l);
        assert_eq!(s.history(None, 10).messages.len(), 1);
        // c1 left the window: the same key is now a new message.
        assert!(send(&mut s, "alice", "c1", &l).event.is_some());
    }

    #[test]
    fn ids_holding_colons_are_separate_idempotency_keys() {
        let (mut s, l) = (stream(), limits(10));
        let first = send(&mut s, "a", "b:c1", &l);
        let second = send(&mut s, "a:b", "c1", &l);
        assert!(second.event.is_some());
        assert_ne!(first.id, second.id);
    }

    #[test]
    fn dropping_the_oldest_frees_its_bytes_and_ends_recovery_from_before() {
        let (mut s, l) = (stream(), limits(10));
        send(&mut s, "alice", "c1", &l);
        let one = s.bytes();
        send(&mut s, "alice", "c2", &l);
        assert!(s.bytes() > one);
        s.drop_oldest();
        assert_eq!(s.bytes(), one, "c1 and c2 cost the same");
        assert_eq!(s.snapshot(Some(&at("e1", 0)), 0).recovered, Some(false));
        assert_eq!(s.snapshot(Some(&at("e1", 1)), 0).recovered, Some(true));
        s.drop_oldest();
        assert_eq!((s.bytes(), s.is_empty()), (0, true));
    }
}
