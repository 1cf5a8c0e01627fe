//! One WebSocket connection after the upgrade: authentication, the frames a
//! client sends, timers (auth timeout, token expiry, typing expiry) and the
//! tidy-up when the connection ends.
//!
//! The session is the connection's reader: it handles one frame at a time
//! and queues replies on the same queue as broadcasts, so a client sees
//! replies and room events in the order they happened.
//!
//! By concern: `rooms.rs` (join with recovery, leave, history), `chat.rs`
//! (send, edit, delete, typing, read), `presence.rs` (status, presence
//! announcements, the grace period's end) and `teardown.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use roomcast_shared::frame::ErrorFrame;
use roomcast_shared::room::Access;
use roomcast_shared::{ClientFrame, Envelope, ErrorCode, Ref, RoomName, ServerFrame, UserInfo};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::Limits;
use crate::engine::Opened;
use crate::error::FrameError;
use crate::hooks::connect::{self, Identity};
use crate::hub::{Conn, Outbound, encode, encode_reply};
use crate::limits::Bucket;
use crate::state::AppState;

mod chat;
mod pipeline;
mod presence;
mod rooms;
mod teardown;

/// Whether the connection goes on after a frame or a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Who the connection is, once authenticated: of the token, the profile
/// and what the room rules need (not the whole `Claims`, which would keep
/// the profile twice for as long as the connection lives).
#[derive(Debug)]
struct Authed {
    /// `sub`, `name`, `role` and `avatar` of the token.
    user: UserInfo,
    /// The token's `rooms` claim.
    rooms: Option<Vec<String>>,
    /// `user:<id>`, joined automatically.
    personal: RoomName,
    /// When the token expires; the connection closes with 4001 unless it is
    /// refreshed before. For a connection the connect hook signed in: when
    /// to ask the hook again.
    expires_at: Option<Instant>,
    /// For a connection the connect hook signed in: what it was asked, to
    /// ask again when the client refreshes (an `auth` without a token).
    forwarded: Option<Box<connect::Request>>,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct Session {
    state: AppState,
    conn: Arc<Conn>,
    /// Sent in `ready`; kept as 16 bytes, formatted when sent.
    session_id: uuid::Uuid,
    user: Option<Authed>,
    /// Rooms joined with `join` (the personal room is not listed).
    rooms: HashSet<RoomName>,
    /// Rooms where this connection is typing, with when that expires.
    typing: HashMap<RoomName, Instant>,
    /// Until when the connection may stay unauthenticated.
    auth_deadline: Instant,
    buckets: Buckets,
    /// Sends handed over and not answered yet (`pipeline.rs`).
    in_flight: pipeline::InFlight,
}

/// The connection's rate limits.
#[derive(Debug)]
struct Buckets {
    frames: Bucket,
    messages: Bucket,
    joins: Bucket,
    /// Refusals left before the connection is closed with 4008.
    strikes: Bucket,
}

impl Buckets {
    fn new(limits: &Limits) -> Self {
        Self {
            frames: Bucket::new(limits.frames),
            messages: Bucket::new(limits.messages),
            joins: Bucket::new(limits.joins),
            strikes: Bucket::new(limits.strikes),
        }
    }

    /// Takes one frame from the frame budget: every frame a client sends,
    /// text or not, valid or not, pings and pongs too, costs one.
    fn charge_frame(&mut self, limits: &Limits) -> Result<(), FrameError> {
        self.frames
            .take(limits.frames)
            .map_err(|retry_after| FrameError::RateLimited { what: "frame rate", retry_after })
    }

