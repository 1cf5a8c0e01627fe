//! Dialects: the wire formats of the systems Roomcast replaces, spoken on
//! their own paths so that their clients work unchanged
//! (`docs/migration.md`).
//!
//! A dialect is a thin codec over the native protocol, not a second server:
//! its connection runs the same reader, writer, [`Session`](crate::session::Session),
//! rooms, engine and store as `/ws`, with the same auth, limits and metrics.
//! The codec has two halves, one in each of the connection's tasks:
//! - a [`Decode`] in the reader turns each client text frame into native
//!   client frames handed to the session (or a refusal), and names the
//!   frames the session handles on connect (the dialect's implicit join);
//! - an [`Encode`] in the writer rewrites the native frames leaving the
//!   connection's queue into the dialect's frames, dropping those it has no
//!   form for. Fan-out is untouched: the hub still encodes a frame once and
//!   queues the same bytes to every connection, native or not.
//!
//! The native protocol is [`Native`], a zero-sized codec that passes text
//! through: the reader and writer are generic over the codec, so a native
//! connection's tasks hold nothing more and do nothing more.
//!
//! By dialect: `channels.rs` (Django Channels chat, personal chat and
//! notifications), `online.rs` (online status), `typed.rs` (typed chat
//! events), `gateway.rs` (the gateway with ops), `socketio.rs` (Socket.IO).

use std::collections::VecDeque;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use roomcast_shared::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FrameError};
use crate::hub::Outbound;
use crate::state::AppState;
use crate::ws::{self, Request};

pub(crate) mod channels;
pub(crate) mod gateway;
pub(crate) mod online;
pub(crate) mod socketio;
pub(crate) mod typed;

/// What a dialect makes of one client text frame.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// The text is a native frame as it is.
    Native,
    /// These native frames (JSON text), handed to the session in order.
    Frames(Vec<String>),
    /// Refused: the session answers with an error frame, which the writer
    /// puts in the dialect's form.
    Refused(FrameError),
}

/// A native `error` frame's fields, without its `ref`: read from the
/// native frame by every dialect, and passed on as they are by those whose
/// error form has the same fields.
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct ErrorFields {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// The reader's half of a dialect.
pub(crate) trait Decode: Send + 'static {
    /// Whether a connection that brings no credentials (no `?token=`, no
    /// cookie for the connect hook) is refused at once, with 4001: a
    /// dialect without an `auth` frame has no other way to sign in.
    const NEEDS_CREDENTIALS: bool;

    /// Whether [`on_open`](Self::on_open) has anything to do. `false` for
    /// the native protocol, whose reader then has no such step at all (its
    /// await would make every connection's task bigger).
    const OPENS: bool = true;

    /// Native frames the session handles once the connection is signed in
    /// as `user_id` (or a refusal, answered with an error frame). Called
    /// when the connection was signed in at the upgrade (`?token=` or the
    /// connect hook), which a dialect that [`NEEDS_CREDENTIALS`](Self::NEEDS_CREDENTIALS)
    /// always is; not after an `auth` frame.
    fn on_open(&mut self, user_id: &str) -> Decoded;

    /// One client text frame.
    fn decode(&mut self, text: &str) -> Decoded;

    /// When the connection is closed (1000, `heartbeat timeout`) for want
    /// of the dialect's own heartbeat, beside the native silence rule;
    /// read by the reader at each turn. `None`: no such rule.
    #[inline]
    fn heartbeat_due(&self) -> Option<tokio::time::Instant> {
        None
    }
}

/// The writer's half of a dialect.
pub(crate) trait Encode: Send + 'static {
    /// Rewrites a batch of frames taken from the queue, in order; control
    /// frames (ping, pong, close) go through as they are.
    fn encode(&mut self, frames: VecDeque<Outbound>) -> VecDeque<Outbound>;
}

/// The native protocol: text passes through both ways.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Native;

impl Decode for Native {
    const NEEDS_CREDENTIALS: bool = false;
    const OPENS: bool = false;

    fn on_open(&mut self, _user_id: &str) -> Decoded {
        Decoded::Frames(Vec::new())
    }

    #[inline]
    fn decode(&mut self, _text: &str) -> Decoded {
        Decoded::Native
    }
}

