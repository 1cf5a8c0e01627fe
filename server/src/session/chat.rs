//! `send`, `edit`, `delete`, `typing` and `read`: what members do in their
//! rooms.

use roomcast_shared::frame::Ack;
use roomcast_shared::{ReadReceipt, Ref, RoomName, ServerFrame, UserRef};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::{Authed, Flow, Session};
use crate::engine::Change;
use crate::error::{FrameError, check_client_id, check_data, check_edit, check_message, edit_data};
use crate::hooks::publish::{self, Verdict};
use crate::hub::{Delivery, Exclude, encode};
use crate::state::AppState;

/// Longest message id a `read` may name, in bytes. Message ids are UUIDs
/// (36 bytes); the cap is the protocol's bound on ids a client may echo,
/// not a tunable limit: a longer one cannot name a message.
const MAX_MESSAGE_ID_LEN: usize = 128;

impl Session {
    /// Hands the message over without waiting for it to be stored; its
    /// `ack` follows the answers to every frame before it (`pipeline.rs`).
    pub(super) async fn send(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        content: String,
        client_id: String,
        data: Option<Box<Value>>,
    ) -> Result<Flow, FrameError> {
        let sender = self.ensure_joined(&room)?.user.clone();
        self.ensure_not_muted(&room)?;
        let limits = &self.state.config.limits;
        let data = check_data(data, limits)?;
        check_message(&content, data.as_deref(), limits.max_content_bytes)?;
        check_client_id(&client_id)?;
        let asked = publish::Request {
            kind: "send",
            room: &room,
            user: &sender,
            content: &content,
            client_id: Some(&client_id),
            id: None,
            data: data.as_deref(),
        };
        // The hook's `data`, when it gives one, replaces the client's.
        let (content, data) = match self.check_publish(asked).await? {
            Some((content, Some(hooked))) => (content, none_if_empty(hooked)),
            Some((content, None)) => (content, data),
            None => (content, data),
        };
        check_message(&content, data.as_deref(), self.state.config.limits.max_content_bytes)?;
        // Sending ends typing, as every chat user expects.
        self.stop_typing(&room).await;
        if self.make_room().await == Flow::Stop {
            return Ok(Flow::Stop);
        }
        let change = Change::Message { sender, content, client_id: client_id.clone(), data };
        let appending = self.state.engine.streams.start_append(&room, change).await;
        self.hand_over(reference, client_id, appending)?;
        Ok(Flow::Continue)
    }

    /// Replaces a message's content and, when the edit carries `data`, its
    /// data (`{}` removes it; none keeps it).
    pub(super) async fn edit(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        id: String,
        content: String,
        data: Option<Box<Value>>,
    ) -> Result<(), FrameError> {
        let authed = self.ensure_joined(&room)?;
        self.ensure_not_muted(&room)?;
        let sender = only_own(authed);
        let sent = check_edit(&content, data, &self.state.config.limits)?;
        let removed = Value::Object(serde_json::Map::new());
        let user = &authed.user;
        let asked = publish::Request {
            kind: "edit",
            room: &room,
            user,
            content: &content,
            client_id: None,
            id: Some(&id),
            data: sent.as_ref().map(|data| data.as_deref().unwrap_or(&removed)),
        };
        // The hook's `data`, when it gives one, is the edit's.
        let (content, data) = match self.check_publish(asked).await? {
            Some((content, Some(hooked))) => (content, Some(none_if_empty(hooked))),
            Some((content, None)) => (content, sent),
            None => (content, sent),
        };
        let data = edit_data(&content, data)?;
        let change = Change::Edit { id, content, data, sender };
        let appended = self.state.engine.streams.append(&room, change).await?;
        self.reply(
            reference,
            ServerFrame::Ack(Ack { id: appended.id, offset: appended.offset, client_id: None }),
        );
        Ok(())
    }

