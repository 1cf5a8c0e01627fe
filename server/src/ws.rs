//! The WebSocket endpoint, `GET /ws`: upgrades the request and runs the
//! connection as two tasks that end together: the reader (the [`Session`])
//! and the writer, which drains the connection's queue and pings.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use roomcast_shared::CloseCode;
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::hub::queue::{self, Next};
use crate::hub::{Conn, Outbound};
use crate::session::{Flow, Session};
use crate::state::AppState;

/// Bytes read from a socket at once.
const READ_BUFFER: usize = 512;
/// Frames the writer hands to the socket before flushing.
const WRITE_BATCH: usize = 64;
/// How long the writer tries to send a close frame to a stuck client.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a closing connection's writer may take to drain its queue.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
pub(crate) struct WsParams {
    /// A token in the query string, for clients that cannot send a first frame.
    token: Option<String>,
}

pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Query(params): Query<WsParams>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let limit = state.config.limits.max_frame_bytes;
    // tungstenite allocates and zero-fills its read buffer (128 KiB by
    // default) for every connection; client frames are small (an `auth`
    // with its token fits in 512 bytes), and a bigger one is still read
    // whole: the buffer grows to hold it. 4 KiB cut an idle connection from
    // about 145 to 17 KiB, 512 bytes saves 3.5 KiB more (docs/performance.md).
    let ws = ws.read_buffer_size(READ_BUFFER).max_frame_size(limit).max_message_size(limit);
    // Refusals are upgraded, then closed with a code: a page learns why from
    // the code, which a refused upgrade would not tell it.
    if !state.origins.allows(&headers) {
        return ws.on_upgrade(|socket| refuse(socket, CloseCode::POLICY, "origin not allowed"));
    }
    let Some(slot) = IpSlot::take(&state, peer.ip()) else {
        let reason = "too many connections from this address";
        return ws.on_upgrade(move |socket| refuse(socket, CloseCode::RATE_LIMITED, reason));
    };
    ws.on_upgrade(move |socket| {
        // Split here, not in the task: the socket moves to the heap once,
        // and the task's future holds two pointers to it rather than a copy.
        let (sink, stream) = socket.split();
        let tasks = state.tasks.clone();
        tasks.track_future(connection(sink, stream, state, params.token, slot))
    })
}

/// One connection counted against its IP address's limit, until dropped
/// (also when the upgrade never completes).
struct IpSlot {
    hub: std::sync::Arc<crate::hub::Hub>,
    ip: std::net::IpAddr,
}

