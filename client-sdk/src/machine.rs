//! [`Core`]: the client's whole logic as a state machine without IO.
//!
//! The host feeds it inputs (the socket opened, a text frame arrived, the
//! socket closed, a token arrived, time passed, the browser came online) with
//! the current time in milliseconds, and carries out the [`Effect`]s it
//! queues. Time and randomness come from outside, so tests drive every
//! reconnect, recovery and resend deterministically.
//!
//! This file holds the connection lifecycle; `timers.rs` what happens as
//! time passes, `frames.rs` what the server sends and `ops.rs` what the
//! application asks for.

mod frames;
mod ops;
pub use ops::PendingSend;
#[cfg(test)]
mod tests;
mod timers;

use litemap::LiteMap;

use roomcast_shared::frame::Limits;
use roomcast_shared::{ClientFrame, CloseCode, Envelope, Reconnect, Ref, SetStatus, UserInfo};

use crate::effect::{ClientError, ConnectionState, Effect, Event};
use crate::options::Options;
use crate::outbox::Outbox;
use crate::pace::Pace;
use crate::rng::Rng;
use crate::room::RoomState;
use crate::token;
use crate::typing::TypingThrottle;

/// Where the client gets its token from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token: the URL carries one (`/ws?token=...`), so no `auth` frame.
    InUrl,
    /// A fixed token.
    Fixed(String),
    /// A function the host calls on every (re)connect and before expiry.
    Provider,
}

/// Close code the client reports for failures it detects itself (no answer
/// in time): treated like a network loss.
const LOST: u16 = 1006;
/// The close reason of a connection replaced by [`Core::reconnect`].
const SWITCHING: &str = "changing transport";

/// The client logic. See the module docs.
#[derive(Debug)]
pub struct Core {
    opts: Options,
    rng: Rng,
    state: ConnectionState,
    source: TokenSource,
    /// The token of the current attempt (fixed, or the provider's latest).
    token: Option<String>,
    /// The socket attempt in progress or open; `None` between attempts.
    conn: Option<Conn>,
    /// Consecutive failed (or unstable) attempts: the backoff exponent and
    /// what `reconnectAttempts` shows.
    attempts: u32,
    /// When to start the next attempt while reconnecting.
    retry_at: Option<u64>,
    /// Set by a close 4001: the next attempt uses a fresh token, and a
    /// second 4001 before `ready` gives up.
    unauthorized_retry: bool,
    /// Why a token is being fetched, while the provider runs.
    fetching: Option<Fetch>,
    /// When to ask the provider for a fresh token on the open connection.
    refresh_at: Option<u64>,
    session: Option<(String, UserInfo)>,
    rooms: LiteMap<String, Room>,
    outbox: Outbox,
    /// The message budget of the open connection, from the limits its
    /// `ready` announced: outbox entries go out within it.
    pace: Pace,
    /// When the pace allows the next outbox entry that waits for it.
    send_at: Option<u64>,
    /// The join budget of the open connection: joins (every room after a
    /// reconnect, many at startup) go out within it.
    join_pace: Pace,
    /// The frame budget of the open connection, which paced joins and
    /// outbox entries share.
    frame_pace: Pace,
    /// When the join pace allows the next join that waits for it.
    join_at: Option<u64>,
    /// The latest time an input carried, for the inputs that carry none
    /// ([`join`](Self::join)); behind the host's clock, so it never counts
    /// more budget than there is.
    clock: u64,
    /// Joins made so far: each room's place in the join order.
    joins_made: u64,
    /// Requests sent on this connection, by `ref`, awaiting their reply.
    requests: LiteMap<u64, Request>,
    next_ref: u64,
    next_op: u64,
    /// The status the user set, sent again after every `ready` (the server
    /// forgets it when it restarts).
    status: Option<(SetStatus, Option<String>)>,
    effects: Vec<Effect>,
    /// Bumped when the client snapshot (state, session, attempts) changes.
    version: u64,
}

/// One socket attempt.
#[derive(Debug)]
struct Conn {
    phase: Phase,
    /// Until `ready`: when the attempt counts as failed.
    deadline: Option<u64>,
    /// When `ready`: the ping schedule and the pong deadline.
    ping_every: u64,
    ping_at: Option<u64>,
    pong_by: Option<u64>,
    /// When the connection counts as stable and the attempts reset.
    stable_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    FetchingToken,
    Opening,
    Authenticating,
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Connect,
    Refresh,
}

