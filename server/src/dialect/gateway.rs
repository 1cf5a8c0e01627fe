//! The gateway dialect, `/gateway`: clients send ops (`{"op", "data"}`:
//! `IDENTIFY`, `HEARTBEAT`, `GUILD_SUBSCRIBE`, `GUILD_UNSUBSCRIBE`) and
//! receive answers in the same form (`READY`, `HEARTBEAT_ACK`, `ERROR`) and
//! events as `{"event", "data"}` (`docs/migration.md`).
//!
//! Guild `<id>` is the native room `guild:<id>`: subscribing joins it (with
//! member events, for `presence.update`), unsubscribing leaves it. A
//! channel lives in its guild's room: its messages carry the channel's id
//! in their `data` (`channelId`) and come out as `message.create` and
//! `message.update` with `data.channelId`. Application events a backend
//! publishes into a guild's room (or the user's personal room) come out
//! under their own name, so `channel.create` stays `channel.create`.
//!
//! The original closed a connection that sent no `HEARTBEAT` for 60 s.
//! Roomcast's own silence rule cannot stand in for it (browsers answer the
//! server's WebSocket pings by themselves, so a page whose code stopped
//! keeps the socket alive): the decoder keeps its own deadline,
//! [`Decode::heartbeat_due`], which the reader watches beside its timers.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use roomcast_shared::RoomName;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

use super::{Decode, Decoded, Encode, ErrorFields, rewrite_texts};
use crate::auth::TokenError;
use crate::error::FrameError;
use crate::hub::Outbound;

/// The native room of guild `<id>` is this prefix and the id.
pub(crate) const GUILD_PREFIX: &str = "guild:";

/// The codec's two halves; the connection is closed once `heartbeat_timeout`
/// passes without a `HEARTBEAT` (counted from now, the upgrade).
pub(crate) fn codec(heartbeat_timeout: Duration) -> (Decoder, Encoder) {
    let decoder = Decoder { heartbeat_timeout, heartbeat_due: Instant::now() + heartbeat_timeout };
    (decoder, Encoder::default())
}

/// The reader's half.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// How long the client may go without a `HEARTBEAT`
    /// (`--gateway-heartbeat-timeout-ms`).
    heartbeat_timeout: Duration,
    /// When the connection is closed unless a `HEARTBEAT` comes first.
    heartbeat_due: Instant,
}

/// What every client frame is: an op and its data.
#[derive(Debug, Deserialize)]
struct ClientFrame {
    op: String,
    /// `null` or absent for `HEARTBEAT`.
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
struct Identify {
    token: String,
}

#[derive(Debug, Deserialize)]
struct Guild {
    #[serde(rename = "guildId")]
    guild_id: String,
}

/// The ops a client may send, for refusals.
const OPS: &str = "IDENTIFY, HEARTBEAT, GUILD_SUBSCRIBE or GUILD_UNSUBSCRIBE";

impl Decode for Decoder {
    /// Signing in is the `IDENTIFY` op.
    const NEEDS_CREDENTIALS: bool = false;

    fn on_open(&mut self, _user_id: &str) -> Decoded {
        Decoded::Frames(Vec::new())
    }

    fn decode(&mut self, text: &str) -> Decoded {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(err) => {
                return refused(format!("expected {{\"op\": <{OPS}>, \"data\": ...}}: {err}"));
            }
        };
        let native = match frame.op.as_str() {
            // A token that is missing or not a string closes the connection
            // like a bad one: the client cannot go on without signing in.
            "IDENTIFY" => match serde_json::from_value::<Identify>(frame.data) {
                Ok(Identify { token }) => json!({"type": "auth", "token": token}),
                Err(err) => {
                    let why = format!("IDENTIFY takes {{\"token\": \"<jwt>\"}}: {err}");
                    return Decoded::Refused(FrameError::Token(TokenError::Invalid(why)));
                }
            },
            "HEARTBEAT" => {
                self.heartbeat_due = Instant::now() + self.heartbeat_timeout;
                json!({"type": "ping"})
            }
            "GUILD_SUBSCRIBE" => match guild_room(frame.data) {
                // Member events: `presence.update` for every member, even in
                // a big guild, as the original sent.
                Ok(room) => {
                    json!({"type": "join", "room": room, "history": 0, "member_events": true})
                }
                Err(err) => return Decoded::Refused(err),
            },
            "GUILD_UNSUBSCRIBE" => match guild_room(frame.data) {
                Ok(room) => json!({"type": "leave", "room": room}),
                Err(err) => return Decoded::Refused(err),
            },
            other => {
                let shown: String = other.chars().take(40).collect();
                return refused(format!("unknown op {shown:?}: expected {OPS}"));
            }
        };
        Decoded::Frames(vec![native.to_string()])
    }

