//! The server's frames, written straight to the socket: each frame a header
//! of 2 to 10 bytes and its payload as is, a batch of them in one vectored
//! write. Nothing is copied, and nothing is kept between writes (an idle
//! connection holds no write buffer).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::hub::Outbound;

/// Longest header of an unmasked frame (2 bytes, then a 64-bit length),
/// and a close frame's code after it.
const MAX_HEADER: usize = 10 + 2;

/// Frames handed to one vectored write, at most (two slices each); the
/// writer takes batches of this size from the queue.
pub(super) const MAX_FRAMES: usize = 64;

/// A frame's header, and the start of its payload that is not shared (a
/// close frame's code).
#[derive(Clone, Copy)]
struct Header {
    bytes: [u8; MAX_HEADER],
    len: u8,
}

impl Header {
    const EMPTY: Self = Self { bytes: [0; MAX_HEADER], len: 0 };

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// `frame` as written: its header and the rest of its payload.
fn encode(frame: &Outbound) -> (Header, &[u8]) {
    let (opcode, code, payload): (_, Option<u16>, &[u8]) = match frame {
        Outbound::Frame(text) => (OpCode::Data(Data::Text), None, text.as_bytes()),
        Outbound::Ping => (OpCode::Control(Control::Ping), None, &[]),
        Outbound::Pong(payload) => (OpCode::Control(Control::Pong), None, payload),
        Outbound::Close(code, reason) => {
            (OpCode::Control(Control::Close), Some(code.0), reason.as_bytes())
        }
    };
    let code_len = if code.is_some() { 2 } else { 0 };
    let mut header = Header::EMPTY;
    let mut rest = &mut header.bytes[..];
    // At most 10 bytes into 12: this cannot fail.
    let _ = FrameHeader { opcode, ..FrameHeader::default() }
        .format((code_len + payload.len()) as u64, &mut rest);
    let mut len = MAX_HEADER - rest.len();
    if let Some(code) = code {
        header.bytes[len..len + 2].copy_from_slice(&code.to_be_bytes());
        len += 2;
    }
    header.len = len as u8;
    (header, payload)
}

/// Where frames go: a socket that takes a vectored write.
pub(crate) trait Socket {
    /// Writes some of `slices`, in order; says how much.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
}

/// A TCP socket takes `sendmsg(2)`, not tokio's `writev(2)`: the same
/// bytes without the file layer's checks, 5 to 8% less server CPU per
/// unbatched delivery (docs/performance.md).
impl Socket for OwnedWriteHalf {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let tcp: &TcpStream = self.as_ref();
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            // A `WouldBlock` clears the readiness, so the next poll waits.
            match tcp.try_io(Interest::WRITABLE, || SockRef::from(tcp).send_vectored(slices)) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                sent => return Poll::Ready(sent),
            }
        }
    }
}

/// Writes frames to the socket's write side.
///
/// Frames wait in the writer until written, so a write can be given up
/// (its future dropped) and resumed: [`FrameWriter::flush`] is cancel-safe,
/// and a frame cut off half-way can still be finished before a close.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    io: W,
    /// Frames not (completely) written yet, as the queue handed them over;
    /// no allocation while empty.
    unsent: VecDeque<Outbound>,
    /// Bytes of the first unsent frame already written.
    written: usize,
}

