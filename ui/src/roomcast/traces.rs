//! What a conversation keeps of its past that the SDK's state does not:
//! where the unread messages began when the user opened the room (for the
//! "New messages" divider), and a trace of each deleted message (for the
//! "Message deleted" placeholder).

use roomcast_shared::ChatMessage;
use time::OffsetDateTime;

use super::RoomView;

/// Most deleted-message traces a room keeps: older ones go first.
pub(super) const MAX_DELETED: usize = 200;

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
