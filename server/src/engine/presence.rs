//! The presence role: who is in which room, how many connections each user
//! has, their status, and the notifications kept for them while offline
//! (taken atomically with counting a connection in, so none is both kept
//! and delivered).
//!
//! Members are listed in one order everywhere, online first, then by name
//! and id ([`MemberKey`]), and paged from a [`MemberKey`] so that a page
//! costs its own size whatever the room's: each engine keeps every room's
//! members sorted as they come and go.
//!
//! Implementations: `memory/presence.rs` and `redis/presence.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::{
    DEFAULT_MEMBERS_LIMIT, MAX_MEMBERS_CURSOR_BYTES, MAX_MEMBERS_LIMIT, Member, MembersPage,
    Notification, Presence as UserPresence, RoomName, SetStatus, UserInfo,
};
use serde::{Deserialize, Serialize};

use super::{EngineError, Opened};

/// A member's place in its room's list: members who look online first
/// (`hidden` is false), then by name, then by id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MemberKey {
    /// Whether the member looks offline to others (invisible).
    pub hidden: bool,
    pub name: String,
    pub id: String,
}

impl MemberKey {
    /// The key of `user` with that visibility.
    pub fn of(user: &UserInfo, hidden: bool) -> Self {
        Self { hidden, name: user.name.clone(), id: user.id.clone() }
    }

    /// The cursor a client sends back to continue after this member:
    /// `<0|1>,<id>,<name>` (a user id holds no comma, so it reads back one
    /// way whatever the name holds).
    pub fn cursor(&self) -> String {
        format!("{},{},{}", u8::from(self.hidden), self.id, self.name)
    }

    /// Reads a cursor back; `None` for anything [`MemberKey::cursor`] did
    /// not write.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        let (hidden, rest) = cursor.split_once(',')?;
        let (id, name) = rest.split_once(',')?;
        let hidden = match hidden {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        roomcast_shared::room::validate_user_id(id).ok()?;
        Some(Self { hidden, name: name.to_owned(), id: id.to_owned() })
    }
}

/// Why a request for a page of members is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("limit must be between 1 and {MAX_MEMBERS_LIMIT}")]
    Limit,
    #[error("cursor is not one this server gave out")]
    Cursor,
}

/// Checks a request for a page of members (`members` frame, room presence
/// API): where it starts and how many it wants.
pub(crate) fn page_request(
    cursor: Option<&str>,
    limit: Option<u16>,
) -> Result<(Option<MemberKey>, usize), PageError> {
    let limit = limit.unwrap_or(DEFAULT_MEMBERS_LIMIT);
    if limit == 0 || limit > MAX_MEMBERS_LIMIT {
        return Err(PageError::Limit);
    }
    let after = match cursor {
        None => None,
        Some(cursor) if cursor.len() <= MAX_MEMBERS_CURSOR_BYTES => {
            Some(MemberKey::from_cursor(cursor).ok_or(PageError::Cursor)?)
        }
        Some(_) => return Err(PageError::Cursor),
    };
    Ok((after, usize::from(limit)))
}

/// One page of a room's members.
#[derive(Debug, Clone)]
pub(crate) struct MemberPage {
    /// How many members the room has.
    pub count: u64,
    /// Up to the page's limit, in [`MemberKey`] order.
    pub members: Vec<Member>,
    /// The last member's key when more follow.
    pub next: Option<MemberKey>,
}

impl MemberPage {
    /// The page as the `members` frame and the room presence API carry it.
    pub fn into_wire(self, room: RoomName) -> MembersPage {
        MembersPage {
            room,
            count: self.count,
            members: self.members,
            cursor: self.next.map(|key| key.cursor()),
        }
    }
}

/// A change of a room's membership or of a member's status, as it travels
/// to every instance's coalescer (`hub/diffs.rs`): what happened, not the
/// frame, which each instance builds once per window from the room's state
/// then (`engine/diffs.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum MemberChange {
    /// A user's first connection joined.
    Joined { user: UserInfo },
    /// A user's last connection left.
    Left { user: UserInfo },
    /// A member's status changed.
    Status { user_id: String },
}

impl MemberChange {
    /// The user the change is about.
    pub fn user_id(&self) -> &str {
        match self {
            Self::Joined { user } | Self::Left { user } => &user.id,
            Self::Status { user_id } => user_id,
        }
    }
}

/// What counting a connection into or out of a room did, decided with the
/// count itself (so two joins of an empty room cannot both miss, or both
/// see, that they were first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counted {
    /// In: the user's first connection in the room; out: their last.
    pub user: bool,
    /// In: the room's first member; out: the room has no member left.
    pub room: bool,
}

/// A change of presence that no call of this instance made: another
/// instance undoing what a dead one left (the Redis engine's leases).
#[derive(Debug, Clone)]
pub(crate) enum Departure {
    /// `user_id` left `room`; `vacated` when no member is left.
    Left { room: RoomName, user_id: String, vacated: bool },
    /// A user with no connection left anywhere (not one who is invisible).
    Offline(UserPresence),
}

/// Hears [`Departure`]s (webhooks record them).
pub(crate) type Departures = Arc<dyn Fn(Departure) + Send + Sync>;

/// Membership, connections, status and unread notifications.
#[async_trait]
pub(crate) trait Presence: Send + Sync + std::fmt::Debug {
    /// Hands `listener` the departures this presence finds by itself; an
    /// engine of one instance has none. Every wrapper passes it on.
    fn on_departures(&self, listener: Departures);

    /// Counts a connection of `user` into `room`.
    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<Counted, EngineError>;

    /// Counts a connection of `user_id` out of `room`.
    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<Counted, EngineError>;

    /// Up to `limit` of the room's members after `after` (from the first
    /// without), with their presence and the room's member count.
    async fn members_page(
        &self,
        room: &RoomName,
        after: Option<&MemberKey>,
        limit: usize,
    ) -> Result<MemberPage, EngineError>;

    /// The room's member count, and for each of `user_ids` the member with
    /// their presence now, or `None` for one who is not a member.
    async fn members_now(
        &self,
        room: &RoomName,
        user_ids: &[String],
    ) -> Result<(u64, Vec<Option<Member>>), EngineError>;

    /// The rooms `user_id` is a member of (with any connection).
    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError>;

    /// A connection of `user` opened (and is already in the hub, in its
    /// personal room). Takes the user's unread notifications, atomically with
    /// counting the connection in, so none is both kept and delivered.
    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError>;

    /// A connection of `user_id` closed. The user stays a member of its rooms
    /// and online until [`Presence::connection_expired`], after the grace
    /// period.
    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError>;

    /// The grace period of a closed connection ended; returns the user's
    /// presence when that was its last connection and others should hear it
    /// went offline.
    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError>;

    /// Sets a user's status; returns the presence others now see.
    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError>;

    /// Whether `user_id` has an open connection on any instance (one in its
    /// grace period does not count: nothing can be delivered to it).
    async fn connected(&self, user_id: &str) -> Result<bool, EngineError>;

    /// A user's presence as others see it (offline when unknown).
    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError>;

    /// How many users are online on any instance, and up to `limit` of them
    /// with their presence, by id after `after`. Online as others see it: an
    /// invisible user is not counted, one in the grace period after their
    /// last connection closed still is.
    async fn online_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(u64, Vec<UserPresence>), EngineError>;

    /// Delivers a notification to every connection of `user_id` when the user
    /// is online (returns true), or keeps it as unread (bounded) otherwise.
    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError>;
}
