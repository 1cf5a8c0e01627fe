//! Light and dark themes: the system's preference until the user picks one,
//! then the pick, remembered.

use leptos::prelude::*;

use crate::storage;

const KEY: &str = "roomcast.theme";

/// A button that switches between the light and the dark theme by setting
/// `data-theme` on `<html>` (the stylesheet does the rest).
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let dark = RwSignal::new(match storage::load(KEY).as_deref() {
        Some("dark") => true,
        Some("light") => false,
        _ => prefers_dark(),
    });
    Effect::new(move |_| {
        let theme = if dark.get() { "dark" } else { "light" };
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("data-theme", theme);
        }
    });
    let toggle = move |_| {
        dark.update(|d| *d = !*d);
        storage::save(KEY, Some(if dark.get_untracked() { "dark" } else { "light" }));
    };
    let label = move || if dark.get() { "Switch to light theme" } else { "Switch to dark theme" };
    view! {
        <button class="icon theme-toggle" aria-label=label title=label on:click=toggle>
            {move || if dark.get() { "☀" } else { "☾" }}
        </button>
    }
}

fn prefers_dark() -> bool {
    window().match_media("(prefers-color-scheme: dark)").ok().flatten().is_some_and(|m| m.matches())
}
