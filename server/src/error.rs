//! Errors of requests, and the one place that decides what each one does to
//! the client: an `error` frame, an `error` frame and a close, or an HTTP
//! error response.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roomcast_shared::api::{ApiErrorBody, ApiErrorDetail};
use roomcast_shared::{CloseCode, ErrorCode};

use crate::auth::TokenError;
use crate::engine::EngineError;

/// Why a client frame (or an API request) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// Answered with an `error` frame; the connection stays open.
    #[error("{1}")]
    Reply(ErrorCode, String),
    /// A refused token: `error` `unauthorized`, then close 4001.
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Over a rate limit: `rate_limited` with the time to wait.
    #[error("{what} limit exceeded: retry in {} ms", .retry_after.as_millis())]
    RateLimited { what: &'static str, retry_after: std::time::Duration },
    /// More connections for one user than allowed: `rate_limited`, close 4008.
    #[error("this user has {0} connections open already")]
    TooManyConnections(usize),
    /// Too many refusals for rate in a row: the last `error`, then close 4008.
    #[error("rate limits exceeded persistently")]
    Abusive,
    /// The publish hook refused the message: `rejected` with its reason
    /// (and code); the connection stays open.
    #[error("{reason}")]
    Rejected { code: Option<String>, reason: String },
    /// The publish hook could not be asked (failure mode closed):
    /// `unavailable`, the client retries. The hook's error is logged, not
    /// told: it names the backend's internals.
    #[error("the message could not be checked: try again")]
    PublishHookFailed,
    /// The connect hook could not be asked: `unavailable`, then close 1013
    /// (the client reconnects with backoff).
    #[error("sign-in is unavailable: try again later")]
    ConnectHookFailed,
}

impl FrameError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Reply(ErrorCode::BadRequest, message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Reply(ErrorCode::Forbidden, message.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Reply(code, _) => *code,
            Self::Token(_) => ErrorCode::Unauthorized,
            Self::Engine(EngineError::MessageNotFound(_)) => ErrorCode::NotFound,
            Self::Engine(EngineError::NotTheSender(_)) => ErrorCode::Forbidden,
            Self::Engine(EngineError::Unavailable(_)) => ErrorCode::Unavailable,
            Self::RateLimited { .. } | Self::TooManyConnections(_) | Self::Abusive => {
                ErrorCode::RateLimited
            }
            Self::Rejected { .. } => ErrorCode::Rejected,
            Self::PublishHookFailed | Self::ConnectHookFailed => ErrorCode::Unavailable,
        }
    }

    /// For `rate_limited`: how long to wait.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// With `rejected`: the code the publish hook gave.
    pub fn reason_code(&self) -> Option<String> {
        match self {
            Self::Rejected { code, .. } => code.clone(),
            _ => None,
        }
    }

    /// The close that follows the `error` frame, if the connection must end.
    pub fn close(&self) -> Option<(CloseCode, &'static str)> {
        match self {
            Self::Token(_) => Some((CloseCode::UNAUTHORIZED, "unauthorized")),
            Self::TooManyConnections(_) => Some((CloseCode::RATE_LIMITED, "too many connections")),
            Self::Abusive => Some((CloseCode::RATE_LIMITED, "rate limits exceeded persistently")),
            Self::ConnectHookFailed => Some((CloseCode::TRY_AGAIN_LATER, "sign-in unavailable")),
            _ => None,
        }
    }
}

/// Checks a message's content against the configured limit.
pub(crate) fn check_content(content: &str, max_bytes: usize) -> Result<(), FrameError> {
    if content.trim().is_empty() {
        return Err(FrameError::bad_request("content is empty"));
    }
    if content.len() > max_bytes {
        return Err(FrameError::Reply(
            ErrorCode::TooLarge,
            format!("content is {} bytes; the limit is {max_bytes}", content.len()),
        ));
    }
    Ok(())
}

/// Longest `client_id`, in bytes.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Checks an idempotency key.
pub(crate) fn check_client_id(client_id: &str) -> Result<(), FrameError> {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(FrameError::bad_request(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    // A key is matched byte for byte and logged: no control characters
    // (NUL cannot even be stored by PostgreSQL).
    if client_id.chars().any(char::is_control) {
        return Err(FrameError::bad_request("client_id holds a control character"));
    }
    Ok(())
}

/// An HTTP API error: `{"error": {"code", "message"}}` with the matching status.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<FrameError> for ApiError {
    fn from(err: FrameError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        FrameError::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body =
            ApiErrorBody { error: ApiErrorDetail { code: self.code, message: self.message } };
        (status, Json(body)).into_response()
    }
}

/// The answer to a known path asked with another method: a JSON error like
/// every other, with status 405 (axum adds the `Allow` header). Set on a
/// router before its layers, so that they wrap it (CORS answers preflight
/// `OPTIONS` requests in front of it).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let message = format!("{method} is not allowed on {}: see the Allow header", uri.path());
    let mut response = ApiError::new(ErrorCode::BadRequest, message).into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
