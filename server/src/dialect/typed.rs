//! The typed chat events dialect, `/ws/chat/`: every frame is an envelope
//! `{"type", "data", "room_id"?, "user_id"?, "timestamp"}`, and one
//! connection joins and leaves rooms by id (`docs/migration.md`).
//!
//! In: `auth` (`data.token`), `join_room`, `leave_room`, `message`,
//! `typing`, `user_status` and `ping`, each one native frame. Out:
//! `message`, `typing`, `user_status` (from `presence_diff`), `error` and
//! `pong`; everything else (acks, `ready`, `joined`, reads, edits,
//! notifications, events) has no form here and is dropped by the writer.
//!
//! The original closed anonymous connections: a connection not signed in
//! at the upgrade (`?token=`, or the connect hook's cookie) must send
//! `auth` with a token first. Any other first frame, an `auth` without a
//! token, or a refused token gets the `error` frame and the close 4001.
//!
//! The original's ids were integers: a room or user id that is a decimal
//! integer JavaScript holds exactly goes out as a JSON number, any other
//! as a string, and a client's `room_id` may be either.

use std::collections::VecDeque;

use roomcast_shared::{RoomName, UserInfo};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tungstenite::Utf8Bytes;

use super::{Decode, Decoded, Encode, ErrorFields, rewrite_texts};
use crate::auth::TokenError;
use crate::error::FrameError;
use crate::hub::Outbound;

/// The largest integer a JavaScript number holds exactly
/// (`Number.MAX_SAFE_INTEGER`): larger ids go out as strings.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The `type`s a client may send, for error messages.
const CLIENT_TYPES: &str = "auth, join_room, leave_room, message, typing, user_status, ping";

/// The codec's two halves, for the reader and for the writer.
pub(crate) fn codec() -> (Decoder, Encoder) {
    (Decoder { signed_in: false }, Encoder)
}

/// The reader's half: envelopes into native frames.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Whether the connection was signed in at the upgrade, or has sent an
    /// `auth` with a token (a refused token closes the connection, so a
    /// later frame finds it signed in).
    signed_in: bool,
}

/// A client envelope; `user_id` and `timestamp` are read and ignored (the
/// token says who the user is, the server when things happen).
#[derive(Debug, Deserialize)]
struct ClientEnvelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Map<String, Value>>,
    /// The envelope's copy of `data.room_id`, used when `data` has none.
    #[serde(default)]
    room_id: Option<Value>,
}

/// The message of a refusal to a connection that is not signed in.
const SIGN_IN_FIRST: &str = "authenticate first: send {\"type\": \"auth\", \"data\": {\"token\": \
                             \"<jwt>\"}} or connect with ?token=<jwt>";

impl Decode for Decoder {
    /// An `auth` frame may sign in after the upgrade.
    const NEEDS_CREDENTIALS: bool = false;

    fn on_open(&mut self, _user_id: &str) -> Decoded {
        self.signed_in = true;
        Decoded::Frames(Vec::new())
    }

    fn decode(&mut self, text: &str) -> Decoded {
        let envelope = match serde_json::from_str::<ClientEnvelope>(text) {
            Ok(envelope) => envelope,
            Err(_) if !self.signed_in => return anonymous(SIGN_IN_FIRST.into()),
            Err(err) if err.is_data() => {
                return refused(format!(
                    "expected {{\"type\": \"<type>\", \"data\": {{...}}}}: {err}"
                ));
            }
            Err(err) => return refused(format!("invalid JSON: {err}")),
        };
        let data = envelope.data.unwrap_or_default();
        if envelope.kind == "auth" {
            return self.auth(&data);
        }
        if !self.signed_in {
            return anonymous(SIGN_IN_FIRST.into());
        }
        match native(&envelope.kind, &data, envelope.room_id.as_ref()) {
            Ok(frame) => Decoded::Frames(vec![frame.to_string()]),
            Err(message) => refused(message),
        }
    }
}

impl Decoder {
    /// `auth`: a token signs in (or refreshes the token of a signed-in
    /// connection). Without one, a signed-in connection has nothing to do
    /// (the original's clients send `auth` with a `user_id` on every
    /// connect, which its server ignored) and any other is refused.
    fn auth(&mut self, data: &Map<String, Value>) -> Decoded {
        match data.get("token") {
            Some(Value::String(token)) => {
                self.signed_in = true;
                Decoded::Frames(vec![json!({"type": "auth", "token": token}).to_string()])
            }
            Some(_) if self.signed_in => refused("data.token must be a string".into()),
            Some(_) => anonymous("data.token must be a string".into()),
            None if self.signed_in => Decoded::Frames(Vec::new()),
            None => anonymous(format!("no token in data.token: {SIGN_IN_FIRST}")),
        }
    }
}

