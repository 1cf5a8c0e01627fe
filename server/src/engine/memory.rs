//! The in-memory engine: one process holds every room stream, membership,
//! presence and unread notification. The default, and the reference for the
//! behaviour every engine must have.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dashmap::DashMap;
use roomcast_shared::{
    Member, Notification, Position, Presence, RoomName, ServerFrame, SetStatus, Status, UserInfo,
};
use time::OffsetDateTime;

use super::stream::RoomStream;
use super::{Appended, Change, Engine, EngineError, Opened, Page, Snapshot};
use crate::config::HistoryLimits;
use crate::hub::{Delivery, Exclude, Hub, encode};

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
    unread: VecDeque<Notification>,
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
        }
    }
}

impl UserState {
    fn is_connected(&self) -> bool {
        self.open + self.lingering > 0
    }

    fn presence(&self, user_id: &str) -> Presence {
        let status = if self.is_connected() { self.status.visible() } else { Status::Offline };
        Presence {
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
}

/// The in-memory engine.
#[derive(Debug)]
pub(crate) struct MemoryEngine {
    hub: Arc<Hub>,
    history: HistoryLimits,
    unread_per_user: usize,
    /// Each room's stream behind its own lock: rooms never wait on each other.
    streams: DashMap<RoomName, Arc<Mutex<RoomStream>>>,
    /// Each room's members. Boxed: most rooms are personal rooms with one
    /// member, and the smallest hash table has four slots, so one member
    /// costs four pointers rather than four profiles (280 bytes less per
    /// connection, docs/performance.md).
    members: DashMap<RoomName, HashMap<String, Box<RoomMember>>>,
    users: DashMap<String, UserState>,
}

impl MemoryEngine {
    pub fn new(hub: Arc<Hub>, history: HistoryLimits, unread_per_user: usize) -> Self {
        Self {
            hub,
            history,
            unread_per_user,
            streams: DashMap::new(),
            members: DashMap::new(),
            users: DashMap::new(),
        }
    }

    fn stream(&self, room: &RoomName) -> Arc<Mutex<RoomStream>> {
        self.streams
            .entry(room.clone())
            .or_insert_with(|| {
                // A fresh epoch per stream: a restarted process cannot confuse
                // its new offsets with the old ones.
                let epoch = super::random_id();
                Arc::new(Mutex::new(RoomStream::new(room.clone(), epoch)))
            })
            .clone()
    }
}

fn lock(stream: &Mutex<RoomStream>) -> std::sync::MutexGuard<'_, RoomStream> {
    // A panic while holding the lock cannot leave a stream half-updated in a
    // way later readers would misread, so a poisoned lock is still usable.
    stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Engine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        let stream = self.stream(room);
        let mut stream = lock(&stream);
        let appended = stream.apply(change, &self.history)?;
        if let Some(event) = &appended.event {
            // Delivered while the stream is locked, so that every connection
            // receives a room's events in offset order.
            let text = encode(&ServerFrame::from(event.clone()));
            self.hub.deliver(
                room,
                &Delivery { offset: Some(appended.offset), text },
                &Exclude::Nobody,
            );
        }
        Ok(appended)
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        let stream = self.stream(room);
        let mut stream = lock(&stream);
        stream.prune(&self.history);
        Ok(stream.snapshot(since, history))
    }

    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let Some(stream) = self.streams.get(room).map(|s| s.clone()) else {
            return Ok(Page { messages: Vec::new(), has_more: false });
        };
        let mut stream = lock(&stream);
        stream.prune(&self.history);
        Ok(stream.history(before, limit))
    }

    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError> {
        self.hub.deliver_many(rooms, &delivery, &exclude);
        Ok(())
    }

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<bool, EngineError> {
        let first = {
            let mut members = self.members.entry(room.clone()).or_default();
            let member = members
                .entry(user.id.clone())
                .or_insert_with(|| Box::new(RoomMember { user: user.clone(), connections: 0 }));
            member.connections += 1;
            member.connections == 1
        };
        if first {
            self.users.entry(user.id.clone()).or_default().rooms.insert(room.clone());
        }
        Ok(first)
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<bool, EngineError> {
        let last = match self.members.entry(room.clone()) {
            dashmap::Entry::Occupied(mut members) => {
                let last = match members.get_mut().get_mut(user_id) {
                    Some(member) if member.connections > 1 => {
                        member.connections -= 1;
                        false
                    }
                    Some(_) => {
                        members.get_mut().remove(user_id);
                        true
                    }
                    None => false,
                };
                if members.get().is_empty() {
                    members.remove();
                }
                last
            }
            dashmap::Entry::Vacant(_) => false,
        };
        if last && let Some(mut user) = self.users.get_mut(user_id) {
            user.rooms.remove(room);
        }
        Ok(last)
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, EngineError> {
        let profiles: Vec<UserInfo> = match self.members.get(room) {
            Some(members) => members.values().map(|m| m.user.clone()).collect(),
            None => return Ok(Vec::new()),
        };
        let mut members: Vec<Member> = profiles
            .into_iter()
            .map(|user| {
                let presence = match self.users.get(&user.id) {
                    Some(state) => state.presence(&user.id),
                    None => UserState::default().presence(&user.id),
                };
                Member { user, presence }
            })
            .collect();
        super::sort_members(&mut members);
        Ok(members)
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
        Ok(Opened { came_online, unread: state.unread.drain(..).collect() })
    }

    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError> {
        if let Some(mut state) = self.users.get_mut(user_id) {
            state.open = state.open.saturating_sub(1);
            state.lingering += 1;
        }
        Ok(())
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<Presence>, EngineError> {
        let Some(mut state) = self.users.get_mut(user_id) else { return Ok(None) };
        state.lingering = state.lingering.saturating_sub(1);
        if state.is_connected() {
            return Ok(None);
        }
        state.last_seen = OffsetDateTime::now_utc();
        // An invisible user already looked offline: nothing changes for others.
        Ok((state.status != SetStatus::Invisible).then(|| state.presence(user_id)))
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<Presence, EngineError> {
        let mut state = self.users.entry(user_id.to_owned()).or_default();
        state.status = status;
        state.custom = custom;
        Ok(state.presence(user_id))
    }

    async fn presence(&self, user_id: &str) -> Result<Presence, EngineError> {
        Ok(match self.users.get(user_id) {
            Some(state) => state.presence(user_id),
            None => UserState::default().presence(user_id),
        })
    }

    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError> {
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
        if self.unread_per_user > 0 {
            if state.unread.len() == self.unread_per_user {
                state.unread.pop_front();
            }
            state.unread.push_back(notification);
        }
        Ok(false)
    }
}
