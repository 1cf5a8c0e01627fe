//! The WebSocket endpoint, `GET /ws`: upgrades the request and runs the
//! connection as two tasks that end together: the reader (the [`Session`])
//! and the writer, which drains the connection's queue and pings.

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
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::hub::{KillSwitch, Outbound};
use crate::session::{Flow, Session};
use crate::state::AppState;

/// Bytes read from a socket at once.
const READ_BUFFER: usize = 4 * 1024;
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
    // tungstenite zero-fills its read buffer (128 KiB by default) for every
    // connection; client frames are small, and a bigger one is still read
    // whole, in several reads. 4 KiB cuts an idle connection from about 145
    // to 17 KiB (docs/performance.md).
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
        let tasks = state.tasks.clone();
        tasks.track_future(async move {
            connection(socket, state, params.token).await;
            drop(slot);
        })
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

async fn connection(socket: WebSocket, state: AppState, query_token: Option<String>) {
    let (conn, queue, kill) = state.hub.open();
    // Every log line of this connection carries its id, and its user once
    // authenticated (see `Session::auth`).
    let span = tracing::info_span!("conn", id = conn.id, user = tracing::field::Empty);
    async move {
        let (sink, mut stream) = socket.split();
        let heartbeat = state.config.timing.heartbeat;
        let mut writer = tokio::spawn(write(sink, queue, kill, heartbeat));
        state.metrics.connections.inc();
        state.metrics.connections_total.inc();

        let mut session = Session::new(state.clone(), conn.clone());
        let mut flow = Flow::Continue;
        if let Some(token) = query_token {
            let frame = serde_json::json!({ "type": "auth", "token": token }).to_string();
            flow = session.on_text(&frame).await;
        }
        if flow == Flow::Continue {
            read(&mut session, &mut stream, &state).await;
        }
        session.close().await;

        // The writer ends once every handle of the queue is gone and it has
        // sent what was queued (a last ack, error or close frame); meanwhile
        // the client's remaining frames are read and dropped until its close
        // reply, so that closing the socket with unread data cannot reset the
        // connection before the client has read ours. A stuck client gets a
        // short while before the connection is dropped.
        drop(conn);
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        let finish_writer = async {
            if tokio::time::timeout_at(deadline, &mut writer).await.is_err() {
                writer.abort();
            }
        };
        let drain_reader = async {
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await
            {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        tokio::join!(finish_writer, drain_reader);
        state.metrics.connections.dec();
    }
    .instrument(span)
    .await;
}

/// The reader: feeds frames and timers to the session until either ends it.
async fn read(session: &mut Session, stream: &mut SplitStream<WebSocket>, state: &AppState) {
    let idle_limit = state.config.timing.heartbeat * 2;
    let mut last_heard = Instant::now();
    loop {
        let next_timer = session.next_deadline();
        let flow = tokio::select! {
            // Between frames: the frame being handled has finished, and its
            // reply (an ack, say) is queued before the close.
            () = state.shutdown.cancelled() => {
                session.close_with(CloseCode::RESTARTING, "server restarting");
                Flow::Stop
            }
            () = session.killed() => Flow::Stop,
            () = tokio::time::sleep_until(last_heard + idle_limit) => {
                tracing::debug!("connection silent for two heartbeats, closing");
                session.close_with(CloseCode::NORMAL, "heartbeat timeout");
                Flow::Stop
            }
            () = tokio::time::sleep_until(next_timer) => session.on_timer().await,
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => session.on_text(text.as_str()).await,
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
    mut queue: mpsc::Receiver<Outbound>,
    kill: std::sync::Arc<KillSwitch>,
    heartbeat: Duration,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let close = |code: CloseCode, reason: &'static str| {
        Message::Close(Some(CloseFrame { code: code.0, reason: reason.into() }))
    };
    loop {
        let first = tokio::select! {
            biased;
            (code, reason) = kill.killed() => break send_close(&mut sink, close(code, reason)).await,
            outbound = queue.recv() => match outbound {
                Some(Outbound::Frame(text)) => Message::Text(text),
                Some(Outbound::Close(code, reason)) => break send_close(&mut sink, close(code, reason)).await,
                None => break send_close(&mut sink, close(CloseCode::NORMAL, "")).await,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        // Hand over whatever else is queued before one flush: one syscall
        // for a burst instead of one per frame.
        let mut batch = vec![first];
        let mut closing = None;
        while batch.len() < WRITE_BATCH {
            match queue.try_recv() {
                Ok(Outbound::Frame(text)) => batch.push(Message::Text(text)),
                Ok(Outbound::Close(code, reason)) => {
                    closing = Some(close(code, reason));
                    break;
                }
                Err(_) => break,
            }
        }
        let sent = tokio::select! {
            sent = send_batch(&mut sink, batch) => sent,
            (code, reason) = kill.killed() => break send_close(&mut sink, close(code, reason)).await,
        };
        if sent.is_err() {
            break;
        }
        if let Some(frame) = closing {
            break send_close(&mut sink, frame).await;
        }
    }
}

async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: Vec<Message>,
) -> Result<(), axum::Error> {
    for message in batch {
        sink.feed(message).await?;
    }
    sink.flush().await
}

async fn send_close(sink: &mut SplitSink<WebSocket, Message>, frame: Message) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let _ = sink.send(frame).await;
        let _ = sink.close().await;
    })
    .await;
}
