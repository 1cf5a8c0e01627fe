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
    SET_STATUS_SCRIPT,
};
use super::{Store, now_rfc3339};
use crate::engine::{Counted, Departures, EngineError, MemberKey, MemberPage, Opened, Presence};
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

/// The presence to announce of a user whose last connection went, from
/// their stored state: none for one who is invisible (they were never
/// seen online).
pub(super) fn went_offline(user_id: &str, state: Vec<String>) -> Option<UserPresence> {
    let state = pairs(state);
    (stored_status(&state) != SetStatus::Invisible).then(|| presence(user_id, false, &state))
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

    /// The members with these stored profiles, with their presence (one
    /// round trip for all of them); a profile that does not parse is left
    /// out.
    async fn with_presence(&self, profiles: Vec<String>) -> Result<Vec<Member>, EngineError> {
        let users: Vec<UserInfo> =
            profiles.iter().filter_map(|p| serde_json::from_str(p).ok()).collect();
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user in &users {
            pipe.hgetall(keys::user_connections(&user.id)).hgetall(keys::user_state(&user.id));
        }
        // One flat list of hashes: each user's connections, then its state.
        let hashes: Vec<HashMap<String, String>> =
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
        Ok(users
            .into_iter()
            .zip(hashes.chunks_exact(2))
            .map(|(user, pair)| {
                let connections: i64 = pair[0].values().filter_map(|n| n.parse::<i64>().ok()).sum();
                let presence = presence(&user.id, connections > 0, &pair[1]);
                Member { user, presence }
            })
            .collect())
    }

    /// Runs `ADD_MEMBER` or `REMOVE_MEMBER` for `user` in `room`, counted
    /// for this instance (so a dead instance's memberships can be undone).
    async fn member_script(
        &self,
        script: &redis::Script,
        room: &RoomName,
        user: &UserInfo,
    ) -> Result<(i64, i64), EngineError> {
        let keys = RoomKeys::new(room);
        let profile = serde_json::to_string(user).unwrap_or_default();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&keys.members)
            .key(&keys.profiles)
            .key(keys::user_rooms(&user.id))
            .key(keys::instance_members(&self.0.instance))
            .key(&keys.order)
            .key(keys::user_state(&user.id))
            .arg(&user.id)
            .arg(profile)
            .arg(room.as_str())
            .arg(format!("{room} {}", user.id));
        self.0.exec(invocation.invoke_async(&mut self.0.conn())).await
    }
}

