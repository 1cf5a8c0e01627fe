//! Message `data` across the JavaScript boundary: the `data` option of
//! `send` and `edit`, and `attachments(message)`, the renderers' reading of
//! `data.attachments` (only `http:`/`https:` URLs linkable).

use js_sys::{JSON, Reflect};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::inner::parse;
use super::types::{AttachmentsValue, MessageLikeArg};
use crate::effect::ClientError;

/// The `data` of a `send` or `edit` options object: `None` when absent (or
/// `null`); a `bad_request` error when it is not a plain JSON object.
pub(super) fn data_option(options: &JsValue) -> Result<Option<Box<Value>>, ClientError> {
    if !options.is_object() {
        return Ok(None);
    }
    let data = Reflect::get(options, &"data".into()).unwrap_or(JsValue::UNDEFINED);
    if data.is_undefined() || data.is_null() {
        return Ok(None);
    }
    let refused = |why: &str| ClientError::new("bad_request", format!("data {why}"));
    if !data.is_object() || js_sys::Array::is_array(&data) {
        return Err(refused("must be an object"));
    }
    let text: String =
        JSON::stringify(&data).map_err(|_| refused("cannot be turned into JSON"))?.into();
    crate::json::value(&text).map(|v| Some(Box::new(v))).ok_or_else(|| refused("is not JSON"))
}

/// The attachments of a message (or a pending one): `data.attachments`
/// read defensively, each with `linkable` (an `http:` or `https:` URL: the
/// only ones to put in an `href` or `src`) and `image` (linkable and
/// `image/*`: show inline).
#[wasm_bindgen(js_name = attachments)]
pub fn attachments_of(message: MessageLikeArg) -> AttachmentsValue {
    let message: JsValue = message.into();
    let data = if message.is_object() {
        Reflect::get(&message, &"data".into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    };
    let text: Option<String> = JSON::stringify(&data).ok().and_then(|t| t.as_string());
    let value: Option<Value> = text.and_then(|t| crate::json::value(&t));
    let list = crate::attachments::attachments(value.as_ref());
    parse(&crate::payload::to_json(&list)).unchecked_into()
}
