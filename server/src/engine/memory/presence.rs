//! Presence in one process: room members with their connection counts
//! (a big room's kept in list order too, so a page costs its size), and
//! per user the
//! open and lingering connections, the status, the rooms and the
//! notifications kept while offline.
//!
//! A user's entry is locked while a notification is delivered or kept and
//! while a connection is counted in, which makes taking the unread
//! notifications atomic with counting the connection.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use roomcast_shared::{
    Member, Notification, Presence as UserPresence, RoomName, ServerFrame, SetStatus, Status,
    UserInfo,
};
use time::OffsetDateTime;

use super::{MemorySettings, shrink_when_sparse};
use crate::engine::{Counted, Departures, EngineError, MemberKey, MemberPage, Opened, Presence};
use crate::hub::{Delivery, Exclude, Hub, encode};

/// A notification kept for an offline user.
#[derive(Debug)]
struct Unread {
    notification: Notification,
    at: Instant,
    /// Its size as JSON, counted against the per-user byte cap.
    bytes: usize,
}

/// Everything the engine keeps about one user.
#[derive(Debug)]
struct UserState {
    /// Open connections, on which notifications can be delivered now.
    open: usize,
    /// Closed connections still in their grace period: the user stays online.
    lingering: usize,
    /// The status the user set (online by default) and its custom text.
    status: SetStatus,
    custom: Option<String>,
    /// When the user was last seen (updated when going offline).
    last_seen: OffsetDateTime,
    /// Rooms the user is a member of, to tell them of presence changes.
    rooms: HashSet<RoomName>,
    /// Notifications posted while the user was offline, oldest first.
    unread: VecDeque<Unread>,
    /// The sum of their `bytes`.
    unread_bytes: usize,
}

impl Default for UserState {
    fn default() -> Self {
        Self {
            open: 0,
            lingering: 0,
            status: SetStatus::Online,
            custom: None,
            last_seen: OffsetDateTime::now_utc(),
            rooms: HashSet::new(),
            unread: VecDeque::new(),
            unread_bytes: 0,
        }
    }
}

impl UserState {
    fn is_connected(&self) -> bool {
        self.open + self.lingering > 0
    }

    /// Keeps a notification, dropping the oldest to stay within the caps.
    fn keep_unread(&mut self, unread: Unread, settings: &MemorySettings) {
        self.unread_bytes += unread.bytes;
        self.unread.push_back(unread);
        while self.unread.len() > settings.unread_per_user
            || self.unread_bytes > settings.unread_bytes_per_user
        {
            self.drop_oldest_unread();
        }
    }

    fn drop_oldest_unread(&mut self) {
        if let Some(dropped) = self.unread.pop_front() {
            self.unread_bytes -= dropped.bytes;
        }
    }

    fn expire_unread(&mut self, max_age: Duration) {
        while self.unread.front().is_some_and(|u| u.at.elapsed() > max_age) {
            self.drop_oldest_unread();
        }
    }

    /// Whether nothing needs remembering: offline, in no room, nothing
    /// unread, and idle for `idle` (its status and last-seen time go too).
    fn forgettable(&self, idle: Duration) -> bool {
        !self.is_connected()
            && self.rooms.is_empty()
            && self.unread.is_empty()
            && OffsetDateTime::now_utc() - self.last_seen >= idle
    }

    fn presence(&self, user_id: &str) -> UserPresence {
        let status = if self.is_connected() { self.status.visible() } else { Status::Offline };
        UserPresence {
            user_id: user_id.to_owned(),
            status,
            // Whoever looks offline shows no custom status either.
            custom: if status == Status::Offline { None } else { self.custom.clone() },
            last_seen: if self.is_connected() { OffsetDateTime::now_utc() } else { self.last_seen },
        }
    }
}

/// A member of a room: the profile shown to others and how many of the
/// user's connections joined.
#[derive(Debug)]
struct RoomMember {
    user: UserInfo,
    connections: usize,
    /// Whether the member looked offline (invisible) when last sorted: its
    /// key in [`RoomMembers::order`] is found from it.
    hidden: bool,
}