/// What a `ref` sent on this connection was for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Auth,
    Refresh,
    Join(String),
    Leave,
    /// An outbox entry (`send`, `edit`, `delete`).
    Entry,
    History {
        op: u64,
        room: String,
    },
    /// A page of members (`members()`).
    Members {
        op: u64,
    },
    Ping,
}

/// A room the application joined, with the handles' reference count.
#[derive(Debug, Default)]
struct Room {
    refs: u32,
    /// Its place in the order the application joined rooms: joins wait
    /// for the pace in this order (rooms with waiting sends first).
    order: u64,
    /// A `join` for it waits for the pace (after a reconnect, a refusal
    /// for rate, or a gap in its stream).
    join_waits: bool,
    state: RoomState,
    typing: TypingThrottle,
    /// A `read` to send once joined (marked while disconnected).
    unsent_read: Option<String>,
}

impl Core {
    /// A client in the `idle` state; `seed` feeds jitter and `client_id`s.
    pub fn new(opts: Options, source: TokenSource, seed: u64) -> Self {
        let token = match &source {
            TokenSource::Fixed(t) => Some(t.clone()),
            _ => None,
        };
        Self {
            outbox: Outbox::new(opts.queue_limit),
            pace: Pace::messages(None, 0),
            send_at: None,
            join_pace: Pace::joins(None, 0),
            frame_pace: Pace::frames(None, 0),
            join_at: None,
            clock: 0,
            joins_made: 0,
            opts,
            rng: Rng::new(seed),
            state: ConnectionState::Idle,
            source,
            token,
            conn: None,
            attempts: 0,
            retry_at: None,
            unauthorized_retry: false,
            fetching: None,
            refresh_at: None,
            session: None,
            rooms: LiteMap::new_vec(),
            requests: LiteMap::new_vec(),
            next_ref: 0,
            next_op: 0,
            status: None,
            effects: Vec::new(),
            version: 0,
        }
    }

