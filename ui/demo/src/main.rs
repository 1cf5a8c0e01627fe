//! The demo chat the server serves at `/`: sign in with a display name, then
//! chat in public rooms and direct conversations, built from the
//! `roomcast-ui` components.
//!
//! # Layout
//! - `app`: the app itself (sign-in, rooms, direct messages, unread counts,
//!   toasts and browser notifications).
//! - `dev`: tokens from the dev endpoint, `POST /api/dev/token`.
//! - `storage`: what the page remembers in `localStorage`.
//! - `theme`: the light and dark theme switch.
//!
//! A browser app: on other targets `main` only says so.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod dev;
#[cfg(target_arch = "wasm32")]
mod storage;
#[cfg(target_arch = "wasm32")]
mod theme;

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(app::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("roomcast-demo runs in a browser: build it with `trunk build` (see the README)");
}
