//! What a conversation keeps of its past that the SDK's state does not:
//! where the unread messages began when the user opened the room (for the
//! "New messages" divider); with the `Roomcast` methods that keep it.

use leptos::prelude::*;
use roomcast_shared::ChatMessage;

use super::{RoomView, Roomcast};

/// The first message in `view` that `me` has not read: with an unread
/// count, the oldest of the newest `unread` messages from others; else the
/// first message from others after both the user's read position (from
/// `joined.reads` or a `read` frame) and their own latest message (writing
/// means having read what came before). `None` when everything is read or
/// nothing says where reading stopped.
pub(super) fn first_unread(view: &RoomView, me: &str) -> Option<String> {
    let messages = &view.state.messages;
    let from_others = |m: &&ChatMessage| m.sender.id != me && !m.deleted;
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
}
