//! The backend's hooks: HTTP calls the server makes and waits for, so that
//! the application decides synchronously. The publish hook
//! ([`publish`]) allows, rejects or rewrites each `send` and `edit` before
//! it is stored; the connect hook ([`connect`]) says who a WebSocket
//! client without a token is, from its session cookie.
//!
//! Every answer is hostile: its body is read up to a bound, and an answer
//! that is not the JSON the hook's contract describes counts as a failed
//! call, like a timeout or an error status. What a failure means is the
//! caller's decision (the publish hook's failure mode; `unavailable` for
//! the connect hook).

use std::time::Duration;

use serde::Serialize;

use crate::config::{HookLimits, Hooks as HookSettings};

pub(crate) mod connect;
pub(crate) mod publish;

/// Why a hook call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HookError {
    /// Not answered within the hook's timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection refused, reset, TLS failure...
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An HTTP status the contract does not expect.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// An answer body over the bound.
    #[error("answer over {0} bytes")]
    TooLarge(usize),
    /// Not JSON, or JSON that breaks the contract.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

/// A hook's answer: its status and body (read in full, within the bound).
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The hooks' HTTP client (one per server: its connection pool is shared
/// by every call) and their settings.
#[derive(Debug)]
pub(crate) struct Hooks {
    /// `None` when no hook is configured.
    http: Option<reqwest::Client>,
    pub settings: HookSettings,
}

impl Hooks {
    pub fn new(settings: HookSettings) -> std::io::Result<Self> {
        let configured = settings.publish.is_some() || settings.connect.is_some();
        let http = if configured { Some(client()?) } else { None };
        Ok(Self { http, settings })
    }

    pub fn limits(&self) -> &HookLimits {
        &self.settings.limits
    }

    /// POSTs `body` as JSON to `url` and reads the answer, all within
    /// `timeout`.
    async fn post(
        &self,
        url: &url::Url,
        timeout: Duration,
        body: &impl Serialize,
    ) -> Result<Answer, HookError> {
        let http = self.http.as_ref().ok_or_else(|| HookError::Unreachable("no client".into()))?;
        let call = async {
            let mut response = http.post(url.clone()).json(body).send().await.map_err(reached)?;
            let status = response.status().as_u16();
            let max = self.limits().max_response_bytes;
            if response.content_length().is_some_and(|length| length > max as u64) {
                return Err(HookError::TooLarge(max));
            }
            // Read chunk by chunk: a body without a length (chunked) stops
            // being read as soon as it passes the bound.
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(reached)? {
                if body.len() + chunk.len() > max {
                    return Err(HookError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| HookError::Timeout(timeout))?
    }
}

fn reached(err: reqwest::Error) -> HookError {
    // The chain says why (connection refused, certificate...).
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    HookError::Unreachable(text)
}

/// The HTTP client: rustls with ring (no OpenSSL), the system's roots, no
/// redirects (a hook's URL is the one configured, never one an answer
/// names), pooled connections.
fn client() -> std::io::Result<reqwest::Client> {
    // Several servers in one process (tests) install it once; a second
    // install fails harmlessly. ring rather than aws-lc-rs: no C toolchain
    // beyond a compiler, and hooks are plain request/answer calls to the
    // application's own backend.
    #[expect(deprecated, reason = "ring's provider lacks post-quantum key exchange only")]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("roomcast/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(std::io::Error::other)
}
