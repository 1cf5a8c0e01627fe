//! The WebSocket endpoint, `GET /ws`: upgrades the request and runs the
//! connection as two tasks that end together: the reader (the [`Session`])
//! and the writer, which drains the connection's queue.

mod frames;
mod handshake;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use roomcast_shared::CloseCode;
use serde::Deserialize;
use tokio::time::Instant;
use tracing::Instrument;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, Utf8Bytes};

use self::frames::FrameWriter;
use self::handshake::Upgrade;
use self::handshake::{Incoming, Outgoing};
use crate::client_ip::client_addr;
use crate::dialect::{Decode, Decoded, Encode, Native};
use crate::error::FrameError;
use crate::hooks::connect;
use crate::hub::queue::{self, Next, Signal};
use crate::hub::{Conn, Outbound};
use crate::session::{Flow, Session};
use crate::state::AppState;

/// Bytes read from a socket at once.
const READ_BUFFER: usize = 512;
/// How long the writer tries to send a close frame to a stuck client.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
struct WsParams {
    /// A token in the query string, for clients that cannot send a first frame.
    token: Option<String>,
}

pub(crate) async fn upgrade(request: Request) -> Response {
    upgrade_with(request, (Native, Native))
}

/// An upgrade request, as the handlers of `/ws` and of the dialects'
/// paths (`dialect.rs`) receive it.
pub(crate) struct Request {
    state: AppState,
    params: WsParams,
    peer: SocketAddr,
    headers: HeaderMap,
    ws: Upgrade,
}

impl FromRequestParts<AppState> for Request {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Query(params) = Query::<WsParams>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let ws =
            Upgrade::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        Ok(Self { state: state.clone(), params, peer, headers: parts.headers.clone(), ws })
    }
}

/// Upgrades `request` into a connection that speaks the dialect of
/// `codec` (the native protocol with [`Native`]): the same checks, auth,
/// session and limits for every dialect.
pub(crate) fn upgrade_with<D: Decode, E: Encode>(
    Request { state, params, peer, headers, ws }: Request,
    codec: (D, E),
) -> Response {
    let limit = state.config.limits.max_frame_bytes;
    // tungstenite allocates and zero-fills its read buffer (128 KiB by
    // default) for every connection; client frames are small (an `auth`
    // with its token fits in 512 bytes), and a bigger one is still read
    // whole: the buffer grows to hold it. 4 KiB cut an idle connection from
    // about 145 to 17 KiB, 512 bytes saves 3.5 KiB more (docs/performance.md).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_frame_size(Some(limit))
        .max_message_size(Some(limit));
    // Refusals are upgraded, then closed with a code: a page learns why from
    // the code, which a refused upgrade would not tell it.
    if !state.origins.allows(&headers) {
        return ws
            .on_upgrade(config, |_, out| refuse(out, CloseCode::POLICY, "origin not allowed"));
    }
    let Some(slot) = IpSlot::take(&state, peer.ip(), &headers) else {
        let reason = "too many connections from this address";
        return ws.on_upgrade(config, move |_, out| refuse(out, CloseCode::RATE_LIMITED, reason));
    };
    let first = match params.token {
        Some(token) => FirstAuth::Token(token),
        None => FirstAuth::of_upgrade(&state, &headers, peer.ip()),
    };
    let request_id = headers.get(crate::logging::REQUEST_ID).cloned();
    ws.on_upgrade(config, move |incoming, out| {
        let tasks = state.tasks.clone();
        let opened = Opened { first, slot, request_id };
        tasks.track_future(connection(FrameWriter::new(out), incoming, state, opened, codec))
    })
}

/// What a connection's reader reads: the frames of a WebSocket, or those a
/// transport of its own hands over in the same form (Socket.IO's events,
/// decoded in `dialect/socketio.rs`).
pub(crate) trait Inbound:
    Stream<Item = Result<Message, tungstenite::Error>> + Unpin + Send
{
}

impl<S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin + Send> Inbound for S {}

