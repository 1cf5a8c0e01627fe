//! A small helper for the browser's Notification API: ask for permission,
//! show a notification with a tag (a newer one with the same tag replaces the
//! older instead of stacking up).

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use super::types::{NotificationOptionsArg, PermissionPromise, PermissionValue};

fn supported() -> bool {
    Reflect::has(&js_sys::global(), &"Notification".into()).unwrap_or(false)
}

fn permission_name(p: NotificationPermission) -> &'static str {
    match p {
        NotificationPermission::Granted => "granted",
        NotificationPermission::Denied => "denied",
        _ => "default",
    }
}

/// `granted`, `denied`, `default`, or `unsupported` where the browser has no
/// Notification API.
#[wasm_bindgen(js_name = notificationPermission)]
pub fn notification_permission() -> PermissionValue {
    let name =
        if supported() { permission_name(Notification::permission()) } else { "unsupported" };
    JsValue::from_str(name).unchecked_into()
}

/// Asks the user for permission (call it from a click handler: browsers
/// ignore requests without a user gesture). Resolves with the answer.
#[wasm_bindgen(js_name = requestNotificationPermission)]
pub fn request_notification_permission() -> PermissionPromise {
    if !supported() {
        return Promise::resolve(&JsValue::from_str("denied")).unchecked_into();
    }
    match Notification::request_permission() {
        Ok(promise) => promise.unchecked_into(),
        Err(e) => Promise::reject(&e).unchecked_into(),
    }
}

/// Shows a notification if permission was granted; returns whether it was
/// shown.
#[wasm_bindgen(js_name = showNotification)]
pub fn show_notification(title: String, options: Option<NotificationOptionsArg>) -> bool {
    if !supported() || Notification::permission() != NotificationPermission::Granted {
        return false;
    }
    let given: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
    let field = |key: &str| {
        if given.is_object() { Reflect::get(&given, &key.into()).ok() } else { None }
    };
    let o = NotificationOptions::new();
    if let Some(body) = field("body").and_then(|v| v.as_string()) {
        o.set_body(&body);
    }
    if let Some(tag) = field("tag").and_then(|v| v.as_string()) {
        o.set_tag(&tag);
    }
    if let Some(icon) = field("icon").and_then(|v| v.as_string()) {
        o.set_icon(&icon);
    }
    if let Some(data) = field("data").filter(|v| !v.is_undefined()) {
        o.set_data(&data);
    }
    Notification::new_with_options(&title, &o).is_ok()
}
