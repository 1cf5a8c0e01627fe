//! The browser side (wasm32 only): the JavaScript API over the client logic.
//!
//! - `transport`: the only module touching WebSocket, timers and window events.
//! - `inner`: the state shared by a client and its room handles, and the pump
//!   that carries out the logic's effects.
//! - `client`, `room`: the exported `Client` and `Room` classes.
//! - `connection`: [`Connection`], the same client for Rust apps (Leptos).
//! - `notify`: a small helper for the browser's Notification API.
//! - `data`: message `data` in and out (the `data` option, `attachments`).
//! - `options`, `types`: the options object, and the TypeScript declarations.

mod client;
mod connection;
mod data;
mod inner;
mod notify;
mod options;
mod room;
mod transport;
mod types;

pub use client::Client;
pub use connection::{Connection, Observer};
pub use data::attachments_of;
pub use room::Room;

/// talc rather than the standard dlmalloc: 6.8 KB smaller raw (2.5 KiB
/// gzip) and faster; a binned free list that coalesces, not a bump
/// allocator. Under 1,000 reconnects with 24,000 queued, resent and acked
/// messages (`tests/allocator.rs`) the heap stays at 30 pages of 64 KiB,
/// as with dlmalloc.
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