/// How a connection authenticates before its first frame, if it does.
pub(crate) enum FirstAuth {
    /// Waits for an `auth` frame.
    Frame,
    /// A token in the query string, handled as an `auth` frame.
    Token(String),
    /// No token but a cookie (or `Authorization`) and a connect hook: the
    /// hook says who it is.
    Hook(Box<connect::Request>),
}

impl FirstAuth {
    pub(crate) fn of_upgrade(
        state: &AppState,
        headers: &HeaderMap,
        peer: std::net::IpAddr,
    ) -> Self {
        if state.config.hooks.connect.is_none() {
            return Self::Frame;
        }
        let request = connect::Request::of(headers, peer, &state.config.hooks.limits);
        if request.has_credentials() { Self::Hook(Box::new(request)) } else { Self::Frame }
    }
}

/// One connection counted against its client address's limit and, from
/// [`IpSlot::count_in`] on, in the open-connections gauge: both undone when
/// dropped, however the connection's task ends (a panic included), and
/// also when the upgrade never completes.
pub(crate) struct IpSlot {
    state: AppState,
    /// `None` for an address the limit does not apply to.
    ip: Option<std::net::IpAddr>,
    /// Whether the connections gauge counts this connection.
    counted: bool,
}

impl IpSlot {
    pub(crate) fn take(
        state: &AppState,
        peer: std::net::IpAddr,
        headers: &HeaderMap,
    ) -> Option<Self> {
        let (ip, limited) = client_addr(peer, headers, &state.config.trusted_proxies);
        let limit = state.config.limits.connections_per_ip;
        if limited && !state.hub.ip_opened(ip, limit) {
            return None;
        }
        Some(Self { state: state.clone(), ip: limited.then_some(ip), counted: false })
    }

    fn count_in(&mut self) {
        self.state.metrics.connections.inc();
        self.state.metrics.connections_total.inc();
        self.counted = true;
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.state.hub.ip_closed(ip);
        }
        if self.counted {
            self.state.metrics.connections.dec();
        }
    }
}

async fn refuse(out: Outgoing, code: CloseCode, reason: &'static str) {
    let _ = FrameWriter::new(out).send([Outbound::Close(code, reason)]).await;
}

/// What the upgrade hands to the connection.
pub(crate) struct Opened {
    pub first: FirstAuth,
    pub slot: IpSlot,
    /// The upgrade request's id, logged once to tie it to the connection.
    pub request_id: Option<HeaderValue>,
}

/// One WebSocket connection: its writer spawned, its reader returned.
fn connection<D: Decode, E: Encode>(
    out: FrameWriter<Outgoing>,
    stream: Incoming,
    state: AppState,
    opened: Opened,
    (decoder, encoder): (D, E),
) -> impl Future<Output = ()> {
    let (conn, queue) = state.hub.open();
    let writer = tokio::spawn(write(out, queue, encoder));
    run(conn, writer, stream, state, opened, decoder)
}

/// Starts a native session on a transport of its own (Socket.IO, the
/// fallback transport): its client frames arrive on `inbound`, which ends
/// the session when it closes; `write` makes the task that drains its
/// queue.
pub(crate) fn spawn_session<W: Future<Output = ()> + Send + 'static>(
    state: &AppState,
    opened: Opened,
    mut inbound: tokio::sync::mpsc::Receiver<Message>,
    write: impl FnOnce(queue::Receiver) -> W,
) {
    let (conn, queue) = state.hub.open();
    let writer = tokio::spawn(write(queue));
    let stream = futures_util::stream::poll_fn(move |cx| inbound.poll_recv(cx).map(|m| m.map(Ok)));
    let session = run(conn, writer, stream, state.clone(), opened, Native);
    tokio::spawn(state.tasks.track_future(session));
}

