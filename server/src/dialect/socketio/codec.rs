//! The Socket.IO dialect's translation, both ways, without IO: a client
//! event into the native client frame the session handles
//! ([`decode`]), and a native server frame into the event (or the
//! acknowledgement) the client gets ([`encode`]).
//!
//! | Socket.IO | native |
//! |---|---|
//! | `join_conversation(id)` / `leave_conversation(id)` | `join` (no history) / `leave` of room `conversation:<id>` |
//! | `send_message({conversationId, content, data?})` | `send` |
//! | `typing({conversationId, isTyping})` | `typing` |
//! | `mark_read({messageId, conversationId?})` | `read` in the room the message was seen in |
//! | `new_message` | `message` |
//! | `message_updated` / `message_deleted` | `message_updated` / `message_deleted` |
//! | `message_read` | `read` |
//! | `user_typing` | `typing` |
//! | `notification` | `notification` |
//! | the event's own name | `event` a backend published into a room the socket is in |

use roomcast_shared::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

/// The prefix of a conversation's native room.
const CONVERSATION: &str = "conversation:";

/// Names a client may not emit to: the Socket.IO client keeps them for
/// itself, so an event of a backend named so would never reach a handler.
const RESERVED: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// A client event, as a native frame for the session.
#[derive(Debug, PartialEq)]
pub(crate) struct Command {
    /// The native client frame, with `ref` set.
    pub frame: Value,
    /// Whether the session answers the frame (an `ack`, `joined`, `left`
    /// or `error` with its `ref`): an acknowledgement callback waits for
    /// that answer; other events are acknowledged once handed over.
    pub answered: bool,
}

/// Why an event was not handed to the session; the client gets it as an
/// `error` event, or in its acknowledgement callback.
#[derive(Debug, PartialEq)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Self { code: ErrorCode::BadRequest, message: message.into() }
    }

    /// The refusal as the client sees it.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

/// A conversation id: a number, or a non-empty string (as the original's
/// ids were, both kinds).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ConversationId {
    Number(u64),
    Text(String),
}

