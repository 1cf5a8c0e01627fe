//! Which transport carries the next connection: a WebSocket, or the
//! fallback for networks whose proxy blocks WebSockets (server frames as
//! Server-Sent Events on `GET /sse`, client frames as `POST /sse/{key}`);
//! and when to check, while on the fallback, whether a WebSocket gets
//! through again.
//!
//! Pure logic: the host reports how each connection ended and what a check
//! found, with the time; it opens what [`Fallback::choose`] names. Both
//! transports carry the same native session, so a switch is a reconnect
//! like any other: the core's recovery (`since`) and outbox (`client_id`)
//! make it lose and double nothing.

use crate::backoff::Backoff;

/// A way of carrying the protocol's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One WebSocket (`/ws`).
    WebSocket,
    /// Server-Sent Events for server frames, HTTP POSTs for client frames
    /// (`/sse`).
    Sse,
}

impl Transport {
    /// The name the JavaScript API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
        }
    }
}

/// Which transports the client may use (the `transports` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// WebSocket first; the fallback when WebSockets keep failing.
    Auto,
    /// WebSocket only: the fallback is never tried.
    WebSocketOnly,
    /// The fallback only (a network known to block WebSockets).
    SseOnly,
}

/// The fallback's settings, each with its default.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackOptions {
    /// Which transports may be used.
    pub transports: Transports,
    /// WebSocket attempts in a row that end before `ready` after which the
    /// next attempt uses the fallback.
    pub sse_after_failures: u32,
    /// On the fallback, how long after `ready` to check whether a
    /// WebSocket gets through; the wait doubles after each failed check.
    pub probe_min_ms: u64,
    /// The longest wait between two checks.
    pub probe_max_ms: u64,
}

impl Default for FallbackOptions {
    fn default() -> Self {
        Self {
            transports: Transports::Auto,
            sse_after_failures: 3,
            probe_min_ms: 10_000,
            probe_max_ms: 300_000,
        }
    }
}

/// The transport policy. See the module docs.
#[derive(Debug)]
pub struct Fallback {
    opts: FallbackOptions,
    /// The transport of the current (or latest) connection attempt.
    current: Transport,
    /// WebSocket attempts in a row that ended before `ready`.
    ws_failures: u32,
    /// Failed checks since a WebSocket last worked: the checks' backoff
    /// exponent, kept across fallback reconnects so a blocked network is
    /// checked ever more rarely.
    probes_failed: u32,
    /// When to check next, while a fallback connection is ready.
    probe_at: Option<u64>,
}

impl Fallback {
    /// A policy that starts on WebSocket (unless told to use the fallback
    /// only).
    pub fn new(opts: FallbackOptions) -> Self {
        let current = match opts.transports {
            Transports::SseOnly => Transport::Sse,
            _ => Transport::WebSocket,
        };
        Self { opts, current, ws_failures: 0, probes_failed: 0, probe_at: None }
    }

    /// The transport of the current (or latest) connection attempt.
    pub fn current(&self) -> Transport {
        self.current
    }

    /// A connection attempt starts: the transport to open.
    pub fn choose(&mut self) -> Transport {
        self.probe_at = None;
        self.current = match self.opts.transports {
            Transports::WebSocketOnly => Transport::WebSocket,
            Transports::SseOnly => Transport::Sse,
            Transports::Auto if self.ws_failures >= self.opts.sse_after_failures.max(1) => {
                Transport::Sse
            }
            Transports::Auto => Transport::WebSocket,
        };
        self.current
    }

    /// The current connection authenticated (`ready`).
    pub fn ready(&mut self, now: u64) {
        match self.current {
            Transport::WebSocket => {
                self.ws_failures = 0;
                self.probes_failed = 0;
            }
            Transport::Sse if self.opts.transports == Transports::Auto => {
                self.probe_at = Some(now + self.probe_delay());
            }
            Transport::Sse => {}
        }
    }

    /// The current connection (or attempt) ended; `was_ready` says whether
    /// it had authenticated.
    pub fn ended(&mut self, was_ready: bool) {
        self.probe_at = None;
        if was_ready {
            return;
        }
        match self.current {
            Transport::WebSocket => self.ws_failures = self.ws_failures.saturating_add(1),
            // The fallback failed too: more likely the server is down than
            // WebSockets blocked, so the next attempt tries a WebSocket
            // again (and a second WebSocket failure comes back here).
            Transport::Sse => {
                self.ws_failures = self.opts.sse_after_failures.max(1) - 1;
            }
        }
    }

    /// When to check whether a WebSocket gets through, if a check is due
    /// on the current connection.
    pub fn probe_at(&self) -> Option<u64> {
        self.probe_at
    }

    /// A check starts: no other is due until it reports.
    pub fn probe_started(&mut self) {
        self.probe_at = None;
    }

    /// A check's outcome (`through`: a WebSocket reached the server and
    /// got an answer). True means: switch to WebSocket now, by
    /// reconnecting.
    pub fn probed(&mut self, through: bool, now: u64) -> bool {
        if self.current != Transport::Sse || self.opts.transports != Transports::Auto {
            return false;
        }
        if through {
            self.ws_failures = 0;
            self.probes_failed = 0;
            true
        } else {
            self.probes_failed = self.probes_failed.saturating_add(1);
            self.probe_at = Some(now + self.probe_delay());
            false
        }
    }

    fn probe_delay(&self) -> u64 {
        let schedule = Backoff {
            min_delay_ms: self.opts.probe_min_ms,
            max_delay_ms: self.opts.probe_max_ms,
            factor: 2.0,
            max_attempts: None,
        };
        schedule.ceiling(self.probes_failed)
    }
}

/// The fallback's URLs for a WebSocket URL ending in `/ws`: the event
/// stream (`http(s)://.../sse`, with the same query, so a `?token=`
/// carries over) and the prefix of the POSTs (`http(s)://.../sse/`, the
/// key follows). `None` for any other URL: the fallback is then off.
pub fn sse_urls(ws_url: &str) -> Option<(String, String)> {
    // A colon, then "//" (rather than `split_once("://")`: a string
    // pattern links the standard library's 3 KB substring searcher).
    let (scheme, rest) = ws_url.split_once(':')?;
    let rest = rest.strip_prefix("//")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let base = path.strip_suffix("/ws")?;
    // A host is required: "ws:///ws" has none.
    if base.is_empty() || base.starts_with('/') {
        return None;
    }
    let stream = match query {
        Some(query) => format!("{scheme}://{base}/sse?{query}"),
        None => format!("{scheme}://{base}/sse"),
    };
    Some((stream, format!("{scheme}://{base}/sse/")))
}

/// The URL a check opens: the WebSocket URL without its query, so the
/// check never carries a token (it only asks for a `pong`).
pub fn probe_url(ws_url: &str) -> &str {
    ws_url.split_once('?').map_or(ws_url, |(path, _)| path)
}

#[cfg(test)]
mod tests;
