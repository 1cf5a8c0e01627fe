//! Errors of requests, and the one place that decides what each one does to
//! the client: an `error` frame, an `error` frame and a close, or an HTTP
//! error response.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roomcast_shared::api::{ApiErrorBody, ApiErrorDetail};
use roomcast_shared::{CloseCode, ErrorCode};
use serde_json::Value;

use crate::auth::TokenError;
use crate::config::Limits;
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
    check_content_size(content, max_bytes)
}

/// Checks a message from a client or the API: its content may be empty
/// only beside data, so a message is never neither.
pub(crate) fn check_message(
    content: &str,
    data: Option<&Value>,
    max_content_bytes: usize,
) -> Result<(), FrameError> {
    match data {
        Some(_) => check_content_size(content, max_content_bytes),
        None if content.trim().is_empty() => {
            Err(FrameError::bad_request("content is empty and there is no data"))
        }
        None => check_content_size(content, max_content_bytes),
    }
}

/// Checks an edit's new content and `data` (absent: the message keeps its
/// data; `{}`: it loses it) and gives the data as checked, for
/// [`edit_data`] once a publish hook has had its say.
pub(crate) fn check_edit(
    content: &str,
    data: Option<Box<Value>>,
    limits: &Limits,
) -> Result<Option<Option<Box<Value>>>, FrameError> {
    let sent = data.map(|data| check_data(Some(data), limits)).transpose()?;
    check_message(content, sent.as_ref().and_then(Option::as_deref), limits.max_content_bytes)?;
    Ok(sent)
}

/// What an edit does to a message's data; refused when it would leave empty
/// content without giving the message data of its own.
pub(crate) fn edit_data(
    content: &str,
    sent: Option<Option<Box<Value>>>,
) -> Result<crate::store::DataEdit, FrameError> {
    let data = crate::store::DataEdit::from_edit(sent);
    if content.trim().is_empty() && !matches!(data, crate::store::DataEdit::Replace(_)) {
        return Err(FrameError::bad_request("content is empty and the edit has no data"));
    }
    Ok(data)
}

fn check_content_size(content: &str, max_bytes: usize) -> Result<(), FrameError> {
    if content.len() > max_bytes {
        return Err(FrameError::Reply(
            ErrorCode::TooLarge,
            format!("content is {} bytes; the limit is {max_bytes}", content.len()),
        ));
    }
    Ok(())
}

/// Checks a message's `data` from a client or the API against the bounds
/// (`--max-message-data-bytes`, `--max-message-data-depth`) and gives what
/// is kept: a JSON object, with `{}` meaning none.
pub(crate) fn check_data(
    data: Option<Box<Value>>,
    limits: &Limits,
) -> Result<Option<Box<Value>>, FrameError> {
    let Some(data) = data else { return Ok(None) };
    let Value::Object(fields) = &*data else {
        return Err(FrameError::bad_request("data must be a JSON object"));
    };
    if fields.is_empty() {
        return Ok(None);
    }
    let depth = depth(&data);
    if depth > limits.max_message_data_depth {
        return Err(FrameError::bad_request(format!(
            "data nests {depth} levels deep; the limit is {}",
            limits.max_message_data_depth
        )));
    }
    let bytes = json_len(&data);
    if bytes > limits.max_message_data_bytes {
        return Err(FrameError::Reply(
            ErrorCode::TooLarge,
            format!(
                "data is {bytes} bytes of JSON; the limit is {}",
                limits.max_message_data_bytes
            ),
        ));
    }
    Ok(Some(data))
}

/// How deep arrays and objects nest in `value` (a scalar is 0), counted
/// without recursion: the value is bounded by the frame, not its shape.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 1)];
    while let Some((value, level)) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items.iter().map(|item| (item, level + 1))),
            Value::Object(fields) => pending.extend(fields.values().map(|v| (v, level + 1))),
            _ => continue,
        }
        deepest = deepest.max(level);
    }
    deepest
}

/// The length of `value`'s compact JSON, counted without building it.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checked(data: Value) -> Result<Option<Box<Value>>, ErrorCode> {
        check_data(Some(Box::new(data)), &Limits::default()).map_err(|err| err.code())
    }

    #[test]
    fn data_is_a_bounded_object() {
        let attachments = json!({"attachments": [{"url": "https://example.com/a.png"}]});
        assert_eq!(checked(attachments.clone()), Ok(Some(Box::new(attachments))));
        assert_eq!(checked(json!({})), Ok(None), "{{}} is no data");
        for scalar in [json!("text"), json!(42), json!(true), json!(null), json!([1])] {
            assert_eq!(checked(scalar.clone()), Err(ErrorCode::BadRequest), "{scalar}");
        }
        let limits = Limits::default();
        let big = json!({"text": "x".repeat(limits.max_message_data_bytes)});
        assert_eq!(checked(big), Err(ErrorCode::TooLarge));
        let mut deep = json!(1);
        for _ in 0..limits.max_message_data_depth {
            deep = json!([deep]);
        }
        // The object around it is one level more than the limit.
        assert_eq!(checked(json!({ "deep": deep.clone() })), Err(ErrorCode::BadRequest));
        assert!(checked(json!({ "deep": deep[0].clone() })).is_ok());
    }

    #[test]
    fn empty_content_needs_data() {
        let data = json!({"attachments": []});
        assert!(check_message("", Some(&data), 10).is_ok());
        assert_eq!(check_message(" ", None, 10).map_err(|e| e.code()), Err(ErrorCode::BadRequest));
        assert_eq!(
            check_message("x".repeat(11).as_str(), Some(&data), 10).map_err(|e| e.code()),
            Err(ErrorCode::TooLarge)
        );
    }
}
