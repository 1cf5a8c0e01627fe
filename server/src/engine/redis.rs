//! The Redis engine: several instances share rooms through one Redis.
//!
//! - Room streams live in Redis (a stream of events, a hash of messages in
//!   their current state, an index by offset, idempotency keys with expiry),
//!   so a client may recover on any instance; the epoch survives restarts.
//! - Appends run as Lua scripts that assign the offset, store and publish in
//!   one atomic step, which keeps every room in offset order everywhere.
//! - Fan-out: each instance subscribes (one connection, RESP3 push) only to
//!   the rooms it has members in, and publishes each frame once per room.
//! - Presence and membership are counted per instance, and each instance
//!   holds a lease; the survivors undo what a dead instance left (see
//!   `lease.rs`), so nobody stays online after a crash.
//! - When Redis is unreachable, operations fail with `unavailable` (nothing
//!   pretends to succeed), `/health` says `degraded`, and the connections
//!   reconnect with backoff and restore their subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError};
use roomcast_shared::{
    ChatMessage, Member, MessageDeleted, MessageUpdated, Notification, Position, Presence,
    RoomEvent, RoomName, ServerFrame, SetStatus, Status, UserInfo,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Appended, Change, Engine, EngineError, Opened, Page, Snapshot};
use crate::config::HistoryLimits;
use crate::hub::{Delivery, Exclude, Hub, encode};

mod fanout;
mod keys;
pub(crate) mod lease;
mod scripts;

use keys::RoomKeys;
use scripts::*;

/// How long one Redis command may take before it counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest pause between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Settings of the Redis engine.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    pub url: String,
    pub history: HistoryLimits,
    pub unread_per_user: usize,
    /// Bytes of unread notifications (JSON) kept per user.
    pub unread_bytes_per_user: usize,
    /// Age after which unread notifications are dropped.
    pub unread_max_age: Duration,
    /// How long an instance's lease lasts without renewal.
    pub lease: Duration,
}

/// The Redis engine.
pub(crate) struct RedisEngine {
    hub: Arc<Hub>,
    /// This instance's id, in leases and per-instance counts.
    instance: String,
    /// Commands (multiplexed, reconnecting).
    commands: ConnectionManager,
    /// Subscriptions, on a connection of their own so that delivering
    /// published frames never delays command replies.
    subscriber: ConnectionManager,
    /// Serializes subscribe and unsubscribe, so a leave and a join of the
    /// same room cannot cross (see `unwatch`).
    subscriptions: tokio::sync::Mutex<()>,
    settings: RedisSettings,
    /// Whether the last command reached Redis (for `/health`).
    available: AtomicBool,
}

impl std::fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEngine").field("instance", &self.instance).finish_non_exhaustive()
    }
}

fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

/// The frame JSON split around its `offset` value (serialized as 0), so a
/// script can put the offset it assigns in between.
fn split_at_offset(json: &str) -> (&str, &str) {
    const FIELD: &str = "\"offset\":0";
    match json.find(FIELD) {
        Some(at) => (&json[..at + FIELD.len() - 1], &json[at + FIELD.len()..]),
        None => (json, ""),
    }
}