    fn heartbeat_due(&self) -> Option<Instant> {
        Some(self.heartbeat_due)
    }
}

/// The native room of the guild named in `data` (`{"guildId": "<id>"}`).
/// The id is the rest of a room name after `guild:`, without a `:` of its
/// own (so no id names another kind of room's part).
fn guild_room(data: Value) -> Result<RoomName, FrameError> {
    let Guild { guild_id } = serde_json::from_value(data).map_err(|err| {
        FrameError::bad_request(format!("expected {{\"guildId\": \"<id>\"}}: {err}"))
    })?;
    let max = roomcast_shared::room::MAX_ROOM_NAME_LEN - GUILD_PREFIX.len();
    if guild_id.is_empty() || guild_id.len() > max || guild_id.contains(':') {
        return Err(FrameError::bad_request(format!(
            "invalid guildId: use 1 to {max} bytes of letters and digits of any script and _ . @ , -"
        )));
    }
    RoomName::new(format!("{GUILD_PREFIX}{guild_id}"))
        .map_err(|err| FrameError::bad_request(format!("invalid guildId: {err}")))
}

fn refused(message: String) -> Decoded {
    Decoded::Refused(FrameError::bad_request(message))
}

/// The writer's half.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// The guilds this connection is subscribed to, for `READY` (after a
    /// second `IDENTIFY`, which refreshes the token): kept from the native
    /// `joined` and `left` frames, so bounded by `--rooms-per-connection`.
    guilds: BTreeSet<String>,
}

/// The native frames this dialect reads; the fields it reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Native {
    Ready {
        user: Id,
    },
    Pong {},
    Joined {
        room: String,
    },
    Left {
        room: String,
    },
    Message {
        room: String,
        id: String,
        sender: Id,
        content: String,
        created_at: String,
        #[serde(default)]
        data: Value,
    },
    MessageUpdated {
        room: String,
        id: String,
        content: String,
        edited_at: String,
        #[serde(default)]
        data: Value,
    },
    MessageDeleted {
        room: String,
        id: String,
    },
    PresenceDiff {
        room: String,
        #[serde(default)]
        joins: Vec<Joiner>,
        #[serde(default)]
        leaves: Vec<Id>,
        #[serde(default)]
        updates: Vec<Presence>,
    },
    Typing {
        room: String,
        user: Id,
        is_typing: bool,
    },
    Event {
        room: String,
        name: String,
        #[serde(default)]
        data: Value,
    },
    Error(ErrorFields),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Joiner {
    user_id: String,
    status: String,
    #[serde(default)]
    custom: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Presence {
    user_id: String,
    status: String,
    #[serde(default)]
    custom: Option<String>,
}

/// An answer to an op.
#[derive(Debug, Serialize)]
#[serde(tag = "op", content = "data", rename_all = "SCREAMING_SNAKE_CASE")]
enum Answer<'a> {
    Ready {
        #[serde(rename = "userId")]
        user_id: &'a str,
        guilds: &'a BTreeSet<String>,
    },
    HeartbeatAck(()),
    /// The native `error` frame's fields, without its `ref`.
    Error(&'a ErrorFields),
}

/// An event: its name and its data.
#[derive(Debug, Serialize)]
struct Event<'a, T> {
    event: &'a str,
    data: T,
}

