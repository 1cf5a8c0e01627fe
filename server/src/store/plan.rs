//! What a batch of changes does, worked out in memory from what the
//! database holds: each change's outcome, the offsets it takes, and the rows
//! to write. The SQL around it (`store/sql.rs`) reads everything the batch
//! needs in a few statements and writes the plan in a few more, so a commit
//! of hundreds of messages costs a handful of round trips, not several per
//! message.
//!
//! The outcome of each change is the one it would have had applied alone,
//! in batch order: a message resent within the batch is a duplicate of the
//! first, an edit sees a message sent earlier in the batch, a delete ends
//! later edits.

use std::collections::{HashMap, HashSet};

use roomcast_shared::{ChatMessage, MessageDeleted, MessageUpdated, RoomEvent};
use time::OffsetDateTime;

use super::{NewEvent, Outcome};

/// A message's idempotency key: (room, sender, `client_id`).
pub(super) type Key = (String, String, String);

/// What the database holds that the batch needs.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Each room's latest offset, by room name (rooms are locked by now).
    pub latest: HashMap<String, u64>,
    /// Stored messages by idempotency key: their id and offset.
    pub keys: HashMap<Key, (String, u64)>,
    /// Stored messages that the batch edits or deletes, by (room, id).
    pub rows: HashMap<(String, String), ChatMessage>,
}

/// The rows a batch writes.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// One outcome per change, in batch order.
    pub outcomes: Vec<Outcome>,
    /// Each changed room's new latest offset.
    pub latest: Vec<(String, u64)>,
    /// Messages sent in this batch, in their state at its end.
    pub inserted: Vec<ChatMessage>,
    /// Stored messages the batch edited or deleted, in their new state.
    pub updated: Vec<ChatMessage>,
    /// Every appended event with when it happened, in batch order.
    pub events: Vec<(RoomEvent, OffsetDateTime)>,
}

impl Plan {
    /// The events that go to the `events` table: edits, deletes, and the
    /// `message` event of a message this batch also edited, whose row no
    /// longer holds it as sent. Any other `message` event is its message's
    /// row of `messages`.
    pub fn logged_events(&self) -> Vec<&(RoomEvent, OffsetDateTime)> {
        let edited: HashSet<(&str, u64)> = self
            .inserted
            .iter()
            .filter(|m| m.edited_at.is_some())
            .map(|m| (m.room.as_str(), m.offset))
            .collect();
        self.events
            .iter()
            .filter(|(event, _)| match event {
                RoomEvent::Message(m) => {
                    !edited.is_empty() && edited.contains(&(m.room.as_str(), m.offset))
                }
                _ => true,
            })
            .collect()
    }
}

/// A message the batch holds: sent in it (an index into `inserted`) or
/// stored before (an index into `updated`).
#[derive(Debug, Clone, Copy)]
enum Slot {
    Inserted(usize),
    Updated(usize),
}

/// Works out what `batch` does given `known`.
pub(super) fn plan(batch: &[NewEvent], mut known: Known) -> Plan {
    let mut plan = Plan::default();
    let mut slots: HashMap<(String, String), Slot> = HashMap::new();
    let now = OffsetDateTime::now_utc();
    for event in batch {
        let outcome = if event.keys_are_valid() {
            apply(event, &mut known, &mut plan, &mut slots, now)
        } else {
            Outcome::Invalid
        };
        plan.outcomes.push(outcome);
    }
    // Each room the batch appended to, with its last offset, in the order
    // the batch first touched it.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (event, _) in &plan.events {
        let room = event.room().as_str();
        match index.get(room) {
            Some(&i) => plan.latest[i].1 = event.offset(),
            None => {
                index.insert(room, plan.latest.len());
                plan.latest.push((room.to_owned(), event.offset()));
            }
        }
    }
    plan
}

fn apply(
    event: &NewEvent,
    known: &mut Known,
    plan: &mut Plan,
    slots: &mut HashMap<(String, String), Slot>,
    now: OffsetDateTime,
) -> Outcome {
    let room = event.room().as_str();
    let next_offset = |known: &mut Known| {
        let latest = known.latest.entry(room.to_owned()).or_insert(0);
        *latest += 1;
        *latest
    };
    match event {
        NewEvent::Message { room, id, client_id, sender, content, created_at, data } => {
            let key = (room.as_str().to_owned(), sender.id.clone(), client_id.clone());
            if let Some((id, offset)) = known.keys.get(&key) {
                return Outcome::Duplicate { id: id.clone(), offset: *offset };
            }
            let offset = next_offset(known);
            let message = ChatMessage {
                room: room.clone(),
                id: id.clone(),
                offset,
                client_id: client_id.clone(),
                sender: sender.clone(),
                content: content.clone(),
                created_at: *created_at,
                edited_at: None,
                data: data.clone(),
                deleted: false,
            };
            known.keys.insert(key, (id.clone(), offset));
            slots.insert(
                (room.as_str().to_owned(), id.clone()),
                Slot::Inserted(plan.inserted.len()),
            );
            plan.inserted.push(message.clone());
            let event = RoomEvent::Message(message);
            plan.events.push((event.clone(), *created_at));
            Outcome::Appended(event)
        }
        NewEvent::Edit { room, id, by, .. } | NewEvent::Delete { room, id, by } => {
            let at = (room.as_str().to_owned(), id.clone());
            let slot = match slots.get(&at) {
                Some(slot) => *slot,
                None => match known.rows.remove(&at) {
                    Some(row) => {
                        let slot = Slot::Updated(plan.updated.len());
                        plan.updated.push(row);
                        slots.insert(at.clone(), slot);
                        slot
                    }
                    None => return Outcome::NotFound,
                },
            };
            let row = match slot {
                Slot::Inserted(i) => &mut plan.inserted[i],
                Slot::Updated(i) => &mut plan.updated[i],
            };
            if row.deleted {
                return Outcome::NotFound;
            }
            if by.as_deref().is_some_and(|by| row.sender.id != by) {
                return Outcome::NotTheSender;
            }
            let offset = next_offset(known);
            let row = match slot {
                Slot::Inserted(i) => &mut plan.inserted[i],
                Slot::Updated(i) => &mut plan.updated[i],
            };
            let (event, at) = match event {
                NewEvent::Edit { content, data, edited_at, .. } => {
                    row.content.clone_from(content);
                    row.edited_at = Some(*edited_at);
                    data.apply(&mut row.data);
                    let event = MessageUpdated {
                        room: room.clone(),
                        id: id.clone(),
                        offset,
                        content: content.clone(),
                        edited_at: *edited_at,
                        data: row.data.clone(),
                    };
                    (RoomEvent::MessageUpdated(event), *edited_at)
                }
                _ => {
                    row.delete();
                    let event = MessageDeleted { room: room.clone(), id: id.clone(), offset };
                    (RoomEvent::MessageDeleted(event), now)
                }
            };
            plan.events.push((event.clone(), at));
            Outcome::Appended(event)
        }
    }
}