impl RedisEngine {
    /// Connects (failing if Redis cannot be reached now) and starts watching
    /// the channel for multi-room frames.
    pub async fn connect(hub: Arc<Hub>, settings: RedisSettings) -> Result<Arc<Self>, RedisError> {
        let client = redis::Client::open(with_resp3(&settings.url))?;
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_max_delay(MAX_RECONNECT_DELAY)
        };
        let commands = client.get_connection_manager_with_config(config()).await?;
        let instance = super::random_id();
        let receiver = fanout::Receiver { hub: hub.clone(), instance: instance.clone() };
        let push = move |info: redis::PushInfo| {
            receiver.handle(info);
            Ok::<(), redis::aio::SendError>(())
        };
        let subscriber_config = config().set_push_sender(push).set_automatic_resubscription();
        let mut subscriber = client.get_connection_manager_with_config(subscriber_config).await?;
        subscriber.subscribe(keys::MULTI_CHANNEL).await?;
        Ok(Arc::new(Self {
            hub,
            instance,
            commands,
            subscriber,
            subscriptions: tokio::sync::Mutex::new(()),
            settings,
            available: AtomicBool::new(true),
        }))
    }

    /// Runs one Redis call with a deadline, and records whether Redis
    /// answered (for `/health`). While Redis is down, calls fail within the
    /// deadline instead of waiting for the reconnection.
    async fn exec<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, call).await {
            Ok(result) => self.track(result),
            Err(_) => {
                self.available.store(false, Ordering::Relaxed);
                Err(EngineError::Unavailable(format!(
                    "Redis did not answer within {RESPONSE_TIMEOUT:?}"
                )))
            }
        }
    }

    fn track<T>(&self, result: Result<T, RedisError>) -> Result<T, EngineError> {
        match result {
            Ok(value) => {
                self.available.store(true, Ordering::Relaxed);
                Ok(value)
            }
            Err(err) => {
                if err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                {
                    self.available.store(false, Ordering::Relaxed);
                }
                // The details (a script's error text, key names) are for
                // the log: the client learns only that the store failed.
                tracing::warn!(%err, "redis command failed");
                Err(EngineError::Unavailable("the shared store failed; try again".into()))
            }
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.commands.clone()
    }

    fn min_stream_id(&self) -> String {
        let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let min = now_ms - self.settings.history.max_age.as_millis() as i128;
        format!("{}-0", min.max(0))
    }

    async fn publish(&self, channel: &str, payload: String) -> Result<(), EngineError> {
        self.exec(self.conn().publish::<_, _, ()>(channel, payload)).await
    }

    /// A user's presence from their connection counts and stored state.
    async fn presence_of(&self, user_id: &str) -> Result<Presence, EngineError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(keys::user_connections(user_id)).hgetall(keys::user_state(user_id));
        let (conns, state): (HashMap<String, i64>, HashMap<String, String>) =
            self.exec(pipe.query_async(&mut self.conn())).await?;
        Ok(presence(user_id, conns.values().sum::<i64>() > 0, &state))
    }
}

/// Turns a flat `[field, value, ...]` array into a map.
fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

fn stored_status(state: &HashMap<String, String>) -> SetStatus {
    state
        .get("status")
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s.clone())).ok())
        .unwrap_or(SetStatus::Online)
}

fn presence(user_id: &str, connected: bool, state: &HashMap<String, String>) -> Presence {
    let status = if connected { stored_status(state).visible() } else { Status::Offline };
    let last_seen = state.get("last_seen").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    Presence {
        user_id: user_id.to_owned(),
        status,
        custom: if status == Status::Offline { None } else { state.get("custom").cloned() },
        last_seen: if connected {
            OffsetDateTime::now_utc()
        } else {
            last_seen.unwrap_or(OffsetDateTime::UNIX_EPOCH)
        },
    }
}

fn parse_event(json: &str) -> Option<RoomEvent> {
    serde_json::from_str(json).map_err(|err| tracing::warn!(%err, "unreadable event in Redis")).ok()
}

