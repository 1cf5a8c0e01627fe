//! The server's frames, written straight to the socket: each frame a header
//! of 2 to 10 bytes and its payload as is, a batch of them in one vectored
//! write. Nothing is copied, and nothing is kept between writes (an idle
//! connection holds no write buffer).

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::hub::Outbound;

/// Longest header of an unmasked frame: 2 bytes, then a 64-bit length.
const MAX_HEADER: usize = 10;

/// A frame ready to write: its header and its payload, less what was
/// written of them already.
#[derive(Debug)]
struct Encoded {
    header: [u8; MAX_HEADER],
    /// `header[sent..len]` is left to write.
    sent: u8,
    len: u8,
    payload: Bytes,
}

impl Encoded {
    fn new(frame: Outbound) -> Self {
        let (opcode, payload) = match frame {
            Outbound::Frame(text) => (OpCode::Data(Data::Text), Bytes::from(text)),
            Outbound::Ping => (OpCode::Control(Control::Ping), Bytes::new()),
            Outbound::Pong(payload) => (OpCode::Control(Control::Pong), payload),
            Outbound::Close(code, reason) => {
                let mut payload = Vec::with_capacity(2 + reason.len());
                payload.extend_from_slice(&code.0.to_be_bytes());
                payload.extend_from_slice(reason.as_bytes());
                (OpCode::Control(Control::Close), payload.into())
            }
        };
        let header = FrameHeader { opcode, ..FrameHeader::default() };
        let mut bytes = [0; MAX_HEADER];
        let mut rest = &mut bytes[..];
        // At most 10 bytes into 10: this cannot fail.
        let _ = header.format(payload.len() as u64, &mut rest);
        let len = (MAX_HEADER - rest.len()) as u8;
        Self { header: bytes, sent: 0, len, payload }
    }

    fn header(&self) -> &[u8] {
        &self.header[usize::from(self.sent)..usize::from(self.len)]
    }

    /// Whether some of it is written (its header is never empty).
    fn started(&self) -> bool {
        self.sent > 0
    }

    /// Marks up to `written` bytes as written; returns the bytes left over.
    fn advance(&mut self, written: usize) -> usize {
        let from_header = written.min(self.header().len());
        self.sent += from_header as u8;
        let from_payload = (written - from_header).min(self.payload.len());
        self.payload.advance(from_payload);
        written - from_header - from_payload
    }

    fn is_written(&self) -> bool {
        self.header().is_empty() && self.payload.is_empty()
    }
}

/// Slices handed to one vectored write, at most (two per frame).
const MAX_SLICES: usize = 128;

/// Writes frames to the socket's write side.
///
/// Frames wait in the writer until written, so a write can be given up
/// (its future dropped) and resumed: [`FrameWriter::flush`] is cancel-safe,
/// and a frame cut off half-way can still be finished before a close.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    io: W,
    /// Frames not (completely) written yet; no allocation while empty.
    unsent: VecDeque<Encoded>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        Self { io, unsent: VecDeque::new() }
    }

    /// Writes `frames` in order (after any left unsent), with as few
    /// syscalls as the socket allows: one, unless its buffer fills up.
    pub async fn send(&mut self, frames: impl IntoIterator<Item = Outbound>) -> io::Result<()> {
        self.unsent.extend(frames.into_iter().map(Encoded::new));
        self.flush().await
    }

    /// Writes what is unsent. Cancel-safe: dropped before it completes, it
    /// leaves unsent exactly what was not written.
    pub async fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            // On the stack of this (short-lived) future, not allocated.
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let parts = self
                .unsent
                .iter()
                .flat_map(|frame| [frame.header(), &frame.payload[..]])
                .filter(|part| !part.is_empty());
            let mut count = 0;
            for (slice, part) in slices.iter_mut().zip(parts) {
                *slice = IoSlice::new(part);
                count += 1;
            }
            let written = self.io.write_vectored(&slices[..count]).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let mut left = written;
            while let Some(frame) = self.unsent.front_mut() {
                left = frame.advance(left);
                if !frame.is_written() {
                    break;
                }
                self.unsent.pop_front();
            }
        }
        // The batch's buffer goes with it: an idle connection keeps none.
        self.unsent = VecDeque::new();
        self.io.flush().await
    }

    /// Drops the frames not started: all but one cut off half-way, which
    /// must be finished before another frame can follow it.
    pub fn drop_unstarted(&mut self) {
        let keep = usize::from(self.unsent.front().is_some_and(Encoded::started));
        self.unsent.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio_tungstenite::WebSocketStream;
    use tungstenite::Message;
    use tungstenite::protocol::Role;

    use super::*;
    use roomcast_shared::CloseCode;
    use std::time::Duration;

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
    async fn a_close_frame_carries_its_code_and_reason() {
        let messages = client_reads(vec![Outbound::Close(CloseCode::SLOW_CONSUMER, "slow")]).await;
        let [Message::Close(Some(close))] = &messages[..] else {
            panic!("expected a close frame, got {messages:?}");
        };
        assert_eq!(u16::from(close.code), CloseCode::SLOW_CONSUMER.0);
        assert_eq!(close.reason, "slow");
    }
}
