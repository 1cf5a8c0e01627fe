//! Leptos components for Roomcast chat.
//!
//! # Layout
//! - [`roomcast`]: `use_roomcast`, reactive bindings over the SDK's
//!   `Connection`: signals for the connection, rooms, messages, members,
//!   typing, receipts and notifications, and the requests.
//! - [`components`]: `<Chat/>`, `<MessageList/>`, `<Composer/>`,
//!   `<RoomList/>`, `<PresenceList/>`, `<StatusPicker/>`,
//!   `<TypingIndicator/>`, `<NotificationToasts/>`, `<ConnectionBadge/>`,
//!   `<ReconnectBanner/>`: each works on its own below a `use_roomcast` call.
//!
//! The demo app the server serves is a crate of its own built from these
//! (`ui/demo/`, `roomcast-demo`).
//!
//! The crate is for browsers: on other targets it compiles to nothing.
#![cfg(target_arch = "wasm32")]
#![warn(missing_docs)]

pub mod components;
pub mod roomcast;

pub use roomcast::{
    Connectivity, Outgoing, RoomView, Roomcast, RoomcastOptions, expect_roomcast, use_roomcast,
    use_roomcast_with_options,
};
