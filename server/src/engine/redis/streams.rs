//! Room streams in Redis: a stream of events, a hash of messages in their
//! current state, an index by offset and idempotency keys with expiry, per
//! room (see `keys.rs`). Appends run as Lua scripts that assign the offset,
//! store and publish in one atomic step, which keeps every room in offset
//! order everywhere; a client may recover on any instance, and the epoch
//! survives restarts.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::{
    ChatMessage, MessageDeleted, MessageUpdated, Position, ReadReceipt, RoomEvent, RoomName,
    ServerFrame,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Store;
use super::keys::{self, RoomKeys};
use super::scripts::{
    APPEND_CHANGE_SCRIPT, APPEND_MESSAGE_SCRIPT, HISTORY_SCRIPT, SNAPSHOT_SCRIPT,
};
use crate::engine::{Appended, Change, EngineError, Page, Snapshot, Streams};

/// The Redis streams.
#[derive(Debug)]
pub(super) struct RedisStreams(pub Arc<Store>);

/// The frame JSON split around its `offset` value (serialized as 0), so a
/// script can put the offset it assigns in between.
fn split_at_offset(json: &str) -> (&str, &str) {
    const FIELD: &str = "\"offset\":0";
    match json.find(FIELD) {
        Some(at) => (&json[..at + FIELD.len() - 1], &json[at + FIELD.len()..]),
        None => (json, ""),
    }
}

fn parse_event(json: &str) -> Option<RoomEvent> {
    serde_json::from_str(json).map_err(|err| tracing::warn!(%err, "unreadable event in Redis")).ok()
}

impl RedisStreams {
    fn min_stream_id(&self) -> String {
        let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let min = now_ms - self.0.settings.history.max_age.as_millis() as i128;
        format!("{}-0", min.max(0))
    }

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
            .arg(self.0.settings.history.max_events)
            .arg(self.min_stream_id())
            .arg(sender.unwrap_or_default())
            .arg(kind)
            .arg(content)
            .arg(edited_at);
        let (code, _, offset): (i64, String, u64) =
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
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
}

#[async_trait]
impl Streams for RedisStreams {
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        let keys = RoomKeys::new(room);
        let limits = &self.0.settings.history;
        let channel = keys::room_channel(room);
        match change {
            Change::Message { sender, content, client_id, data } => {
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
                    data,
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
                    self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
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
        let fresh_epoch = crate::engine::random_id();
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
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
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
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        let has_more = newest_first.len() > limit;
        let mut messages: Vec<ChatMessage> =
            newest_first.iter().take(limit).filter_map(|m| serde_json::from_str(m).ok()).collect();
        messages.reverse();
        Ok(Page { messages, has_more })
    }

    /// Redis without a database keeps no read positions: `read` frames
    /// still reach every member live.
    async fn keep_read(&self, _room: &RoomName, _receipt: ReadReceipt) {}

    async fn reads(
        &self,
        _room: &RoomName,
        _limit: usize,
    ) -> Result<Vec<ReadReceipt>, EngineError> {
        Ok(Vec::new())
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
}
