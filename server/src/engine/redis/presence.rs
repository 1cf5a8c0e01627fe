//! Presence in Redis: room members with their connection counts, each
//! user's connections counted per instance (so a dead instance's can be
//! undone, see `lease.rs`), status, rooms, and unread notifications taken
//! by the same script that counts a connection in.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;
use roomcast_shared::{
    Member, Notification, Presence as UserPresence, RoomName, ServerFrame, SetStatus, Status,
    UserInfo,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keys::{self, RoomKeys};
use super::scripts::{
    ADD_MEMBER_SCRIPT, EXPIRE_SCRIPT, NOTIFY_SCRIPT, OPEN_SCRIPT, REMOVE_MEMBER_SCRIPT,
};
use super::{Store, now_rfc3339};
use crate::engine::{EngineError, Opened, Presence};
use crate::hub::encode;

/// The Redis presence.
#[derive(Debug)]
pub(super) struct RedisPresence(pub Arc<Store>);

/// Turns a flat `[field, value, ...]` array into a map.
pub(super) fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

/// The status a user set (online when none is stored).
fn stored_status(state: &HashMap<String, String>) -> SetStatus {
    state
        .get("status")
        .and_then(|s| serde_json::from_value(serde_json::Value::String(s.clone())).ok())
        .unwrap_or(SetStatus::Online)
}

/// A user's presence as others see it, from whether any connection counts
/// and the stored state (status, custom text, last seen).
pub(super) fn presence(
    user_id: &str,
    connected: bool,
    state: &HashMap<String, String>,
) -> UserPresence {
    let status = if connected { stored_status(state).visible() } else { Status::Offline };
    let last_seen = state.get("last_seen").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    UserPresence {
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

impl RedisPresence {
    /// A user's presence from their connection counts and stored state.
    async fn presence_of(&self, user_id: &str) -> Result<UserPresence, EngineError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(keys::user_connections(user_id)).hgetall(keys::user_state(user_id));
        let (conns, state): (HashMap<String, i64>, HashMap<String, String>) =
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
        Ok(presence(user_id, conns.values().sum::<i64>() > 0, &state))
    }

    /// Runs `ADD_MEMBER` or `REMOVE_MEMBER` for `user` in `room`, counted
    /// for this instance (so a dead instance's memberships can be undone).
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
            .key(keys::instance_members(&self.0.instance))
            .arg(&user.id)
            .arg(profile)
            .arg(room.as_str())
            .arg(format!("{room} {}", user.id));
        self.0.exec(invocation.invoke_async(&mut self.0.conn())).await
    }
}

#[async_trait]
impl Presence for RedisPresence {
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
            self.0.exec(self.0.conn().hgetall(&keys.profiles)).await?;
        let mut members = Vec::with_capacity(profiles.len());
        for profile in profiles.values() {
            let Ok(user) = serde_json::from_str::<UserInfo>(profile) else { continue };
            let presence = self.presence_of(&user.id).await?;
            members.push(Member { user, presence });
        }
        crate::engine::sort_members(&mut members);
        Ok(members)
    }

    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError> {
        let names: Vec<String> =
            self.0.exec(self.0.conn().smembers(keys::user_rooms(user_id))).await?;
        Ok(names.into_iter().filter_map(|n| RoomName::new(n).ok()).collect())
    }

    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError> {
        let mut invocation = OPEN_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_connections(&user.id))
            .key(keys::user_state(&user.id))
            .key(keys::user_unread(&user.id))
            .key(keys::instance_users(&self.0.instance))
            .arg(&self.0.instance)
            .arg(&user.id);
        let (before, unread, state): (i64, Vec<String>, Vec<String>) =
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        let state = pairs(state);
        let came_online = (before <= 0 && stored_status(&state) != SetStatus::Invisible)
            .then(|| presence(&user.id, true, &state));
        // The list expires after its newest entry: older entries go here.
        let oldest = OffsetDateTime::now_utc() - self.0.settings.unread_max_age;
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
        pipe.atomic().hincr(&key, format!("o:{}", self.0.instance), -1).hincr(
            &key,
            format!("l:{}", self.0.instance),
            1,
        );
        self.0.exec(pipe.query_async::<()>(&mut self.0.conn())).await
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError> {
        let mut invocation = EXPIRE_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_connections(user_id))
            .key(keys::user_state(user_id))
            .key(keys::instance_users(&self.0.instance))
            .arg(&self.0.instance)
            .arg(user_id)
            .arg(now_rfc3339());
        let (offline, state): (i64, Vec<String>) =
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        let state = pairs(state);
        Ok((offline == 1 && stored_status(&state) != SetStatus::Invisible)
            .then(|| presence(user_id, false, &state)))
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError> {
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
        self.0.exec(pipe.query_async::<()>(&mut self.0.conn())).await?;
        self.presence_of(user_id).await
    }

    async fn connected(&self, user_id: &str) -> Result<bool, EngineError> {
        let conns: HashMap<String, i64> =
            self.0.exec(self.0.conn().hgetall(keys::user_connections(user_id))).await?;
        Ok(conns.iter().any(|(instance, open)| instance.starts_with("o:") && *open > 0))
    }

    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError> {
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
            .arg(self.0.settings.unread_per_user)
            .arg(self.0.settings.unread_bytes_per_user)
            .arg(self.0.settings.unread_max_age.as_secs().max(1));
        let online: i64 = self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        Ok(online == 1)
    }
}
