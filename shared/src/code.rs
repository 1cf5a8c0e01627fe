//! Error codes (in `error` frames and HTTP error bodies) and WebSocket close
//! codes. Both are a numbered contract: a client decides from the code alone
//! whether to retry, reconnect or give up.

use serde::{Deserialize, Serialize};

/// What went wrong, in an `error` frame or an HTTP error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS), ts(rename = "ProtocolErrorCode"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is malformed: invalid JSON, unknown type, missing or
    /// mistyped field, invalid room name.
    BadRequest,
    /// Not authenticated, or the token is invalid or expired.
    Unauthorized,
    /// Authenticated, but not allowed to do this (join that room, edit that
    /// message, send to a room not joined).
    Forbidden,
    /// The room, message or user does not exist.
    NotFound,
    /// Too many requests; retry later.
    RateLimited,
    /// Content over the configured limit.
    TooLarge,
    /// The request conflicts with the current state.
    Conflict,
    /// The application's backend refused the message (its publish hook):
    /// `message` says why, for the user; sending it again gets the same
    /// answer unless the content changes.
    Rejected,
    /// A backing service is unreachable; retry later.
    Unavailable,
    /// A bug on the server side.
    Internal,
}

impl ErrorCode {
    /// The wire spelling, as in `"bad_request"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::TooLarge => "too_large",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status an API error with this code answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooLarge => 413,
            Self::Rejected => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CloseCode(pub u16);

/// What a client should do after the server closed its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Reconnect at once (with a little jitter): the server is restarting.
    Immediately,
    /// Reconnect with exponential backoff.
    WithBackoff,
    /// Get a fresh token first; give up if that fails.
    AfterTokenRefresh,
    /// Do not reconnect: the close was deliberate or retrying cannot help.
    Never,
}

impl CloseCode {
    /// Normal closure.
    pub const NORMAL: Self = Self(1000);
    /// The server went away without a more specific reason.
    pub const GOING_AWAY: Self = Self(1001);
    /// The client broke the WebSocket protocol (RFC 6455): an unmasked
    /// frame, reserved bits or opcodes, a fragmented or oversized control
    /// frame, a close code that may not be sent.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// A text frame (or a close reason) that is not valid UTF-8.
    pub const INVALID_DATA: Self = Self(1007);
    /// Policy violation: the page's origin is not allowed.
    pub const POLICY: Self = Self(1008);
    /// A WebSocket frame over the server's frame limit.
    pub const TOO_LARGE: Self = Self(1009);
    /// The server is restarting: reconnect at once, with jitter.
    pub const RESTARTING: Self = Self(1012);
    /// A service the server depends on (the connect hook) could not answer:
    /// reconnect with backoff.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// Not authenticated in time, or the token is invalid or expired.
    pub const UNAUTHORIZED: Self = Self(4001);
    /// The backend closed every connection of this user through the HTTP
    /// API (`POST /api/users/{id}/disconnect`): the user was revoked or
    /// deactivated, or a moderator asked. Reconnect only with a fresh token
    /// (the backend refuses one to a revoked user); give up if that fails.
    pub const DISCONNECTED: Self = Self(4003);
    /// The rate limit was exceeded persistently.
    pub const RATE_LIMITED: Self = Self(4008);
    /// The client did not read fast enough and its send queue overflowed.
    pub const SLOW_CONSUMER: Self = Self(4009);

    /// What a client should do after a close with this code.
    pub fn reconnect(self) -> Reconnect {
        match self {
            Self::RESTARTING => Reconnect::Immediately,
            Self::UNAUTHORIZED | Self::DISCONNECTED => Reconnect::AfterTokenRefresh,
            Self::POLICY | Self::TOO_LARGE => Reconnect::Never,
            _ => Reconnect::WithBackoff,
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_their_wire_spelling() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
            ErrorCode::TooLarge,
            ErrorCode::Conflict,
            ErrorCode::Rejected,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn close_codes_tell_whether_to_reconnect() {
        assert_eq!(CloseCode::RESTARTING.reconnect(), Reconnect::Immediately);
        assert_eq!(CloseCode::UNAUTHORIZED.reconnect(), Reconnect::AfterTokenRefresh);
        assert_eq!(CloseCode::DISCONNECTED.reconnect(), Reconnect::AfterTokenRefresh);
        assert_eq!(CloseCode::POLICY.reconnect(), Reconnect::Never);
        assert_eq!(CloseCode::SLOW_CONSUMER.reconnect(), Reconnect::WithBackoff);
    }
}