    /// Takes what `frame` costs beyond the frame itself, or says which
    /// limit it is over.
    fn charge(&mut self, frame: &ClientFrame, limits: &Limits) -> Result<(), FrameError> {
        let limited = |what| move |retry_after| FrameError::RateLimited { what, retry_after };
        match frame {
            ClientFrame::Send { .. } | ClientFrame::Edit { .. } | ClientFrame::Delete { .. } => {
                self.messages.take(limits.messages).map_err(limited("message rate"))
            }
            ClientFrame::Join { .. } => self.joins.take(limits.joins).map_err(limited("join rate")),
            _ => Ok(()),
        }
    }
}

/// Reads only the `ref` of a frame that failed to parse, to echo it.
#[derive(Deserialize)]
struct RefOnly {
    #[serde(rename = "ref")]
    reference: Option<Ref>,
}

/// Parses a client frame; on failure, returns the `ref` if one was readable.
fn decode(text: &str) -> Result<Envelope<ClientFrame>, (Option<Ref>, FrameError)> {
    serde_json::from_str(text).map_err(|err| {
        let reference = serde_json::from_str::<RefOnly>(text).ok().and_then(|r| r.reference);
        let message = if err.is_data() {
            format!("invalid frame: {err}")
        } else {
            format!("invalid JSON: {err}")
        };
        (reference, FrameError::bad_request(message))
    })
}

/// The instant a Unix time (a token's `exp`) stands for, no later than
/// [`far_future`]: `exp` is the token issuer's to choose, up to `u64::MAX`,
/// which no `Instant` can hold.
fn seconds_from_now(unix_seconds: u64) -> Instant {
    let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let wait = Duration::from_secs(unix_seconds.saturating_sub(now)).min(FAR_FUTURE);
    Instant::now() + wait
}

impl Authed {
    /// The view of the token the room rules need (as `Claims::access`).
    fn access(&self) -> Access<'_> {
        Access::new(&self.user.id, self.user.role.as_deref(), self.rooms.as_deref())
    }
}

impl Session {
    pub fn new(state: AppState, conn: Arc<Conn>) -> Self {
        let auth_deadline = Instant::now() + state.config.timing.auth_timeout;
        let buckets = Buckets::new(&state.config.limits);
        Self {
            state,
            conn,
            session_id: uuid::Uuid::now_v7(),
            user: None,
            rooms: HashSet::new(),
            typing: HashMap::new(),
            auth_deadline,
            buckets,
            in_flight: pipeline::InFlight::new(),
        }
    }

