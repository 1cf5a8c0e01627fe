//! Leptos components for Roomcast, and the demo chat app built from them.
#![cfg(target_arch = "wasm32")]

use leptos::prelude::*;

/// The demo app.
#[component]
pub fn App() -> impl IntoView {
    view! { <p>"Roomcast"</p> }
}