impl IpSlot {
    fn take(state: &AppState, ip: std::net::IpAddr) -> Option<Self> {
        let limit = state.config.limits.connections_per_ip;
        state.hub.ip_opened(ip, limit).then(|| Self { hub: state.hub.clone(), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.hub.ip_closed(self.ip);
    }
}

async fn refuse(mut socket: WebSocket, code: CloseCode, reason: &'static str) {
    let frame = CloseFrame { code: code.0, reason: reason.into() };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// One connection, its log span around it.
fn connection(
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    state: AppState,
    query_token: Option<String>,
    slot: IpSlot,
) -> impl Future<Output = ()> {
    let (conn, queue) = state.hub.open();
    // Every log line of this connection carries its id, and its user once
    // authenticated (see `Session::auth`).
    let span = tracing::info_span!("conn", id = conn.id, user = tracing::field::Empty);
    let writer = tokio::spawn(write(sink, queue, state.config.timing.heartbeat));
    serve(conn, writer, stream, state, query_token, slot).instrument(span)
}

/// The reader's task, from the upgrade to the end of the connection.
///
/// This future lives as long as the connection, and it reserves room for
/// its largest state all along: what runs once per frame or only at either
/// end is boxed where it is awaited (`Box::pin`), which keeps an idle
/// connection's task about 2 KiB smaller (docs/performance.md).
async fn serve(
    conn: Arc<Conn>,
    writer: tokio::task::JoinHandle<()>,
    mut stream: SplitStream<WebSocket>,
    state: AppState,
    query_token: Option<String>,
    slot: IpSlot,
) {
    state.metrics.connections.inc();
    state.metrics.connections_total.inc();
    let mut session = Session::new(state.clone(), conn.clone());
    let mut flow = Flow::Continue;
    if let Some(token) = query_token {
        let frame = serde_json::json!({ "type": "auth", "token": token }).to_string();
        flow = Box::pin(session.on_text(&frame)).await;
    }
    if flow == Flow::Continue {
        read(&mut session, &conn, &mut stream, &state).await;
    }
    Box::pin(session.close()).await;
    drop(conn);
    Box::pin(finish(writer, stream)).await;
    state.metrics.connections.dec();
    drop(slot);
}

/// The end of a connection, once the session has closed and dropped its
/// handle of the queue: the writer ends once every handle is gone and it
/// has sent what was queued (a last ack, error or close frame); meanwhile
/// the client's remaining frames are read and dropped until its close
/// reply, so that closing the socket with unread data cannot reset the
/// connection before the client has read ours. A stuck client gets a short
/// while before the connection is dropped.
async fn finish(mut writer: tokio::task::JoinHandle<()>, mut stream: SplitStream<WebSocket>) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let finish_writer = async {
        if tokio::time::timeout_at(deadline, &mut writer).await.is_err() {
            writer.abort();
        }
    };
    let drain_reader = async {
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::join!(finish_writer, drain_reader);
}

/// The reader: feeds frames and timers to the session until either ends it.
async fn read(
    session: &mut Session,
    conn: &Conn,
    stream: &mut SplitStream<WebSocket>,
    state: &AppState,
) {
    let idle_limit = state.config.timing.heartbeat * 2;
    let mut last_heard = Instant::now();
    // Created once and re-armed, not once per frame: one timer for both the
    // heartbeat and the session's own deadlines.
    let shutdown = state.shutdown.cancelled();
    let killed = conn.killed();
    let timer = tokio::time::sleep_until(last_heard + idle_limit);
    tokio::pin!(shutdown, killed, timer);
    let mut armed = None;
    loop {
        let silent_at = last_heard + idle_limit;
        let deadline = silent_at.min(session.next_deadline());
        if armed != Some(deadline) {
            timer.as_mut().reset(deadline);
            armed = Some(deadline);
        }
        let flow = tokio::select! {
            // Between frames: the frame being handled has finished, and its
            // reply (an ack, say) is queued before the close.
            () = &mut shutdown => {
                session.close_with(CloseCode::RESTARTING, "server restarting");
                Flow::Stop
            }
            _ = &mut killed => Flow::Stop,
            () = &mut timer => {
                armed = None;
                if Instant::now() >= silent_at {
                    tracing::debug!("connection silent for two heartbeats, closing");
                    session.close_with(CloseCode::NORMAL, "heartbeat timeout");
                    Flow::Stop
                } else {
                    Box::pin(session.on_timer()).await
                }
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => Box::pin(session.on_text(text.as_str())).await,
                    Some(Ok(Message::Binary(_))) => session.on_binary(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) | None => Flow::Stop,
                    Some(Err(err)) => {
                        // tungstenite reports an over-limit frame as a
                        // capacity error, which the protocol answers with 1009.
                        if err.to_string().contains("Space limit exceeded") {
                            session.close_with(CloseCode::TOO_LARGE, "frame too large");
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

/// The writer: sends queued frames in batches, pings every heartbeat, and
/// closes when told to: by a close frame at the end of the queue (in order
/// after every reply), or at once by the kill switch.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: queue::Receiver,
    heartbeat: Duration,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let closing = loop {
        // A kill comes first (the queue sees to it), then queued frames,
        // then the ping.
        let (first, frames) = tokio::select! {
            biased;
            next = queue.next(WRITE_BATCH) => match next {
                Next::Frames(frames) => (None, frames),
                Next::Killed((code, reason)) => break close(code, reason),
                Next::Ended => break close(CloseCode::NORMAL, ""),
            },
            _ = ping.tick() => (Some(Message::Ping(Default::default())), VecDeque::new()),
        };
        // Boxed, one allocation per batch like the batch itself: the idle
        // writer's future then keeps no room for a batch in flight.
        let sent = tokio::select! {
            sent = Box::pin(send_batch(&mut sink, first, frames)) => sent,
            (code, reason) = queue.killed() => break close(code, reason),
        };
        match sent {
            Ok(None) => {}
            Ok(Some(closing)) => break closing,
            Err(_) => return,
        }
    };
    // Boxed for the same reason.
    Box::pin(send_close(&mut sink, closing)).await;
}

fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code: code.0, reason: reason.into() }))
}

/// Hands a batch to the socket and flushes once: one syscall for a burst
/// instead of one per frame. Returns the close frame that ended the batch,
/// if one did (what was queued after it is dropped).
async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    first: Option<Message>,
    frames: VecDeque<Outbound>,
) -> Result<Option<Message>, axum::Error> {
    if let Some(message) = first {
        sink.feed(message).await?;
    }
    let mut closing = None;
    for outbound in frames {
        match outbound {
            Outbound::Frame(text) => sink.feed(Message::Text(text)).await?,
            Outbound::Close(code, reason) => {
                closing = Some(close(code, reason));
                break;
            }
        }
    }
    sink.flush().await?;
    Ok(closing)
}

async fn send_close(sink: &mut SplitSink<WebSocket, Message>, frame: Message) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(frame).await;
        let _ = sink.close().await;
    })
    .await;
}