impl ConversationId {
    fn room(&self) -> Result<String, Refusal> {
        match self {
            Self::Number(id) => Ok(format!("{CONVERSATION}{id}")),
            Self::Text(id) if id.is_empty() => Err(Refusal::bad_request("empty conversation id")),
            Self::Text(id) => Ok(format!("{CONVERSATION}{id}")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    conversation_id: ConversationId,
    #[serde(default)]
    content: String,
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typing {
    conversation_id: ConversationId,
    is_typing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkRead {
    message_id: String,
    conversation_id: Option<ConversationId>,
}

fn parse<T: serde::de::DeserializeOwned>(
    event: &str,
    data: Value,
    shape: &str,
) -> Result<T, Refusal> {
    serde_json::from_value(data)
        .map_err(|err| Refusal::bad_request(format!("{event} takes {shape}: {err}")))
}

/// The native frame for client event `event` with its first argument
/// `data` (`Null` when none), numbered `reference`. `client_id` names a
/// send (unique on the connection); `room_of` is the room a message id
/// was last seen in on this connection.
pub(crate) fn decode(
    event: &str,
    data: Value,
    reference: u64,
    client_id: impl FnOnce() -> String,
    room_of: impl FnOnce(&str) -> Option<String>,
) -> Result<Command, Refusal> {
    let (frame, answered) = match event {
        "join_conversation" | "leave_conversation" => {
            let id: ConversationId = parse(event, data, "a conversation id")?;
            let room = id.room()?;
            if event == "join_conversation" {
                (json!({"type": "join", "room": room, "history": 0}), true)
            } else {
                (json!({"type": "leave", "room": room}), true)
            }
        }
        "send_message" => {
            let send: SendMessage = parse(event, data, "{conversationId, content}")?;
            let mut frame = json!({
                "type": "send",
                "room": send.conversation_id.room()?,
                "content": send.content,
                "client_id": client_id(),
            });
            if let Some(data) = send.data {
                frame["data"] = data;
            }
            (frame, true)
        }
        "typing" => {
            let typing: Typing = parse(event, data, "{conversationId, isTyping}")?;
            let room = typing.conversation_id.room()?;
            (json!({"type": "typing", "room": room, "is_typing": typing.is_typing}), false)
        }
        "mark_read" => {
            let read: MarkRead = parse(event, data, "{messageId}")?;
            let room = match &read.conversation_id {
                Some(id) => id.room()?,
                None => room_of(&read.message_id).ok_or_else(|| Refusal {
                    code: ErrorCode::NotFound,
                    message: "no message of this id was seen on this connection: \
                              give its conversationId"
                        .into(),
                })?,
            };
            (json!({"type": "read", "room": room, "id": read.message_id}), false)
        }
        other => {
            let message = format!(
                "unknown event {other:?}: join_conversation, leave_conversation, \
                 send_message, typing and mark_read are known"
            );
            return Err(Refusal::bad_request(message));
        }
    };
    let mut frame = frame;
    frame["ref"] = reference.into();
    Ok(Command { frame, answered })
}

/// What a native server frame becomes.
#[derive(Debug, PartialEq)]
pub(crate) enum Out {
    /// An event to the client.
    Emit(String, Value),
    /// The answer to the client's event numbered `.0`: the argument of its
    /// acknowledgement callback, or an `error` event when it has none and
    /// this is a refusal.
    Answer(u64, Answer),
    /// A message was shown: its id and room, for a later `mark_read`.
    Seen(String, String),
}

/// How the session answered one of the client's events.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// Done: `{"ok": true, ...}`.
    Done(Value),
    /// Refused: `{code, message}`.
    Refused(Value),
}

impl Answer {
    /// The argument of the event's acknowledgement callback.
    pub fn into_callback(self) -> Value {
        match self {
            Self::Done(done) => done,
            Self::Refused(error) => json!({"ok": false, "error": error}),
        }
    }
}

/// The events for one native server frame (none for those with no
/// Socket.IO form: `ready`, presence, occupancy, pongs...).
pub(crate) fn encode(text: &str) -> Vec<Out> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let reference = frame.get("ref").and_then(Value::as_u64);
    let kind = frame.get("type").and_then(Value::as_str).unwrap_or_default();
    let room = frame.get("room").and_then(Value::as_str).unwrap_or_default();
    let field = |name: &str| frame.get(name).cloned().unwrap_or(Value::Null);
    match (kind, reference) {
        ("error", Some(reference)) => {
            vec![Out::Answer(reference, Answer::Refused(refusal(&frame)))]
        }
        ("error", None) => vec![Out::Emit("error".into(), refusal(&frame))],
        ("ack", Some(reference)) => {
            let answer = json!({"ok": true, "id": field("id"), "offset": field("offset")});
            vec![Out::Answer(reference, Answer::Done(answer))]
        }
        ("joined" | "left", Some(reference)) => {
            vec![Out::Answer(reference, Answer::Done(json!({"ok": true})))]
        }
        ("message", _) => {
            let sender = field("sender");
            let id = field("id");
            let mut message = json!({
                "id": id,
                "conversationId": conversation_id(room),
                "senderId": sender.get("id"),
                "senderName": sender.get("name"),
                "messageContent": field("content"),
                "timestamp": field("created_at"),
                "isRead": false,
            });
            if let Some(data) = frame.get("data") {
                message["data"] = data.clone();
            }
            let mut out = vec![Out::Emit("new_message".into(), message)];
            if let Some(id) = id.as_str() {
                out.push(Out::Seen(id.to_owned(), room.to_owned()));
            }
            out
        }
        ("message_updated", _) => {
            let mut update = json!({
                "id": field("id"),
                "conversationId": conversation_id(room),
                "messageContent": field("content"),
                "editedAt": field("edited_at"),
            });
            if let Some(data) = frame.get("data") {
                update["data"] = data.clone();
            }
            vec![Out::Emit("message_updated".into(), update)]
        }
        ("message_deleted", _) => {
            let deleted = json!({"id": field("id"), "conversationId": conversation_id(room)});
            vec![Out::Emit("message_deleted".into(), deleted)]
        }
        ("read", _) => {
            let read = json!({
                "messageId": field("id"),
                "readBy": field("user_id"),
                "readAt": field("read_at"),
                "conversationId": conversation_id(room),
            });
            vec![Out::Emit("message_read".into(), read)]
        }
        ("typing", _) => {
            let typing = json!({
                "userId": frame.get("user").and_then(|u| u.get("id")),
                "conversationId": conversation_id(room),
                "isTyping": field("is_typing"),
            });
            vec![Out::Emit("user_typing".into(), typing)]
        }
        ("notification", _) => {
            let notification = json!({
                "id": field("id"),
                "title": field("title"),
                "body": field("body"),
                "data": field("data"),
                "createdAt": field("created_at"),
            });
            vec![Out::Emit("notification".into(), notification)]
        }
        ("event", _) => match frame.get("name").and_then(Value::as_str) {
            Some(name) if !RESERVED.contains(&name) => {
                vec![Out::Emit(name.to_owned(), field("data"))]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// A native error frame's code and message (and when to retry).
fn refusal(frame: &Value) -> Value {
    let mut error = json!({
        "code": frame.get("code").cloned().unwrap_or(Value::Null),
        "message": frame.get("message").cloned().unwrap_or(Value::Null),
    });
    if let Some(retry) = frame.get("retry_after_ms") {
        error["retryAfterMs"] = retry.clone();
    }
    error
}

/// The conversation id of room `conversation:<id>`, a number when it reads
/// as one (as the client sent it); `null` for any other room (a message a
/// backend posted to `user:<id>`, say).
fn conversation_id(room: &str) -> Value {
    match room.strip_prefix(CONVERSATION) {
        Some(id) => match id.parse::<u64>() {
            Ok(number) if number.to_string() == id => number.into(),
            _ => id.into(),
        },
        None => Value::Null,
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
