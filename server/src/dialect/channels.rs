//! The Django Channels dialect: `/ws/chat/<room_name>/` (a chat room),
//! `/ws/<int:id>/` (the personal chat with user `id`, their direct-message
//! room) and `/ws/notifications/` or `/ws/notify/` (the user's
//! notifications), in the frames of the consumers they replace
//! (`docs/migration.md`).
//!
//! In: `{"message": "text"}`, a `send` to the path's room. Out:
//! `chat_message` for each message in the room, `user_event` for each
//! arrival and departure (`user_joined`, `user_left`), `notification`, and
//! errors in the native `error` frame's fields (Channels had no error
//! frame; its clients dispatch on `type` and skip what they do not know).
//! Everything else (acks, `ready`, typing, reads, occupancy, pongs) has no
//! Channels form and is dropped by the writer.

use std::collections::VecDeque;

use roomcast_shared::RoomName;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tungstenite::Utf8Bytes;

use super::{Decode, Decoded, Encode, ErrorFields, rewrite_texts};
use crate::error::FrameError;
use crate::hub::Outbound;

/// Which consumer a connection replaces.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    /// `ChatConsumer`: the room of the path.
    Chat(RoomName),
    /// The personal chat with the user of this id: their direct-message
    /// room, known once the connection is signed in.
    Direct(String),
    /// `NotificationConsumer`: notifications only.
    Notifications,
}

impl Endpoint {
    /// The endpoint of `/ws/chat/<room_name>/`, when `room_name` matches the
    /// original route's `\w+` (letters, digits and `_` of any script) and is
    /// a valid room name. The pattern keeps out the `:` of the personal and
    /// direct-message rooms.
    pub fn chat(room_name: &str) -> Option<Self> {
        let word =
            !room_name.is_empty() && room_name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !word {
            return None;
        }
        RoomName::new(room_name).ok().map(Self::Chat)
    }

    /// The endpoint of `/ws/<int:id>/`, when `id` is digits (Django's
    /// `int` converter) and a valid user id.
    pub fn direct(id: &str) -> Option<Self> {
        let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        (digits && roomcast_shared::room::validate_user_id(id).is_ok())
            .then(|| Self::Direct(id.to_owned()))
    }

    /// The codec's two halves, for the reader and for the writer.
    pub fn codec(self) -> (Decoder, Encoder) {
        let encoder = match &self {
            Self::Chat(room) => Encoder { room: Some(room.clone()), ..Encoder::default() },
            Self::Direct(other) => {
                Encoder { direct_with: Some(other.clone()), ..Encoder::default() }
            }
            Self::Notifications => Encoder { notifications: true, ..Encoder::default() },
        };
        (Decoder { endpoint: self }, encoder)
    }
}

/// The reader's half: client frames into native ones.
#[derive(Debug)]
pub(crate) struct Decoder {
    endpoint: Endpoint,
}

impl Decode for Decoder {
    const NEEDS_CREDENTIALS: bool = true;

    /// The chat endpoint joins its room, asking for every member's arrival
    /// and departure (`member_events`) even in a big room, and for no
    /// history: the original sent none on connect.
    /// The personal chat becomes the chat of the two users' room here.
    fn on_open(&mut self, user_id: &str) -> Decoded {
        if let Endpoint::Direct(other) = &self.endpoint {
            match RoomName::direct(user_id, other) {
                Ok(room) => self.endpoint = Endpoint::Chat(room),
                Err(err) => return refused(err.to_string()),
            }
        }
        match &self.endpoint {
            Endpoint::Chat(room) => Decoded::Frames(vec![
                json!({"type": "join", "room": room, "history": 0, "member_events": true})
                    .to_string(),
            ]),
            Endpoint::Direct(_) | Endpoint::Notifications => Decoded::Frames(Vec::new()),
        }
    }

    fn decode(&mut self, text: &str) -> Decoded {
        let Endpoint::Chat(room) = &self.endpoint else {
            // Notifications only (a personal chat is a chat once open).
            return Decoded::Refused(FrameError::bad_request(
                "this endpoint only sends notifications; it takes no frames",
            ));
        };
        // The one frame a Channels chat client sends: an object with a
        // string `message`; other fields are ignored, as the original
        // consumer ignored them.
        let object = match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
            Ok(object) => object,
            Err(err) if err.is_data() => return refused(format!("{EXPECTED}: {err}")),
            Err(err) => return refused(format!("invalid JSON: {err}")),
        };
        let Some(Value::String(message)) = object.get("message") else {
            return refused(format!("{EXPECTED}: `message` must be a string"));
        };
        // Channels clients send no idempotency key: each frame is a new
        // message, under a key of its own.
        let client_id = format!("channels-{}", uuid::Uuid::now_v7());
        let send =
            json!({"type": "send", "room": room, "content": message, "client_id": client_id});
        Decoded::Frames(vec![send.to_string()])
    }
}

