//! The in-memory engine: one process holds every room stream, membership,
//! presence and unread notification. The default, and the reference for the
//! behaviour every engine must have.
//!
//! Everything it keeps is bounded: history per room by count and age and
//! over all rooms by bytes (the oldest events of any room go first); unread
//! notifications per user by count, bytes and age; and a periodic [`sweep`]
//! forgets what nobody needs any more: users offline and idle with nothing
//! kept for them, and rooms with neither members nor kept events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use roomcast_shared::{
    Member, Notification, Position, Presence, RoomName, ServerFrame, SetStatus, Status, UserInfo,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::stream::RoomStream;
use super::{Appended, Change, Engine, EngineError, Opened, Page, Snapshot};
use crate::config::{Config, HistoryLimits};
use crate::hub::{Delivery, Exclude, Hub, encode};
use crate::telemetry::Metrics;

/// What the in-memory engine keeps, and for how long (from [`Config`]).
#[derive(Debug, Clone)]
pub(crate) struct MemorySettings {
    pub history: HistoryLimits,
    pub unread_per_user: usize,
    pub unread_bytes_per_user: usize,
    pub unread_max_age: Duration,
    /// How long an offline user with nothing else kept is remembered.
    pub user_idle: Duration,
}

impl MemorySettings {
    pub fn new(config: &Config) -> Self {
        Self {
            history: config.history.clone(),
            unread_per_user: config.limits.notifications_per_user,
            unread_bytes_per_user: config.limits.notification_bytes_per_user,
            unread_max_age: config.limits.notification_max_age,
            user_idle: config.timing.user_idle,
        }
    }
}

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
    settings: MemorySettings,
    /// Each room's stream behind its own lock: rooms never wait on each other.
    streams: DashMap<RoomName, Arc<Mutex<RoomStream>>>,
    /// What all kept events cost (the sum of every stream's `bytes`), held
    /// within `history.memory_bytes`.
    history_bytes: AtomicUsize,
    /// Held by whoever is dropping events over the budget: one at a time.
    evicting: Mutex<()>,
    metrics: Arc<Metrics>,
    /// Each room's members. Boxed: most rooms are personal rooms with one
    /// member, and the smallest hash table has four slots, so one member
    /// costs four pointers rather than four profiles (280 bytes less per
    /// connection, docs/performance.md).
    members: DashMap<RoomName, HashMap<String, Box<RoomMember>>>,
    users: DashMap<String, UserState>,
}

impl MemoryEngine {
    pub fn new(hub: Arc<Hub>, settings: MemorySettings, metrics: Arc<Metrics>) -> Self {
        Self {
            hub,
            settings,
            streams: DashMap::new(),
            history_bytes: AtomicUsize::new(0),
            evicting: Mutex::new(()),
            metrics,
            members: DashMap::new(),
            users: DashMap::new(),
        }
    }

    /// Runs `change` on the room's stream, under its lock, and counts what
    /// it cost or freed.
    fn with_stream<T>(&self, room: &RoomName, change: impl FnOnce(&mut RoomStream) -> T) -> T {
        let mut change = Some(change);
        loop {
            let stream = self.stream(room);
            let mut stream = lock(&stream);
            // The sweep forgot it between the lookup and the lock: changing
            // it would change nobody's stream.
            if stream.retired {
                continue;
            }
            if let Some(change) = change.take() {
                let before = stream.bytes();
                let result = change(&mut stream);
                self.account(before, stream.bytes());
                return result;
            }
        }
    }

    fn account(&self, before: usize, after: usize) {
        if after >= before {
            self.history_bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.history_bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Over the history budget: drops the oldest events of all rooms until
    /// a tenth of the budget is free again (so that this runs rarely). A
    /// `since` from before what a room keeps is answered `recovered: false`.
    fn enforce_budget(&self) {
        let budget = self.settings.history.memory_bytes;
        if self.history_bytes.load(Ordering::Relaxed) <= budget {
            return;
        }
        let Ok(_only_us) = self.evicting.try_lock() else { return };
        let target = budget - budget / 10;
        let streams: Vec<Arc<Mutex<RoomStream>>> =
            self.streams.iter().map(|entry| entry.value().clone()).collect();
        let mut oldest: BinaryHeap<Reverse<(Instant, usize)>> = streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| lock(s).oldest_at().map(|at| Reverse((at, i))))
            .collect();
        while self.history_bytes.load(Ordering::Relaxed) > target
            && let Some(Reverse((_, i))) = oldest.pop()
        {
            let mut stream = lock(&streams[i]);
            let before = stream.bytes();
            stream.drop_oldest();
            self.account(before, stream.bytes());
            if let Some(at) = stream.oldest_at() {
                oldest.push(Reverse((at, i)));
            }
        }
    }

    /// Drops what expired and forgets what nobody needs: idle users, and
    /// rooms without members or kept events (their epoch goes with them; a
    /// client coming back gets `recovered: false` and the room as it is,
    /// empty, which loses nothing).
    fn sweep_once(&self) {
        let settings = &self.settings;
        self.users.retain(|_, user| {
            user.expire_unread(settings.unread_max_age);
            !user.forgettable(settings.user_idle)
        });
        let streams: Vec<Arc<Mutex<RoomStream>>> =
            self.streams.iter().map(|entry| entry.value().clone()).collect();
        for stream in streams {
            let mut stream = lock(&stream);
            let before = stream.bytes();
            stream.prune(&settings.history);
            self.account(before, stream.bytes());
        }
        // A joiner is a member before it reads the stream, so a room without
        // members has no reader that could miss a change to a forgotten one.
        self.streams.retain(|room, stream| {
            let mut stream = lock(stream);
            let forget = stream.is_empty() && !self.members.contains_key(room);
            stream.retired = forget;
            !forget
        });
        // A table keeps its size when emptied: after a burst, give the
        // memory back rather than keep room for entries long gone.
        let shrunk = shrink_when_sparse(&self.users)
            | shrink_when_sparse(&self.streams)
            | shrink_when_sparse(&self.members);
        if shrunk {
            crate::allocator::release_free_pages();
        }
        self.metrics.engine_users.set(self.users.len() as i64);
        self.metrics.engine_rooms.set(self.streams.len() as i64);
        self.metrics.history_bytes.set(self.history_bytes.load(Ordering::Relaxed) as i64);
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

/// Shrinks a map whose table is mostly empty (rehashing it: only then);
/// returns whether it did.
fn shrink_when_sparse<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V>) -> bool {
    const SMALL: usize = 4096;
    let sparse = map.capacity() > SMALL && map.len() * 4 < map.capacity();
    if sparse {
        map.shrink_to_fit();
    }
    sparse
}

/// Sweeps the engine every `interval` until shutdown.
pub(crate) async fn sweep(
    engine: Arc<MemoryEngine>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => engine.sweep_once(),
        }
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
        let appended = self.with_stream(room, |stream| {
            let appended = stream.apply(change, &self.settings.history)?;
            if let Some(event) = &appended.event {
                // Delivered while the stream is locked, so that every
                // connection receives a room's events in offset order.
                let text = encode(&ServerFrame::from(event.clone()));
                self.hub.deliver(
                    room,
                    &Delivery { offset: Some(appended.offset), text },
                    &Exclude::Nobody,
                );
            }
            Ok(appended)
        });
        self.enforce_budget();
        appended
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        Ok(self.with_stream(room, |stream| {
            stream.prune(&self.settings.history);
            stream.snapshot(since, history)
        }))
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
        let bytes = stream.bytes();
        stream.prune(&self.settings.history);
        self.account(bytes, stream.bytes());
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
