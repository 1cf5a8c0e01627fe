//! The generator's TCP stream: a `TcpStream` that can ask the kernel to
//! delay its ACKs.
//!
//! A load connection only receives. Linux then acknowledges every small
//! segment as soon as a read empties the socket (on loopback, that ACK is
//! sent inside our `recv` call). Clients on other systems delay ACKs
//! instead, and then a server that leaves Nagle's algorithm on holds each
//! small frame until the previous one is acknowledged: tens of
//! milliseconds. `--delay-acks` reproduces such clients by re-entering
//! delayed-ACK mode (`TCP_QUICKACK` off, which the kernel forgets whenever
//! its ACK timer fires) before each read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream, optionally delaying ACKs before each read.
#[derive(Debug)]
pub struct LoadStream {
    tcp: TcpStream,
    delay_acks: bool,
}

impl LoadStream {
    pub fn new(tcp: TcpStream, delay_acks: bool) -> Self {
        Self { tcp, delay_acks }
    }
}

impl AsyncRead for LoadStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.delay_acks {
            // Only right before a read that finds data: the kernel leaves
            // delayed-ACK mode whenever its ACK timer fires, and a call per
            // empty poll would cost more than it saves.
            match self.tcp.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                // Best effort: if it fails, ACKs are just sent at once.
                Poll::Ready(Ok(())) => drop(SockRef::from(&self.tcp).set_tcp_quickack(false)),
            }
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for LoadStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
