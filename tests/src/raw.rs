//! [`RawWs`]: a WebSocket client written byte by byte over a plain TCP
//! socket, for what a well-behaved client library will not do: send
//! malformed frames, keep sending without ever reading, stop half-way
//! through a request.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::RECV_TIMEOUT;

/// A well-formed `Sec-WebSocket-Key` (base64 of 16 bytes).
pub const GOOD_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The first byte's low four bits.
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A close frame's code, when it is one and has a code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A client frame: `first` is the whole first byte (FIN, RSV bits and
/// opcode), the payload masked unless `masked` is false.
pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A masked, final text frame.
pub fn text(payload: &str) -> Vec<u8> {
    frame(0x81, payload.as_bytes(), true)
}

/// The upgrade request for `/ws` on `addr` with `key`.
pub fn upgrade_request(addr: &str, key: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )
}

/// Reads an HTTP response head (up to the blank line); `None` if the
/// connection ends first.
pub async fn read_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(RECV_TIMEOUT, tcp.read(&mut byte)).await {
            Ok(Ok(1)) => head.push(byte[0]),
            Ok(_) => return None,
            Err(_) => panic!("no HTTP response within {RECV_TIMEOUT:?}: {head:?}"),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A WebSocket connection on a raw socket.
pub struct RawWs {
    pub tcp: TcpStream,
}

impl RawWs {
    /// Connects to `addr` (`127.0.0.1:<port>`) and completes the upgrade.
    pub async fn connect(addr: &str) -> Self {
        let mut tcp = TcpStream::connect(addr).await.expect("connecting");
        tcp.write_all(upgrade_request(addr, GOOD_KEY).as_bytes()).await.expect("writing");
        let head = read_head(&mut tcp).await.expect("a response to the upgrade");
        assert!(head.starts_with("HTTP/1.1 101"), "the upgrade was refused: {head}");
        Self { tcp }
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tcp.write_all(bytes).await
    }

    /// Reads the next frame, or `None` once the server closed the socket.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        let mut head = [0u8; 2];
        self.read_exact(&mut head).await?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut len = [0u8; 2];
                self.read_exact(&mut len).await?;
                u64::from(u16::from_be_bytes(len))
            }
            127 => {
                let mut len = [0u8; 8];
                self.read_exact(&mut len).await?;
                u64::from_be_bytes(len)
            }
            len => u64::from(len),
        };
        let mut payload = vec![0; usize::try_from(len).expect("a frame that fits in memory")];
        self.read_exact(&mut payload).await?;
        Some(RawFrame { opcode: head[0] & 0x0f, payload })
    }

    /// Reads frames until a close frame, and returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        while let Some(frame) = self.read_frame().await {
            if frame.opcode == 0x8 {
                return frame.close_code();
            }
        }
        None
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Option<()> {
        match tokio::time::timeout(RECV_TIMEOUT, self.tcp.read_exact(buf)).await {
            Ok(Ok(_)) => Some(()),
            Ok(Err(_)) => None,
            Err(_) => panic!("no frame from the server within {RECV_TIMEOUT:?}"),
        }
    }
}

/// Waits until the server closes `tcp` (reads return 0 or fail), reading
/// and dropping what it sends meanwhile; returns how long that took, or
/// `None` if it was still open after `limit`.
pub async fn wait_closed(tcp: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|()| start.elapsed())
}