/// The reader's task of connection `conn`, its log span around it, for any
/// transport: `writer` is the task that drains `conn`'s queue, `stream`
/// what the client sends.
fn run<S: Inbound, D: Decode>(
    conn: Arc<Conn>,
    writer: tokio::task::JoinHandle<()>,
    stream: S,
    state: AppState,
    Opened { first, slot, request_id }: Opened,
    decoder: D,
) -> impl Future<Output = ()> {
    // Every log line of this connection carries its id, and its user once
    // authenticated (see `Session::auth`). The request's id is not kept in
    // the span, whose fields every idle connection would carry: one line
    // ties the two.
    let span = tracing::info_span!("conn", id = conn.id, user = tracing::field::Empty);
    span.in_scope(|| {
        let request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        tracing::debug!(request_id, "connection opened");
    });
    serve(conn, writer, stream, state, first, slot, decoder).instrument(span)
}

/// The reader's task, from the upgrade to the end of the connection.
///
/// This future lives as long as the connection, and it reserves room for
/// its largest state all along: what runs once per frame or only at either
/// end is boxed where it is awaited (`Box::pin`), which keeps an idle
/// connection's task about 2 KiB smaller (docs/performance.md).
///
/// `serve`, `read` and `write` return an `async move` block rather than
/// being `async fn`s: an `async fn` keeps its arguments twice in its state
/// (as arguments and as the locals they move into), 376 bytes here, which
/// put the task a size class higher (tokio allocates tasks in steps of 128
/// bytes).
#[expect(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice (see serve)")]
fn serve<S: Inbound, D: Decode>(
    conn: Arc<Conn>,
    writer: tokio::task::JoinHandle<()>,
    mut stream: S,
    state: AppState,
    first: FirstAuth,
    mut slot: IpSlot,
    mut decoder: D,
) -> impl Future<Output = ()> {
    async move {
        slot.count_in();
        let mut session = Session::new(state.clone(), conn.clone());
        let mut flow = Flow::Continue;
        match first {
            // A dialect without an `auth` frame cannot sign in later.
            FirstAuth::Frame if D::NEEDS_CREDENTIALS => flow = session.fail(None, no_credentials()),
            FirstAuth::Frame => {}
            FirstAuth::Token(token) => {
                let frame = serde_json::json!({ "type": "auth", "token": token }).to_string();
                flow = Box::pin(session.on_text(&frame)).await;
            }
            FirstAuth::Hook(request) => flow = Box::pin(session.auth_by_hook(request)).await,
        }
        // Signed in at the upgrade: the dialect learns it (the user id is
        // set by then); a native connection's `on_open` does nothing.
        if D::OPENS
            && flow == Flow::Continue
            && (D::NEEDS_CREDENTIALS || !conn.user_id().is_empty())
        {
            let opened = decoder.on_open(conn.user_id());
            flow = Box::pin(on_decoded(&mut session, opened, None)).await;
        }
        if flow == Flow::Continue {
            read(&mut session, &conn, &mut stream, &state, decoder).await;
        }
        Box::pin(session.close()).await;
        drop(conn);
        Box::pin(finish(writer, stream, state.config.timing.drain_timeout)).await;
        drop(slot);
    }
}

/// The end of a connection, once the session has closed and dropped its
/// handle of the queue: the writer ends once every handle is gone and it
/// has sent what was queued (a last ack, error or close frame); meanwhile
/// the client's remaining frames are read and dropped until its close
/// reply, so that closing the socket with unread data cannot reset the
/// connection before the client has read ours. A stuck client, or one that
/// keeps sending, gets `--drain-timeout-ms` before the connection is dropped.
async fn finish(
    mut writer: tokio::task::JoinHandle<()>,
    mut stream: impl Inbound,
    drain: Duration,
) {
    let deadline = Instant::now() + drain;
    let finish_writer = async {
        if tokio::time::timeout_at(deadline, &mut writer).await.is_err() {
            writer.abort();
        }
    };
    let drain_reader = async {
        // The clock is read before each frame: a timeout looks at it only
        // when the stream has nothing ready, and a client that floods
        // always has something.
        while Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) | Err(_) => break,
                Ok(Some(Ok(_))) => {}
            }
        }
    };
    tokio::join!(finish_writer, drain_reader);
}

