//! The demo app's entry point: mounts [`roomcast_ui::App`] on the page.

#[cfg(target_arch = "wasm32")]
fn main() {
    leptos::mount::mount_to_body(roomcast_ui::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("roomcast-ui runs in a browser: build it with `trunk build` (see the README)");
}
