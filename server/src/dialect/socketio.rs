//! The Socket.IO dialect, `/socket.io/`: a Socket.IO server for the
//! `socket.io-client` 4.x of a system Roomcast replaces, WebSocket and
//! long-polling alike (`docs/migration.md`). Engine.IO and Socket.IO (the
//! handshake, both transports, the upgrade between them, their pings,
//! packets and acknowledgements) are `socketioxide`'s; what is Roomcast's
//! is the bridge from a socket to a native session:
//!
//! - **Sign-in** (a connect middleware): `io(url, { auth: { token } })`
//!   with a JWT, checked like any token, and the origin and per-address
//!   limits of `/ws`; a refusal is the client's `connect_error`.
//! - **In**: each event becomes a native client frame (`codec.rs`), handed
//!   to the session in the order the socket received them: the translation
//!   runs in an extractor, which `socketioxide` calls in order, before it
//!   spawns a handler per event (which would not keep it).
//! - **Session**: the same reader as a WebSocket's (`ws::spawn_session`), reading
//!   from a bounded channel instead of a socket; so rooms, auth expiry,
//!   limits, history and metrics are those of every connection.
//! - **Out**: a writer task drains the connection's queue into events and
//!   acknowledgement callbacks.
//!
//! On connect the socket is in its user's personal room (`user:<id>`, as
//! every connection is) and, with the admin role, in room `admin`.

mod codec;

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use roomcast_shared::{CloseCode, ErrorCode};
use serde_json::{Value, json};
use socketioxide::SocketError;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessage, FromMessageParts};
use socketioxide::socket::Socket;
use socketioxide::{SocketIo, adapter::LocalAdapter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tungstenite::Message;

use self::codec::{Answer, Out, Refusal};
use crate::auth::TokenError;
use crate::hub::Outbound;
use crate::hub::queue::{self, Next};
use crate::state::AppState;
use crate::ws::{self, FirstAuth, IpSlot, Opened};

/// Client events waiting for the session. A client that sends faster than
/// its session handles (rate limits apply there) has further events
/// refused with `rate_limited` rather than queued without bound.
const INBOUND_EVENTS: usize = 64;
/// Acknowledgement callbacks waiting for the session's answer (a send's
/// durable commit, a join); beyond this, events with a callback are
/// refused with `rate_limited`.
const PENDING_ACKS: usize = 64;
/// Message ids remembered (with their room) for `mark_read`, which names
/// a message and not its room: the most recent ones shown on the socket.
const SEEN_MESSAGES: usize = 256;
/// Packets `socketioxide` buffers for a socket that does not read; when
/// full, the socket is disconnected, as a WebSocket that does not read is
/// (`--send-queue-bytes`).
const SOCKET_BUFFER: usize = 256;
/// How often a `disconnect` that found the socket's buffer full is tried
/// again.
const DISCONNECT_RETRY: Duration = Duration::from_millis(100);
/// How long a socket must have sent nothing before it is disconnected
/// (see [`close`]).
const QUIET: Duration = Duration::from_millis(50);
/// Native frames taken from the queue at once.
const BATCH: usize = 64;

/// `router` with the Socket.IO service on `/socket.io/`.
pub(crate) fn mount(router: axum::Router<AppState>, state: &AppState) -> axum::Router<AppState> {
    let (service, io) = SocketIo::builder()
        .max_payload(state.config.limits.max_frame_bytes as u64)
        .max_buffer_size(SOCKET_BUFFER)
        .with_state(state.clone())
        .build_svc();
    io.ns("/", on_connect.with(admit));
    // At shutdown every transport is closed, which a client takes as a
    // lost connection: it reconnects (to this server once it is back, or
    // to another). A `disconnect` would keep it away.
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        io.close().await;
    });
    router.route_service("/socket.io/", service)
}

/// An admitted socket's session, to be started once it is connected:
/// handed from the connect middleware to the connect handler.
#[derive(Clone)]
struct Admitted(Arc<Mutex<Option<Admission>>>);

struct Admission {
    token: String,
    slot: IpSlot,
    bridge: Arc<Bridge>,
    inbound: mpsc::Receiver<Message>,
}

/// The connect middleware: the origin, the token and the address's
/// connection limit. An `Err` is the client's `connect_error`, its
/// message the error's. An admitted socket gets its bridge and handlers
/// here, before the client hears it is connected: its first events must
/// find them.
async fn admit(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(state): State<AppState>,
) -> Result<(), String> {
    let parts = socket.req_parts();
    if !state.origins.allows(&parts.headers) {
        return Err("origin not allowed".into());
    }
    let token = auth
        .ok()
        .as_ref()
        .and_then(|auth| auth.get("token"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Err("no credentials: connect with io(url, { auth: { token: \"<jwt>\" } })".into());
    };
    let claims = state.tokens.verify(&token).await.map_err(|err: TokenError| err.to_string())?;
    let admin = claims.user().role.as_deref() == Some(roomcast_shared::room::ADMIN_ROLE);
    let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        return Err("no peer address".into());
    };
    let Some(slot) = IpSlot::take(&state, peer.ip(), &parts.headers) else {
        return Err("too many connections from this address".into());
    };
    let (sender, inbound) = mpsc::channel(INBOUND_EVENTS);
    let bridge = Arc::new(Bridge::new(sender));
    if admin {
        bridge.push(json!({"type": "join", "room": "admin", "history": 0}).to_string());
    }
    socket.extensions.insert(bridge.clone());
    socket.on_fallback(async |_: Incoming| {});
    socket.on_disconnect(async |socket: SocketRef| {
        // Ends the session's stream: the session closes, then its writer.
        if let Some(bridge) = socket.extensions.get::<Arc<Bridge>>() {
            bridge.hang_up();
        }
    });
    let admission = Admission { token, slot, bridge, inbound };
    socket.extensions.insert(Admitted(Arc::new(Mutex::new(Some(admission)))));
    Ok(())
}

