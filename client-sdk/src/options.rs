//! The client's settings, each with its default. The browser API fills them
//! from a JavaScript options object; the logic reads them from here.

use crate::backoff::Backoff;
use crate::fallback::FallbackOptions;

/// Every knob of the client. `Options::default()` is what a browser app gets
/// when it passes no options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// How long a connection must stay up before the attempt counter resets,
    /// so that a server that accepts and then drops at once still backs off.
    pub stable_after_ms: u64,
    /// Largest random delay before reconnecting after close 1012 (server
    /// restarting): spreads the reconnects of every client of that server.
    pub restart_jitter_ms: u64,
    /// How long opening a socket and authenticating may take before the
    /// attempt counts as failed.
    pub connect_timeout_ms: u64,
    /// Interval of application `ping` frames; `None` uses the server's
    /// `heartbeat_ms` from `ready`.
    pub ping_interval_ms: Option<u64>,
    /// How long to wait for any frame after a `ping` before the connection is
    /// declared dead and replaced (browsers may take minutes to notice a dead
    /// TCP connection themselves).
    pub pong_timeout_ms: u64,
    /// Most sends, edits and deletes waiting for their ack (queued while
    /// disconnected or in flight). Beyond it, `send` fails at once.
    pub queue_limit: usize,
    /// Shortest interval between two `typing: true` frames for one room.
    pub typing_throttle_ms: u64,
    /// After this long without a `typing(true)` call, the client sends
    /// `typing: false` itself.
    pub typing_idle_ms: u64,
    /// How many of the latest messages a first join loads (and a join whose
    /// recovery failed reloads); at most 100.
    pub history: u16,
    /// Most messages kept per room in the room's snapshot; the oldest go first.
    pub max_messages: usize,
    /// How long before a token's `exp` the token provider is asked for a new
    /// one on an open connection.
    pub refresh_before_ms: u64,
    /// Which transports carry the connection, and when the browser glue
    /// falls back from WebSocket and tries it again (the logic itself does
    /// not know which transport carries its frames).
    pub fallback: FallbackOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            stable_after_ms: 5_000,
            restart_jitter_ms: 1_000,
            connect_timeout_ms: 10_000,
            ping_interval_ms: None,
            pong_timeout_ms: 5_000,
            queue_limit: 100,
            typing_throttle_ms: 500,
            typing_idle_ms: 3_000,
            history: 50,
            max_messages: 1_000,
            refresh_before_ms: 60_000,
            fallback: FallbackOptions::default(),
        }
    }
}
