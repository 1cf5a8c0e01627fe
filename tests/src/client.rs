//! [`WsClient`]: a WebSocket client of the Roomcast protocol whose reads all
//! have deadlines and fail the test saying what was expected.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{RECV_TIMEOUT, TestServer, brief, frame_type, unique_id};

/// What the socket produced next.
enum Incoming {
    Frame(Value),
    Close(u16),
    Dropped(String),
}

/// A WebSocket client speaking the Roomcast protocol.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for a reply to [`call`](Self::call), handed
    /// out by the next reads so no broadcast is lost.
    pending: VecDeque<Value>,
    next_ref: u64,
    /// Who this client is, for failure messages.
    label: String,
    /// The `ready` frame, once authenticated through [`connect_as`](Self::connect_as).
    pub ready: Value,
    /// The user whose own news reads skip: `presence_diff` frames about this
    /// user alone. The server tells every member of a room of each member's
    /// arrival and status, the user's own connections included; tests are
    /// about the others.
    hidden_presence: Option<String>,
    /// Which membership news reads hand out (see [`Diffs`]).
    diffs: Diffs,
}

/// Which `presence_diff` and `occupancy` frames a client's reads hand out.
/// They come once per window at times a test does not control, so a test
/// about something else skips them all; a test about membership asks for
/// them, with [`WsClient::show_presence`] or `recv_arrival` and its kin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diffs {
    /// None (the default).
    Skip,
    /// All but those about the client's own user alone.
    Others,
}

impl WsClient {
    /// Opens a WebSocket without authenticating.
    pub async fn connect(url: &str) -> Self {
        Self::connect_from(url, None).await
    }

    /// Opens a WebSocket as a page of `origin` would (with that `Origin`).
    pub async fn connect_from(url: &str, origin: Option<&str>) -> Self {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        Self::connect_with(url, None, &headers).await
    }