impl RoomMember {
    fn key(&self) -> MemberKey {
        MemberKey::of(&self.user, self.hidden)
    }
}

/// Members from which a room keeps them sorted as they come and go; a
/// smaller room sorts them when a page is asked for. Most rooms are personal
/// rooms of one member, where a sorted set's first node alone would cost
/// more than the rest of the connection (docs/performance.md); sorting a
/// few dozen is cheaper than keeping them sorted.
const SORTED_FROM: usize = 64;

/// One room's members, by id and, in a big room, in list order.
#[derive(Debug, Default)]
struct RoomMembers {
    /// Boxed: the smallest hash table has four slots, so one member costs
    /// four pointers rather than four profiles (docs/performance.md).
    by_id: HashMap<String, Box<RoomMember>>,
    /// Every member's key from [`SORTED_FROM`] members, empty (without an
    /// allocation) in a smaller room: emptied again below half as many, so
    /// a room at the edge does not rebuild it on every join and leave.
    order: BTreeSet<MemberKey>,
}

impl RoomMembers {
    fn sorted(&self) -> bool {
        !self.order.is_empty()
    }

    fn added(&mut self, key: MemberKey) {
        if self.sorted() {
            self.order.insert(key);
        } else if self.by_id.len() >= SORTED_FROM {
            self.order = self.by_id.values().map(|m| m.key()).collect();
        }
    }

    fn removed(&mut self, key: &MemberKey) {
        self.order.remove(key);
        if self.by_id.len() < SORTED_FROM / 2 {
            self.order = BTreeSet::new();
        }
    }

    /// Up to `limit` keys after `after`, and whether more follow.
    fn page(&self, after: Option<&MemberKey>, limit: usize) -> (Vec<MemberKey>, bool) {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut keys: Vec<MemberKey> = match self.sorted() {
            true => self.order.range((from, Bound::Unbounded)).take(limit + 1).cloned().collect(),
            false => {
                let mut all: Vec<MemberKey> = self
                    .by_id
                    .values()
                    .map(|m| m.key())
                    .filter(|key| after.is_none_or(|after| key > after))
                    .collect();
                all.sort_unstable();
                all.truncate(limit + 1);
                all
            }
        };
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys, more)
    }
}

/// The in-memory presence.
#[derive(Debug)]
pub(crate) struct MemoryPresence {
    hub: Arc<Hub>,
    settings: MemorySettings,
    /// Each room's members.
    members: DashMap<RoomName, RoomMembers>,
    users: DashMap<String, UserState>,
    /// The ids of the users online and visible, for the online list: changed
    /// only when a user comes online, goes offline or turns (in)visible, and
    /// always while that user's entry is held, so it follows their state.
    online: std::sync::Mutex<BTreeSet<String>>,
}

impl MemoryPresence {
    /// A member with the presence others see now.
    fn member(&self, user: UserInfo) -> Member {
        let presence = match self.users.get(&user.id) {
            Some(state) => state.presence(&user.id),
            None => UserState::default().presence(&user.id),
        };
        Member { user, presence }
    }

    /// Keeps `user_id` in the online list when `state` says others see it
    /// online, out of it otherwise. Called with the user's entry held.
    fn list_online(&self, user_id: &str, state: &UserState) {
        let visible = state.is_connected() && state.status != SetStatus::Invisible;
        let mut online = self.online.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if visible {
            if !online.contains(user_id) {
                online.insert(user_id.to_owned());
            }
        } else {
            online.remove(user_id);
        }
    }

    /// Puts `user_id` where its visibility sorts it in each of `rooms`.
    fn resort(&self, user_id: &str, hidden: bool, rooms: &[RoomName]) {
        for room in rooms {
            let Some(mut members) = self.members.get_mut(room) else { continue };
            let Some(member) = members.by_id.get_mut(user_id) else { continue };
            if member.hidden != hidden {
                let old = member.key();
                member.hidden = hidden;
                let new = member.key();
                if members.sorted() {
                    members.order.remove(&old);
                    members.order.insert(new);
                }
            }
        }
    }

