//! Roomcast's client SDK: a WebSocket client that makes real-time rooms
//! boringly reliable in a browser, compiled to WebAssembly and published to
//! npm as `roomcast`.
//!
//! # Layout
//! - [`machine`]: [`Core`], the whole client logic as a state machine without
//!   IO: connection lifecycle, reconnects, auth and token refresh, heartbeat,
//!   rooms and recovery, the outbox. Time and randomness are inputs.
//! - [`backoff`], [`outbox`], [`pace`], [`room`], [`receipts`], [`typing`],
//!   [`token`], [`rng`]: the pieces it is made of, each tested on its own.
//! - [`decode`]: server frames decoded without serde's buffering (size).
//! - [`json`]: a small JSON reader (size: no serde deserializer).
//! - [`effect`]: what the logic asks the host to do and tells the app.
//! - [`fallback`]: which transport (WebSocket, or Server-Sent Events and
//!   POSTs) carries the next connection, and when to try WebSocket again.
//! - [`options`]: every setting with its default.
//! - `payload`: the JSON handed to JavaScript besides frames.
//! - `sort`: one sorting routine for every list (size).
//! - `web` (wasm32 only): the browser glue and the JavaScript API. Only its
//!   `transport` module touches WebSockets, timers and window events.
//!
//! Everything but `web` builds natively and is unit-tested with `cargo test`.
#![warn(missing_docs)]

pub mod attachments;
pub mod backoff;
pub mod decode;
pub mod effect;
pub mod fallback;
pub mod json;
pub mod machine;
pub mod options;
pub mod outbox;
pub mod pace;
mod payload;
pub mod receipts;
pub mod rng;
pub mod room;
mod sort;
pub mod token;
pub mod typing;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use backoff::Backoff;
pub use effect::{ClientError, ConnectionState, Effect, Event};
pub use fallback::{FallbackOptions, Transport, Transports};
pub use machine::{Core, TokenSource};
pub use options::Options;