/// The reader: feeds frames and timers to the session until either ends it,
/// and queues a ping every heartbeat.
#[expect(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice (see serve)")]
fn read<'a, S: Inbound, D: Decode>(
    session: &'a mut Session,
    conn: &'a Conn,
    stream: &'a mut S,
    state: &'a AppState,
    mut decoder: D,
) -> impl Future<Output = ()> + 'a {
    async move {
        // What is computed from the config or the session is computed again
        // after each wait rather than kept across it: every value kept takes
        // room in this future for the whole life of an idle connection
        // (see `serve`).
        let heartbeat = || state.config.timing.heartbeat;
        let silent_at = |last_heard: Instant| last_heard + heartbeat() * 2;
        let mut last_heard = Instant::now();
        let mut ping_at = last_heard + heartbeat();
        // Created once and re-armed, not once per frame: one timer for the
        // connection (pings, silence and the session's own deadlines).
        let shutdown = state.shutdown.cancelled();
        let signalled = conn.signalled();
        let timer = tokio::time::sleep_until(silent_at(last_heard));
        tokio::pin!(shutdown, signalled, timer);
        loop {
            let deadline = silent_at(last_heard).min(ping_at).min(session.next_deadline());
            // A dialect's own heartbeat; not kept across the wait (a native
            // connection's future holds no room for it).
            let deadline = decoder.heartbeat_due().map_or(deadline, |due| deadline.min(due));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            let flow = tokio::select! {
                // Between frames: the frame being handled has finished, and its
                // reply (an ack, say) is queued before the close.
                () = &mut shutdown => {
                    Box::pin(session.close_with(CloseCode::RESTARTING, "server restarting")).await;
                    Flow::Stop
                }
                signal = &mut signalled => match signal {
                    Signal::Killed(_) => Flow::Stop,
                    // The server took this connection out of rooms
                    // (`moderation.rs`): the session leaves them.
                    Signal::Nudged => {
                        signalled.set(conn.signalled());
                        Box::pin(session.on_nudge()).await
                    }
                },
                // The oldest send in flight is stored: its ack goes out.
                flow = std::future::poll_fn(|cx| session.poll_answer(cx)), if session.awaiting() => flow,
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= silent_at(last_heard) || decoder.heartbeat_due().is_some_and(|due| now >= due) {
                        tracing::debug!("connection silent for too long, closing");
                        Box::pin(session.close_with(CloseCode::NORMAL, "heartbeat timeout")).await;
                        Flow::Stop
                    } else {
                        if now >= ping_at {
                            conn.enqueue(Outbound::Ping, &state.metrics);
                            ping_at = now + heartbeat();
                        }
                        if now >= session.next_deadline() {
                            Box::pin(session.on_timer()).await
                        } else {
                            Flow::Continue
                        }
                    }
                }
                incoming = stream.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        // Decoded inside the boxed future: what a dialect
                        // makes of a frame takes no room in this one.
                        Some(Ok(Message::Text(text))) => Box::pin(on_text(session, &mut decoder, text)).await,
                        // Answered after the sends in flight, like any frame
                        // but a send (see `Session::on_text`).
                        Some(Ok(Message::Binary(_))) => settled(session, |s| s.on_binary()).await,
                        Some(Ok(Message::Ping(payload))) => settled(session, |s| s.on_ping(payload)).await,
                        Some(Ok(Message::Pong(_))) => settled(session, Session::on_pong).await,
                        // Only ever made for writing.
                        Some(Ok(Message::Frame(_))) => Flow::Continue,
                        Some(Ok(Message::Close(close))) => {
                            // tungstenite hands over a close code that may not
                            // be sent (999, 1005, ...) as 1002.
                            if close.is_some_and(|c| c.code == tungstenite::protocol::frame::coding::CloseCode::Protocol) {
                                Box::pin(session.close_with(CloseCode::PROTOCOL_ERROR, "invalid close code")).await;
                            }
                            Flow::Stop
                        }
                        None => Flow::Stop,
                        Some(Err(err)) => {
                            if let Some((code, reason)) = close_for(&err) {
                                Box::pin(session.close_with(code, reason)).await;
                            }
                            tracing::debug!(%err, "read failed");
                            Flow::Stop
                        }
                    }
                }
            };
            if flow == Flow::Stop {
                return;
            }
        }
    }
}

