//! The accept loop: every TCP connection, from `accept` to its last byte,
//! under three bounds a client cannot lift.
//!
//! - A connection cap below the process's descriptor limit: past it, a new
//!   socket is answered `503` and closed at once, so the server never runs
//!   out of descriptors (and `/health` keeps answering once sockets free up)
//!   instead of leaving sockets in the backlog forever.
//! - A header-read timeout: a request's head must arrive whole within it,
//!   counted from the connection's start or the end of the previous
//!   response, so a socket that sends nothing, half a request line or half
//!   the headers, or stays idle between requests without upgrading, is
//!   closed.
//! - Accept errors (`EMFILE`, `ENFILE`, `ENOBUFS`) back off instead of
//!   spinning, with one log line per streak.
//!
//! A WebSocket keeps its place under the cap for as long as it lives: the
//! [`ConnectionSlot`] travels with the upgrade.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// First pause after an accept error; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between accepts while they fail.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Descriptors kept for what is not a client connection (the listener,
/// Redis, logs, static files), at least; or a tenth of the limit.
const RESERVED_DESCRIPTORS: u64 = 64;
/// What a socket over the cap reads before it is closed.
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 77\r\nconnection: close\r\nretry-after: 1\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections, retry soon\"}}";

/// One connection's place under the cap, freed when dropped.
///
/// It travels inside the socket ([`Slotted`]), so that after an upgrade the
/// WebSocket keeps it without an allocation of its own: an idle connection
/// pays one pointer for it.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<Semaphore>);

impl ConnectionSlot {
    /// A place under the cap, if one is free.
    fn take(slots: &Arc<Semaphore>) -> Option<Self> {
        slots.try_acquire().ok()?.forget();
        Some(Self(slots.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

/// A client's socket and its place under the cap: what hyper serves, and
/// what `ws::handshake` takes back after an upgrade.
#[derive(Debug)]
pub(crate) struct Slotted {
    pub tcp: TcpStream,
    pub slot: ConnectionSlot,
}

impl AsyncRead for Slotted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slotted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Connections the server accepts at once: `configured`, or (when 0) the
/// descriptor limit less a reserve; never more than the descriptor limit
/// allows. Logs which.
pub(crate) fn connection_cap(configured: usize) -> usize {
    let limit = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _hard)) => soft,
        Err(err) => {
            tracing::warn!(%err, "cannot read the descriptor limit (RLIMIT_NOFILE)");
            return if configured == 0 { 1024 } else { configured };
        }
    };
    let reserve = RESERVED_DESCRIPTORS.max(limit / 10);
    let room = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX).max(1);
    let cap = if configured == 0 { room } else { configured.min(room) };
    if configured > room {
        tracing::warn!(
            "--max-connections {configured} is above what the descriptor limit ({limit}) allows"
        );
    }
    tracing::info!(
        descriptor_limit = limit,
        max_connections = cap,
        "accepting at most {cap} connections"
    );
    cap
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets the
/// HTTP connections finish what they are doing (upgraded connections are
/// the caller's to wait for).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut failing = Failing::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                let pause = failing.failed(&err);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = shutdown.cancelled() => break,
                }
            }
        };
        failing.recovered();
        let Some(slot) = ConnectionSlot::take(&slots) else {
            refuse(&tcp);
            continue;
        };
        // No Nagle delay: a frame must not wait for the ACK of the previous
        // one (clients that delay ACKs would see every second frame late).
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(axum::body::Body::new)).await;
                Ok::<_, Infallible>(unwrap_infallible(response))
            }
        });
        let io = TokioIo::new(Slotted { tcp, slot });
        let connection = http.serve_connection(io, service).with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = shutdown.cancelled() => {
                    // Finish the request in progress, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(%err, %peer, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Answers a socket over the cap without waiting for it: what fits in its
/// send buffer goes, then it is closed.
fn refuse(tcp: &TcpStream) {
    let _ = tcp.try_write(OVER_CAPACITY);
}

/// A streak of accept errors: how long to pause, and one log line for it.
#[derive(Debug, Default)]
struct Failing {
    /// Errors in this streak.
    errors: u64,
    pause: Duration,
}

impl Failing {
    fn failed(&mut self, err: &io::Error) -> Duration {
        // The peer gave up before we accepted: nothing is wrong here.
        if matches!(err.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
            return Duration::ZERO;
        }
        if self.errors == 0 {
            tracing::warn!(%err, "accept failed; pausing accepts until it works again");
        }
        self.errors += 1;
        self.pause =
            if self.pause.is_zero() { FIRST_BACKOFF } else { (self.pause * 2).min(MAX_BACKOFF) };
        self.pause
    }

    fn recovered(&mut self) {
        if self.errors > 0 {
            tracing::info!(errors = self.errors, "accepting again");
            *self = Self::default();
        }
    }
}

/// The value of a `Result` that cannot fail.
fn unwrap_infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