#[async_trait]
impl Engine for RedisEngine {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn healthy(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        let keys = RoomKeys::new(room);
        let limits = &self.settings.history;
        let channel = keys::room_channel(room);
        match change {
            Change::Message { sender, content, client_id } => {
                let id = uuid::Uuid::now_v7().to_string();
                let idempotency = RoomKeys::idempotency(room, &sender.id, &client_id);
                let mut message = ChatMessage {
                    room: room.clone(),
                    id: id.clone(),
                    offset: 0,
                    client_id,
                    sender,
                    content,
                    created_at: OffsetDateTime::now_utc(),
                    edited_at: None,
                };
                let json = serde_json::to_string(&ServerFrame::Message(message.clone()))
                    .unwrap_or_default();
                let (before, after) = split_at_offset(&json);
                let mut invocation = APPEND_MESSAGE_SCRIPT.prepare_invoke();
                invocation
                    .key(&keys.seq)
                    .key(&keys.log)
                    .key(&keys.messages)
                    .key(&keys.index)
                    .key(&idempotency)
                    .arg(&channel)
                    .arg(before)
                    .arg(after)
                    .arg(&id)
                    .arg(limits.max_events)
                    .arg(self.min_stream_id())
                    .arg(limits.max_age.as_secs().max(1))
                    .arg("");
                let (fresh, id, offset): (i64, String, u64) =
                    self.exec(invocation.invoke_async(&mut self.conn())).await?;
                message.offset = offset;
                Ok(Appended {
                    id,
                    offset,
                    event: (fresh == 1).then_some(RoomEvent::Message(message)),
                })
            }
            Change::Edit { id, content, sender } => {
                let edited_at = OffsetDateTime::now_utc();
                let event = MessageUpdated {
                    room: room.clone(),
                    id: id.clone(),
                    offset: 0,
                    content,
                    edited_at,
                };
                self.change(room, &keys, RoomEvent::MessageUpdated(event), sender).await
            }
            Change::Delete { id, sender } => {
                let event = MessageDeleted { room: room.clone(), id, offset: 0 };
                self.change(room, &keys, RoomEvent::MessageDeleted(event), sender).await
            }
        }
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        let keys = RoomKeys::new(room);
        let fresh_epoch = super::random_id();
        let mut invocation = SNAPSHOT_SCRIPT.prepare_invoke();
        invocation
            .key(&keys.epoch)
            .key(&keys.seq)
            .key(&keys.log)
            .key(&keys.messages)
            .key(&keys.index)
            .arg(fresh_epoch)
            .arg(since.map_or("", |s| s.epoch.as_str()))
            .arg(since.map_or(0, |s| s.offset))
            .arg(history);
        let (epoch, offset, recovered, events): (String, u64, i64, Vec<String>) =
            self.exec(invocation.invoke_async(&mut self.conn())).await?;
        Ok(Snapshot {
            epoch,
            offset,
            events: events.iter().filter_map(|e| parse_event(e)).collect(),
            recovered: (recovered >= 0).then_some(recovered == 1),
        })
    }

    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let keys = RoomKeys::new(room);
        let mut invocation = HISTORY_SCRIPT.prepare_invoke();
        invocation
            .key(&keys.messages)
            .key(&keys.index)
            .arg(before.map(|b| b.to_string()).unwrap_or_default())
            .arg(limit);
        let newest_first: Vec<String> =
            self.exec(invocation.invoke_async(&mut self.conn())).await?;
        let has_more = newest_first.len() > limit;
        let mut messages: Vec<ChatMessage> =
            newest_first.iter().take(limit).filter_map(|m| serde_json::from_str(m).ok()).collect();
        messages.reverse();
        Ok(Page { messages, has_more })
    }

    async fn watch(&self, room: &RoomName) -> Result<(), EngineError> {
        let _serial = self.subscriptions.lock().await;
        self.exec(self.subscriber.clone().subscribe(keys::room_channel(room))).await
    }

    async fn unwatch(&self, room: &RoomName) {
        let _serial = self.subscriptions.lock().await;
        // A connection may have joined since the hub found the room empty.
        if self.hub.has_members(room) {
            return;
        }
        let _ = self.exec(self.subscriber.clone().unsubscribe(keys::room_channel(room))).await;
    }

    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError> {
        let exclude = fanout::exclude_tag(&exclude, &self.instance);
        match rooms {
            [] => Ok(()),
            [room] => {
                self.publish(
                    &keys::room_channel(room),
                    format!("\t{exclude}\t{}", delivery.text.as_str()),
                )
                .await
            }
            _ => {
                let names: Vec<&str> = rooms.iter().map(RoomName::as_str).collect();
                let payload = format!("{}\t{exclude}\t{}", names.join(" "), delivery.text.as_str());
                self.publish(keys::MULTI_CHANNEL, payload).await
            }
        }
    }

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<bool, EngineError> {
        let n: i64 = self.member_script(&ADD_MEMBER_SCRIPT, room, user).await?;
        Ok(n == 1)
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<bool, EngineError> {
        let user =
            UserInfo { id: user_id.to_owned(), name: String::new(), role: None, avatar: None };
        let last: i64 = self.member_script(&REMOVE_MEMBER_SCRIPT, room, &user).await?;
        Ok(last == 1)
    }

    async fn members(&self, room: &RoomName) -> Result<Vec<Member>, EngineError> {
        let keys = RoomKeys::new(room);
        let profiles: HashMap<String, String> =
            self.exec(self.conn().hgetall(&keys.profiles)).await?;
        let mut members = Vec::with_capacity(profiles.len());
        for profile in profiles.values() {
            let Ok(user) = serde_json::from_str::<UserInfo>(profile) else { continue };
            let presence = self.presence_of(&user.id).await?;
            members.push(Member { user, presence });
        }
        super::sort_members(&mut members);
        Ok(members)
    }

    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError> {
        let names: Vec<String> = self.exec(self.conn().smembers(keys::user_rooms(user_id))).await?;
        Ok(names.into_iter().filter_map(|n| RoomName::new(n).ok()).collect())
    }

    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError> {
        let mut invocation = OPEN_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_connections(&user.id))
            .key(keys::user_state(&user.id))
            .key(keys::user_unread(&user.id))
            .key(keys::instance_users(&self.instance))
            .arg(&self.instance)
            .arg(&user.id);
        let (before, unread, state): (i64, Vec<String>, Vec<String>) =
            self.exec(invocation.invoke_async(&mut self.conn())).await?;
        let state = pairs(state);
        let came_online = (before <= 0 && stored_status(&state) != SetStatus::Invisible)
            .then(|| presence(&user.id, true, &state));
        // The list expires after its newest entry: older entries go here.
        let oldest = OffsetDateTime::now_utc() - self.settings.unread_max_age;
        let unread = unread
            .iter()
            .filter_map(|n| serde_json::from_str::<Notification>(n).ok())
            .filter(|n| n.created_at >= oldest)
            .collect();
        Ok(Opened { came_online, unread })
    }

    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError> {
        let key = keys::user_connections(user_id);
        let mut pipe = redis::pipe();
        pipe.atomic().hincr(&key, format!("o:{}", self.instance), -1).hincr(
            &key,
            format!("l:{}", self.instance),
            1,
        );
        self.exec(pipe.query_async::<()>(&mut self.conn())).await
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<Presence>, EngineError> {
        let mut invocation = EXPIRE_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_connections(user_id))
            .key(keys::user_state(user_id))
            .key(keys::instance_users(&self.instance))
            .arg(&self.instance)
            .arg(user_id)
            .arg(now_rfc3339());
        let (offline, state): (i64, Vec<String>) =
            self.exec(invocation.invoke_async(&mut self.conn())).await?;
        let state = pairs(state);
        Ok((offline == 1 && stored_status(&state) != SetStatus::Invisible)
            .then(|| presence(user_id, false, &state)))
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<Presence, EngineError> {
        let key = keys::user_state(user_id);
        let status_text = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut pipe = redis::pipe();
        pipe.atomic().hset(&key, "status", status_text);
        match custom {
            Some(text) => pipe.hset(&key, "custom", text),
            None => pipe.hdel(&key, "custom"),
        };
        self.exec(pipe.query_async::<()>(&mut self.conn())).await?;
        self.presence_of(user_id).await
    }

    async fn presence(&self, user_id: &str) -> Result<Presence, EngineError> {
        self.presence_of(user_id).await
    }

    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError> {
        let Ok(room) = RoomName::personal(user_id) else { return Ok(false) };
        let stored = serde_json::to_string(&notification).unwrap_or_default();
        let frame = encode(&ServerFrame::Notification(notification));
        let mut invocation = NOTIFY_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_connections(user_id))
            .key(keys::user_unread(user_id))
            .arg(keys::room_channel(&room))
            .arg(frame.as_str())
            .arg(stored)
            .arg(self.settings.unread_per_user)
            .arg(self.settings.unread_bytes_per_user)
            .arg(self.settings.unread_max_age.as_secs().max(1));
        let online: i64 = self.exec(invocation.invoke_async(&mut self.conn())).await?;
        Ok(online == 1)
    }

    async fn close(&self) {
        lease::release(self).await;
    }
}

