//! Redis key and channel names. Every key starts with `rc:`; a room's keys
//! share the `rc:r:<room>:` prefix, a user's `rc:u:<id>:`, an instance's
//! `rc:i:<id>:`. Room names and user ids cannot contain spaces or newlines,
//! so they are safe inside key names and script arguments.

use roomcast_shared::RoomName;

/// One room's keys.
pub(super) struct RoomKeys {
    /// The history generation (set once, survives instance restarts).
    pub epoch: String,
    /// The last offset given out.
    pub seq: String,
    /// The stream of events (fields `o`: offset, `e`: frame JSON).
    pub log: String,
    /// Message id to the message's current JSON.
    pub messages: String,
    /// Message ids scored by offset, for history pages.
    pub index: String,
    /// User id to the number of connections in the room (all instances).
    pub members: String,
    /// User id to the member's profile JSON.
    pub profiles: String,
}

impl RoomKeys {
    pub fn new(room: &RoomName) -> Self {
        let p = format!("rc:r:{room}:");
        Self {
            epoch: format!("{p}epoch"),
            seq: format!("{p}seq"),
            log: format!("{p}log"),
            messages: format!("{p}msgs"),
            index: format!("{p}idx"),
            members: format!("{p}members"),
            profiles: format!("{p}profiles"),
        }
    }

    /// The idempotency key of a `client_id` from `sender`.
    pub fn idempotency(room: &RoomName, sender: &str, client_id: &str) -> String {
        format!("rc:r:{room}:idem:{sender}:{client_id}")
    }
}

/// The pub/sub channel of a room.
pub(super) fn room_channel(room: &RoomName) -> String {
    format!("rc:ch:{room}")
}

/// The pub/sub channel every instance listens to, for frames addressed to
/// several rooms at once (presence), delivered once per connection.
pub(super) const MULTI_CHANNEL: &str = "rc:ch:*multi";

/// Where a user's connections are counted, per instance (`o:<instance>` open,
/// `l:<instance>` in their grace period).
pub(super) fn user_connections(user_id: &str) -> String {
    format!("rc:u:{user_id}:conns")
}

/// A user's status, custom text and last-seen time.
pub(super) fn user_state(user_id: &str) -> String {
    format!("rc:u:{user_id}:state")
}

/// The rooms a user is a member of.
pub(super) fn user_rooms(user_id: &str) -> String {
    format!("rc:u:{user_id}:rooms")
}

/// A user's unread notifications (JSON, oldest first).
pub(super) fn user_unread(user_id: &str) -> String {
    format!("rc:u:{user_id}:unread")
}

/// Every instance that has registered, alive or not.
pub(super) const INSTANCES: &str = "rc:instances";

/// An instance's lease: exists while the instance is alive.
pub(super) fn instance_alive(instance: &str) -> String {
    format!("rc:i:{instance}:alive")
}

/// An instance's memberships (`<room> <user>` to a connection count), to
/// undo them if the instance dies.
pub(super) fn instance_members(instance: &str) -> String {
    format!("rc:i:{instance}:members")
}

/// Users with connections on an instance.
pub(super) fn instance_users(instance: &str) -> String {
    format!("rc:i:{instance}:users")
}
