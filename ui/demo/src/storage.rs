//! What the demo remembers in the browser's localStorage: the display name,
//! the rooms the user joined and the theme.

use leptos::prelude::window;

/// The stored value of `key`, if any.
pub fn load(key: &str) -> Option<String> {
    window().local_storage().ok()??.get_item(key).ok()?
}

/// Stores `value` under `key`, or removes the key for `None`. Storage may be
/// unavailable (private mode): the app then simply forgets on reload.
pub fn save(key: &str, value: Option<&str>) {
    let Ok(Some(storage)) = window().local_storage() else { return };
    let _ = match value {
        Some(value) => storage.set_item(key, value),
        None => storage.remove_item(key),
    };
}
