//! The fallback transport, for clients behind a proxy that blocks
//! WebSockets: server frames as Server-Sent Events on `GET /sse`, client
//! frames as `POST /sse/{key}`, one native frame per request
//! (`docs/protocol.md`, "Fallback transport").
//!
//! Like a dialect, this is not a second server: the connection is a native
//! session run by `ws::spawn_session` with the reader of every WebSocket, reading from a
//! bounded channel that the POSTs feed, and written by a task that drains
//! its queue into the event stream. Rooms, recovery, acks, limits and
//! metrics are the session's.
//!
//! The stream's first event, `open`, names the connection's key: 128
//! random bits, the only thing a POST shows to act as the connection. The
//! key lives as long as the stream; a POST with a key that is not (or no
//! longer) open is `not_found`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roomcast_shared::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tungstenite::Message;

use crate::error::ApiError;
use crate::hub::Outbound;
use crate::hub::queue::{self, Next};
use crate::state::AppState;
use crate::ws::{self, FirstAuth, IpSlot, Opened};

/// Client frames waiting for the session: a POST beyond them is refused
/// with 429 rather than queued without bound.
const INBOUND_FRAMES: usize = 64;
/// Chunks of the event stream written ahead of a client that does not
/// read; past them the writer waits, the connection's queue fills, and the
/// hub closes a slow consumer as it does a WebSocket.
const STREAM_CHUNKS: usize = 4;
/// How long the `close` event waits for room in a stream the client reads
/// slowly, as a WebSocket's close frame does.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Native frames taken from the queue at once (one chunk of the stream).
const BATCH: usize = 64;

/// The open fallback connections, by key: where a POST finds its session.
#[derive(Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<String, mpsc::Sender<Message>>>,
}

/// The count only: keys are secrets.
impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.open.lock().map(|open| open.len()).unwrap_or_default();
        f.debug_struct("Streams").field("open", &open).finish()
    }
}

impl Streams {
    fn open(&self, sender: mpsc::Sender<Message>) -> String {
        let key = format!("{:032x}", rand::random::<u128>());
        self.open.lock().expect("streams lock").insert(key.clone(), sender);
        key
    }

    fn sender(&self, key: &str) -> Option<mpsc::Sender<Message>> {
        self.open.lock().expect("streams lock").get(key).cloned()
    }

    /// Ends the connection of `key` for its session: its stream of client
    /// frames ends once no POST holds a sender.
    fn close(&self, key: &str) {
        self.open.lock().expect("streams lock").remove(key);
    }
}

/// The transport's two routes, with the API's CORS: a page of another
/// allowed origin may use them (`EventSource` and `fetch`).
pub(crate) fn router(state: &AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/sse", axum::routing::get(open))
        .route("/sse/{key}", axum::routing::post(post))
        // Before the CORS layer, so that it answers preflights (OPTIONS).
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .layer(state.origins.cors())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    token: Option<String>,
}

/// `GET /sse`: opens a connection whose server frames are this response's
/// events.
async fn open(
    State(state): State<AppState>,
    Query(params): Query<Params>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !state.origins.allows(&headers) {
        return ApiError::new(ErrorCode::Forbidden, "origin not allowed").into_response();
    }
    let Some(slot) = IpSlot::take(&state, peer.ip(), &headers) else {
        let message = "too many connections from this address";
        return ApiError::new(ErrorCode::RateLimited, message).into_response();
    };
    let first = match params.token {
        Some(token) => FirstAuth::Token(token),
        None => FirstAuth::of_upgrade(&state, &headers, peer.ip()),
    };
    let (sender, inbound) = mpsc::channel(INBOUND_FRAMES);
    let key = state.sse.open(sender.clone());
    let (chunks, mut body) = mpsc::channel::<Bytes>(STREAM_CHUNKS);
    // Fits: the channel is new and empty.
    let _ = chunks.try_send(event("open", &json!({ "key": key }).to_string()));
    let request_id = headers.get(crate::logging::REQUEST_ID).cloned();
    let opened = Opened { first, slot, request_id };
    let writing = state.clone();
    ws::spawn_session(&state, opened, inbound, |queue| write(writing, key, queue, chunks, sender));
    let body = futures_util::stream::poll_fn(move |cx| {
        body.poll_recv(cx).map(|chunk| chunk.map(Ok::<_, std::convert::Infallible>))
    });
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        // nginx buffers responses by default; events must not wait.
        (header::HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
    ];
    (headers, Body::from_stream(body)).into_response()
}

/// `POST /sse/{key}`: one client frame for the connection of `key`.
async fn post(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.origins.allows(&headers) {
        return ApiError::new(ErrorCode::Forbidden, "origin not allowed").into_response();
    }
    let Some(sender) = state.sse.sender(&key) else {
        let message = "no open stream of this key: open GET /sse again";
        return ApiError::new(ErrorCode::NotFound, message).into_response();
    };
    if body.len() > state.config.limits.max_frame_bytes {
        let message = format!("a frame is at most {} bytes", state.config.limits.max_frame_bytes);
        return ApiError::new(ErrorCode::TooLarge, message).into_response();
    }
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return ApiError::new(ErrorCode::BadRequest, "a frame is UTF-8 JSON text").into_response();
    };
    match sender.try_send(Message::Text(text.into())) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => {
            let message = "too many frames waiting: wait for the answers";
            ApiError::new(ErrorCode::RateLimited, message).into_response()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            ApiError::new(ErrorCode::NotFound, "the stream has closed").into_response()
        }
    }
}

/// One event of the stream. Frames are compact JSON, one line each.
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The writer: the connection's queue into the event stream, until the
/// session ends or the client goes. `inbound` is the session's own
/// stream, which hears of each ping the client's stream took, as a
/// WebSocket's pong.
async fn write(
    state: AppState,
    key: String,
    mut queue: queue::Receiver,
    chunks: mpsc::Sender<Bytes>,
    inbound: mpsc::Sender<Message>,
) {
    let closing = loop {
        let frames = match queue.next(BATCH).await {
            Next::Frames(frames) => frames,
            Next::Killed((code, reason)) => break Some((code, reason)),
            Next::Ended => break None,
        };
        let mut chunk = Vec::new();
        let mut close = None;
        for frame in frames {
            match frame {
                Outbound::Frame(text) => {
                    chunk.extend_from_slice(b"data: ");
                    chunk.extend_from_slice(text.as_bytes());
                    chunk.extend_from_slice(b"\n\n");
                }
                // A comment: proxies see traffic, the client ignores it.
                Outbound::Ping => {
                    chunk.extend_from_slice(b": ping\n\n");
                    let _ = inbound.try_send(Message::Pong(Bytes::new()));
                }
                Outbound::Pong(_) => {}
                Outbound::Close(code, reason) => {
                    close = Some((code, reason));
                    break;
                }
            }
        }
        if !chunk.is_empty() && chunks.send(Bytes::from(chunk)).await.is_err() {
            // The client went: its session ends with the stream.
            break None;
        }
        queue.release();
        if close.is_some() {
            break close;
        }
    };
    if let Some((code, reason)) = closing {
        // After what was queued before it, if the client takes it within
        // the time a WebSocket's close frame gets.
        let close = event("close", &json!({"code": code.0, "reason": reason}).to_string());
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, chunks.send(close)).await;
    }
    state.sse.close(&key);
    drop(inbound);
}
