//! The online-status dialect, `/ws/online/`: each client says it is online
//! (`{"username": ..., "type": "open"}`) or going offline (`"close"`), and
//! hears of every other user's changes as `{"username": "<user id>",
//! "online_status": true|false}` (`docs/migration.md`).
//!
//! Every connection of this path is in one native room, [`ROOM`], joined
//! with member events: an arrival is `true`, a departure (after the
//! presence grace period) `false`, and a status change is `true` unless
//! the status others see is `offline`. `open` sets the native status
//! `online`, `close` sets `invisible` (shown to others as offline). Who the
//! frame is about is the signed-in user, never the `username` a client
//! sends.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tungstenite::Utf8Bytes;

use super::{Decode, Decoded, Encode, ErrorFields, rewrite_texts};
use crate::error::FrameError;
use crate::hub::Outbound;

/// The native room of every `/ws/online/` connection. Not a `\w+` name:
/// no Channels chat path reaches it.
pub(crate) const ROOM: &str = "online-status";

/// The codec's two halves, for the reader and for the writer.
pub(crate) fn codec() -> (Decoder, Encoder) {
    (Decoder, Encoder::default())
}

/// The reader's half.
#[derive(Debug)]
pub(crate) struct Decoder;

/// What a client sends; `username` is read and ignored (the token says who
/// the user is).
#[derive(Debug, Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: Kind,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Open,
    Close,
}

impl Decode for Decoder {
    const NEEDS_CREDENTIALS: bool = true;

    fn on_open(&mut self, _user_id: &str) -> Decoded {
        let join = json!({"type": "join", "room": ROOM, "history": 0, "member_events": true});
        Decoded::Frames(vec![join.to_string()])
    }

    fn decode(&mut self, text: &str) -> Decoded {
        let status = match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame { kind: Kind::Open }) => "online",
            Ok(ClientFrame { kind: Kind::Close }) => "invisible",
            Err(err) => {
                return Decoded::Refused(FrameError::bad_request(format!(
                    "expected {{\"username\": \"<name>\", \"type\": \"open\" or \"close\"}}: {err}"
                )));
            }
        };
        Decoded::Frames(vec![json!({"type": "presence", "status": status}).to_string()])
    }
}

/// The writer's half.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// This connection's user, from `ready`: others' changes only.
    me: Option<String>,
}

/// The native frames this dialect reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Native {
    Ready {
        user: Id,
    },
    PresenceDiff {
        room: String,
        #[serde(default)]
        joins: Vec<Joiner>,
        #[serde(default)]
        leaves: Vec<Id>,
        #[serde(default)]
        updates: Vec<Update>,
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
    user: Id,
    status: String,
}

#[derive(Debug, Deserialize)]
struct Update {
    user_id: String,
    status: String,
}

/// The frames a client of this path receives.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Frame<'a> {
    Status {
        username: &'a str,
        online_status: bool,
    },
    /// The native `error` frame's fields, without its `ref`.
    Error {
        #[serde(rename = "type")]
        kind: &'static str,
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl Encoder {
    fn rewrite(&mut self, text: &str, out: &mut VecDeque<Outbound>) {
        let native = match serde_json::from_str::<Native>(text) {
            Ok(native) => native,
            Err(err) => {
                tracing::error!(%err, "a native frame did not parse in the online codec");
                return;
            }
        };
        let me = self.me.as_deref().unwrap_or("");
        let mut push = |frame: Frame<'_>| match serde_json::to_string(&frame) {
            Ok(text) => out.push_back(Outbound::Frame(Utf8Bytes::from(text))),
            Err(err) => tracing::error!(%err, "an online frame failed to serialize"),
        };
        let mut status = |username: &str, online: bool| {
            if username != me {
                push(Frame::Status { username, online_status: online });
            }
        };
        match native {
            Native::Ready { user } => self.me = Some(user.id),
            Native::PresenceDiff { room, joins, leaves, updates } if room == ROOM => {
                for joiner in &joins {
                    status(&joiner.user.id, joiner.status != "offline");
                }
                for leaver in &leaves {
                    status(&leaver.id, false);
                }
                for update in &updates {
                    status(&update.user_id, update.status != "offline");
                }
            }
            Native::Error(ErrorFields { code, message, retry_after_ms, .. }) => {
                push(Frame::Error {
                    kind: "error",
                    code: &code,
                    message: &message,
                    retry_after_ms,
                });
            }
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
mod tests {
    use std::path::PathBuf;

    use roomcast_shared::{ClientFrame, Envelope, SetStatus};
    use serde_json::Value;

    use super::*;

    fn golden(path: &str) -> String {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden");
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn open_and_close_set_the_native_status() {
        let (mut decoder, _) = codec();
        for (sample, expected) in [("open", SetStatus::Online), ("close", SetStatus::Invisible)] {
            let Decoded::Frames(frames) =
                decoder.decode(&golden(&format!("dialects/online/client/{sample}.json")))
            else {
                panic!("{sample} refused");
            };
            let native: Envelope<ClientFrame> = serde_json::from_str(&frames[0]).expect("native");
            assert!(
                matches!(native.frame, ClientFrame::Presence { status, custom: None } if status == expected),
                "{sample}: {frames:?}"
            );
        }
        for bad in [r#"{"type": "dance"}"#, "{}", "nope", r#"{"type": 1}"#] {
            assert!(matches!(decoder.decode(bad), Decoded::Refused(_)), "{bad}");
        }
    }

    #[test]
    fn a_presence_diff_of_the_room_is_each_others_status() {
        let (_, mut encoder) = codec();
        let diff = golden("server/presence_diff.json").replace("\"general\"", "\"online-status\"");
        let ready = r#"{"type":"ready","session_id":"s","user":{"id":"bob","name":"Bob"},"heartbeat_ms":1}"#;
        let frames = VecDeque::from([Outbound::Frame(ready.into()), Outbound::Frame(diff.into())]);
        let out: Vec<Value> = encoder
            .encode(frames)
            .iter()
            .map(|f| match f {
                Outbound::Frame(text) => serde_json::from_str(text.as_str()).expect("JSON"),
                other => panic!("{other:?}"),
            })
            .collect();
        let sample: Value =
            serde_json::from_str(&golden("dialects/online/server/online_status.json"))
                .expect("JSON");
        // Carol arrived, Dave left; Bob's own change (away) is not his news.
        assert_eq!(out, [sample, serde_json::json!({"username": "dave", "online_status": false})]);
        let other_room = golden("server/presence_diff.json");
        assert!(encoder.encode(VecDeque::from([Outbound::Frame(other_room.into())])).is_empty());
    }
}
