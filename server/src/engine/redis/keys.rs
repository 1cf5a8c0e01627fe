//! Redis key and channel names. Every key starts with `rc:`; a room's keys
//! share the `rc:r:<room>:` prefix, a user's `rc:u:<id>:`, an instance's
//! `rc:i:<id>:`, where each name taken from data is written as a [`part`]:
//! its length in bytes, `:`, then the name. Room names and user ids may hold
//! `:` (and a `client_id` anything), so without the length `a` + `b:c1` and
//! `a:b` + `c1` would name the same key, and a `client_id` of `log` could
//! name another room's stream. With it, every key reads back one way.
//! The reaping script builds user and room keys the same way (`PART` in
//! `scripts.rs`).

use roomcast_shared::RoomName;

/// A name from data inside a key: `<length>:<name>`. The length says where
/// the name ends, so no name (nor a name and what follows it) can pass for
/// another.
fn part(name: &str) -> String {
    format!("{}:{name}", name.len())
}

/// One room's keys.
pub(super) struct RoomKeys {
    /// The history generation (set once, survives instance restarts).
    pub epoch: String,
    /// The last offset given out.
    pub seq: String,
    /// The stream of events (fields `o`: offset, `e`: frame JSON; `m`: the
    /// message id of a message or an edit; `r`: what an edit is replayed as
    /// once its message is deleted).
    pub log: String,
    /// Message id to the message's current JSON.
    pub messages: String,
    /// Message ids scored by offset, for history pages.
    pub index: String,
    /// The ids of deleted messages whose events are still in `log`, which a
    /// replay erases, scored by the delete's offset.
    pub deleted: String,
    /// User id to the number of connections in the room (all instances).
    pub members: String,
    /// User id to the member's profile JSON.
    pub profiles: String,
    /// The members in list order: a sorted set of `<0|1><name>\0<id>`
    /// (1: looks offline), every score 0, read by `ZRANGEBYLEX`.
    pub order: String,
    /// User id to `<offset> <receipt JSON>`: each reader's position.
    pub reads: String,
    /// The readers scored by when they last read (ms), latest last.
    pub readers: String,
}

impl RoomKeys {
    pub fn new(room: &RoomName) -> Self {
        let p = format!("rc:r:{}:", part(room.as_str()));
        Self {
            epoch: format!("{p}epoch"),
            seq: format!("{p}seq"),
            log: format!("{p}log"),
            messages: format!("{p}msgs"),
            index: format!("{p}idx"),
            deleted: format!("{p}deleted"),
            members: format!("{p}members"),
            profiles: format!("{p}profiles"),
            order: format!("{p}order"),
            reads: format!("{p}reads"),
            readers: format!("{p}readers"),
        }
    }

    /// The idempotency key of a `client_id` from `sender`.
    pub fn idempotency(room: &RoomName, sender: &str, client_id: &str) -> String {
        format!("rc:r:{}:idem:{}:{}", part(room.as_str()), part(sender), part(client_id))
    }
}

/// The start of every room's channel name.
const ROOM_CHANNEL_PREFIX: &str = "rc:ch:";

/// The pub/sub channel of a room.
pub(super) fn room_channel(room: &RoomName) -> String {
    format!("{ROOM_CHANNEL_PREFIX}{}", part(room.as_str()))
}

/// The room whose channel `channel` is ([`room_channel`] read back).
pub(super) fn channel_room(channel: &str) -> Option<RoomName> {
    let (len, name) = channel.strip_prefix(ROOM_CHANNEL_PREFIX)?.split_once(':')?;
    (len.parse() == Ok(name.len())).then(|| RoomName::new(name).ok()).flatten()
}

/// The pub/sub channel every instance listens to, for frames addressed to
/// several rooms at once (presence), delivered once per connection. No room
/// channel can be named so: theirs go on with a length.
pub(super) const MULTI_CHANNEL: &str = "rc:ch:*multi";

/// Where a user's connections are counted, per instance (`o:<instance>` open,
/// `l:<instance>` in their grace period).
pub(super) fn user_connections(user_id: &str) -> String {
    format!("rc:u:{}:conns", part(user_id))
}

/// A user's status, custom text and last-seen time.
pub(super) fn user_state(user_id: &str) -> String {
    format!("rc:u:{}:state", part(user_id))
}

/// The rooms a user is a member of.
pub(super) fn user_rooms(user_id: &str) -> String {
    format!("rc:u:{}:rooms", part(user_id))
}

/// The bans and mutes in force, without a store (`sanctions.rs`).
pub(super) const SANCTIONS: &str = "rc:sanctions";

/// A user's unread notifications (JSON, oldest first).
pub(super) fn user_unread(user_id: &str) -> String {
    format!("rc:u:{}:unread", part(user_id))
}

/// The ids of the users online and visible on any instance, every score 0,
/// read in id order by `ZRANGEBYLEX`: changed by the scripts that count a
/// user's connections and set its status (and by reaping), so it follows
/// the counts.
pub(super) const ONLINE: &str = "rc:online";

/// Every instance that has registered, alive or not.
pub(super) const INSTANCES: &str = "rc:instances";

/// An instance's lease: exists while the instance is alive.
pub(super) fn instance_alive(instance: &str) -> String {
    format!("rc:i:{}:alive", part(instance))
}

/// An instance's memberships (`<room> <user>` to a connection count), to
/// undo them if the instance dies. Room names and user ids hold no space.
pub(super) fn instance_members(instance: &str) -> String {
    format!("rc:i:{}:members", part(instance))
}

/// Users with connections on an instance.
pub(super) fn instance_users(instance: &str) -> String {
    format!("rc:i:{}:users", part(instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    #[test]
    fn names_with_colons_cannot_pass_for_each_other() {
        let general = room("general");
        assert_ne!(
            RoomKeys::idempotency(&general, "a", "b:c1"),
            RoomKeys::idempotency(&general, "a:b", "c1")
        );
        // A client_id cannot name another room's keys, whatever the names.
        let other = RoomKeys::new(&room("general:idem:alice"));
        let idem = RoomKeys::idempotency(&general, "alice", "log");
        assert!(![other.log, other.seq, other.epoch].contains(&idem));
        assert_ne!(user_state("a:state"), user_state("a"));
        assert_ne!(RoomKeys::new(&room("a:1:b")).log, RoomKeys::new(&room("a")).log);
    }

    #[test]
    fn channels_read_back_to_their_room() {
        for name in ["general", "a:b", "user:x:y", "5:ab"] {
            assert_eq!(channel_room(&room_channel(&room(name))), Some(room(name)));
        }
        assert_eq!(channel_room(MULTI_CHANNEL), None);
        assert_eq!(channel_room("rc:ch:3:ab"), None, "the length must match");
    }
}
