//! Reading the JavaScript options object into [`Options`], the token source
//! and the callbacks.

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::fallback::Transports;
use crate::machine::TokenSource;
use crate::options::Options;

/// The option callbacks (`onConnect`, ...).
#[derive(Default)]
pub struct Callbacks {
    pub on_connect: Option<Function>,
    pub on_disconnect: Option<Function>,
    pub on_error: Option<Function>,
    pub on_message: Option<Function>,
    pub on_state_change: Option<Function>,
}

/// Everything the options object says.
pub struct Parsed {
    pub options: Options,
    pub source: TokenSource,
    pub provider: Option<Function>,
    pub callbacks: Callbacks,
    pub auto_connect: bool,
}

/// Reads `object` (undefined means every default). A field of the wrong type
/// is an error rather than silently ignored.
pub fn parse(object: &JsValue) -> Result<Parsed, String> {
    let mut o = Options::default();
    let get = |key: &str| -> JsValue {
        if object.is_object() {
            Reflect::get(object, &key.into()).unwrap_or_default()
        } else {
            JsValue::UNDEFINED
        }
    };
    let number = |key: &str| -> Result<Option<f64>, String> {
        let v = get(key);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(format!("option {key} must be a non-negative number")),
        }
    };
    let ms = |key: &str, target: &mut u64| -> Result<(), String> {
        if let Some(n) = number(key)? {
            *target = n as u64;
        }
        Ok(())
    };
    ms("minDelayMs", &mut o.backoff.min_delay_ms)?;
    ms("maxDelayMs", &mut o.backoff.max_delay_ms)?;
    if let Some(f) = number("factor")? {
        o.backoff.factor = f;
    }
    o.backoff.max_attempts = number("maxAttempts")?.map(|n| n as u32);
    ms("stableAfterMs", &mut o.stable_after_ms)?;
    ms("restartJitterMs", &mut o.restart_jitter_ms)?;
    ms("connectTimeoutMs", &mut o.connect_timeout_ms)?;
    o.ping_interval_ms = number("pingIntervalMs")?.map(|n| n as u64);
    ms("pongTimeoutMs", &mut o.pong_timeout_ms)?;
    if let Some(n) = number("queueLimit")? {
        o.queue_limit = n as usize;
    }
    ms("typingThrottleMs", &mut o.typing_throttle_ms)?;
    ms("typingIdleMs", &mut o.typing_idle_ms)?;
    if let Some(n) = number("history")? {
        o.history = (n as u64).min(u64::from(roomcast_shared::MAX_HISTORY_LIMIT)) as u16;
    }
    if let Some(n) = number("maxMessages")? {
        o.max_messages = n as usize;
    }
    ms("refreshBeforeMs", &mut o.refresh_before_ms)?;
    o.fallback.transports = transports(&get("transports"))?;
    if let Some(n) = number("sseAfterFailures")? {
        o.fallback.sse_after_failures = n as u32;
    }
    ms("websocketCheckMs", &mut o.fallback.probe_min_ms)?;
    ms("websocketCheckMaxMs", &mut o.fallback.probe_max_ms)?;

    let function = |key: &str| -> Result<Option<Function>, String> {
        let v = get(key);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        v.dyn_into::<Function>().map(Some).map_err(|_| format!("option {key} must be a function"))
    };
    let token = get("token");
    let (source, provider) = if let Some(t) = token.as_string() {
        (TokenSource::Fixed(t), None)
    } else if token.is_undefined() || token.is_null() {
        (TokenSource::InUrl, None)
    } else {
        (TokenSource::Provider, Some(function("token")?.expect("checked above")))
    };
    let auto = get("autoConnect");
    Ok(Parsed {
        options: o,
        source,
        provider,
        callbacks: Callbacks {
            on_connect: function("onConnect")?,
            on_disconnect: function("onDisconnect")?,
            on_error: function("onError")?,
            on_message: function("onMessage")?,
            on_state_change: function("onStateChange")?,
        },
        auto_connect: auto.as_bool().unwrap_or(true),
    })
}

/// The `transports` option: a list of `"websocket"` and `"sse"` (both, the
/// default, means WebSocket with the fallback).
fn transports(value: &JsValue) -> Result<Transports, String> {
    if value.is_undefined() || value.is_null() {
        return Ok(Transports::Auto);
    }
    let invalid =
        || "option transports must be a non-empty list of \"websocket\" and \"sse\"".to_owned();
    if !js_sys::Array::is_array(value) {
        return Err(invalid());
    }
    let (mut websocket, mut sse) = (false, false);
    for item in js_sys::Array::from(value).iter() {
        match item.as_string().as_deref() {
            Some("websocket") => websocket = true,
            Some("sse") => sse = true,
            _ => return Err(invalid()),
        }
    }
    match (websocket, sse) {
        (true, true) => Ok(Transports::Auto),
        (true, false) => Ok(Transports::WebSocketOnly),
        (false, true) => Ok(Transports::SseOnly),
        (false, false) => Err(invalid()),
    }
}
