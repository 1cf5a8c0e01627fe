//! The only module that touches the browser's WebSocket, EventSource,
//! fetch, timers and window events (through web-sys). Everything above it
//! speaks in plain calls, so a change of binding (gloo-net, a newer
//! web-sys) stays here. [`Link`] is one connection on either transport:
//! a [`Socket`], or a [`Stream`] (`sse`: the fallback).

mod sse;

use std::cell::Cell;

use js_sys::Function;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::fallback::Transport;
pub use sse::Stream;

/// What a socket reports to its owner.
pub enum SocketEvent {
    /// The connection is open.
    Open,
    /// A text frame.
    Text(String),
    /// The connection closed (or never opened), with the close code.
    Closed { code: u16, reason: String },
}

/// One connection to the server, on either transport; both report through
/// the same [`SocketEvent`]s.
pub enum Link {
    Socket(Socket),
    Stream(Stream),
}

impl Link {
    /// Opens `transport`: a WebSocket to `url`, or the fallback's stream at
    /// `sse.0` posting to `sse.1` (see `fallback::sse_urls`).
    pub fn open(
        transport: Transport,
        url: &str,
        sse: Option<&(String, String)>,
        report: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<Self, String> {
        match (transport, sse) {
            (Transport::Sse, Some((stream, post))) => {
                Stream::open(stream, post, report).map(Self::Stream)
            }
            _ => Socket::open(url, report).map(Self::Socket),
        }
    }

    /// Sends a text frame; false if the connection cannot take it.
    pub fn send(&self, text: &str) -> bool {
        match self {
            Self::Socket(s) => s.send(text),
            Self::Stream(s) => s.send(text),
        }
    }

    /// Closes with `code` and `reason` (a stream just ends).
    pub fn close(&self, code: u16, reason: &str) {
        match self {
            Self::Socket(s) => s.close(code, reason),
            Self::Stream(s) => s.close(),
        }
    }
}

/// A WebSocket whose handlers are removed when it is dropped, so a replaced
/// socket can never report into the client again.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens a socket to `url`; `report` receives its events.
    pub fn open(url: &str, report: impl Fn(SocketEvent) + Clone + 'static) -> Result<Self, String> {
        let ws = WebSocket::new(url).map_err(describe)?;
        let r = report.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| r(SocketEvent::Open));
        let r = report.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            // The protocol is text only; binary frames are ignored.
            if let Some(text) = e.data().as_string() {
                r(SocketEvent::Text(text));
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            report(SocketEvent::Closed { code: e.code(), reason: e.reason() });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        // `error` is always followed by `close` (code 1006), which is the one
        // event the client needs.
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// Sends a text frame; false if the socket is not open.
    pub fn send(&self, text: &str) -> bool {
        self.ws.send_with_str(text).is_ok()
    }

    /// Closes with `code` (1000 or 3000 to 4999) and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.ws.close_with_code_and_reason(code, reason);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        if self.ws.ready_state() <= WebSocket::OPEN {
            let _ = self.ws.close();
        }
    }
}

/// One `setTimeout` slot with a callback made once: setting it again
/// replaces the pending timeout, so no closure is created or dropped per
/// schedule (and none is dropped while it runs).
pub struct Timer {
    callback: Closure<dyn FnMut()>,
    id: Cell<Option<i32>>,
}

impl Timer {
    /// A timer that calls `f` when it fires.
    pub fn new(f: impl FnMut() + 'static) -> Self {
        Self { callback: Closure::<dyn FnMut()>::new(f), id: Cell::new(None) }
    }

    /// Fires once after `ms` milliseconds, replacing any pending firing.
    pub fn set(&self, ms: u64) {
        self.clear();
        // Browsers cap delays at 2^31 - 1 ms; a longer wait just ticks early.
        let delay = ms.min(i32::MAX as u64) as i32;
        let id = global()
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                self.callback.as_ref().unchecked_ref(),
                delay,
            )
            .ok();
        self.id.set(id);
    }

    /// Cancels the pending firing, if any.
    pub fn clear(&self) {
        if let Some(id) = self.id.take() {
            global().clear_timeout_with_handle(id);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Listeners for "the network is back" (`online`) and "the tab is visible
/// again" (`visibilitychange`), removed when dropped.
pub struct WakeEvents {
    callback: Closure<dyn FnMut(Event)>,
}

impl WakeEvents {
    /// Calls `f` when the browser comes online or the page becomes visible.
    /// Outside a window (a worker), there is nothing to listen to.
    pub fn listen(f: impl Fn() + 'static) -> Self {
        let callback = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            let hidden = e.type_() == "visibilitychange"
                && web_sys::window()
                    .and_then(|w| w.document())
                    .is_some_and(|d| d.visibility_state() != web_sys::VisibilityState::Visible);
            if !hidden {
                f();
            }
        });
        if let Some(window) = web_sys::window() {
            let f: &Function = callback.as_ref().unchecked_ref();
            let _ = window.add_event_listener_with_callback("online", f);
            if let Some(document) = window.document() {
                let _ = document.add_event_listener_with_callback("visibilitychange", f);
            }
        }
        Self { callback }
    }
}

impl Drop for WakeEvents {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            let f: &Function = self.callback.as_ref().unchecked_ref();
            let _ = window.remove_event_listener_with_callback("online", f);
            if let Some(document) = window.document() {
                let _ = document.remove_event_listener_with_callback("visibilitychange", f);
            }
        }
    }
}

/// Milliseconds since the Unix epoch (the clock the logic runs on).
pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A random seed for jitter and `client_id`s.
pub fn seed() -> u64 {
    let high = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let low = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (high << 32) ^ low ^ now()
}

#[wasm_bindgen]
extern "C" {
    /// The global scope of a window or a worker: both have timers.
    type Global;
    #[wasm_bindgen(method, catch, js_name = setTimeout)]
    fn set_timeout_with_callback_and_timeout_and_arguments_0(
        this: &Global,
        handler: &Function,
        timeout: i32,
    ) -> Result<i32, JsValue>;
    #[wasm_bindgen(method, js_name = clearTimeout)]
    fn clear_timeout_with_handle(this: &Global, handle: i32);
    #[wasm_bindgen(method)]
    fn fetch(this: &Global, url: &str, init: &js_sys::Object) -> js_sys::Promise;
}

fn global() -> Global {
    js_sys::global().unchecked_into()
}

fn describe(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
