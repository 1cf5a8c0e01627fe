//! Test harness for the end-to-end tests: starts the real Roomcast server on
//! 127.0.0.1:0 and talks to it over real sockets.
//!
//! Every wait is bounded: a frame that does not come fails the test with what
//! was expected and what arrived instead, never a hang.
//!
//! # Layout
//! - [`server`]: [`TestServer`], the server running in the test's runtime,
//!   and [`HttpReply`] for its HTTP API.
//! - [`engine`]: [`Engine`], memory or Redis, and [`every_engine!`], which
//!   runs a test on each.
//! - [`client`]: [`WsClient`], a WebSocket client of the protocol.
//! - [`nginx`]: [`Nginx`], a real nginx from the deployment's template.
//! - [`process`]: [`ServerProcess`], the `roomcast` binary as a child process.
//! - [`redis`]: [`RedisServer`], a real `redis-server` on a free port.
//! - [`postgres`]: [`RoomcastPostgres`], a real PostgreSQL server per test
//!   binary, a database per test.
//! - [`rabbitmq`]: [`RabbitMq`], a real RabbitMQ node per test binary.
//! - [`raw`]: [`RawWs`], a WebSocket client written byte by byte, for
//!   malformed frames and clients that never read.
//! - here: timings the test servers use, tokens, and small JSON helpers.

pub mod client;
pub mod diffs;
pub mod engine;
pub mod hook;
pub mod jwks;
pub mod nginx;
pub mod postgres;
pub mod process;
pub mod rabbitmq;
pub mod raw;
pub mod redis;
pub mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use roomcast_shared::Claims;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use client::WsClient;
pub use engine::Engine;
pub use hook::{HookServer, Reply};
pub use nginx::Nginx;
pub use postgres::RoomcastPostgres;
pub use process::ServerProcess;
pub use rabbitmq::RabbitMq;
pub use raw::RawWs;
pub use redis::RedisServer;
pub use server::{HttpReply, TestServer};

/// How long any single expected frame, close or HTTP reply may take.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// The presence grace period test servers use (the default is 3 s).
pub const PRESENCE_GRACE: Duration = Duration::from_millis(300);

/// The typing timeout test servers use (the default is 5 s).
pub const TYPING_TIMEOUT: Duration = Duration::from_millis(400);

/// Percent-encodes a path segment or query value (every byte but
/// `A-Z a-z 0-9 - _ .`).
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Seconds since the Unix epoch, as JWT claims count time.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock before 1970").as_secs()
}

/// Claims for `user_id` valid for an hour, without role, avatar or rooms.
pub fn claims(user_id: &str, name: &str) -> Claims {
    let now = now_secs();
    Claims { exp: Some(now + 3600), iat: Some(now), ..Claims::new(user_id, name) }
}

/// Signs `claims` with HS256 and `secret`.
pub fn sign(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("signing a token")
}

/// An unsigned token (`alg: none`), which the server must refuse.
pub fn unsigned_token(claims: &Claims) -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64url(&serde_json::to_vec(claims).expect("claims serialize"));
    format!("{header}.{body}.")
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A string no other call in this test process returns, such as a `client_id`.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The `type` of a frame, or `""` when it has none.
pub fn frame_type(frame: &Value) -> &str {
    frame["type"].as_str().unwrap_or("")
}

/// A frame as JSON text, cut short when long, for failure messages.
pub fn brief(frame: &Value) -> String {
    const MAX: usize = 300;
    let text = frame.to_string();
    if text.len() <= MAX {
        return text;
    }
    let cut = (0..=MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}... ({} bytes)", &text[..cut], text.len())
}

/// Deserializes a frame or body into a protocol type, failing the test with
/// the JSON when its shape is wrong.
pub fn typed<T: DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!("{} does not have the shape of {}: {e}", brief(value), std::any::type_name::<T>())
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_without_padding() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foob"), "Zm9vYg");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }
}