impl RedisEngine {
    /// Appends an edit or a delete (see `APPEND_CHANGE`).
    async fn change(
        &self,
        room: &RoomName,
        keys: &RoomKeys,
        mut event: RoomEvent,
        sender: Option<String>,
    ) -> Result<Appended, EngineError> {
        let json = serde_json::to_string(&ServerFrame::from(event.clone())).unwrap_or_default();
        let (before, after) = split_at_offset(&json);
        let (id, kind, content, edited_at) = match &event {
            RoomEvent::MessageUpdated(e) => (
                e.id.clone(),
                "edit",
                e.content.clone(),
                e.edited_at.format(&Rfc3339).unwrap_or_default(),
            ),
            RoomEvent::MessageDeleted(e) => (e.id.clone(), "delete", String::new(), String::new()),
            RoomEvent::Message(m) => (m.id.clone(), "message", String::new(), String::new()),
        };
        let mut invocation = APPEND_CHANGE_SCRIPT.prepare_invoke();
        invocation
            .key(&keys.seq)
            .key(&keys.log)
            .key(&keys.messages)
            .key(&keys.index)
            .arg(keys::room_channel(room))
            .arg(before)
            .arg(after)
            .arg(&id)
            .arg(self.settings.history.max_events)
            .arg(self.min_stream_id())
            .arg(sender.unwrap_or_default())
            .arg(kind)
            .arg(content)
            .arg(edited_at);
        let (code, _, offset): (i64, String, u64) =
            self.exec(invocation.invoke_async(&mut self.conn())).await?;
        match code {
            -1 => Err(EngineError::MessageNotFound(id)),
            -2 => Err(EngineError::NotTheSender(id)),
            _ => {
                match &mut event {
                    RoomEvent::MessageUpdated(e) => e.offset = offset,
                    RoomEvent::MessageDeleted(e) => e.offset = offset,
                    RoomEvent::Message(m) => m.offset = offset,
                }
                Ok(Appended { id, offset, event: Some(event) })
            }
        }
    }

    async fn member_script(
        &self,
        script: &redis::Script,
        room: &RoomName,
        user: &UserInfo,
    ) -> Result<i64, EngineError> {
        let keys = RoomKeys::new(room);
        let profile = serde_json::to_string(user).unwrap_or_default();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&keys.members)
            .key(&keys.profiles)
            .key(keys::user_rooms(&user.id))
            .key(keys::instance_members(&self.instance))
            .arg(&user.id)
            .arg(profile)
            .arg(room.as_str())
            .arg(format!("{room} {}", user.id));
        self.exec(invocation.invoke_async(&mut self.conn())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_around_their_offset() {
        let json = r#"{"type":"message","room":"a","id":"x","offset":0,"content":"\"offset\":0"}"#;
        let (before, after) = split_at_offset(json);
        assert_eq!(format!("{before}42{after}"), json.replacen(":0,", ":42,", 1));
    }

    #[test]
    fn resp3_is_asked_for() {
        assert_eq!(with_resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(with_resp3("redis://h/?db=2"), "redis://h/?db=2&protocol=resp3");
        assert_eq!(with_resp3("redis://h/?protocol=resp3"), "redis://h/?protocol=resp3");
    }
}