    /// The next time [`Session::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Instant {
        let Some(authed) = &self.user else { return self.auth_deadline };
        self.typing.values().copied().chain(authed.expires_at).min().unwrap_or_else(far_future)
    }

    /// Handles one text frame.
    pub async fn on_text(&mut self, text: &str) -> Flow {
        self.state.metrics.frames_received.inc();
        // Tests of the teardown only; no flag sets it (see `Config`).
        if let Some(trigger) = &self.state.config.panic_on_frame
            && trigger == text
        {
            panic!("a test asked this session to panic (Config::panic_on_frame)");
        }
        let decoded = decode(text);
        // Only sends are pipelined: anything else is handled after the
        // sends before it are answered, so replies keep the frames' order.
        let pipelined =
            matches!(&decoded, Ok(envelope) if matches!(envelope.frame, ClientFrame::Send { .. }));
        if !pipelined && self.settle().await == Flow::Stop {
            return Flow::Stop;
        }
        // Charged before a frame that does not parse is answered: a flood
        // of invalid JSON meets the frame rate like any other.
        let reference = match &decoded {
            Ok(envelope) => envelope.reference.clone(),
            Err((reference, _)) => reference.clone(),
        };
        if let Err(err) = self.buckets.charge_frame(&self.state.config.limits) {
            return self.refuse(reference, err).await;
        }
        let (reference, frame) = match decoded {
            Ok(envelope) => (envelope.reference, envelope.frame),
            Err((reference, err)) => return self.refuse(reference, err).await,
        };
        let kind = frame.kind();
        if let Err(err) = self.charge(&frame) {
            return self.refuse(reference, err).await;
        }
        match self.handle(reference.clone(), frame).await {
            Ok(flow) => flow,
            Err(err) => {
                tracing::debug!(kind, %err, "frame refused");
                self.refuse(reference, err).await
            }
        }
    }

    /// [`Session::fail`] once the sends in flight are answered: a refusal
    /// comes after the replies to the frames before it.
    async fn refuse(&mut self, reference: Option<Ref>, err: FrameError) -> Flow {
        if self.settle().await == Flow::Stop {
            return Flow::Stop;
        }
        self.fail(reference, err)
    }

    /// Takes what `frame` costs from the connection's budgets, and for
    /// messages from the user's budget over all their connections.
    fn charge(&mut self, frame: &ClientFrame) -> Result<(), FrameError> {
        self.buckets.charge(frame, &self.state.config.limits)?;
        let is_message = matches!(
            frame,
            ClientFrame::Send { .. } | ClientFrame::Edit { .. } | ClientFrame::Delete { .. }
        );
        if let (true, Some(authed)) = (is_message, &self.user) {
            let rate = self.state.config.limits.user_messages;
            self.state.hub.charge_user(&authed.user.id, rate).map_err(|retry_after| {
                FrameError::RateLimited { what: "user message rate", retry_after }
            })?;
        }
        Ok(())
    }

    /// Sends the error frame for `err`, and closes when it must. A
    /// connection that keeps hitting rate limits is closed with 4008.
    pub(crate) fn fail(&mut self, reference: Option<Ref>, mut err: FrameError) -> Flow {
        let strikes = self.state.config.limits.strikes;
        if err.retry_after().is_some() && self.buckets.strikes.take(strikes).is_err() {
            err = FrameError::Abusive;
        }
        let code = err.code();
        let labels = crate::telemetry::ErrorLabels { code: code.as_str() };
        self.state.metrics.errors.get_or_create(&labels).inc();
        let retry_after_ms =
            err.retry_after().map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        let frame = ServerFrame::Error(ErrorFrame {
            code,
            message: err.to_string(),
            retry_after_ms,
            reason_code: err.reason_code(),
        });
        self.push(encode_reply(reference, frame));
        match err.close() {
            Some((code, reason)) => {
                self.conn.push(Outbound::Close(code, reason), &self.state.metrics);
                Flow::Stop
            }
            None => Flow::Continue,
        }
    }

    /// A frame that is not text: refused, the connection stays.
    pub fn on_binary(&mut self) -> Flow {
        self.on_refused(FrameError::bad_request(
            "binary frames are not supported: send JSON text frames",
        ))
    }

    /// A frame refused before it became a native frame (binary, or a
    /// dialect's frame its codec could not read): it costs a frame like any
    /// other, and is answered with `err`.
    pub fn on_refused(&mut self, err: FrameError) -> Flow {
        self.state.metrics.frames_received.inc();
        if let Err(flow) = self.take_frame(None) {
            return flow;
        }
        self.fail(None, err)
    }

    /// A WebSocket ping: answered with a pong, within the frame rate.
    pub fn on_ping(&mut self, payload: bytes::Bytes) -> Flow {
        if let Err(flow) = self.take_frame(None) {
            return flow;
        }
        self.conn.enqueue(Outbound::Pong(payload), &self.state.metrics);
        Flow::Continue
    }

    /// A WebSocket pong: nothing to do, but it costs a frame like any other
    /// (an answer to each heartbeat is far below the rate).
    pub fn on_pong(&mut self) -> Flow {
        self.take_frame(None).err().unwrap_or(Flow::Continue)
    }

    /// Takes one frame from the frame budget; over it, sends the refusal
    /// (echoing `reference`) and returns what the connection does next.
    fn take_frame(&mut self, reference: Option<Ref>) -> Result<(), Flow> {
        self.buckets
            .charge_frame(&self.state.config.limits)
            .map_err(|err| self.fail(reference, err))
    }

    async fn handle(
        &mut self,
        reference: Option<Ref>,
        frame: ClientFrame,
    ) -> Result<Flow, FrameError> {
        let handled = match frame {
            ClientFrame::Ping => {
                self.reply(reference, ServerFrame::Pong { time: OffsetDateTime::now_utc() });
                Ok(())
            }
            ClientFrame::Auth { token } => self.auth(reference, token.as_deref()).await,
            _ if self.user.is_none() => Err(FrameError::Reply(
                ErrorCode::Unauthorized,
                "authenticate first: send {\"type\":\"auth\",\"token\":\"<jwt>\"}".into(),
            )),
            ClientFrame::Join { room, since, history, member_events } => {
                self.join(reference, room, since, history, member_events == Some(true)).await
            }
            ClientFrame::Leave { room } => self.leave(reference, room).await,
            ClientFrame::History { room, before, limit } => {
                self.history(reference, room, before, limit).await
            }
            ClientFrame::Members { room, cursor, limit } => {
                self.members(reference, room, cursor, limit).await
            }
            ClientFrame::Send { room, content, client_id, data } => {
                return self.send(reference, room, content, client_id, data).await;
            }
            ClientFrame::Edit { room, id, content, data } => {
                self.edit(reference, room, id, content, data).await
            }
            ClientFrame::Delete { room, id } => self.delete(reference, room, id).await,
            ClientFrame::Typing { room, is_typing } => self.set_typing(room, is_typing).await,
            ClientFrame::Read { room, id } => self.read(room, id).await,
            ClientFrame::Presence { status, custom } => self.set_status(status, custom).await,
        };
        handled.map(|()| Flow::Continue)
    }

    /// `auth`: the first one opens the session; later ones refresh the token.
    /// Without a token, a connection the connect hook signed in asks it again.
    async fn auth(
        &mut self,
        reference: Option<Ref>,
        token: Option<&str>,
    ) -> Result<(), FrameError> {
        let Some(token) = token else {
            return self.auth_again_by_hook(reference).await;
        };
        let claims = self.state.tokens.verify(token).await?;
        let expires_at = claims.exp.map(seconds_from_now);
        let user = claims.user();
        self.sign_in(reference, user, claims.rooms, expires_at, None).await
    }

    /// Signs in a connection upgraded without a token but with a session
    /// cookie: the connect hook says who it is (see [`connect`]).
    pub async fn auth_by_hook(&mut self, request: Box<connect::Request>) -> Flow {
        let signed_in = match self.identify(&request).await {
            Ok((user, rooms)) => {
                let recheck_at = self.hook_recheck_at();
                self.sign_in(None, user, rooms, recheck_at, Some(request)).await
            }
            Err(err) => Err(err),
        };
        match signed_in {
            Ok(()) => Flow::Continue,
            Err(err) => self.fail(None, err),
        }
    }

    /// A refresh without a token: the connect hook is asked again with
    /// the upgrade's cookies; a refusal closes with 4001. Elsewhere, a
    /// missing token is a `bad_request`.
    async fn auth_again_by_hook(&mut self, reference: Option<Ref>) -> Result<(), FrameError> {
        let Some(request) = self.user.as_ref().and_then(|authed| authed.forwarded.clone()) else {
            // Not a connect hook's connection: a frame missing its token.
            return Err(FrameError::bad_request("token is missing"));
        };
        let (user, rooms) = self.identify(&request).await?;
        let recheck_at = self.hook_recheck_at();
        self.sign_in(reference, user, rooms, recheck_at, Some(request)).await
    }

    /// When to ask the connect hook again about this connection
    /// (`--connect-hook-recheck-secs`, less up to a tenth at random, so
    /// that connections opened together are not checked together).
    fn hook_recheck_at(&self) -> Option<Instant> {
        let every = self.state.config.hooks.connect.as_ref()?.recheck?;
        Some(Instant::now() + every.mul_f64(rand::random_range(0.9..=1.0)))
    }

    /// The connect hook asked again, unprompted, whether this connection's
    /// session still holds: the same user goes on (with the profile and
    /// rooms of the answer, without a frame), a refusal or another user
    /// closes with 4001. A failed call keeps the connection and asks again
    /// within [`HOOK_RETRY`]: a backend that is down for a while does not
    /// sign everyone out.
    async fn recheck_by_hook(&mut self) -> Flow {
        let Some(request) = self.user.as_ref().and_then(|authed| authed.forwarded.clone()) else {
            return Flow::Continue;
        };
        let answer = self.identify(&request).await;
        let next = self.hook_recheck_at();
        let Some(authed) = &mut self.user else { return Flow::Continue };
        match answer {
            Ok((user, rooms)) if user.id == authed.user.id => {
                authed.user = user;
                authed.rooms = rooms;
                authed.expires_at = next;
                Flow::Continue
            }
            Ok(_) => {
                let err = FrameError::Token(crate::auth::TokenError::Invalid(
                    "the session is now another user's".into(),
                ));
                self.refuse(None, err).await
            }
            Err(FrameError::ConnectHookFailed) => {
                authed.expires_at = next.map(|at| at.min(Instant::now() + HOOK_RETRY));
                Flow::Continue
            }
            Err(err) => self.refuse(None, err).await,
        }
    }

    /// Who the connect hook says the client is.
    async fn identify(
        &self,
        request: &connect::Request,
    ) -> Result<(UserInfo, Option<Vec<String>>), FrameError> {
        let refused = |why: &str| FrameError::Token(crate::auth::TokenError::Invalid(why.into()));
        match self.state.hooks.identify(request).await {
            None => Err(refused("no token, and no connect hook to ask")),
            Some(Ok(Identity::User { user, rooms })) => Ok((user, rooms)),
            Some(Ok(Identity::Refused)) => Err(refused("the session was refused")),
            Some(Err(_)) => Err(FrameError::ConnectHookFailed),
        }
    }

    /// Opens the session for `user`, or on an open one, refreshes what it
    /// may do (the same user only).
    async fn sign_in(
        &mut self,
        reference: Option<Ref>,
        user: UserInfo,
        rooms: Option<Vec<String>>,
        expires_at: Option<Instant>,
        forwarded: Option<Box<connect::Request>>,
    ) -> Result<(), FrameError> {
        if let Some(authed) = &mut self.user {
            if user.id != authed.user.id {
                return Err(FrameError::forbidden("a refreshed token must be for the same user"));
            }
            authed.user = user.clone();
            authed.rooms = rooms;
            authed.expires_at = expires_at;
            if forwarded.is_some() {
                authed.forwarded = forwarded;
            }
            self.reply(reference, self.ready_frame(&user));
            return Ok(());
        }
        let personal =
            RoomName::personal(&user.id).map_err(|e| FrameError::bad_request(e.to_string()))?;
        tracing::Span::current().record("user", user.id.as_str());
        // Frames for the personal room wait until `ready` is queued, so
        // `ready` comes first and means the connection is fully counted in:
        // a notification posted after it is delivered, not kept as unread.
        let hub = self.state.hub.clone();
        let open_here = hub.connections_of(&user.id);
        if open_here >= self.state.config.limits.connections_per_user {
            return Err(FrameError::TooManyConnections(open_here));
        }
        // Counted in from here: if the task ends before `open` returns, the
        // session's drop guard takes the connection out of the hub again.
        let personal_room = personal.clone();
        self.user = Some(Authed {
            user: user.clone(),
            rooms,
            personal: personal_room,
            expires_at,
            forwarded,
        });
        match self.open(&user, &personal).await {
            Ok(opened) => {
                let ready = encode_reply(reference, self.ready_frame(&user));
                tracing::debug!("authenticated");
                let unread =
                    opened.unread.into_iter().map(|n| encode(&ServerFrame::Notification(n)));
                hub.finish_join(&personal, &self.conn, std::iter::once(ready).chain(unread), 0);
                if let Some(presence) = opened.came_online {
                    self.announce_presence(presence).await?;
                }
                Ok(())
            }
            Err(err) => {
                // Not authenticated after all: the client may try again.
                self.user = None;
                self.state.engine.unregister(&self.conn, [&personal]).await;
                Err(err)
            }
        }
    }

    /// Registers the connection (in its personal room) and counts it in
    /// with the engine.
    async fn open(&self, user: &UserInfo, personal: &RoomName) -> Result<Opened, FrameError> {
        let engine = &self.state.engine;
        engine.register(&self.conn, &user.id, personal).await?;
        engine.presence.add_member(personal, user).await?;
        Ok(engine.presence.connection_opened(user).await?)
    }

    fn ready_frame(&self, user: &UserInfo) -> ServerFrame {
        // The limits go out so that clients pace themselves (a resend after
        // a reconnect in particular) instead of learning them from refusals.
        use roomcast_shared::frame::{Limits, RateLimit};
        let limits = &self.state.config.limits;
        let rate = |r: crate::limits::Rate| RateLimit { per_sec: r.per_sec, burst: r.burst };
        ServerFrame::Ready {
            session_id: self.session_id.to_string(),
            user: user.clone(),
            heartbeat_ms: self.state.config.timing.heartbeat.as_millis() as u64,
            limits: Some(Limits {
                messages: rate(limits.messages),
                user_messages: rate(limits.user_messages),
                frames: rate(limits.frames),
                joins: rate(limits.joins),
            }),
        }
    }

    /// Runs what is due: the auth timeout, token expiry, typing expiry.
    pub async fn on_timer(&mut self) -> Flow {
        let now = Instant::now();
        let Some(authed) = &self.user else {
            if now < self.auth_deadline {
                return Flow::Continue;
            }
            let err = FrameError::Token(crate::auth::TokenError::Invalid(
                "not authenticated in time".into(),
            ));
            return self.fail(None, err);
        };
        if authed.expires_at.is_some_and(|at| at <= now) {
            if authed.forwarded.is_none() {
                let expired = FrameError::Token(crate::auth::TokenError::Expired);
                return self.refuse(None, expired).await;
            }
            if self.recheck_by_hook().await == Flow::Stop {
                return Flow::Stop;
            }
        }
        let expired: Vec<RoomName> = self
            .typing
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(room, _)| room.clone())
            .collect();
        for room in expired {
            self.stop_typing(&room).await;
        }
        Flow::Continue
    }

    /// Tidies up after the socket closed (see [`teardown`]), once the sends
    /// in flight are answered: their acks go out before the writer's close.
    pub async fn close(mut self) {
        self.settle().await;
        if let Some(teardown) = self.teardown() {
            teardown.run().await;
        }
    }

    /// Queues a close frame after whatever is queued, the answers to the
    /// sends in flight included.
    pub async fn close_with(&mut self, code: roomcast_shared::CloseCode, reason: &'static str) {
        self.settle().await;
        self.conn.push(Outbound::Close(code, reason), &self.state.metrics);
    }

    fn authed(&self) -> Result<&Authed, FrameError> {
        self.user
            .as_ref()
            .ok_or_else(|| FrameError::Reply(ErrorCode::Unauthorized, "not authenticated".into()))
    }

    fn push(&self, text: tungstenite::Utf8Bytes) {
        self.conn.push(Outbound::Frame(text), &self.state.metrics);
    }

    fn reply(&self, reference: Option<Ref>, frame: ServerFrame) {
        self.push(encode_reply(reference, frame));
    }
}

/// About 30 years: effectively never, without overflowing `Instant`.
const FAR_FUTURE: Duration = Duration::from_secs(86400 * 365 * 30);

/// How soon the connect hook is asked again after a failed recheck.
const HOOK_RETRY: Duration = Duration::from_secs(30);

fn far_future() -> Instant {
    Instant::now() + FAR_FUTURE
}
