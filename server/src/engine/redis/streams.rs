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

use super::Store;
use super::keys::{self, RoomKeys};
use super::scripts::{
    APPEND_CHANGE_SCRIPT, APPEND_MESSAGE_SCRIPT, HISTORY_SCRIPT, KEEP_READ_SCRIPT, READS_SCRIPT,
    SNAPSHOT_SCRIPT,
};
use crate::engine::{Appended, Change, EngineError, MAX_READERS, Page, Snapshot, Streams};

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

    /// `APPEND_CHANGE` with what an edit and a delete both give it: the
    /// room's keys, its channel, the event's JSON around its offset, the
    /// message id, the stream's bounds.
    fn change_invocation(
        &self,
        room: &RoomName,
        keys: &RoomKeys,
        json: &str,
        id: &str,
    ) -> redis::ScriptInvocation<'static> {
        let (before, after) = split_at_offset(json);
        let mut invocation = APPEND_CHANGE_SCRIPT.prepare_invoke();
        invocation
            .key(&keys.seq)
            .key(&keys.log)
            .key(&keys.messages)
            .key(&keys.index)
            .key(&keys.deleted)
            .arg(keys::room_channel(room))
            .arg(before)
            .arg(after)
            .arg(id)
            .arg(self.0.settings.history.max_events)
            .arg(self.min_stream_id());
        invocation
    }

    /// Appends an edit or a delete: reads the message, lets `change` turn
    /// it into its new state and say the event, and stores both if nobody
    /// changed the message meanwhile (see `APPEND_CHANGE`), reading again
    /// when somebody did. The message is changed here, not in Lua, so serde
    /// keeps its `data` exactly. A deleted message is not found.
    async fn change_message(
        &self,
        room: &RoomName,
        keys: &RoomKeys,
        id: String,
        sender: Option<String>,
        change: impl Fn(&mut ChatMessage) -> RoomEvent,
    ) -> Result<Appended, EngineError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let stored: Option<String> = self
                .0
                .exec(
                    redis::cmd("HGET").arg(&keys.messages).arg(&id).query_async(&mut self.0.conn()),
                )
                .await?;
            let Some(RoomEvent::Message(mut message)) = stored.as_deref().and_then(parse_event)
            else {
                return Err(EngineError::MessageNotFound(id));
            };
            if message.deleted {
                return Err(EngineError::MessageNotFound(id));
            }
            if sender.as_deref().is_some_and(|sender| sender != message.sender.id) {
                return Err(EngineError::NotTheSender(id));
            }
            let mut event = change(&mut message);
            let changed = serde_json::to_string(&ServerFrame::Message(message)).unwrap_or_default();
            let json = serde_json::to_string(&ServerFrame::from(event.clone())).unwrap_or_default();
            // What a replay gives for an edit once its message is deleted.
            let erased = match &event {
                RoomEvent::MessageUpdated(_) => {
                    let mut erased = event.clone();
                    erased.erase(&id);
                    serde_json::to_string(&ServerFrame::from(erased)).unwrap_or_default()
                }
                _ => String::new(),
            };
            let (erased_before, erased_after) = split_at_offset(&erased);
            let mut invocation = self.change_invocation(room, keys, &json, &id);
            invocation
                .arg(stored.unwrap_or_default())
                .arg(changed)
                .arg(erased_before)
                .arg(erased_after);
            let (code, offset): (i64, u64) =
                self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
            match code {
                -1 => return Err(EngineError::MessageNotFound(id)),
                -3 => continue,
                _ => {
                    event.set_offset(offset);
                    return Ok(Appended { id, offset, event: Some(event) });
                }
            }
        }
        Err(EngineError::Unavailable(format!("message {id} kept changing while changed")))
    }
}

/// How often an edit or a delete reads its message again when another
/// change of the same message got in between: changes of one message by its
/// sender (or admins) do not race for long, so running out means something
/// is wrong.
const CHANGE_ATTEMPTS: usize = 8;

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
                    deleted: false,
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
                    .key(&keys.deleted)
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
            Change::Edit { id, content, data, sender } => {
                let edit = |message: &mut ChatMessage| {
                    let edited_at = OffsetDateTime::now_utc();
                    message.content.clone_from(&content);
                    message.edited_at = Some(edited_at);
                    data.apply(&mut message.data);
                    RoomEvent::MessageUpdated(MessageUpdated {
                        room: room.clone(),
                        id: message.id.clone(),
                        offset: 0,
                        content: content.clone(),
                        edited_at,
                        data: message.data.clone(),
                    })
                };
                self.change_message(room, &keys, id, sender, edit).await
            }
            Change::Delete { id, sender } => {
                let delete = |message: &mut ChatMessage| {
                    message.delete();
                    let (room, id) = (room.clone(), message.id.clone());
                    RoomEvent::MessageDeleted(MessageDeleted { room, id, offset: 0 })
                };
                self.change_message(room, &keys, id, sender, delete).await
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
            .key(&keys.deleted)
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

    /// Kept in the room's `reads` hash (`KEEP_READ`), shared by every
    /// instance; as best effort as the `read` itself: a failure is logged.
    async fn keep_read(&self, room: &RoomName, receipt: ReadReceipt) {
        let keys = RoomKeys::new(room);
        let Ok(json) = serde_json::to_string(&receipt) else { return };
        let read_at_ms = receipt.read_at.unix_timestamp_nanos() / 1_000_000;
        let mut invocation = KEEP_READ_SCRIPT.prepare_invoke();
        invocation
            .key(&keys.index)
            .key(&keys.reads)
            .key(&keys.readers)
            .arg(&receipt.user_id)
            .arg(&receipt.id)
            .arg(json)
            .arg(read_at_ms as i64)
            .arg(MAX_READERS);
        let kept: Result<i64, _> = self.0.exec(invocation.invoke_async(&mut self.0.conn())).await;
        if let Err(err) = kept {
            tracing::warn!(%err, room = room.as_str(), "a read position was not kept");
        }
    }

    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, EngineError> {
        let keys = RoomKeys::new(room);
        let mut invocation = READS_SCRIPT.prepare_invoke();
        invocation.key(&keys.reads).key(&keys.readers).arg(limit);
        let latest_first: Vec<String> =
            self.0.exec(invocation.invoke_async(&mut self.0.conn())).await?;
        Ok(latest_first.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
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
