//! What a conversation keeps of its past that the SDK's state does not:
//! where the unread messages began when the user opened the room (for the
//! "New messages" divider), and a trace of each deleted message (for the
//! "Message deleted" placeholder); with the `Roomcast` methods that keep them.

use leptos::prelude::*;
use roomcast_shared::ChatMessage;
use time::OffsetDateTime;

use super::{RoomView, Roomcast};

/// Most deleted-message traces a room keeps: older ones go first.
const MAX_DELETED: usize = 200;

/// A message that was deleted while it was on screen: it stays as a
/// placeholder where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The message's id.
    pub id: String,
    /// Its place in the room's stream, to keep the placeholder in order.
    pub offset: u64,
    /// Who had written it.
    pub sender_id: String,
    /// Their display name.
    pub sender_name: String,
    /// When it had been written.
    pub created_at: OffsetDateTime,
}

impl Deleted {
    pub(super) fn of(m: &ChatMessage) -> Self {
        Deleted {
            id: m.id.clone(),
            offset: m.offset,
            sender_id: m.sender.id.clone(),
            sender_name: m.sender.name.clone(),
            created_at: m.created_at,
        }
    }
}

/// The first message in `view` that `me` has not read: with an unread
/// count, the oldest of the newest `unread` messages from others; else the
/// first message from others after both the user's read position (from
/// `joined.reads` or a `read` frame) and their own latest message (writing
/// means having read what came before). `None` when everything is read or
/// nothing says where reading stopped.
pub(super) fn first_unread(view: &RoomView, me: &str) -> Option<String> {
    let messages = &view.state.messages;
    let from_others = |m: &&ChatMessage| m.sender.id != me;
    if view.unread > 0 {
        let newest = messages.iter().rev().filter(from_others);
        let n = usize::try_from(view.unread).unwrap_or(usize::MAX);
        return newest.take(n).last().map(|m| m.id.clone());
    }
    let read = view.state.reads.get(me).and_then(|r| messages.iter().position(|m| m.id == r.id));
    let wrote = messages.iter().rposition(|m| m.sender.id == me);
    let after = read.max(wrote)?;
    messages[after + 1..].iter().find(from_others).map(|m| m.id.clone())
}

impl Roomcast {
    /// The user opened `room` (switched to it): the next
    /// [`mark_read`](Self::mark_read) first notes where the unread messages
    /// begin, in [`RoomView::first_unread`], for a "New messages" divider
    /// that stays until the room is opened again.
    pub fn open(&self, room: &str) {
        self.edit_room(room, |v| {
            v.opening = true;
            v.first_unread = None;
        });
    }

    /// Notes where reading stopped in a room just opened, once its messages
    /// are there (before `mark_read` moves the read position).
    pub(super) fn note_first_unread(&self, room: &str, me: Option<&str>) {
        let Some(me) = me else { return };
        let noted = self.rooms.with_untracked(|r| {
            r.get(room)
                .filter(|v| v.opening)
                .map(|v| (first_unread(v, me), v.state.joined, v.first_unread.clone()))
        });
        // Changing nothing must not touch the signal: callers read it.
        if let Some((first, done, before)) = noted
            && (done || first != before)
        {
            self.edit_room(room, |v| {
                v.first_unread = first;
                v.opening = !done;
            });
        }
    }

    /// A message was deleted: the room still shows the state from before
    /// (the SDK announces an event before the room's change), so the
    /// message is found there and leaves a trace.
    pub(super) fn deleted(&self, room: &str, id: &str) {
        let trace = self.rooms.with_untracked(|r| {
            r.get(room).and_then(|v| v.state.messages.iter().find(|m| m.id == id).map(Deleted::of))
        });
        let Some(trace) = trace else { return };
        self.edit_room(room, |v| {
            let at = v.deleted.partition_point(|d| d.offset < trace.offset);
            v.deleted.insert(at, trace);
            if v.deleted.len() > MAX_DELETED {
                v.deleted.remove(0);
            }
        });
    }
}