#[cfg(test)]
mod tests {
    use roomcast_shared::{RoomName, UserInfo};

    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    fn send(r: &str, id: &str, from: &str, client_id: &str) -> NewEvent {
        NewEvent::Message {
            room: room(r),
            id: id.into(),
            client_id: client_id.into(),
            sender: UserInfo { id: from.into(), name: from.into(), role: None, avatar: None },
            content: format!("{id} text"),
            created_at: OffsetDateTime::now_utc(),
            data: None,
        }
    }

    fn edit(r: &str, id: &str, by: Option<&str>) -> NewEvent {
        NewEvent::Edit {
            room: room(r),
            id: id.into(),
            by: by.map(Into::into),
            content: "edited".into(),
            data: super::super::DataEdit::Keep,
            edited_at: OffsetDateTime::now_utc(),
        }
    }

    fn delete(r: &str, id: &str) -> NewEvent {
        NewEvent::Delete { room: room(r), id: id.into(), by: None }
    }

    fn offsets(plan: &Plan) -> Vec<Option<u64>> {
        plan.outcomes
            .iter()
            .map(|o| match o {
                Outcome::Appended(e) => Some(e.offset()),
                Outcome::Duplicate { offset, .. } => Some(*offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_batch_sees_its_own_changes_in_order() {
        let mut known = Known::default();
        known.latest.insert("a".into(), 7);
        let batch = [
            send("a", "m1", "alice", "c1"),
            send("b", "m2", "alice", "c1"),
            send("a", "m3", "alice", "c1"),
            edit("a", "m1", Some("bob")),
            edit("a", "m1", Some("alice")),
            delete("a", "m1"),
            edit("a", "m1", None),
        ];
        let plan = plan(&batch, known);
        assert_eq!(offsets(&plan), [Some(8), Some(1), Some(8), None, Some(9), Some(10), None]);
        assert!(matches!(plan.outcomes[2], Outcome::Duplicate { ref id, .. } if id == "m1"));
        assert!(matches!(plan.outcomes[3], Outcome::NotTheSender));
        assert!(matches!(plan.outcomes[6], Outcome::NotFound));
        assert_eq!(plan.latest, [("a".to_owned(), 10), ("b".to_owned(), 1)]);
        assert_eq!(plan.inserted.len(), 2);
        let m1 = &plan.inserted[0];
        assert!(m1.deleted, "its state at the end");
        assert!(m1.content.is_empty() && m1.edited_at.is_none(), "no content left");
        assert_eq!(plan.events.len(), 4);
    }

    #[test]
    fn only_a_message_edited_in_its_own_batch_is_logged_apart_from_its_row() {
        let batch = [
            send("a", "m1", "alice", "c1"),
            send("a", "m2", "alice", "c2"),
            edit("a", "m2", None),
            send("a", "m3", "alice", "c3"),
            edit("a", "m3", None),
            delete("a", "m3"),
        ];
        let plan = plan(&batch, Known::default());
        let logged: Vec<u64> = plan.logged_events().iter().map(|(e, _)| e.offset()).collect();
        // m2's message and edit; m3's edit and delete (deleted, its row is
        // its trace); never m1's message.
        assert_eq!(logged, [2, 3, 5, 6]);
    }

    #[test]
    fn stored_messages_are_found_by_key_and_by_id() {
        let mut known = Known::default();
        known.latest.insert("a".into(), 3);
        known.keys.insert(("a".into(), "alice".into(), "c1".into()), ("m1".into(), 2));
        let stored = match plan(&[send("a", "m1", "alice", "x")], Known::default()).inserted.pop() {
            Some(row) => row,
            None => unreachable!(),
        };
        known.rows.insert(("a".into(), "m1".into()), stored);
        let plan = plan(
            &[send("a", "other", "alice", "c1"), edit("a", "m1", Some("alice")), delete("a", "zz")],
            known,
        );
        assert_eq!(offsets(&plan), [Some(2), Some(4), None]);
        assert_eq!(plan.updated.len(), 1);
        assert_eq!(plan.updated[0].content, "edited");
        assert!(plan.inserted.is_empty());
    }
}
