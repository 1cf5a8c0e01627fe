//! Membership and presence changes gathered per room between two flushes
//! of `engine/diffs.rs`, and the delivery of the one frame per room and
//! window they become.
//!
//! Only *who* changed is kept here, not how: the flush reads each one's
//! state in the engine, so the frame says how the room is, whatever order
//! the changes arrived in from the instances that made them. That keeps
//! every instance's view converging on the engine's.

use std::collections::HashMap;

use roomcast_shared::{RoomName, UserInfo};

use super::{Delivery, Hub};
use crate::engine::MemberChange;

/// What one window saw of one user in one room.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Seen {
    /// A first connection joined.
    pub joined: bool,
    /// A last connection left, with the profile to announce the departure
    /// with (the engine no longer has it).
    pub left: Option<UserInfo>,
}

/// A room's changes since the last flush, by user id.
pub(crate) type RoomChanges = HashMap<String, Seen>;

impl Seen {
    fn record(&mut self, change: MemberChange) {
        match change {
            MemberChange::Joined { .. } => self.joined = true,
            MemberChange::Left { user } => self.left = Some(user),
            MemberChange::Status { .. } => {}
        }
    }
}

impl Hub {
    /// Notes a change for each of `rooms` that has members here; the next
    /// flush announces it. Never waits (it runs on the engine's receiving
    /// connection).
    pub fn offer_change(&self, rooms: &[RoomName], change: &MemberChange) {
        for room in rooms {
            if !self.has_members(room) {
                continue;
            }
            let mut changes = self.changes.entry(room.clone()).or_default();
            changes.entry(change.user_id().to_owned()).or_default().record(change.clone());
        }
    }

    /// Takes every room's changes since the last call.
    pub fn take_changes(&self) -> Vec<(RoomName, RoomChanges)> {
        let rooms: Vec<RoomName> = self.changes.iter().map(|entry| entry.key().clone()).collect();
        rooms.into_iter().filter_map(|room| self.changes.remove(&room)).collect()
    }

    /// Puts back changes a flush could not announce, merged with any that
    /// arrived since, for the next flush.
    pub fn restore_changes(&self, room: RoomName, changes: RoomChanges) {
        let mut pending = self.changes.entry(room).or_default();
        for (id, seen) in changes {
            let merged = pending.entry(id).or_default();
            merged.joined |= seen.joined;
            if merged.left.is_none() {
                merged.left = seen.left;
            }
        }
    }

    /// Whether a local connection in `room` joined with `member_events`.
    pub fn wants_member_events(&self, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|members| members.values().any(|m| m.member_events))
    }

    /// Delivers a room's diff to its local members: `full` to everyone, or
    /// with `occupancy`, `full` only to connections that asked for member
    /// events and `occupancy` to the others (nothing to them when it is
    /// `None` and they did not ask).
    pub fn deliver_diff(
        &self,
        room: &RoomName,
        full: Option<&Delivery>,
        occupancy: Option<&Delivery>,
        big: bool,
    ) {
        let Some(members) = self.rooms.get(room) else { return };
        let mut queued = 0;
        for membership in members.values() {
            let delivery = if !big || membership.member_events { full } else { occupancy };
            if let Some(delivery) = delivery
                && membership.deliver(delivery, &self.metrics)
            {
                queued += 1;
            }
        }
        self.metrics.frames_sent.inc_by(queued);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::telemetry::Metrics;

    fn user(id: &str) -> UserInfo {
        UserInfo { id: id.into(), name: id.into(), role: None, avatar: None }
    }

    #[test]
    fn a_window_keeps_who_changed_once_and_only_rooms_with_local_members() {
        let hub = Hub::new(8, usize::MAX, Arc::new(Metrics::default()));
        let (conn, _rx) = hub.open();
        let room = RoomName::new("general").unwrap();
        let elsewhere = RoomName::new("elsewhere").unwrap();
        hub.begin_join(&room, &conn, false);
        let rooms = [room.clone(), elsewhere];
        hub.offer_change(&rooms, &MemberChange::Joined { user: user("bob") });
        hub.offer_change(&rooms, &MemberChange::Status { user_id: "bob".into() });
        hub.offer_change(&rooms, &MemberChange::Left { user: user("bob") });
        hub.offer_change(&rooms, &MemberChange::Status { user_id: "carol".into() });
        let taken = hub.take_changes();
        assert_eq!(taken.len(), 1, "only the room with a local member: {taken:?}");
        let (name, changes) = &taken[0];
        assert_eq!(name, &room);
        assert_eq!(changes["bob"], Seen { joined: true, left: Some(user("bob")) });
        assert_eq!(changes["carol"], Seen::default());
        assert!(hub.take_changes().is_empty(), "taken once");
    }
}
