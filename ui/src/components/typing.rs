//! Who is typing in a room.

use leptos::prelude::*;

use crate::roomcast::expect_roomcast;

/// "Bob is typing…", "Bob and Carol are typing…" or "Several people are
/// typing…"; empty (but present, so screen readers hear changes) otherwise.
#[component]
pub fn TypingIndicator(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let view = expect_roomcast().room(move || room.get());
    let text = move || {
        let names: Vec<String> = view
            .get()
            .map(|v| v.state.typing.iter().map(|u| u.name.clone()).collect())
            .unwrap_or_default();
        match names.as_slice() {
            [] => String::new(),
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            _ => "Several people are typing…".to_owned(),
        }
    };
    view! { <div class="typing" data-testid="typing" aria-live="polite">{text}</div> }
}
