//! The JSON the client hands to JavaScript besides protocol frames: event
//! payloads, replies and snapshots. Plain structs serialized straight to
//! text (not `serde_json::json!`, whose intermediate values double the
//! serialization code in the wasm).

use roomcast_shared::{ChatMessage, Member, ReadReceipt, UserInfo, UserRef};
use serde::Serialize;
use time::OffsetDateTime;

/// Serializes a payload, frame or reply; these types cannot fail to
/// serialize (string keys only). The error is never formatted: `expect`
/// would link serde_json's and `std::io`'s error formatting into the wasm.
pub fn to_json(value: &impl Serialize) -> String {
    let mut text = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, Compact);
    match value.serialize(&mut serializer).map(|()| String::from_utf8(text)) {
        Ok(Ok(text)) => text,
        _ => unreachable!("payloads always serialize, as UTF-8"),
    }
}

/// serde_json's compact output, with one difference in the browser: a
/// float's digits come from the JavaScript engine, as reading them does
/// (`json::parse_float`), instead of Rust's shortest-digits formatter and
/// its tables. (No payload or frame has an `f32`.)
struct Compact;

impl serde_json::ser::Formatter for Compact {
    #[cfg(target_arch = "wasm32")]
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        writer.write_all(crate::json::float_text(value).as_bytes())
    }
}

/// `{room}`: `joined` and `reset` events.
#[derive(Serialize)]
pub struct RoomOnly<'a> {
    pub room: &'a str,
}

/// A `typing` event.
#[derive(Serialize)]
pub struct Typing<'a> {
    pub room: &'a str,
    pub user: &'a UserRef,
    pub is_typing: bool,
}

/// A `read` event.
#[derive(Serialize)]
pub struct Read<'a> {
    pub room: &'a str,
    pub user_id: &'a str,
    pub id: &'a str,
    #[serde(with = "roomcast_shared::timestamp::rfc3339")]
    pub read_at: OffsetDateTime,
}

/// A `member_joined` or `member_left` event.
#[derive(Serialize)]
pub struct MemberChange<'a> {
    pub room: &'a str,
    pub user: &'a UserInfo,
}

/// An `occupancy` event: a big room's member count.
#[derive(Serialize)]
pub struct Occupancy<'a> {
    pub room: &'a str,
    pub count: u64,
}

/// The reply to `history()`.
#[derive(Serialize)]
pub struct HistoryPage<'a> {
    pub room: &'a str,
    pub messages: &'a [ChatMessage],
    pub has_more: bool,
}

/// A room's `error` event (the join was refused).
#[derive(Serialize)]
pub struct RoomError<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// A send waiting for its ack, in a room snapshot.
#[derive(Serialize)]
pub struct Pending<'a> {
    pub client_id: &'a str,
    pub content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a serde_json::Value>,
}

/// A room's snapshot.
#[derive(Serialize)]
pub struct RoomSnapshot<'a> {
    pub room: &'a str,
    pub joined: bool,
    pub messages: &'a [ChatMessage],
    pub pending: Vec<Pending<'a>>,
    pub members: &'a [Member],
    /// How many members the room has (more than `members` in a big room).
    pub member_count: u64,
    /// Whether `members()` has more to load.
    pub more_members: bool,
    pub typing: &'a [UserRef],
    /// Each user's read position, latest readers first.
    pub reads: Vec<&'a ReadReceipt>,
    pub resets: u32,
}

/// The client snapshot, as `getSnapshot()` returns it.
#[cfg(target_arch = "wasm32")]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSnapshot<'a> {
    pub state: &'a str,
    pub is_connected: bool,
    pub is_loading: bool,
    pub session_id: Option<&'a str>,
    pub reconnect_attempts: u32,
    pub user: Option<&'a UserInfo>,
    pub transport: &'a str,
}

/// What `onConnect` receives.
#[cfg(target_arch = "wasm32")]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connected<'a> {
    pub session_id: &'a str,
    pub user: &'a UserInfo,
}

/// What `onDisconnect` receives.
#[cfg(target_arch = "wasm32")]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected<'a> {
    pub code: u16,
    pub reason: &'a str,
    pub will_reconnect: bool,
}