#[async_trait]
impl Presence for RedisPresence {
    fn on_departures(&self, listener: Departures) {
        if self.0.departures.set(listener).is_err() {
            tracing::error!("a second listener of departures was not kept");
        }
    }

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<Counted, EngineError> {
        let (n, members): (i64, i64) = self.member_script(&ADD_MEMBER_SCRIPT, room, user).await?;
        Ok(Counted { user: n == 1, room: n == 1 && members == 1 })
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<Counted, EngineError> {
        let user =
            UserInfo { id: user_id.to_owned(), name: String::new(), role: None, avatar: None };
        let (last, members): (i64, i64) =
            self.member_script(&REMOVE_MEMBER_SCRIPT, room, &user).await?;
        Ok(Counted { user: last == 1, room: last == 1 && members == 0 })
    }

    async fn members_page(
        &self,
        room: &RoomName,
        after: Option<&MemberKey>,
        limit: usize,
    ) -> Result<MemberPage, EngineError> {
        let keys = RoomKeys::new(room);
        let from = after.map_or_else(|| b"-".to_vec(), |key| [b"(", &*order_entry(key)].concat());
        let mut pipe = redis::pipe();
        pipe.hlen(&keys.members).cmd("ZRANGEBYLEX").arg(&keys.order).arg(from).arg("+").arg(&[
            "LIMIT",
            "0",
            &(limit + 1).to_string(),
        ]);
        let (count, entries): (u64, Vec<Vec<u8>>) =
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
        let mut page: Vec<MemberKey> = entries.iter().filter_map(|e| read_entry(e)).collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let ids: Vec<&str> = page.iter().map(|key| key.id.as_str()).collect();
        let profiles: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&keys.profiles).arg(&ids);
            self.0.exec(hmget.query_async(&mut self.0.conn())).await?
        };
        let members = self.with_presence(profiles.into_iter().flatten().collect()).await?;
        let next = if more { page.pop() } else { None };
        Ok(MemberPage { count, members, next })
    }

    async fn members_now(
        &self,
        room: &RoomName,
        user_ids: &[String],
    ) -> Result<(u64, Vec<Option<Member>>), EngineError> {
        let keys = RoomKeys::new(room);
        let mut pipe = redis::pipe();
        pipe.hlen(&keys.members);
        if !user_ids.is_empty() {
            pipe.cmd("HMGET").arg(&keys.profiles).arg(user_ids);
        }
        let (count, profiles): (u64, Vec<Option<String>>) = if user_ids.is_empty() {
            let (count,): (u64,) = self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
            (count, Vec::new())
        } else {
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?
        };
        let mut found = self.with_presence(profiles.into_iter().flatten().collect()).await?;
        let members = user_ids
            .iter()
            .map(|id| {
                let at = found.iter().position(|m| m.user.id == *id)?;
                Some(found.swap_remove(at))
            })
            .collect();
        Ok((count, members))
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
            .key(keys::ONLINE)
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
            .key(keys::ONLINE)
            .arg(&self.0.instance)
            .arg(user_id)
            .arg(now_rfc3339())
            .arg(self.0.settings.user_idle.as_secs().max(1));
        let (offline, state): (i64, Vec<String>) =
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        Ok(if offline == 1 { went_offline(user_id, state) } else { None })
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError> {
        let status_text = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut invocation = SET_STATUS_SCRIPT.prepare_invoke();
        invocation
            .key(keys::user_state(user_id))
            .key(keys::user_rooms(user_id))
            .key(keys::ONLINE)
            .key(keys::user_connections(user_id))
            .arg(user_id)
            .arg(status_text)
            .arg(if custom.is_some() { "1" } else { "0" })
            .arg(custom.unwrap_or_default());
        self.0.exec(invocation.invoke_async::<i64>(&mut self.0.conn())).await?;
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

    async fn online_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(u64, Vec<UserPresence>), EngineError> {
        // `(` excludes the cursor itself; every score is 0, so the order is
        // the ids' byte order.
        let from = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut pipe = redis::pipe();
        pipe.zcard(keys::ONLINE).zrangebylex_limit(keys::ONLINE, from, "+", 0, limit as isize);
        let (count, ids): (u64, Vec<String>) =
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
        if ids.is_empty() {
            return Ok((count, Vec::new()));
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(keys::user_connections(id)).hgetall(keys::user_state(id));
        }
        // One flat list of hashes, as in `with_presence`.
        let hashes: Vec<HashMap<String, String>> =
            self.0.exec(pipe.query_async(&mut self.0.conn())).await?;
        let page = ids
            .iter()
            .zip(hashes.chunks_exact(2))
            .map(|(id, pair)| {
                let connections: i64 = pair[0].values().filter_map(|n| n.parse::<i64>().ok()).sum();
                presence(id, connections > 0, &pair[1])
            })
            .collect();
        Ok((count, page))
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

/// A member's entry in a room's list order (`RoomKeys::order`).
fn order_entry(key: &MemberKey) -> Vec<u8> {
    let hidden = if key.hidden { b'1' } else { b'0' };
    [&[hidden], key.name.as_bytes(), b"\0", key.id.as_bytes()].concat()
}

/// [`order_entry`] read back (the id follows the last NUL: ids hold none).
fn read_entry(entry: &[u8]) -> Option<MemberKey> {
    let (&hidden, rest) = entry.split_first()?;
    let split = rest.iter().rposition(|&b| b == 0)?;
    let name = String::from_utf8(rest[..split].to_vec()).ok()?;
    let id = String::from_utf8(rest[split + 1..].to_vec()).ok()?;
    Some(MemberKey { hidden: hidden == b'1', name, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_entries_read_back_and_sort_as_keys_do() {
        let keys = [
            MemberKey { hidden: false, name: "Ann".into(), id: "z".into() },
            MemberKey { hidden: false, name: "Ann Lee".into(), id: "a".into() },
            MemberKey { hidden: false, name: "Bob".into(), id: "b".into() },
            MemberKey { hidden: true, name: "Al".into(), id: "c".into() },
        ];
        let entries: Vec<Vec<u8>> = keys.iter().map(order_entry).collect();
        assert!(entries.is_sorted(), "byte order is list order");
        assert!(keys.is_sorted());
        for (key, entry) in keys.iter().zip(&entries) {
            assert_eq!(read_entry(entry).as_ref(), Some(key));
        }
    }
}