/// The guild id of a native room, when it is a guild's.
fn guild_of(room: &str) -> Option<&str> {
    room.strip_prefix(GUILD_PREFIX)
}

/// The channel a message belongs to: its `data.channelId`, `null` for a
/// message without one (sent into the guild's room by a client that does
/// not know of channels).
fn channel_of(data: &Value) -> &Value {
    data.get("channelId").unwrap_or(&Value::Null)
}

impl Encoder {
    fn rewrite(&mut self, text: &str, out: &mut VecDeque<Outbound>) {
        let native = match serde_json::from_str::<Native>(text) {
            Ok(native) => native,
            Err(err) => {
                tracing::error!(%err, "a native frame did not parse in the gateway codec");
                return;
            }
        };
        let mut push = |frame: Result<String, serde_json::Error>| match frame {
            Ok(text) => out.push_back(Outbound::Frame(Utf8Bytes::from(text))),
            Err(err) => tracing::error!(%err, "a gateway frame failed to serialize"),
        };
        let event = |name: &str, data: Value| serde_json::to_string(&Event { event: name, data });
        match native {
            Native::Ready { user } => {
                push(serde_json::to_string(&Answer::Ready {
                    user_id: &user.id,
                    guilds: &self.guilds,
                }));
            }
            Native::Pong {} => push(serde_json::to_string(&Answer::HeartbeatAck(()))),
            Native::Joined { room } => {
                if let Some(guild) = guild_of(&room) {
                    self.guilds.insert(guild.to_owned());
                }
            }
            Native::Left { room } => {
                if let Some(guild) = guild_of(&room) {
                    self.guilds.remove(guild);
                }
            }
            Native::Message { room, id, sender, content, created_at, data } => {
                if let Some(guild) = guild_of(&room) {
                    let message = json!({
                        "_id": id, "authorId": sender.id, "content": content, "createdAt": created_at,
                    });
                    let data = json!({"channelId": channel_of(&data), "guildId": guild, "message": message});
                    push(event("message.create", data));
                }
            }
            Native::MessageUpdated { room, id, content, edited_at, data } => {
                if let Some(guild) = guild_of(&room) {
                    let message = json!({
                        "_id": id, "content": content, "edited": true, "editedAt": edited_at,
                    });
                    let data = json!({"channelId": channel_of(&data), "guildId": guild, "message": message});
                    push(event("message.update", data));
                }
            }
            Native::MessageDeleted { room, id } => {
                if let Some(guild) = guild_of(&room) {
                    push(event("message.delete", json!({"messageId": id, "guildId": guild})));
                }
            }
            Native::PresenceDiff { room, joins, leaves, updates } => {
                let Some(guild) = guild_of(&room) else { return };
                let mut presence = |user: &str, status: &str, custom: Option<&str>| {
                    let data = json!({
                        "userId": user, "status": status, "customStatus": custom, "guildId": guild,
                    });
                    push(event("presence.update", data));
                };
                for joiner in &joins {
                    presence(&joiner.user_id, &joiner.status, joiner.custom.as_deref());
                }
                for leaver in &leaves {
                    presence(&leaver.id, "offline", None);
                }
                for update in &updates {
                    presence(&update.user_id, &update.status, update.custom.as_deref());
                }
            }
            // The native typing frame names no channel; the original had no
            // `typing.stop`.
            Native::Typing { room, user, is_typing: true } => {
                if let Some(guild) = guild_of(&room) {
                    let data = json!({"channelId": null, "guildId": guild, "userId": user.id});
                    push(event("typing.start", data));
                }
            }
            // A backend's events: those of the subscribed guilds, and those
            // for the user alone (`guild.create` when it joins a guild).
            Native::Event { room, name, data }
                if guild_of(&room).is_some() || room.starts_with("user:") =>
            {
                push(event(&name, data));
            }
            Native::Error(error) => push(serde_json::to_string(&Answer::Error(&error))),
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
#[path = "gateway_tests.rs"]
mod tests;