impl Encode for Native {
    #[inline]
    fn encode(&mut self, frames: VecDeque<Outbound>) -> VecDeque<Outbound> {
        frames
    }
}

/// Rewrites each text frame of `frames` with `rewrite` (zero or more
/// frames for each), keeping control frames where they are.
pub(crate) fn rewrite_texts(
    frames: VecDeque<Outbound>,
    mut rewrite: impl FnMut(&str, &mut VecDeque<Outbound>),
) -> VecDeque<Outbound> {
    let mut out = VecDeque::with_capacity(frames.len());
    for frame in frames {
        match frame {
            Outbound::Frame(text) => rewrite(text.as_str(), &mut out),
            control => out.push_back(control),
        }
    }
    out
}

/// The dialects' paths, each upgraded like `/ws` with its codec.
pub(crate) fn router() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/ws/chat/{room_name}/", get(channels_chat))
        .route("/ws/notifications/", get(channels_notifications))
        .route("/ws/notify/", get(channels_notifications))
        .route("/ws/online/", get(online_status))
        .route("/ws/chat/", get(typed_chat))
        .route("/ws/{id}/", get(channels_direct))
        .route("/gateway", get(gateway))
}

/// `GET /ws/chat/<room_name>/`: the Django Channels chat consumer. A name
/// the original route would not match (`\w+`) is not found (404), as it
/// was not there.
async fn channels_chat(Path(room_name): Path<String>, request: Request) -> Response {
    let Some(endpoint) = channels::Endpoint::chat(&room_name) else {
        let message = "no such chat room path: /ws/chat/<room_name>/ takes letters, digits and _";
        return ApiError::new(ErrorCode::NotFound, message).into_response();
    };
    ws::upgrade_with(request, endpoint.codec())
}

/// `GET /ws/online/`: online status (`online.rs`).
async fn online_status(request: Request) -> Response {
    ws::upgrade_with(request, online::codec())
}

/// `GET /ws/chat/`: typed chat events (`typed.rs`).
async fn typed_chat(request: Request) -> Response {
    ws::upgrade_with(request, typed::codec())
}

/// `GET /ws/<int:id>/`: the personal chat with user `id`, in the frames of
/// the chat consumer. An `id` that is not digits is not found (404).
async fn channels_direct(Path(id): Path<String>, request: Request) -> Response {
    let Some(endpoint) = channels::Endpoint::direct(&id) else {
        let message = "no such path: /ws/<id>/ takes a user id of digits";
        return ApiError::new(ErrorCode::NotFound, message).into_response();
    };
    ws::upgrade_with(request, endpoint.codec())
}

/// `GET /ws/notifications/` and `/ws/notify/`: the Django Channels
/// notification consumer.
async fn channels_notifications(request: Request) -> Response {
    let codec = channels::Endpoint::Notifications.codec();
    ws::upgrade_with(request, codec)
}

/// `GET /gateway`: the gateway with ops (`gateway.rs`).
async fn gateway(State(state): State<AppState>, request: Request) -> Response {
    ws::upgrade_with(request, gateway::codec(state.config.timing.gateway_heartbeat_timeout))
}

/// What every dialect's codec tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::VecDeque;
    use std::path::PathBuf;

    use roomcast_shared::CloseCode;

    use super::Encode;
    use crate::hub::Outbound;

    /// A golden sample, by its path under `shared/tests/golden/`.
    pub(crate) fn golden(path: &str) -> String {
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/golden").join(path);
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// Checks that `encoder` keeps a ping and a close where they were
    /// around `ack` (which it drops) and `message` (which it rewrites).
    pub(crate) fn control_frames_keep_their_place(
        encoder: &mut impl Encode,
        ack: String,
        message: String,
    ) {
        let frames = VecDeque::from([
            Outbound::Ping,
            Outbound::Frame(ack.into()),
            Outbound::Frame(message.into()),
            Outbound::Close(CloseCode::NORMAL, ""),
        ]);
        let out: Vec<_> = encoder.encode(frames).into_iter().collect();
        assert!(
            matches!(
                &out[..],
                [Outbound::Ping, Outbound::Frame(_), Outbound::Close(CloseCode::NORMAL, "")]
            ),
            "{out:?}"
        );
    }
}
