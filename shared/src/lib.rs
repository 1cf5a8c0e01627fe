//! The Roomcast wire protocol, version 1: every frame a client and the server
//! exchange over the WebSocket, the bodies of the HTTP API, the error and close
//! codes, and the room-name rules.
//!
//! This crate is the single source of truth of the protocol in code. It does no
//! IO and depends on nothing async, so it builds for native targets and for
//! `wasm32-unknown-unknown` alike: the server, the browser SDK and the UI all
//! use these types, and a change here is a change of the public API.
//!
//! # Layout
//! - [`frame`]: the JSON frames, [`ClientFrame`] and [`ServerFrame`], and the
//!   [`Envelope`] that carries a client's `ref` to the reply.
//! - [`model`]: the values frames carry (users, messages, presence, ...).
//! - [`room`]: [`RoomName`] validation and who may join which room.
//! - [`auth`]: the JWT claims a token carries.
//! - [`code`]: [`ErrorCode`] for `error` frames and HTTP errors, [`CloseCode`]
//!   for WebSocket closes, each saying whether a client should reconnect.
//! - [`api`]: request and response bodies of the HTTP API for backends.
//! - [`timestamp`]: RFC 3339 timestamps on the wire.
//!
//! # Features
//! - `openapi`: OpenAPI schemas of the HTTP bodies (utoipa), for the server.
//! - `typescript`: the wire types derive ts-rs's `TS`, from which the SDK's
//!   tests generate and check its TypeScript declarations. Nothing that
//!   ships enables it.
//! - `time-serde`: timestamps are read and written by the `time` crate's
//!   RFC 3339 codec (the server); without it, by the small equivalent one in
//!   [`timestamp`], which keeps `time`'s parser out of the wasm SDK.
//! - `nfc`, `xid`: the server's whole room-name rule (Normalization Form
//!   C; non-ASCII characters only letters, marks and digits). Without them
//!   (the wasm SDK) non-ASCII names are the server's to refuse: the Unicode
//!   tables would cost the SDK more than the rest of the rule.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod code;
pub mod frame;
pub mod model;
pub mod room;
pub mod timestamp;
pub mod webhook;

pub use auth::Claims;
pub use code::{CloseCode, ErrorCode, Reconnect};
pub use frame::{ClientFrame, Envelope, MembersPage, PresenceDiff, Ref, RoomEvent, ServerFrame};
pub use model::{
    AppEvent, ChatMessage, Member, MessageDeleted, MessageUpdated, Notification, Position,
    Presence, ReadReceipt, SetStatus, Status, UserInfo, UserRef,
};
pub use room::{Access, RoomKind, RoomName};

/// The protocol version this crate implements.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most messages a `join` (`history: n`) or a `history` request may ask for.
pub const MAX_HISTORY_LIMIT: u16 = 100;

/// Most members a `members` request or the room presence API returns.
pub const MAX_MEMBERS_LIMIT: u16 = 500;

/// Members a `members` request or the room presence API returns when it
/// gives no `limit`.
pub const DEFAULT_MEMBERS_LIMIT: u16 = 100;

/// Longest `cursor` a `members` request may send (the server's cursors are
/// a user's name and id, both far shorter).
pub const MAX_MEMBERS_CURSOR_BYTES: usize = 1024;