    /// Asks the publish hook (off any lock: the engine is not called
    /// yet); `None` takes the message as sent, and the hook's `data` is
    /// `None` when it gave none.
    async fn check_publish(
        &self,
        asked: publish::Request<'_>,
    ) -> Result<Option<(String, Option<Box<Value>>)>, FrameError> {
        let max = self.state.config.limits.max_content_bytes;
        match self.state.hooks.check_publish(asked, max).await {
            Ok(None) => Ok(None),
            Ok(Some(Verdict::Allow { content, data })) => Ok(Some((content, data.map(Box::new)))),
            Ok(Some(Verdict::Reject { code, reason })) => {
                Err(FrameError::Rejected { code, reason })
            }
            Err(_) => Err(FrameError::PublishHookFailed),
        }
    }

    pub(super) async fn delete(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        id: String,
    ) -> Result<(), FrameError> {
        let sender = only_own(self.ensure_joined(&room)?);
        let appended =
            self.state.engine.streams.append(&room, Change::Delete { id, sender }).await?;
        self.reply(
            reference,
            ServerFrame::Ack(Ack { id: appended.id, offset: appended.offset, client_id: None }),
        );
        Ok(())
    }

    pub(super) async fn set_typing(
        &mut self,
        room: RoomName,
        is_typing: bool,
    ) -> Result<(), FrameError> {
        self.ensure_joined(&room)?;
        if is_typing {
            self.ensure_not_muted(&room)?;
            let until = Instant::now() + self.state.config.timing.typing_timeout;
            // Only the start is announced; repeats just keep it alive.
            if self.typing.insert(room.clone(), until).is_none() {
                self.announce_typing(&room, true).await;
            }
        } else {
            self.stop_typing(&room).await;
        }
        Ok(())
    }

    /// Announces that this connection stopped typing in `room`, if it was.
    pub(super) async fn stop_typing(&mut self, room: &RoomName) {
        if self.typing.remove(room).is_some() {
            self.announce_typing(room, false).await;
        }
    }

    async fn announce_typing(&self, room: &RoomName, is_typing: bool) {
        if let Some(authed) = &self.user {
            broadcast_typing(&self.state, authed, room, is_typing).await;
        }
    }

    /// Tells the other users in `room` (not this user's connections).
    pub(super) async fn read(&mut self, room: RoomName, id: String) -> Result<(), FrameError> {
        let user_id = self.ensure_joined(&room)?.user.id.clone();
        if id.is_empty() {
            return Err(FrameError::bad_request("id is empty"));
        }
        // The id is broadcast to every member: a long one would be copied to
        // each of them.
        if id.len() > MAX_MESSAGE_ID_LEN {
            return Err(FrameError::Reply(
                roomcast_shared::ErrorCode::TooLarge,
                format!("id is {} bytes; a message id is at most {MAX_MESSAGE_ID_LEN}", id.len()),
            ));
        }
        let receipt = ReadReceipt { user_id, id, read_at: OffsetDateTime::now_utc() };
        let frame = ServerFrame::Read {
            room: room.clone(),
            user_id: receipt.user_id.clone(),
            id: receipt.id.clone(),
            read_at: receipt.read_at,
        };
        let delivery = Delivery { offset: None, text: encode(&frame) };
        self.state.engine.streams.keep_read(&room, receipt).await;
        self.state.engine.fanout.broadcast(&[room], delivery, Exclude::Nobody).await?;
        Ok(())
    }
}

/// Data as kept: `{}` is none, wherever it came from.
fn none_if_empty(data: Box<Value>) -> Option<Box<Value>> {
    match &*data {
        Value::Object(fields) if fields.is_empty() => None,
        _ => Some(data),
    }
}

/// Who may change a message: admins any (`None`), others their own.
fn only_own(authed: &Authed) -> Option<String> {
    (!authed.access().is_admin).then(|| authed.user.id.clone())
}

/// Tells a room that `authed` is typing or stopped (best effort).
pub(super) async fn broadcast_typing(
    state: &AppState,
    authed: &Authed,
    room: &RoomName,
    is_typing: bool,
) {
    let frame =
        ServerFrame::Typing { room: room.clone(), user: UserRef::from(&authed.user), is_typing };
    let delivery = Delivery { offset: None, text: encode(&frame) };
    let exclude = Exclude::User(authed.user.id.as_str().into());
    // Typing is best effort: an unavailable engine only loses the hint.
    if let Err(err) =
        state.engine.fanout.broadcast(std::slice::from_ref(room), delivery, exclude).await
    {
        tracing::debug!(%room, %err, "typing not delivered");
    }
}