    /// The effects queued since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The settings it was made with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The server's id of the open connection.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|(id, _)| id.as_str())
    }

    /// The authenticated user, while connected.
    pub fn user(&self) -> Option<&UserInfo> {
        self.session.as_ref().map(|(_, user)| user)
    }

    /// Consecutive failed attempts since the last stable connection.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Changes whenever state, session or attempts change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether requests go out at once.
    pub fn is_ready(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.phase == Phase::Ready)
    }

    /// Starts connecting (from `idle` or `closed`).
    pub fn connect(&mut self, now: u64) {
        if matches!(self.state, ConnectionState::Idle | ConnectionState::Closed) {
            self.attempts = 0;
            self.unauthorized_retry = false;
            self.set_state(ConnectionState::Connecting);
            self.start_attempt(now);
        }
    }

    /// Closes deliberately: no reconnect; waiting requests fail with `closed`.
    pub fn close(&mut self, _now: u64) {
        if self.state == ConnectionState::Closed {
            return;
        }
        if self.conn.take().is_some() {
            self.effects.push(Effect::Close { code: 1000, reason: "closed by the client" });
            self.emit(Event::Disconnected {
                code: 1000,
                reason: "closed by the client".into(),
                reconnect: false,
            });
        }
        self.stop(ClientError::new("closed", "the client was closed"));
    }

    fn start_attempt(&mut self, now: u64) {
        self.retry_at = None;
        let phase = if self.source == TokenSource::Provider {
            self.fetching = Some(Fetch::Connect);
            self.effects.push(Effect::FetchToken);
            Phase::FetchingToken
        } else {
            self.effects.push(Effect::Open);
            Phase::Opening
        };
        self.conn = Some(Conn {
            phase,
            deadline: Some(now + self.opts.connect_timeout_ms),
            ping_every: 0,
            ping_at: None,
            pong_by: None,
            stable_at: None,
        });
    }

    /// The token provider answered.
    pub fn token_ready(&mut self, token: String, now: u64) {
        let Some(why) = self.fetching.take() else { return };
        self.refresh_at = token::expiry(&token)
            .map(|exp| (exp * 1000).saturating_sub(self.opts.refresh_before_ms).max(now + 1_000));
        self.token = Some(token.clone());
        match (why, self.conn.as_mut()) {
            (Fetch::Connect, Some(conn)) if conn.phase == Phase::FetchingToken => {
                conn.phase = Phase::Opening;
                self.effects.push(Effect::Open);
            }
            (Fetch::Refresh, Some(conn)) if conn.phase == Phase::Ready => {
                self.request(Request::Refresh, ClientFrame::Auth { token: Some(token) });
            }
            _ => {}
        }
    }

    /// The token provider failed (its promise rejected or it threw).
    pub fn token_failed(&mut self, message: String, now: u64) {
        let Some(why) = self.fetching.take() else { return };
        let error = ClientError::new("token", format!("the token provider failed: {message}"));
        self.emit(Event::Error(error.clone()));
        match why {
            Fetch::Connect if self.unauthorized_retry => {
                self.conn = None;
                self.give_up(error);
            }
            Fetch::Connect => self.lost(LOST, "token provider failed", now),
            // Try again shortly; the server closes with 4001 at expiry if
            // every refresh fails, and the reconnect fetches once more.
            Fetch::Refresh => self.refresh_at = Some(now + 5_000),
        }
    }

    /// The socket opened: authenticate.
    pub fn opened(&mut self, _now: u64) {
        let Some(conn) = self.conn.as_mut().filter(|c| c.phase == Phase::Opening) else { return };
        conn.phase = Phase::Authenticating;
        if let Some(token) = self.token.clone().filter(|_| self.source != TokenSource::InUrl) {
            self.request(Request::Auth, ClientFrame::Auth { token: Some(token) });
        }
    }

    /// The host wants a fresh connection on a ready one (it found a better
    /// transport): close it and connect again at once, without counting a
    /// failed attempt. Recovery (`since`) replays what the switch missed and
    /// the outbox resends what was not acknowledged, as after any drop.
    pub fn reconnect(&mut self, now: u64) {
        if !self.is_ready() {
            return;
        }
        self.effects.push(Effect::Close { code: 1000, reason: SWITCHING });
        self.disconnect_as(1000, SWITCHING, Some(Reconnect::Immediately), now);
        // A switch, not a server restart: no jitter.
        self.retry_at = Some(now);
    }

    /// The socket closed (or failed to open) with `code`.
    pub fn closed(&mut self, code: u16, reason: &str, now: u64) {
        if self.conn.is_some() {
            self.disconnect(code, reason, now);
        }
    }

    /// `ready` on a connection being authenticated.
    fn authenticated(
        &mut self,
        session_id: String,
        user: UserInfo,
        heartbeat_ms: u64,
        limits: Option<Limits>,
        now: u64,
    ) {
        let Some(conn) = self.conn.as_mut() else { return };
        conn.phase = Phase::Ready;
        conn.deadline = None;
        conn.ping_every = self.opts.ping_interval_ms.unwrap_or(heartbeat_ms).max(1_000);
        conn.ping_at = Some(now + conn.ping_every);
        conn.stable_at = Some(now + self.opts.stable_after_ms);
        self.unauthorized_retry = false;
        // A new connection starts with full budgets on the server.
        self.pace = Pace::messages(limits.as_ref(), now);
        self.join_pace = Pace::joins(limits.as_ref(), now);
        self.frame_pace = Pace::frames(limits.as_ref(), now);
        self.session = Some((session_id.clone(), user.clone()));
        self.set_state(ConnectionState::Open);
        self.changed();
        self.emit(Event::Connected { session_id, user });
        if let Some((status, custom)) = self.status.clone() {
            self.send_frame(None, &ClientFrame::Presence { status, custom });
        }
        for (_, room) in self.rooms.iter_mut() {
            room.join_waits = true;
        }
        self.flush_joins(now);
    }

    /// The connection is gone: decide from the close code whether and when
    /// to reconnect.
    fn disconnect(&mut self, code: u16, reason: &str, now: u64) {
        self.disconnect_as(code, reason, None, now);
    }

    /// [`disconnect`](Self::disconnect), with the decision given rather
    /// than read from the close code when `decision` is set.
    fn disconnect_as(&mut self, code: u16, reason: &str, decision: Option<Reconnect>, now: u64) {
        self.conn = None;
        self.fetching = None;
        self.session = None;
        self.send_at = None;
        self.join_at = None;
        self.outbox.disconnected();
        for request in
            std::mem::take(&mut self.requests).into_tuple_vec().into_iter().map(|(_, r)| r)
        {
            if let Request::History { op, .. } | Request::Members { op } = request {
                self.settle(op, Err(ClientError::new("disconnected", "the connection dropped")));
            }
        }
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            let room = self.rooms.get_mut(&name).expect("listed above");
            room.state.disconnected();
            room.typing.clear();
            self.emit(Event::RoomChanged(name));
        }
        let decision = match decision.unwrap_or_else(|| CloseCode(code).reconnect()) {
            Reconnect::AfterTokenRefresh
                if self.source != TokenSource::Provider || self.unauthorized_retry =>
            {
                Reconnect::Never
            }
            Reconnect::WithBackoff if self.opts.backoff.exhausted(self.attempts + 1) => {
                Reconnect::Never
            }
            other => other,
        };
        self.emit(Event::Disconnected {
            code,
            reason: reason.to_owned(),
            reconnect: decision != Reconnect::Never,
        });
        self.changed();
        match decision {
            Reconnect::Never => {
                let why = match code {
                    4001 => "the server refused the token".to_owned(),
                    1008 | 1009 => format!("the server closed the connection ({code} {reason})"),
                    _ => format!("gave up after {} failed attempts", self.attempts + 1),
                };
                self.give_up(ClientError::new("gave_up", why));
            }
            Reconnect::Immediately => {
                let jitter = (self.rng.unit() * self.opts.restart_jitter_ms as f64) as u64;
                self.retry_at = Some(now + jitter);
                self.set_state(ConnectionState::Reconnecting);
            }
            Reconnect::AfterTokenRefresh => {
                self.unauthorized_retry = true;
                self.retry_at = Some(now);
                self.set_state(ConnectionState::Reconnecting);
            }
            Reconnect::WithBackoff => {
                let delay = self.opts.backoff.delay(self.attempts, self.rng.unit());
                self.attempts += 1;
                self.retry_at = Some(now + delay);
                self.set_state(ConnectionState::Reconnecting);
            }
        }
    }

    /// A failure before any socket closed (the token provider failed).
    fn lost(&mut self, code: u16, reason: &str, now: u64) {
        self.disconnect(code, reason, now);
    }

    /// No more reconnects: report why and fail whatever waits.
    fn give_up(&mut self, error: ClientError) {
        self.emit(Event::Error(error.clone()));
        self.stop(error);
    }

    /// Enters `closed`, failing every waiting request with `error`.
    fn stop(&mut self, error: ClientError) {
        self.retry_at = None;
        self.fetching = None;
        self.session = None;
        for entry in self.outbox.drain() {
            self.settle(entry.op, Err(error.clone()));
        }
        for request in
            std::mem::take(&mut self.requests).into_tuple_vec().into_iter().map(|(_, r)| r)
        {
            if let Request::History { op, .. } | Request::Members { op } = request {
                self.settle(op, Err(error.clone()));
            }
        }
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            if let Some(room) = self.rooms.get_mut(&name) {
                room.state.disconnected();
                room.state.version += 1;
            }
            self.emit(Event::RoomChanged(name));
        }
        self.set_state(ConnectionState::Closed);
        self.changed();
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.version += 1;
            self.emit(Event::StateChanged(state));
        }
    }

    /// The client snapshot changed.
    fn changed(&mut self) {
        self.version += 1;
        self.emit(Event::SnapshotChanged);
    }

    fn emit(&mut self, event: Event) {
        self.effects.push(Effect::Emit(event));
    }

    fn settle(&mut self, op: u64, result: Result<String, ClientError>) {
        self.emit(Event::Settle { op, result });
    }

    /// Sends `frame` with a fresh `ref`, remembering what it was for.
    fn request(&mut self, what: Request, frame: ClientFrame) -> u64 {
        self.next_ref += 1;
        let r = self.next_ref;
        self.requests.insert(r, what);
        self.send_frame(Some(r), &frame);
        r
    }

    fn send_frame(&mut self, reference: Option<u64>, frame: &ClientFrame) {
        self.effects.push(Effect::Send(frame_text(reference, frame)));
    }
}

/// `frame` as the text sent, with its `ref`.
fn frame_text(reference: Option<u64>, frame: &ClientFrame) -> String {
    crate::payload::to_json(&Envelope::with_ref(reference.map(Ref::from), frame))
}