impl<W: Socket> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        Self { io, unsent: VecDeque::new(), written: 0 }
    }

    /// Adds `frames` after any left unsent, up to the first close frame
    /// (what follows it is dropped); says whether there was one.
    pub fn queue(&mut self, frames: impl Into<VecDeque<Outbound>>) -> bool {
        let mut frames = frames.into();
        let close = frames.iter().position(|frame| matches!(frame, Outbound::Close(..)));
        if let Some(at) = close {
            frames.truncate(at + 1);
        }
        if self.unsent.is_empty() {
            // The queue's buffer itself, not a copy of it.
            self.unsent = frames;
        } else {
            self.unsent.extend(frames);
        }
        close.is_some()
    }

    /// Writes `frames` in order (after any left unsent), with as few
    /// syscalls as the socket allows: one, unless its buffer fills up.
    pub async fn send(&mut self, frames: impl Into<VecDeque<Outbound>>) -> io::Result<()> {
        self.queue(frames);
        self.flush().await
    }

    /// Writes what is unsent. Cancel-safe: dropped before it completes, it
    /// leaves unsent exactly what was not written.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            if poll_fn(|cx| self.poll_write(cx)).await? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        // The batch's buffer goes with it: an idle connection keeps none.
        self.unsent = VecDeque::new();
        Ok(())
    }

    /// One vectored write of the first frames, the slices built on the
    /// stack of this poll (not kept in the future between polls); drops the
    /// frames written whole and returns how many bytes went out.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut headers = [Header::EMPTY; MAX_FRAMES];
        let mut payloads: [&[u8]; MAX_FRAMES] = [&[]; MAX_FRAMES];
        // Each frame's length on the wire, to tell which ones went out whole.
        let mut lens = [0; MAX_FRAMES];
        let count = self.unsent.len().min(MAX_FRAMES);
        for (i, frame) in self.unsent.iter().take(count).enumerate() {
            (headers[i], payloads[i]) = encode(frame);
            lens[i] = headers[i].as_bytes().len() + payloads[i].len();
        }
        let mut slices = [IoSlice::new(&[]); 2 * MAX_FRAMES];
        let mut skip = self.written;
        let mut used = 0;
        let parts = headers[..count]
            .iter()
            .zip(&payloads[..count])
            .flat_map(|(header, payload)| [header.as_bytes(), payload]);
        for part in parts {
            // The front frame's bytes already written are left out.
            let cut = skip.min(part.len());
            skip -= cut;
            let part = &part[cut..];
            if !part.is_empty() {
                slices[used] = IoSlice::new(part);
                used += 1;
            }
        }
        let sent = ready!(self.io.poll_send(cx, &slices[..used]))?;
        let mut done = self.written + sent;
        for len in &lens[..count] {
            if done < *len {
                break;
            }
            done -= len;
            self.unsent.pop_front();
        }
        self.written = done;
        Poll::Ready(Ok(sent))
    }

    /// Drops the frames not started: all but one cut off half-way, which
    /// must be finished before another frame can follow it.
    pub fn drop_unstarted(&mut self) {
        let keep = usize::from(self.written > 0);
        self.unsent.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use roomcast_shared::CloseCode;
    use tokio::io::AsyncWrite;
    use tokio_tungstenite::WebSocketStream;
    use tungstenite::Message;
    use tungstenite::protocol::Role;

    use super::*;

    /// An in-memory pipe stands for the socket.
    impl Socket for tokio::io::DuplexStream {
        fn poll_send(
            &mut self,
            cx: &mut Context<'_>,
            slices: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(self).poll_write_vectored(cx, slices)
        }
    }

    /// What a client reads of `frames`, written through a socket pair with a
    /// small buffer (so that writes are partial).
    async fn client_reads(frames: Vec<Outbound>) -> Vec<Message> {
        let (server, client) = tokio::io::duplex(7);
        let count = frames.len();
        let writer = tokio::spawn(async move {
            let mut writer = FrameWriter::new(server);
            writer.send(frames).await.unwrap();
            writer
        });
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let mut messages = Vec::new();
        while messages.len() < count {
            messages.push(client.next().await.unwrap().unwrap());
        }
        drop(writer.await.unwrap());
        messages
    }

    #[tokio::test]
    async fn a_client_reads_each_frame_whole_and_in_order() {
        let long = "x".repeat(70_000);
        let medium = "é".repeat(100);
        let messages = client_reads(vec![
            Outbound::Frame("{\"type\":\"ready\"}".into()),
            Outbound::Frame(medium.clone().into()),
            Outbound::Frame(long.clone().into()),
            Outbound::Ping,
            Outbound::Pong(Bytes::from_static(b"abc")),
            Outbound::Frame("".into()),
        ])
        .await;
        assert_eq!(
            messages,
            [
                Message::text("{\"type\":\"ready\"}"),
                Message::text(medium),
                Message::text(long),
                Message::Ping(Bytes::new()),
                Message::Pong(Bytes::from_static(b"abc")),
                Message::text(""),
            ]
        );
    }

    #[tokio::test]
    async fn a_frame_cut_off_is_finished_before_the_close_and_the_rest_dropped() {
        let (server, client) = tokio::io::duplex(64);
        let mut writer = FrameWriter::new(server);
        let long = "y".repeat(1_000);
        let frames = [Outbound::Frame(long.clone().into()), Outbound::Frame("b".into())];
        // Nobody reads yet: the first frame is cut off after 64 bytes.
        let cut = tokio::time::timeout(Duration::from_millis(50), writer.send(frames)).await;
        assert!(cut.is_err(), "the write cannot complete");
        writer.drop_unstarted();
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let closing = tokio::spawn(async move {
            writer.send([Outbound::Close(CloseCode::SLOW_CONSUMER, "slow")]).await.unwrap();
            writer
        });
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text(long));
        let close = client.next().await.unwrap().unwrap();
        assert!(matches!(close, Message::Close(Some(_))), "then the close, not b: {close:?}");
        drop(closing.await.unwrap());
    }

    #[tokio::test]
    async fn a_batch_ends_at_its_close_frame() {
        use tokio::io::AsyncReadExt;

        let (server, mut client) = tokio::io::duplex(1024);
        let mut writer = FrameWriter::new(server);
        let batch = [
            Outbound::Frame("a".into()),
            Outbound::Close(CloseCode::NORMAL, "bye"),
            Outbound::Frame("b".into()),
        ];
        assert!(writer.queue(batch), "the batch has a close frame");
        assert!(!writer.queue([Outbound::Ping]), "this one has none");
        writer.flush().await.unwrap();
        drop(writer);
        let mut bytes = Vec::new();
        client.read_to_end(&mut bytes).await.unwrap();
        // "a" as a text frame, the close (1000, "bye"), then the ping
        // queued after the batch; "b" is dropped.
        assert_eq!(bytes, b"\x81\x01a\x88\x05\x03\xe8bye\x89\x00");
    }

    #[tokio::test]
    async fn a_close_frame_carries_its_code_and_reason() {
        let messages = client_reads(vec![Outbound::Close(CloseCode::SLOW_CONSUMER, "slow")]).await;
        let [Message::Close(Some(close))] = &messages[..] else {
            panic!("expected a close frame, got {messages:?}");
        };
        assert_eq!(u16::from(close.code), CloseCode::SLOW_CONSUMER.0);
        assert_eq!(close.reason, "slow");
    }
}
