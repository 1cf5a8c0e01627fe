//! The user's notifications as toasts, each dismissed by hand or after a
//! while.

use std::time::Duration;

use leptos::prelude::*;
use roomcast_shared::Notification;

use crate::roomcast::expect_roomcast;

/// How long a toast stays unless dismissed.
const TOAST_LIFETIME: Duration = Duration::from_secs(10);

/// Toasts for [`Roomcast::notifications`](crate::Roomcast::notifications).
/// `on_open` is called when a toast is clicked (to open what it is about).
#[component]
pub fn NotificationToasts(
    #[prop(optional)] on_open: Option<Callback<Notification>>,
) -> impl IntoView {
    let rc = expect_roomcast();
    view! {
        <section class="toasts" aria-label="Notifications">
            <For
                each=move || rc.notifications().get()
                key=|n| n.id.clone()
                children=move |n| {
                    let id = n.id.clone();
                    let dismiss_id = id.clone();
                    set_timeout(move || rc.dismiss(&id), TOAST_LIFETIME);
                    let open = n.clone();
                    view! {
                        <div class="toast" role="status">
                            <button
                                class="toast-body"
                                on:click=move |_| {
                                    if let Some(f) = on_open {
                                        f.run(open.clone());
                                    }
                                }
                            >
                                <strong>{n.title.clone()}</strong>
                                <span>{n.body.clone()}</span>
                            </button>
                            <button
                                class="icon"
                                aria-label="Dismiss"
                                on:click=move |_| rc.dismiss(&dismiss_id)
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
        </section>
    }
}