/// The native frame of a signed-in client's envelope of `kind`, or why
/// there is none.
fn native(kind: &str, data: &Map<String, Value>, room_id: Option<&Value>) -> Result<Value, String> {
    let room = || room_of(data, room_id);
    Ok(match kind {
        "join_room" => {
            json!({"type": "join", "room": room()?, "history": 0, "member_events": true})
        }
        "leave_room" => json!({"type": "leave", "room": room()?}),
        "message" => {
            let Some(Value::String(content)) = data.get("content") else {
                return Err("message needs data.content, a string".into());
            };
            // The original's clients send no idempotency key: each frame
            // is a new message, under a key of its own.
            let client_id = format!("typed-{}", uuid::Uuid::now_v7());
            json!({"type": "send", "room": room()?, "content": content, "client_id": client_id})
        }
        "typing" => {
            let Some(Value::Bool(is_typing)) = data.get("is_typing") else {
                return Err("typing needs data.is_typing, true or false".into());
            };
            json!({"type": "typing", "room": room()?, "is_typing": is_typing})
        }
        "user_status" => json!({"type": "presence", "status": status_of(data)?}),
        "ping" => json!({"type": "ping"}),
        other => return Err(format!("unknown type {other:?}: expected one of {CLIENT_TYPES}")),
    })
}

/// The native room of `data.room_id` (or the envelope's `room_id`): a
/// string as it is, an integer in decimal.
fn room_of(data: &Map<String, Value>, envelope: Option<&Value>) -> Result<String, String> {
    let name = match data.get("room_id").or(envelope) {
        Some(Value::String(name)) => name.clone(),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(id) => id.to_string(),
            None => return Err(format!("invalid room_id {number}: not a non-negative integer")),
        },
        None | Some(Value::Null) => return Err("room_id is missing: give data.room_id".into()),
        Some(other) => return Err(format!("invalid room_id {other}: a string or an integer")),
    };
    RoomName::new(&name).map(|_| name).map_err(|err| format!("invalid room_id: {err}"))
}

/// The native status of `data.status`: the original's `offline` is
/// `invisible` (connected, shown to others as offline).
fn status_of(data: &Map<String, Value>) -> Result<&str, String> {
    match data.get("status").and_then(Value::as_str) {
        Some("offline") => Ok("invisible"),
        Some(status @ ("online" | "away" | "busy" | "invisible")) => Ok(status),
        _ => Err("user_status needs data.status: online, away, busy, offline or invisible".into()),
    }
}

fn refused(message: String) -> Decoded {
    Decoded::Refused(FrameError::bad_request(message))
}

/// A refusal that closes the connection with 4001, as the original closed
/// anonymous connections.
fn anonymous(message: String) -> Decoded {
    Decoded::Refused(FrameError::Token(TokenError::Invalid(message)))
}

/// The writer's half: native frames into envelopes. It keeps nothing: a
/// connection's frames are those of the rooms it joined.
#[derive(Debug, Default)]
pub(crate) struct Encoder;

/// The native frames this dialect has a form for; the fields it reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Native {
    Message {
        room: String,
        id: String,
        sender: UserInfo,
        #[serde(default)]
        content: String,
        created_at: String,
    },
    Typing {
        room: String,
        user: Typist,
        is_typing: bool,
    },
    PresenceDiff {
        #[serde(default)]
        joins: Vec<Presence>,
        #[serde(default)]
        leaves: Vec<Id>,
        #[serde(default)]
        updates: Vec<Presence>,
    },
    Pong {
        time: String,
    },
    Error(ErrorFields),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Typist {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

/// A member's presence in a diff's `joins` or `updates`.
#[derive(Debug, Deserialize)]
struct Presence {
    user_id: String,
    status: String,
    #[serde(default)]
    last_seen: Option<String>,
}

/// A server envelope.
#[derive(Debug, Serialize)]
struct Envelope<'a, D> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_id: Option<Value>,
    timestamp: &'a str,
}

#[derive(Debug, Serialize)]
struct MessageData<'a> {
    id: &'a str,
    content: &'a str,
    sender: Value,
    /// The original's chat (room) id: the room.
    chat: Value,
    created_at: &'a str,
    sender_info: SenderInfo<'a>,
}