    pub fn new(hub: Arc<Hub>, settings: MemorySettings) -> Self {
        Self {
            hub,
            settings,
            members: DashMap::new(),
            users: DashMap::new(),
            online: std::sync::Mutex::default(),
        }
    }

    /// Whether `room` has members (on any connection, in their grace period
    /// too).
    pub fn has_members(&self, room: &RoomName) -> bool {
        self.members.contains_key(room)
    }

    /// Drops expired notifications and forgets idle users; returns how many
    /// users are remembered.
    pub fn sweep(&self) -> usize {
        let settings = &self.settings;
        self.users.retain(|_, user| {
            user.expire_unread(settings.unread_max_age);
            !user.forgettable(settings.user_idle)
        });
        // A table keeps its size when emptied: after a burst, give the
        // memory back rather than keep room for entries long gone.
        shrink_when_sparse(&self.users);
        shrink_when_sparse(&self.members);
        self.users.len()
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    /// One instance: every departure is a call it made.
    fn on_departures(&self, _listener: Departures) {}

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<Counted, EngineError> {
        let hidden =
            self.users.get(&user.id).is_some_and(|state| state.status == SetStatus::Invisible);
        let counted = {
            let mut members = self.members.entry(room.clone()).or_default();
            let member = members.by_id.entry(user.id.clone()).or_insert_with(|| {
                Box::new(RoomMember { user: user.clone(), connections: 0, hidden })
            });
            member.connections += 1;
            let first = member.connections == 1;
            if first {
                let key = member.key();
                members.added(key);
            }
            Counted { user: first, room: first && members.by_id.len() == 1 }
        };
        if counted.user {
            self.users.entry(user.id.clone()).or_default().rooms.insert(room.clone());
        }
        Ok(counted)
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<Counted, EngineError> {
        let counted = match self.members.entry(room.clone()) {
            dashmap::Entry::Occupied(mut entry) => {
                let members = entry.get_mut();
                let last = match members.by_id.get_mut(user_id) {
                    Some(member) if member.connections > 1 => {
                        member.connections -= 1;
                        false
                    }
                    Some(_) => {
                        if let Some(member) = members.by_id.remove(user_id) {
                            members.removed(&member.key());
                        }
                        true
                    }
                    None => false,
                };
                let empty = members.by_id.is_empty();
                if empty {
                    entry.remove();
                }
                Counted { user: last, room: last && empty }
            }
            dashmap::Entry::Vacant(_) => Counted::default(),
        };
        if counted.user
            && let Some(mut user) = self.users.get_mut(user_id)
        {
            user.rooms.remove(room);
        }
        Ok(counted)
    }

    async fn members_page(
        &self,
        room: &RoomName,
        after: Option<&MemberKey>,
        limit: usize,
    ) -> Result<MemberPage, EngineError> {
        let (count, page, more) = match self.members.get(room) {
            Some(members) => {
                let (keys, more) = members.page(after, limit);
                let page: Vec<(MemberKey, UserInfo)> = keys
                    .into_iter()
                    .filter_map(|key| {
                        let user = members.by_id.get(&key.id)?.user.clone();
                        Some((key, user))
                    })
                    .collect();
                (members.by_id.len() as u64, page, more)
            }
            None => (0, Vec::new(), false),
        };
        let next = if more { page.last().map(|(key, _)| key.clone()) } else { None };
        let members = page.into_iter().map(|(_, user)| self.member(user)).collect();
        Ok(MemberPage { count, members, next })
    }

    async fn members_now(
        &self,
        room: &RoomName,
        user_ids: &[String],
    ) -> Result<(u64, Vec<Option<Member>>), EngineError> {
        let (count, profiles) = match self.members.get(room) {
            Some(members) => (
                members.by_id.len() as u64,
                user_ids.iter().map(|id| members.by_id.get(id).map(|m| m.user.clone())).collect(),
            ),
            None => (0, vec![None; user_ids.len()]),
        };
        let members = profiles
            .into_iter()
            .map(|profile: Option<UserInfo>| profile.map(|user| self.member(user)))
            .collect();
        Ok((count, members))
    }

    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError> {
        Ok(self.users.get(user_id).map(|u| u.rooms.iter().cloned().collect()).unwrap_or_default())
    }

    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError> {
        let mut state = self.users.entry(user.id.clone()).or_default();
        let was_connected = state.is_connected();
        state.open += 1;
        let came_online = (!was_connected && state.status != SetStatus::Invisible)
            .then(|| state.presence(&user.id));
        if came_online.is_some() {
            self.list_online(&user.id, &state);
        }
        state.expire_unread(self.settings.unread_max_age);
        state.unread_bytes = 0;
        let unread = state.unread.drain(..).map(|u| u.notification).collect();
        Ok(Opened { came_online, unread })
    }

    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError> {
        if let Some(mut state) = self.users.get_mut(user_id) {
            state.open = state.open.saturating_sub(1);
            state.lingering += 1;
        }
        Ok(())
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError> {
        let Some(mut state) = self.users.get_mut(user_id) else { return Ok(None) };
        state.lingering = state.lingering.saturating_sub(1);
        if state.is_connected() {
            return Ok(None);
        }
        state.last_seen = OffsetDateTime::now_utc();
        self.list_online(user_id, &state);
        // An invisible user already looked offline: nothing changes for others.
        Ok((state.status != SetStatus::Invisible).then(|| state.presence(user_id)))
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError> {
        let (presence, rooms) = {
            let mut state = self.users.entry(user_id.to_owned()).or_default();
            state.status = status;
            state.custom = custom;
            self.list_online(user_id, &state);
            (state.presence(user_id), state.rooms.iter().cloned().collect::<Vec<_>>())
        };
        // With the user's entry released: a room's entry is never taken
        // while a user's is held.
        self.resort(user_id, status == SetStatus::Invisible, &rooms);
        Ok(presence)
    }

    async fn connected(&self, user_id: &str) -> Result<bool, EngineError> {
        Ok(self.users.get(user_id).is_some_and(|state| state.open > 0))
    }

    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError> {
        Ok(match self.users.get(user_id) {
            Some(state) => state.presence(user_id),
            // Never seen, or forgotten: seen last at the epoch, as in Redis.
            None => UserPresence {
                user_id: user_id.to_owned(),
                status: Status::Offline,
                custom: None,
                last_seen: OffsetDateTime::UNIX_EPOCH,
            },
        })
    }

    async fn online_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(u64, Vec<UserPresence>), EngineError> {
        let (count, ids): (u64, Vec<String>) = {
            let online = self.online.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let page = online.range::<str, _>((from, Bound::Unbounded)).take(limit).cloned();
            (online.len() as u64, page.collect())
        };
        // With the list released: a user's entry is never taken while the
        // list is held, as the list is taken while an entry is.
        let page = ids
            .iter()
            .map(|id| match self.users.get(id) {
                Some(state) => state.presence(id),
                None => UserState::default().presence(id),
            })
            .collect();
        Ok((count, page))
    }

    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError> {
        let bytes = serde_json::to_string(&notification).map_or(0, |json| json.len());
        let mut state = self.users.entry(user_id.to_owned()).or_default();
        if state.open > 0 {
            // Delivered while the user's entry is locked, so a connection that
            // is opening either takes it as unread or receives it here.
            if let Ok(room) = RoomName::personal(user_id) {
                let text = encode(&ServerFrame::Notification(notification));
                self.hub.deliver(&room, &Delivery { offset: None, text }, &Exclude::Nobody);
            }
            return Ok(true);
        }
        // One notification over the byte cap alone is not kept (it would
        // push out everything else and still be over).
        if self.settings.unread_per_user > 0 && bytes <= self.settings.unread_bytes_per_user {
            state.keep_unread(Unread { notification, at: Instant::now(), bytes }, &self.settings);
        } else {
            tracing::debug!(user = user_id, bytes, "notification too big to keep as unread");
        }
        Ok(false)
    }
}