/// One client text frame, through the connection's dialect.
async fn on_text<D: Decode>(session: &mut Session, decoder: &mut D, text: Utf8Bytes) -> Flow {
    let decoded = decoder.decode(text.as_str());
    on_decoded(session, decoded, Some(text.as_str())).await
}

/// Hands what a dialect decoded to the session: the frame as it is
/// (`text`), its native frames in order until one ends the connection, or
/// the refusal, answered after the sends in flight like any frame but a
/// send (see `Session::on_text`).
async fn on_decoded(session: &mut Session, decoded: Decoded, text: Option<&str>) -> Flow {
    match decoded {
        Decoded::Native => match text {
            Some(text) => session.on_text(text).await,
            None => Flow::Continue,
        },
        Decoded::Frames(frames) => {
            for frame in frames {
                if session.on_text(&frame).await == Flow::Stop {
                    return Flow::Stop;
                }
            }
            Flow::Continue
        }
        Decoded::Refused(err) => settled(session, |s| s.on_refused(err)).await,
    }
}

/// Why a dialect connection without a token or cookie is closed (4001).
fn no_credentials() -> FrameError {
    FrameError::Token(crate::auth::TokenError::Invalid(
        "no credentials: connect with ?token=<jwt> (or a session cookie when a connect hook is set)"
            .into(),
    ))
}

/// Runs `handle` once the session's sends in flight are answered.
async fn settled(session: &mut Session, handle: impl FnOnce(&mut Session) -> Flow) -> Flow {
    if session.awaiting() && Box::pin(session.settle()).await == Flow::Stop {
        return Flow::Stop;
    }
    handle(session)
}

/// The close frame that answers a client's frame tungstenite refused
/// (RFC 6455, section 7.4.1); `None` when the socket itself failed.
fn close_for(err: &tungstenite::Error) -> Option<(CloseCode, &'static str)> {
    match err {
        tungstenite::Error::Capacity(_) => Some((CloseCode::TOO_LARGE, "frame too large")),
        tungstenite::Error::Utf8(_) => Some((CloseCode::INVALID_DATA, "invalid UTF-8")),
        tungstenite::Error::Protocol(_) => Some((CloseCode::PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
}

/// The writer: sends queued frames in batches, and closes when told to: by
/// a close frame at the end of the queue (in order after every reply), or at
/// once by the kill switch.
#[expect(clippy::manual_async_fn, reason = "an async fn keeps its arguments twice (see serve)")]
fn write<E: Encode>(
    mut out: FrameWriter<Outgoing>,
    mut queue: queue::Receiver,
    mut encoder: E,
) -> impl Future<Output = ()> {
    async move {
        let closing = loop {
            // A kill comes first (the queue sees to it), then queued frames.
            let frames = match queue.next(frames::MAX_FRAMES).await {
                Next::Frames(frames) => frames,
                Next::Killed((code, reason)) => break Outbound::Close(code, reason),
                Next::Ended => break Outbound::Close(CloseCode::NORMAL, ""),
            };
            // The whole batch in one write (one syscall for a burst), up to a
            // close frame: the writer ends after it.
            // A dialect's frames are made here, per connection, off the
            // fan-out's path; for a native connection this is a no-op.
            let closes = out.queue(encoder.encode(frames));
            let sent = tokio::select! {
                sent = out.flush() => sent,
                (code, reason) = queue.killed() => break Outbound::Close(code, reason),
            };
            if sent.is_err() || closes {
                return;
            }
            // The batch's bytes counted against the queue's bound until
            // now: a client that does not read holds them until written.
            queue.release();
        };
        // Boxed: the idle writer's future keeps no room for its timeout.
        Box::pin(send_close(&mut out, closing)).await;
    }
}

/// Sends the close frame, after the rest of a frame cut off by a kill (the
/// client could not read the close otherwise); frames not started are
/// dropped.
async fn send_close(out: &mut FrameWriter<Outgoing>, frame: Outbound) {
    out.drop_unstarted();
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, out.send([frame])).await;
}