/// A connected socket: its session starts, reading what [`Incoming`]
/// hands over and writing through [`write`].
async fn on_connect(socket: SocketRef, State(state): State<AppState>) {
    let admission =
        socket.extensions.remove::<Admitted>().and_then(|Admitted(a)| a.lock().ok()?.take());
    let Some(Admission { token, slot, bridge, inbound }) = admission else {
        let _ = socket.disconnect();
        return;
    };
    let opened = Opened { first: FirstAuth::Token(token), slot, request_id: None };
    let drain = state.config.timing.drain_timeout;
    ws::spawn_session(&state, opened, inbound, move |queue| write(socket, queue, bridge, drain));
}

/// What a socket's event handlers, its session and its writer share.
struct Bridge {
    /// The session's inbound frames; dropped when the socket disconnects,
    /// which ends the session's stream.
    inbound: Mutex<Option<mpsc::Sender<Message>>>,
    /// Events' acknowledgement callbacks, by the `ref` of their native
    /// frame, until the session answers.
    acks: Mutex<HashMap<u64, AckSender>>,
    /// The rooms of the latest messages shown, for `mark_read`.
    seen: Mutex<VecDeque<(String, String)>>,
    /// The next `ref`; it also counts the events heard, for [`close`].
    next_ref: AtomicU64,
}

impl Bridge {
    fn new(inbound: mpsc::Sender<Message>) -> Self {
        Self {
            inbound: Mutex::new(Some(inbound)),
            acks: Mutex::new(HashMap::new()),
            seen: Mutex::new(VecDeque::new()),
            next_ref: AtomicU64::new(1),
        }
    }

    /// Hands a native frame to the session: `false` when it is behind by
    /// [`INBOUND_EVENTS`] or gone.
    fn push(&self, frame: String) -> bool {
        self.push_message(Message::Text(frame.into()))
    }

    fn push_message(&self, message: Message) -> bool {
        let inbound = self.inbound.lock().expect("inbound lock");
        inbound.as_ref().is_some_and(|sender| sender.try_send(message).is_ok())
    }

    fn hang_up(&self) {
        self.inbound.lock().expect("inbound lock").take();
    }

    /// The room message `id` was last shown in on this socket.
    fn room_of(&self, id: &str) -> Option<String> {
        let seen = self.seen.lock().expect("seen lock");
        seen.iter().rev().find(|(seen, _)| seen == id).map(|(_, room)| room.clone())
    }

    fn saw(&self, id: String, room: String) {
        let mut seen = self.seen.lock().expect("seen lock");
        if seen.len() == SEEN_MESSAGES {
            seen.pop_front();
        }
        seen.push_back((id, room));
    }

    /// One client event, in the order the socket received it.
    fn on_event(
        &self,
        socket: &Arc<Socket<LocalAdapter>>,
        event: &str,
        data: Value,
        ack: Option<AckSender>,
    ) {
        let reference = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let client_id = || format!("sio-{}-{reference}", socket.id);
        let command = codec::decode(event, data, reference, client_id, |id| self.room_of(id));
        let refused = |refusal: Refusal, ack: Option<AckSender>| match ack {
            Some(ack) => {
                let _ = ack.send(&json!({"ok": false, "error": refusal.to_json()}));
            }
            None => {
                let _ = socket.emit("error", &refusal.to_json());
            }
        };
        let command = match command {
            Ok(command) => command,
            Err(refusal) => return refused(refusal, ack),
        };
        let ack = match ack {
            Some(ack) if command.answered => {
                let mut acks = self.acks.lock().expect("acks lock");
                if acks.len() >= PENDING_ACKS {
                    drop(acks);
                    return refused(behind(), Some(ack));
                }
                acks.insert(reference, ack);
                None
            }
            ack => ack,
        };
        if !self.push(command.frame.to_string()) {
            let ack = ack.or_else(|| self.acks.lock().expect("acks lock").remove(&reference));
            return refused(behind(), ack);
        }
        if let Some(ack) = ack {
            let _ = ack.send(&json!({"ok": true}));
        }
    }

