//! The WebSocket opening handshake (RFC 6455, section 4.2) on an HTTP/1.1
//! request, and the upgraded socket split in two: the reading side parsed
//! by tungstenite, the writing side owned by the connection's writer
//! ([`super::frames`]).
//!
//! axum's `WebSocket` keeps both sides inside tungstenite, whose write
//! buffer grows to the biggest frame a connection ever sent and never
//! shrinks (a `joined` reply in a big room): 9 KiB of an idle connection in
//! rooms of 100, 190 KiB in a room of 2,000 (docs/performance.md). Owning
//! the write side keeps no buffer between writes.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use axum::response::Response;
use futures_util::Stream;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use roomcast_shared::ErrorCode;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error, Message};

use crate::error::ApiError;
use crate::serve::{ConnectionSlot, Slotted};

/// The socket's write side, for [`super::frames::FrameWriter`].
pub(crate) type Outgoing = OwnedWriteHalf;

/// A valid WebSocket upgrade request, not answered yet.
#[derive(Debug)]
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let refuse = |message: &str| ApiError::new(ErrorCode::BadRequest, message);
        if parts.version != Version::HTTP_11 {
            return Err(refuse("a WebSocket upgrade needs HTTP/1.1"));
        }
        let headers = &parts.headers;
        if !has_token(headers, CONNECTION, "upgrade") || !has_token(headers, UPGRADE, "websocket") {
            return Err(refuse(
                "expected a WebSocket upgrade (Connection: upgrade, Upgrade: websocket)",
            ));
        }
        if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
            return Err(refuse(
                "only WebSocket version 13 is supported (Sec-WebSocket-Version: 13)",
            ));
        }
        let key = headers
            .get(SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| refuse("Sec-WebSocket-Key is missing"))?;
        if !is_valid_key(&key) {
            return Err(refuse("Sec-WebSocket-Key must be the base64 of 16 bytes"));
        }
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols`; once the client has it, spawns
    /// the future that `connection` makes of the two sides of the socket.
    ///
    /// That future is the connection's task: it lives as long as the
    /// connection, so it carries nothing of the upgrade (an idle connection
    /// is 128 bytes smaller than when the upgrade's task ran it).
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, connection: F) -> Response
    where
        F: FnOnce(Incoming, Outgoing) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(async move {
            let upgraded = match self.on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%err, "WebSocket upgrade failed");
                    return;
                }
            };
            // The TCP socket itself, out of hyper's box: its two halves
            // need no lock between them, and nothing of hyper's stays with
            // the connection.
            let Ok(parts) = upgraded.downcast::<TokioIo<Slotted>>() else {
                tracing::error!("an upgraded connection is not a TCP socket");
                return;
            };
            let Slotted { tcp, slot } = parts.io.into_inner();
            let (read, write) = tcp.into_split();
            // The bytes hyper read past the request (a first frame sent
            // without waiting for the 101) go to tungstenite first: copied,
            // since they share the whole of hyper's read buffer (8 KiB).
            let protocol = WebSocketContext::from_partially_read(
                parts.read_buf.to_vec(),
                Role::Server,
                Some(config),
            );
            let incoming = Incoming { io: read, protocol, _slot: slot };
            tokio::spawn(connection(incoming, write));
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        let accept = derive_accept_key(self.key.as_bytes());
        // Base64: always a valid header value.
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Whether `key` is what RFC 6455 (section 4.1) asks of a client: 16
/// random bytes in base64 (24 characters, canonical padding).
fn is_valid_key(key: &HeaderValue) -> bool {
    data_encoding::BASE64.decode(key.as_bytes()).is_ok_and(|bytes| bytes.len() == 16)
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The client's frames: tungstenite's protocol state, fed from the socket's
/// read side.
///
/// tungstenite reads from a blocking-style `Read + Write`; [`Bridge`] lends
/// it the socket for one poll, with the task's context (tokio-tungstenite
/// keeps two shared wakers per connection for this instead).
#[derive(Debug)]
pub(crate) struct Incoming {
    io: OwnedReadHalf,
    protocol: WebSocketContext,
    /// The connection's place under the server's connection cap, freed
    /// with the socket's read side, the last of the connection to go.
    _slot: ConnectionSlot,
}

impl Stream for Incoming {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.protocol.read(&mut Bridge { io: &mut this.io, cx }) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(Error::Io(err)) if err.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }
}

/// The socket's read side during one poll, as tungstenite wants it: a read
/// that would wait says `WouldBlock` (the task is woken when data comes).
///
/// tungstenite also writes: it answers a ping with a pong and a close with
/// a close. The writer owns the socket's write side, so those writes are
/// dropped here: the reader queues the pong itself, and the writer's close
/// ends every connection.
struct Bridge<'a, 'b> {
    io: &'a mut OwnedReadHalf,
    cx: &'a mut Context<'b>,
}

impl Read for Bridge<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(err)) => Err(err),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Bridge<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
