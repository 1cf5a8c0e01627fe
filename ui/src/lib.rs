//! Leptos components for Roomcast chat, and the demo app built from them.
//!
//! # Layout
//! - [`roomcast`]: `use_roomcast`, reactive bindings over the SDK's
//!   `Connection`: signals for the connection, rooms, messages, members,
//!   typing, receipts and notifications, and the requests.
//! - [`components`]: `<Chat/>`, `<MessageList/>`, `<Composer/>`,
//!   `<RoomList/>`, `<PresenceList/>`, `<StatusPicker/>`,
//!   `<TypingIndicator/>`, `<NotificationToasts/>`, `<ConnectionBadge/>`,
//!   `<ReconnectBanner/>`: each works on its own below a `use_roomcast` call.
//! - `app`: the demo (sign-in, rooms, direct messages, unread counts,
//!   browser notifications), with `dev` (tokens from the dev endpoint),
//!   `storage` and `theme`.
//!
//! The crate is for browsers: on other targets it compiles to nothing.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

mod app;
pub mod components;
mod dev;
pub mod roomcast;
mod storage;
mod theme;

pub use app::App;
pub use roomcast::{
    Connectivity, Outgoing, RoomView, Roomcast, RoomcastOptions, expect_roomcast, use_roomcast,
    use_roomcast_with_options,
};