/// The frame the chat endpoint takes, for refusals.
const EXPECTED: &str = "expected {\"message\": \"<text>\"}";

fn refused(message: String) -> Decoded {
    Decoded::Refused(FrameError::bad_request(message))
}

/// The writer's half: native frames into Channels ones.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// The chat room whose frames are forwarded, if any.
    room: Option<RoomName>,
    /// On the personal chat, the other user: the room is known from the
    /// `ready` frame, which comes before any of the room's frames.
    direct_with: Option<String>,
    /// Whether notifications are forwarded (the notifications paths).
    notifications: bool,
}

/// The native frames this dialect has a form for; the fields it reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Native {
    Ready {
        user: Id,
    },
    Message {
        room: String,
        content: String,
        sender: Named,
    },
    PresenceDiff {
        room: String,
        #[serde(default)]
        joins: Vec<Joiner>,
        #[serde(default)]
        leaves: Vec<Named>,
    },
    Notification {
        title: String,
        body: String,
    },
    Error(ErrorFields),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Joiner {
    user: Named,
}

/// The frames a Channels client receives.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Frame<'a> {
    ChatMessage {
        message: &'a str,
        sender: &'a str,
    },
    UserEvent {
        message: String,
        event: UserEvent,
    },
    Notification {
        data: NotificationData<'a>,
    },
    /// The native `error` frame's fields, without its `ref`.
    Error(&'a ErrorFields),
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UserEvent {
    UserJoined,
    UserLeft,
}

#[derive(Debug, Serialize)]
pub(crate) struct NotificationData<'a> {
    title: &'a str,
    message: &'a str,
}

fn user_event(name: &str, event: UserEvent) -> Frame<'static> {
    let verb = match event {
        UserEvent::UserJoined => "joined",
        UserEvent::UserLeft => "left",
    };
    Frame::UserEvent { message: format!("{name} {verb} the room"), event }
}

impl Encoder {
    /// The Channels frames for one native frame, appended to `out`.
    fn rewrite(&mut self, text: &str, out: &mut VecDeque<Outbound>) {
        let native = match serde_json::from_str::<Native>(text) {
            Ok(native) => native,
            Err(err) => {
                tracing::error!(%err, "a native frame did not parse in the channels codec");
                return;
            }
        };
        if let (Native::Ready { user }, Some(other)) = (&native, &self.direct_with) {
            self.room = RoomName::direct(&user.id, other).ok();
        }
        let ours = |room: &str| self.room.as_ref().is_some_and(|ours| ours.as_str() == room);
        let mut push = |frame: Frame<'_>| match serde_json::to_string(&frame) {
            Ok(text) => out.push_back(Outbound::Frame(Utf8Bytes::from(text))),
            Err(err) => tracing::error!(%err, "a channels frame failed to serialize"),
        };
        match native {
            Native::Message { room, content, sender } if ours(&room) => {
                push(Frame::ChatMessage { message: &content, sender: &sender.name });
            }
            // The user's own arrival is among the joins too (the native
            // protocol tells each member of every arrival), as the
            // original told the whole group, the newcomer included.
            Native::PresenceDiff { room, joins, leaves } if ours(&room) => {
                for joiner in joins {
                    push(user_event(&joiner.user.name, UserEvent::UserJoined));
                }
                for leaver in leaves {
                    push(user_event(&leaver.name, UserEvent::UserLeft));
                }
            }
            Native::Notification { title, body } if self.notifications => {
                push(Frame::Notification {
                    data: NotificationData { title: &title, message: &body },
                });
            }
            Native::Error(error) => push(Frame::Error(&error)),
            _ => {}
        }
    }
}

impl Encode for Encoder {
    fn encode(&mut self, frames: VecDeque<Outbound>) -> VecDeque<Outbound> {
        rewrite_texts(frames, |text, out| self.rewrite(text, out))
    }
}

#[cfg(test)]
#[path = "channels_tests.rs"]
mod tests;
