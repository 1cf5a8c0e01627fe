//! The connection's state: a small badge for a header, and a banner while
//! the connection is lost, counting down to the next attempt.

use std::time::Duration;

use leptos::prelude::*;
use roomcast_client::ConnectionState;
use roomcast_client::web::Connection;

use crate::roomcast::expect_roomcast;

/// "Connected", "Connecting…", "Reconnecting…" or "Offline", as a status.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let rc = expect_roomcast();
    let state = move || rc.connectivity().get().state;
    let (text, class) = (
        move || match state() {
            ConnectionState::Open => "Connected",
            ConnectionState::Idle | ConnectionState::Connecting => "Connecting…",
            ConnectionState::Reconnecting => "Reconnecting…",
            ConnectionState::Closed => "Offline",
        },
        move || format!("badge badge-{}", state().as_str()),
    );
    view! {
        <span class=class data-testid="connection" role="status">
            <span class="dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

/// Shown while the connection is lost: when the next attempt starts, and a
/// button to try at once.
#[component]
pub fn ReconnectBanner() -> impl IntoView {
    let rc = expect_roomcast();
    let now = RwSignal::new(Connection::now());
    // A countdown needs a clock; a cheap one, stopped with the component.
    if let Ok(handle) =
        set_interval_with_handle(move || now.set(Connection::now()), Duration::from_millis(500))
    {
        on_cleanup(move || handle.clear());
    }
    let lost = move || {
        matches!(
            rc.connectivity().get().state,
            ConnectionState::Reconnecting | ConnectionState::Closed
        )
    };
    let message = move || {
        let c = rc.connectivity().get();
        match (c.state, c.retry_at) {
            (ConnectionState::Closed, _) => "Connection lost.".to_owned(),
            (_, Some(at)) if at > now.get() => {
                let secs = (at - now.get()).div_ceil(1000);
                format!("Connection lost. Reconnecting in {secs} s…")
            }
            _ => "Connection lost. Reconnecting…".to_owned(),
        }
    };
    view! {
        <Show when=lost>
            <div class="banner" role="alert">
                <span>{message}</span>
                <button class="link" on:click=move |_| rc.reconnect_now()>"Try now"</button>
            </div>
        </Show>
    }
}
