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

pub(crate) type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// The hooks' HTTP client (one per server: its connection pool is shared
/// by every call) and their settings.
pub(crate) struct Hooks {
    /// `None` when no hook is configured.
    http: Option<HttpClient>,
    pub settings: HookSettings,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("settings", &self.settings).finish_non_exhaustive()
    }
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
        use http_body_util::BodyExt as _;
        let http = self.http.as_ref().ok_or_else(|| HookError::Unreachable("no client".into()))?;
        let json = serde_json::to_vec(body).map_err(|err| HookError::Invalid(err.to_string()))?;
        let request = axum::http::Request::post(url.as_str())
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .header(axum::http::header::USER_AGENT, concat!("roomcast/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Full::new(bytes::Bytes::from(json)))
            .map_err(|err| HookError::Unreachable(err.to_string()))?;
        let max = self.limits().max_response_bytes;
        let call = async {
            let response = http.request(request).await.map_err(reached)?;
            let status = response.status().as_u16();
            // Read up to the bound: a body without a length (chunked)
            // stops being read as soon as it passes it.
            let limited = http_body_util::Limited::new(response.into_body(), max);
            let body = match limited.collect().await {
                Ok(collected) => collected.to_bytes().to_vec(),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return Err(HookError::TooLarge(max));
                }
                Err(err) => return Err(HookError::Unreachable(err.to_string())),
            };
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| HookError::Timeout(timeout))?
    }
}

pub(crate) fn reached(err: hyper_util::client::legacy::Error) -> HookError {
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

/// The HTTP client: rustls with ring (no OpenSSL), the platform's roots
/// (so a company CA the system trusts works), HTTP/1.1, pooled
/// connections. It never follows redirects: a hook's URL is the one
/// configured, never one an answer names (a 3xx is a failed call).
pub(crate) fn client() -> std::io::Result<HttpClient> {
    // ring rather than aws-lc-rs: nothing to build beyond a C compiler.
    #[expect(deprecated, reason = "ring's provider lacks only post-quantum key exchange")]
    let ring = rustls::crypto::ring::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(ring)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(https))
}

/// How long an unused pooled connection to a hook is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);
