//! What the client logic asks its host to do ([`Effect`]) and tells the
//! application ([`Event`]). The logic never touches a socket or a clock; the
//! browser glue (or a test) carries these out.

use roomcast_shared::frame::ErrorFrame;
use roomcast_shared::{Notification, Presence, UserInfo};

/// The connection's lifecycle, as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Created, not asked to connect yet.
    Idle,
    /// The first connection is being opened and authenticated.
    Connecting,
    /// Authenticated (`ready` received): requests go out at once.
    Open,
    /// The connection dropped; waiting to retry, or retrying.
    Reconnecting,
    /// Closed deliberately, or given up (see the last error).
    Closed,
}

impl ConnectionState {
    /// The name the JavaScript API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Open => "open",
            Self::Reconnecting => "reconnecting",
            Self::Closed => "closed",
        }
    }
}

/// Why a request or the connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// A protocol error code (`forbidden`, ...) or one of the client's own:
    /// `queue_full`, `closed`, `disconnected`, `left`, `not_joined`,
    /// `token`, `gave_up`, `bad_request`.
    pub code: String,
    /// For humans.
    pub message: String,
    /// With `rate_limited`: how long to wait before retrying, in ms.
    pub retry_after_ms: Option<u64>,
    /// With `rejected`: the code the application's backend gave its
    /// refusal (the message is its reason, for the user).
    pub reason_code: Option<String>,
}

impl ClientError {
    /// An error with one of the client's own codes.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
            reason_code: None,
        }
    }

    /// An error the server sent.
    pub fn server(error: ErrorFrame) -> Self {
        Self {
            code: error.code.as_str().to_owned(),
            message: error.message,
            retry_after_ms: error.retry_after_ms,
            reason_code: error.reason_code,
        }
    }

    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.code.as_str(), "rate_limited" | "unavailable" | "internal")
    }
}

/// Something for the host to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open a new socket to the server's URL (the previous one is closed).
    Open,
    /// Send this text frame on the open socket.
    Send(String),
    /// Close the socket with this code and stop listening to it.
    Close {
        /// A code browsers accept: 1000 or 3000 to 4999.
        code: u16,
        /// Why, for the server's log.
        reason: &'static str,
    },
    /// Call the token provider, then report with `token_ready` or
    /// `token_failed`.
    FetchToken,
    /// Tell the application.
    Emit(Event),
}

/// Something that happened, for the application's callbacks and listeners.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `state` changed.
    StateChanged(ConnectionState),
    /// Authenticated: the connection is usable.
    Connected {
        /// The server's id of this connection.
        session_id: String,
        /// Who the token says the user is.
        user: UserInfo,
    },
    /// The connection closed.
    Disconnected {
        /// The close code (1006 when the network dropped).
        code: u16,
        /// The close reason.
        reason: String,
        /// Whether the client will reconnect by itself.
        reconnect: bool,
    },
    /// Something failed that no promise reports.
    Error(ClientError),
    /// A server frame, as JSON text, for `onMessage` (internal pongs left out).
    Frame(String),
    /// A per-room event for the room's listeners; `payload` is JSON.
    Room {
        /// The room.
        room: String,
        /// `joined`, `message`, `updated`, `deleted`, `typing`, `read`,
        /// `member_joined`, `member_left`, `presence_diff`, `occupancy`, `event`, `reset` or
        /// `error`.
        kind: &'static str,
        /// The event's data as JSON.
        payload: String,
    },
    /// The room's snapshot (messages, members, typing, pending) changed.
    RoomChanged(String),
    /// The client's snapshot (state, session, attempts) changed.
    SnapshotChanged,
    /// A notification for the user.
    Notification(Notification),
    /// A user's presence changed.
    Presence(Presence),
    /// A request's promise settles: JSON of the reply, or an error.
    Settle {
        /// The operation id returned when the request was made.
        op: u64,
        /// The reply as JSON, or why it failed.
        result: Result<String, ClientError>,
    },
}