#[derive(Debug, Serialize)]
struct SenderInfo<'a> {
    id: Value,
    name: &'a str,
    role: Option<&'a str>,
    avatar: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct TypingData<'a> {
    room_id: Value,
    user_id: Value,
    user_name: &'a str,
    is_typing: bool,
}

#[derive(Debug, Serialize)]
struct StatusData<'a> {
    user_id: Value,
    status: &'a str,
    last_seen: Option<&'a str>,
}

/// The native `error` frame's fields, `message` as the original's `error`.
#[derive(Debug, Serialize)]
struct ErrorData<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<&'a str>,
}

/// An id as the original's clients compare it: a decimal integer that a
/// JavaScript number holds exactly is a number, anything else a string.
pub(crate) fn id_value(id: &str) -> Value {
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    match id.parse::<u64>() {
        Ok(number) if canonical && number <= MAX_SAFE_INTEGER => Value::from(number),
        _ => Value::from(id),
    }
}

/// Now, in RFC 3339 to the millisecond (as JavaScript's `toISOString`),
/// for frames whose native form carries no time.
fn now() -> String {
    let now = OffsetDateTime::now_utc();
    let millis = now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(now);
    millis.format(&Rfc3339).unwrap_or_default()
}

impl Encoder {
    /// The envelopes for one native frame, appended to `out`.
    fn rewrite(&mut self, text: &str, out: &mut VecDeque<Outbound>) {
        let native = match serde_json::from_str::<Native>(text) {
            Ok(native) => native,
            Err(err) => {
                tracing::error!(%err, "a native frame did not parse in the typed codec");
                return;
            }
        };
        fn push<D: Serialize>(out: &mut VecDeque<Outbound>, envelope: &Envelope<'_, D>) {
            match serde_json::to_string(envelope) {
                Ok(text) => out.push_back(Outbound::Frame(Utf8Bytes::from(text))),
                Err(err) => tracing::error!(%err, "a typed frame failed to serialize"),
            }
        }
        match native {
            Native::Message { room, id, sender, content, created_at } => {
                let data = MessageData {
                    id: &id,
                    content: &content,
                    sender: id_value(&sender.id),
                    chat: id_value(&room),
                    created_at: &created_at,
                    sender_info: SenderInfo {
                        id: id_value(&sender.id),
                        name: &sender.name,
                        role: sender.role.as_deref(),
                        avatar: sender.avatar.as_deref(),
                    },
                };
                let room_id = Some(id_value(&room));
                push(out, &Envelope { kind: "message", data, room_id, timestamp: &created_at });
            }
            Native::Typing { room, user, is_typing } => {
                let data = TypingData {
                    room_id: id_value(&room),
                    user_id: id_value(&user.id),
                    user_name: &user.name,
                    is_typing,
                };
                push(out, &Envelope { kind: "typing", data, room_id: None, timestamp: &now() });
            }
            Native::PresenceDiff { joins, leaves, updates } => {
                let timestamp = now();
                let mut status = |user_id: &str, status: &str, last_seen: Option<&str>| {
                    let data = StatusData { user_id: id_value(user_id), status, last_seen };
                    let kind = "user_status";
                    push(out, &Envelope { kind, data, room_id: None, timestamp: &timestamp });
                };
                // In the order a diff is applied: leaves, joins, updates. A
                // departure is told as `offline` at the time it is told.
                for leaver in &leaves {
                    status(&leaver.id, "offline", Some(&timestamp));
                }
                for presence in joins.iter().chain(&updates) {
                    status(&presence.user_id, &presence.status, presence.last_seen.as_deref());
                }
            }
            Native::Pong { time } => {
                let data = Map::new();
                push(out, &Envelope { kind: "pong", data, room_id: None, timestamp: &time });
            }
            Native::Error(ErrorFields { code, message, retry_after_ms, reason_code }) => {
                let reason_code = reason_code.as_deref();
                let data = ErrorData { error: &message, code: &code, retry_after_ms, reason_code };
                push(out, &Envelope { kind: "error", data, room_id: None, timestamp: &now() });
            }
            Native::Other => {}
        }
    }
}

impl Encode for Encoder {
    fn encode(&mut self, frames: VecDeque<Outbound>) -> VecDeque<Outbound> {
        rewrite_texts(frames, |text, out| self.rewrite(text, out))
    }
}

#[cfg(test)]
#[path = "typed_tests.rs"]
mod tests;