    /// The answer to event `reference`: its callback's, if it has one.
    fn answer(&self, socket: &SocketRef, reference: u64, answer: Answer) -> bool {
        let ack = self.acks.lock().expect("acks lock").remove(&reference);
        match (ack, answer) {
            (Some(ack), answer) => ack.send(&answer.into_callback()).is_ok(),
            (None, Answer::Refused(error)) => socket.emit("error", &error).is_ok(),
            (None, Answer::Done(_)) => true,
        }
    }
}

/// Why an event was refused when the session is behind.
fn behind() -> Refusal {
    Refusal { code: ErrorCode::RateLimited, message: "too many events waiting: slow down".into() }
}

/// The extractor that hands a client event to its socket's bridge. It is
/// the handler's only argument and does the work: extractors run in the
/// order events arrive, handlers in tasks of their own.
struct Incoming;

impl FromMessage<LocalAdapter> for Incoming {
    type Error = Infallible;

    fn from_message(
        socket: Arc<Socket<LocalAdapter>>,
        mut value: socketioxide::handler::Value,
        ack_id: Option<i64>,
    ) -> Result<Self, Infallible> {
        let Some(bridge) = socket.extensions.get::<Arc<Bridge>>() else {
            return Ok(Self);
        };
        let event = Event::from_message_parts(&socket, &mut value, &ack_id);
        let ack =
            ack_id.and_then(|_| AckSender::from_message_parts(&socket, &mut value, &ack_id).ok());
        let data = TryData::<Value>::from_message_parts(&socket, &mut value, &ack_id);
        match (event, data) {
            (Ok(Event(event)), Ok(TryData(Ok(data)))) => {
                bridge.on_event(&socket, &event, data, ack)
            }
            _ => bridge.on_event(&socket, "", Value::Null, ack),
        }
        Ok(Self)
    }
}

/// The writer: the connection's queue into events and acknowledgements,
/// until the session ends or the socket goes.
async fn write(
    socket: SocketRef,
    mut queue: queue::Receiver,
    bridge: Arc<Bridge>,
    drain: Duration,
) {
    let end = |code| close(socket.clone(), code, bridge.clone(), drain);
    loop {
        let frames = match queue.next(BATCH).await {
            Next::Frames(frames) => frames,
            Next::Killed((code, _)) => return end(code).await,
            Next::Ended => return end(CloseCode::NORMAL).await,
        };
        for frame in frames {
            match frame {
                Outbound::Frame(text) => {
                    for out in codec::encode(text.as_str()) {
                        let sent = match out {
                            Out::Emit(event, data) => socket.emit(event, &data).is_ok(),
                            Out::Answer(reference, answer) => {
                                bridge.answer(&socket, reference, answer)
                            }
                            Out::Seen(id, room) => {
                                bridge.saw(id, room);
                                true
                            }
                        };
                        // Its buffer is full (it does not read), or it is gone.
                        if !sent {
                            return end(CloseCode::NORMAL).await;
                        }
                    }
                }
                // Engine.IO checks the socket is alive (its own pings); the
                // session hears of it as a WebSocket's pong.
                Outbound::Ping if socket.connected() => {
                    bridge.push_message(Message::Pong(bytes::Bytes::new()));
                }
                Outbound::Close(code, _) => return end(code).await,
                Outbound::Ping | Outbound::Pong(_) => {}
            }
        }
        queue.release();
    }
}

/// Ends the socket for a session closed with `code`. At a restart the
/// transport is closed (see [`mount`]), which a client takes as a lost
/// connection; any other close is the server's `disconnect`, after which a
/// client stays away until told to connect.
///
/// The `disconnect` waits until the client has sent nothing for
/// [`QUIET`], or for half of `--drain-timeout-ms` at most: an event that
/// reaches a disconnected socket makes `socketioxide` close its transport,
/// and a transport closed with the client's events still unread resets the
/// connection, which can lose the `disconnect` on its way (as `ws::finish`
/// avoids for a WebSocket). Events heard meanwhile are refused. Half,
/// because `ws::finish` ends this writer once the whole of it has passed:
/// a writer ended before its `disconnect` left a client that never pauses
/// connected, with no session behind it, for as long as it kept sending.
///
/// A socket whose buffer is full (it does not read) has no room for the
/// `disconnect` packet: it is tried again until there is, or until
/// Engine.IO gives up on the socket (it answers no ping either).
async fn close(socket: SocketRef, code: CloseCode, bridge: Arc<Bridge>, drain: Duration) {
    if code == CloseCode::RESTARTING || !socket.connected() {
        return;
    }
    let deadline = Instant::now() + drain / 2;
    loop {
        let heard = bridge.next_ref.load(Ordering::Relaxed);
        let quiet = (Instant::now() + QUIET).min(deadline);
        tokio::time::sleep_until(quiet).await;
        if quiet == deadline || heard == bridge.next_ref.load(Ordering::Relaxed) {
            break;
        }
    }
    while socket.connected()
        && matches!(socket.clone().disconnect(), Err(SocketError::InternalChannelFull))
    {
        tokio::time::sleep(DISCONNECT_RETRY).await;
    }
}
