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
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use roomcast_shared::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::ApiError;

type Io = TokioIo<Upgraded>;

/// The client's frames, parsed by tungstenite.
pub(crate) type Incoming = WebSocketStream<ReadOnly<ReadHalf<Io>>>;

/// The socket's write side, for [`super::frames::FrameWriter`].
pub(crate) type Outgoing = WriteHalf<Io>;

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
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers `101 Switching Protocols`; once the client has it, runs
    /// `connection` on its own task with the two sides of the socket.
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
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            let incoming =
                WebSocketStream::from_raw_socket(ReadOnly(read), Role::Server, Some(config)).await;
            connection(incoming, write).await;
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

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The socket's read side, as tungstenite wants a whole stream.
///
/// tungstenite answers a ping with a pong and a close with a close, written
/// to its stream. The writer owns the socket's write side, so those writes
/// are dropped here: the reader queues the pong itself, and the writer's
/// close ends every connection.
#[derive(Debug)]
pub(crate) struct ReadOnly<R>(R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
