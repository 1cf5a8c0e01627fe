//! The coalescer's flush: once per window (`--presence-window-ms`), each
//! room with membership or presence changes gets one `presence_diff` built
//! from the room's state in the engine then, so a join, a leave or a status
//! change costs each member a share of one frame per window, however many
//! there were, rather than one frame each.
//!
//! Big rooms (over `--big-room-members`) send `occupancy` instead to the
//! connections that did not join with `member_events`, and only when their
//! membership changed. Each instance flushes for its own connections; every
//! instance hears every change (`Fanout::change`) and reads the same engine,
//! so they all converge on the same members.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::frame::PresenceDiff;
use roomcast_shared::{RoomName, ServerFrame};
use tokio_util::sync::CancellationToken;

use super::{EngineError, MemberKey, Presence};
use crate::hub::diffs::RoomChanges;
use crate::hub::{Delivery, Hub, encode};

/// What the flush needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DiffSettings {
    /// `--presence-window-ms`.
    pub window: Duration,
    /// `--big-room-members`.
    pub big_room_members: u64,
}

/// Flushes the hub's gathered changes every window until `shutdown`.
pub(crate) async fn run(
    presence: Arc<dyn Presence>,
    hub: Arc<Hub>,
    settings: DiffSettings,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.window);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each room's member count at its last flush: a room known to be big
    // is asked only for its count while nobody here wants its members.
    let mut counts = HashMap::<RoomName, u64>::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let changed = hub.take_changes();
        counts.retain(|room, _| hub.has_members(room));
        for (room, changes) in changed {
            if !hub.has_members(&room) {
                continue;
            }
            let last = counts.get(&room).copied();
            match flush(&*presence, &hub, settings, &room, &changes, last).await {
                Ok(count) => {
                    counts.insert(room, count);
                }
                Err(err) => {
                    // Kept for the next window: a diff must not be lost, or
                    // this instance's members would drift from the room.
                    tracing::warn!(%room, %err, "presence diff deferred");
                    hub.restore_changes(room, changes);
                }
            }
        }
    }
}

/// Builds and delivers one room's diff; returns the room's member count.
/// `last`: the count at the previous flush.
async fn flush(
    presence: &dyn Presence,
    hub: &Hub,
    settings: DiffSettings,
    room: &RoomName,
    changes: &RoomChanges,
    last: Option<u64>,
) -> Result<u64, EngineError> {
    let big = |count: u64| count > settings.big_room_members;
    if last.is_some_and(big) && !hub.wants_member_events(room) {
        // Only counts go out: neither the members nor a diff are needed.
        let (count, _) = presence.members_now(room, &[]).await?;
        if big(count) {
            let moved = changes.values().any(|seen| seen.joined || seen.left.is_some());
            let occupancy = moved.then(|| Delivery {
                offset: None,
                text: encode(&ServerFrame::Occupancy { room: room.clone(), count }),
            });
            hub.deliver_diff(room, None, occupancy.as_ref(), true);
            return Ok(count);
        }
    }
    let ids: Vec<String> = changes.keys().cloned().collect();
    let (count, now) = presence.members_now(room, &ids).await?;
    let mut diff = PresenceDiff {
        room: room.clone(),
        count,
        joins: Vec::new(),
        leaves: Vec::new(),
        updates: Vec::new(),
    };
    for (id, member) in ids.iter().zip(now) {
        let seen = &changes[id];
        match member {
            // A member now: new to whoever heard it leave, or a status change.
            Some(member) if seen.joined || seen.left.is_some() => diff.joins.push(member),
            Some(member) => diff.updates.push(member.presence),
            // Not a member: gone, if it was one. A join whose leave has not
            // arrived yet waits for it.
            None => diff.leaves.extend(seen.left.clone()),
        }
    }
    diff.joins.sort_by_cached_key(|m| MemberKey::of(&m.user, false));
    diff.leaves.sort_by(|a, b| a.id.cmp(&b.id));
    diff.updates.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let moved = !diff.joins.is_empty() || !diff.leaves.is_empty();
    let changed = moved || !diff.updates.is_empty();
    let big = big(count);
    let full =
        changed.then(|| Delivery { offset: None, text: encode(&ServerFrame::PresenceDiff(diff)) });
    let occupancy = (big && moved).then(|| Delivery {
        offset: None,
        text: encode(&ServerFrame::Occupancy { room: room.clone(), count }),
    });
    hub.deliver_diff(room, full.as_ref(), occupancy.as_ref(), big);
    Ok(count)
}