    /// Opens a WebSocket from a local address of this host's loopback range
    /// (`127.0.0.2`: another client than one on `127.0.0.1`), when given,
    /// with extra request headers.
    pub async fn connect_with(
        url: &str,
        source: Option<std::net::IpAddr>,
        headers: &[(&str, &str)],
    ) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request =
            url.into_client_request().unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                name.parse().expect("a header name");
            request.headers_mut().append(name, value.parse().expect("a header value"));
        }
        let connecting = async {
            let Some(source) = source else {
                return tokio_tungstenite::connect_async(request).await;
            };
            let uri = request.uri();
            let target =
                format!("{}:{}", uri.host().unwrap_or_default(), uri.port_u16().unwrap_or(80));
            let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
            socket.bind((source, 0).into()).unwrap_or_else(|e| panic!("binding {source}: {e}"));
            let target = target.parse().unwrap_or_else(|e| panic!("{target}: {e}"));
            let stream =
                socket.connect(target).await.map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await
        };
        let (ws, _) = tokio::time::timeout(RECV_TIMEOUT, connecting)
            .await
            .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        Self {
            ws,
            pending: VecDeque::new(),
            next_ref: 0,
            label: "client".into(),
            ready: Value::Null,
            hidden_presence: None,
            diffs: Diffs::Skip,
        }
    }

    /// Connects, authenticates as `user_id` and waits for `ready`.
    pub async fn connect_as(server: &TestServer, user_id: &str, name: &str) -> Self {
        Self::connect_with_token(server, &server.token(user_id, name), user_id).await
    }

    /// Connects to `ws_url` signed in with `?token=` (no `auth` frame) and
    /// waits for `ready`: for a server that is not a [`TestServer`].
    pub async fn connect_with_query_token(ws_url: &str, token: &str, label: &str) -> Self {
        let mut client = Self::connect(&format!("{ws_url}?token={token}")).await;
        client.label = label.to_owned();
        let ready = client.expect_type("ready").await;
        client.signed_in(ready)
    }

    /// Connects, authenticates with `token` and waits for `ready`.
    pub async fn connect_with_token(server: &TestServer, token: &str, label: &str) -> Self {
        let mut client = Self::connect(&server.ws_url()).await;
        client.label = label.to_owned();
        let ready = client.call(json!({"type": "auth", "token": token})).await;
        assert_eq!(frame_type(&ready), "ready", "{label}: auth answered {ready}");
        client.signed_in(ready)
    }

    /// Keeps the `ready` frame, and hides presence news about its own user.
    fn signed_in(mut self, ready: Value) -> Self {
        self.hidden_presence = ready["user"]["id"].as_str().map(str::to_owned);
        self.ready = ready;
        self
    }

    /// Hands out `presence_diff` and `occupancy` frames, but for those
    /// about this client's own user alone.
    pub fn show_presence(mut self) -> Self {
        self.diffs = Diffs::Others;
        self
    }

    /// Hands out every `presence_diff` and `occupancy` frame, those about
    /// this client's own user too.
    pub fn show_own_presence(mut self) -> Self {
        self.diffs = Diffs::Others;
        self.hidden_presence = None;
        self
    }

    /// [`recv_where`](Self::recv_where) with membership news shown.
    async fn recv_news(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let mode = std::mem::replace(&mut self.diffs, Diffs::Others);
        let frame = self.recv_where(what, wanted).await;
        self.diffs = mode;
        frame
    }

    /// Names this client in failure messages.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends a text frame exactly as given.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("{}: sending {text:.200}: {e}", self.label));
    }

    /// Sends a binary frame, which the protocol does not use.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .unwrap_or_else(|e| panic!("{}: sending a binary frame: {e}", self.label));
    }

    async fn next_incoming(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = Instant::now() + wait;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Incoming::Dropped("the stream ended".into())),
                Ok(Some(Err(e))) => return Some(Incoming::Dropped(e.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("{}: the server sent invalid JSON ({e}): {text}", self.label)
                    });
                    return Some(Incoming::Frame(frame));
                }
                Message::Close(frame) => {
                    return Some(Incoming::Close(frame.map_or(1005, |f| u16::from(f.code))));
                }
                Message::Binary(bytes) => {
                    panic!(
                        "{}: the server sent a binary frame of {} bytes",
                        self.label,
                        bytes.len()
                    )
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    fn hides(&self, frame: &Value) -> bool {
        let news = matches!(frame_type(frame), "presence_diff" | "occupancy");
        match self.diffs {
            Diffs::Skip => news,
            Diffs::Others => self
                .hidden_presence
                .as_deref()
                .is_some_and(|me| crate::diffs::only_about(frame, me)),
        }
    }

    async fn next_frame(&mut self, wait: Duration, expected: &str) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let frame = self.next_any_frame(wait, expected).await;
            if !self.hides(&frame) {
                return frame;
            }
        }
    }

    async fn next_any_frame(&mut self, wait: Duration, expected: &str) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        match self.next_incoming(wait).await {
            Some(Incoming::Frame(frame)) => frame,
            Some(Incoming::Close(code)) => {
                panic!("{}: expected {expected}, but the server closed with {code}", self.label)
            }
            Some(Incoming::Dropped(why)) => {
                panic!("{}: expected {expected}, but the connection dropped: {why}", self.label)
            }
            None => panic!("{}: expected {expected}, but nothing came within {wait:?}", self.label),
        }
    }

    /// The next frame, whatever it is.
    pub async fn recv(&mut self) -> Value {
        self.next_frame(RECV_TIMEOUT, "a frame").await
    }

    /// The next frame, which must be of type `kind`.
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        let frame = self.next_frame(RECV_TIMEOUT, &format!("a `{kind}` frame")).await;
        assert_eq!(
            frame_type(&frame),
            kind,
            "{}: expected a `{kind}` frame, got {}",
            self.label,
            brief(&frame)
        );
        frame
    }

    /// The next `error` frame, which must have `code`.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let frame = self.next_frame(RECV_TIMEOUT, &format!("an `error` {code}")).await;
        assert_eq!(
            frame_type(&frame),
            "error",
            "{}: expected error {code}, got {}",
            self.label,
            brief(&frame)
        );
        assert_eq!(
            frame["code"],
            code,
            "{}: expected error {code}, got {}",
            self.label,
            brief(&frame)
        );
        assert!(
            frame["message"].is_string(),
            "{}: error without a message: {}",
            self.label,
            brief(&frame)
        );
        frame
    }

    /// Reads frames until one of type `kind`, dropping the others.
    pub async fn recv_until(&mut self, kind: &str) -> Value {
        self.recv_where(&format!("a `{kind}` frame"), |f| frame_type(f) == kind).await
    }

    /// Reads frames until one for which `wanted` holds (described by `what`
    /// in failure messages), dropping the others.
    pub async fn recv_where(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut skipped = Vec::new();
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let expected = format!("{what} (skipped so far: {skipped:?})");
            let frame = self.next_frame(wait, &expected).await;
            if wanted(&frame) {
                return frame;
            }
            skipped.push(brief(&frame));
        }
    }

    /// Reads until a `presence_diff` in which `user` arrived; returns its
    /// member object.
    pub async fn recv_arrival(&mut self, user: &str) -> Value {
        let what = format!("a presence_diff with {user} among its joins");
        let frame = self.recv_news(&what, |f| crate::diffs::arrival(f, user).is_some()).await;
        crate::diffs::arrival(&frame, user).cloned().unwrap_or_default()
    }

    /// Reads until a `presence_diff` in which `user` left; returns its profile.
    pub async fn recv_departure(&mut self, user: &str) -> Value {
        let what = format!("a presence_diff with {user} among its leaves");
        let frame = self.recv_news(&what, |f| crate::diffs::departure(f, user).is_some()).await;
        crate::diffs::departure(&frame, user).cloned().unwrap_or_default()
    }

    /// Reads until a `presence_diff` showing `user` with `status`; returns
    /// its presence (or member) object.
    pub async fn recv_status(&mut self, user: &str, status: &str) -> Value {
        let what = format!("a presence_diff showing {user} {status}");
        let shows =
            |f: &Value| crate::diffs::status(f, user).is_some_and(|p| p["status"] == status);
        let frame = self.recv_news(&what, shows).await;
        crate::diffs::status(&frame, user).cloned().unwrap_or_default()
    }

    /// Every frame that arrives within `window`.
    pub async fn collect_for(&mut self, window: Duration) -> Vec<Value> {
        let pending: Vec<Value> = self.pending.drain(..).collect();
        let mut frames: Vec<Value> = pending.into_iter().filter(|f| !self.hides(f)).collect();
        let deadline = Instant::now() + window;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(wait).await {
                None => return frames,
                Some(Incoming::Frame(frame)) if self.hides(&frame) => {}
                Some(Incoming::Frame(frame)) => frames.push(frame),
                Some(Incoming::Close(code)) => {
                    panic!("{}: closed with {code} while collecting; got {frames:?}", self.label)
                }
                Some(Incoming::Dropped(why)) => {
                    panic!("{}: dropped ({why}) while collecting; got {frames:?}", self.label)
                }
            }
        }
    }

    /// Asserts that no frame arrives for `window`.
    pub async fn expect_silence(&mut self, window: Duration) {
        let pending: Vec<&Value> = self.pending.iter().filter(|f| !self.hides(f)).collect();
        if let Some(frame) = pending.first() {
            panic!("{}: expected silence, but {} had already arrived", self.label, brief(frame));
        }
        let deadline = Instant::now() + window;
        let incoming = loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(wait).await {
                Some(Incoming::Frame(frame)) if self.hides(&frame) => {}
                other => break other,
            }
        };
        match incoming {
            None => {}
            Some(Incoming::Frame(frame)) => {
                panic!("{}: expected silence for {window:?}, got {}", self.label, brief(&frame))
            }
            Some(Incoming::Close(code)) => {
                panic!("{}: expected silence for {window:?}, got close {code}", self.label)
            }
            Some(Incoming::Dropped(why)) => {
                panic!(
                    "{}: expected silence for {window:?}, but the connection dropped: {why}",
                    self.label
                )
            }
        }
    }

    /// Waits for the server to close the connection and returns the close
    /// code (1005 when the close frame had none). Frames that come first are
    /// skipped.
    pub async fn expect_close(&mut self) -> u16 {
        self.expect_close_within(RECV_TIMEOUT).await
    }

    /// [`expect_close`](Self::expect_close) with a custom deadline.
    pub async fn expect_close_within(&mut self, wait: Duration) -> u16 {
        let deadline = Instant::now() + wait;
        let mut skipped: Vec<String> = self.pending.drain(..).map(|f| brief(&f)).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Some(Incoming::Frame(frame)) => skipped.push(brief(&frame)),
                Some(Incoming::Close(code)) => return code,
                Some(Incoming::Dropped(why)) => panic!(
                    "{}: expected a close frame, but the connection dropped without one ({why}); frames: {skipped:?}",
                    self.label
                ),
                None => panic!(
                    "{}: expected the server to close within {wait:?}; it sent {skipped:?}",
                    self.label
                ),
            }
        }
    }

    /// Waits for the server to end the connection, with a close frame (its
    /// code) or without one (`None`: a client with unsent pongs may see the
    /// socket fail before it reads the close frame). Frames are skipped.
    pub async fn expect_disconnect(&mut self) -> Option<u16> {
        self.pending.clear();
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Some(Incoming::Frame(_)) => {}
                Some(Incoming::Close(code)) => return Some(code),
                Some(Incoming::Dropped(_)) => return None,
                None => panic!(
                    "{}: the server did not end the connection within {RECV_TIMEOUT:?}",
                    self.label
                ),
            }
        }
    }

    /// Every frame until the server closes, and the close code.
    pub async fn frames_until_close(&mut self) -> (Vec<Value>, u16) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            match self.next_incoming(deadline.saturating_duration_since(Instant::now())).await {
                Some(Incoming::Frame(frame)) => frames.push(frame),
                Some(Incoming::Close(code)) => return (frames, code),
                Some(Incoming::Dropped(why)) => {
                    panic!("{}: dropped without a close: {why}", self.label)
                }
                None => panic!("{}: no close within {RECV_TIMEOUT:?}", self.label),
            }
        }
    }

    /// Every frame until the connection ends, with a close frame or
    /// without one (a server killed mid-write).
    pub async fn frames_until_end(&mut self) -> Vec<Value> {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            match self.next_incoming(deadline.saturating_duration_since(Instant::now())).await {
                Some(Incoming::Frame(frame)) => frames.push(frame),
                Some(Incoming::Close(_) | Incoming::Dropped(_)) => return frames,
                None => {
                    panic!("{}: the connection did not end within {RECV_TIMEOUT:?}", self.label)
                }
            }
        }
    }

    /// Sends `frame` with a fresh `ref` and returns the frame that echoes it.
    /// Frames that arrive first are kept for the next reads.
    pub async fn call(&mut self, mut frame: Value) -> Value {
        self.next_ref += 1;
        let reference = format!("{}-{}", self.label, self.next_ref);
        frame["ref"] = json!(reference);
        self.send(frame.clone()).await;
        let frame = brief(&frame);
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let reply = match self.next_incoming(wait).await {
                Some(Incoming::Frame(reply)) => reply,
                Some(Incoming::Close(code)) => {
                    panic!("{}: {frame} got close {code} instead of a reply", self.label)
                }
                Some(Incoming::Dropped(why)) => {
                    panic!("{}: {frame} got no reply, the connection dropped: {why}", self.label)
                }
                None => panic!(
                    "{}: no reply to {frame} within {RECV_TIMEOUT:?} (meanwhile: {:?})",
                    self.label,
                    self.pending.iter().map(brief).collect::<Vec<_>>()
                ),
            };
            if reply["ref"] == json!(reference) {
                return reply;
            }
            self.pending.push_back(reply);
        }
    }

    /// [`call`](Self::call), asserting the reply's type.
    pub async fn call_ok(&mut self, frame: Value, kind: &str) -> Value {
        let reply = self.call(frame.clone()).await;
        assert_eq!(
            frame_type(&reply),
            kind,
            "{}: {} answered {}",
            self.label,
            brief(&frame),
            brief(&reply)
        );
        reply
    }

    /// Joins `room` and returns the `joined` frame.
    pub async fn join(&mut self, room: &str) -> Value {
        self.call_ok(json!({"type": "join", "room": room}), "joined").await
    }

    /// Sends a chat message with a fresh `client_id` and returns the `ack`.
    pub async fn say(&mut self, room: &str, content: &str) -> Value {
        let client_id = unique_id("msg");
        let frame =
            json!({"type": "send", "room": room, "content": content, "client_id": client_id});
        self.call_ok(frame, "ack").await
    }

    /// Sends `ping` and expects `pong`: the connection is alive and usable.
    pub async fn assert_usable(&mut self) {
        let pong = self.call(json!({"type": "ping"})).await;
        assert_eq!(frame_type(&pong), "pong", "{}: ping answered {pong}", self.label);
    }

    /// Closes the connection normally and waits for the server's close.
    pub async fn close(mut self) {
        let frame = CloseFrame { code: WsCloseCode::Normal, reason: "bye".into() };
        if self.ws.close(Some(frame)).await.is_err() {
            return;
        }
        let deadline = Instant::now() + RECV_TIMEOUT;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.ws.next()).await {}
    }
}
