//! The fallback transport: server frames from an `EventSource` on
//! `GET /sse`, client frames as `POST /sse/{key}` through `fetch`
//! (`docs/protocol.md`, "Fallback transport").
//!
//! POSTs go one at a time, in order: the next starts when the server has
//! queued the previous one (202), so frames reach the session in the order
//! they were sent, as on a WebSocket. A 429 (the session's inbound queue is
//! full) is retried after a short wait; a 404 means the stream is gone.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{JSON, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Event, EventSource, MessageEvent};

use super::{SocketEvent, describe, global};

/// How long to wait before POSTing again after a 429.
const RETRY_AFTER_429_MS: i32 = 250;
/// The close code reported when the stream or a POST is lost, as a
/// WebSocket dropped without a close frame reports.
const LOST: u16 = 1006;

/// One fallback connection; its handlers are removed and the stream closed
/// when it is dropped.
pub struct Stream {
    source: EventSource,
    shared: Rc<Shared>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

/// What the stream's handlers and its POST loop share.
struct Shared {
    source: EventSource,
    /// The POST URL's prefix; the key follows.
    post_base: String,
    /// From the stream's `open` event; POSTs wait for it.
    key: RefCell<Option<String>>,
    /// Frames not yet accepted by the server, oldest first. A vector, not
    /// a deque: it holds a few frames (each room sends one at a time), and
    /// the deque's code cost the wasm 250 B gzip.
    queue: RefCell<Vec<String>>,
    /// A POST loop runs.
    posting: Cell<bool>,
    /// Closed or lost: nothing more is reported or sent.
    done: Cell<bool>,
    report: Box<dyn Fn(SocketEvent)>,
}

impl Shared {
    /// Reports the end once and stops the stream (an `EventSource` would
    /// otherwise reconnect by itself, into a new session).
    fn finish(&self, code: u16, reason: String) {
        if !self.done.replace(true) {
            self.source.close();
            (self.report)(SocketEvent::Closed { code, reason });
        }
    }
}

impl Stream {
    /// Opens the stream at `url` (`.../sse`, with the token in the query
    /// if the WebSocket URL had one); frames are POSTed to `post_base` and
    /// the key. `report` receives its events.
    pub fn open(
        url: &str,
        post_base: &str,
        report: impl Fn(SocketEvent) + 'static,
    ) -> Result<Self, String> {
        let source = EventSource::new(url).map_err(describe)?;
        let shared = Rc::new(Shared {
            source: source.clone(),
            post_base: post_base.to_owned(),
            key: RefCell::new(None),
            queue: RefCell::new(Vec::new()),
            posting: Cell::new(false),
            done: Cell::new(false),
            report: Box::new(report),
        });
        // Both the browser's own `open` (the response started) and the
        // server's `open` event (with the key) arrive here; only the
        // second carries data.
        let s = shared.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
            let Some(data) = e.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) else {
                return;
            };
            match field(&data, "key").and_then(|k| k.as_string()) {
                Some(key) if !s.done.get() => {
                    *s.key.borrow_mut() = Some(key);
                    (s.report)(SocketEvent::Open);
                    post(&s);
                }
                Some(_) => {}
                None => s.finish(LOST, "the stream opened without a key".into()),
            }
        });
        let s = shared.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string().filter(|_| !s.done.get()) {
                (s.report)(SocketEvent::Text(text));
            }
        });
        // The server's close, with a WebSocket close code.
        let s = shared.clone();
        let on_close = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data().as_string().unwrap_or_default();
            let code = field(&data, "code").and_then(|c| c.as_f64()).map_or(LOST, |c| c as u16);
            let reason = field(&data, "reason").and_then(|r| r.as_string()).unwrap_or_default();
            s.finish(code, reason);
        });
        // A stream that ends or fails without `close` is a lost connection.
        let s = shared.clone();
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_| {
            s.finish(LOST, "the event stream was lost".into());
        });
        let listen = |kind: &str, f: &JsValue| {
            let _ = source.add_event_listener_with_callback(kind, f.unchecked_ref());
        };
        listen("open", on_open.as_ref());
        listen("message", on_message.as_ref());
        listen("close", on_close.as_ref());
        listen("error", on_error.as_ref());
        Ok(Self {
            source,
            shared,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_error: on_error,
        })
    }

    /// Queues a frame for the server; false once the stream has ended.
    pub fn send(&self, text: &str) -> bool {
        if self.shared.done.get() {
            return false;
        }
        self.shared.queue.borrow_mut().push(text.to_owned());
        post(&self.shared);
        true
    }

    /// Ends the connection: the server ends the session when the stream
    /// closes (there is no close code to send).
    pub fn close(&self) {
        self.shared.done.set(true);
        self.source.close();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.close();
        for (kind, f) in [
            ("open", self._on_open.as_ref()),
            ("message", self._on_message.as_ref()),
            ("close", self._on_close.as_ref()),
            ("error", self._on_error.as_ref()),
        ] {
            let _ = self.source.remove_event_listener_with_callback(kind, f.unchecked_ref());
        }
    }
}

/// Starts the POST loop unless one runs: it sends the queue's frames one
/// after another until the queue is empty or the stream ends.
fn post(shared: &Rc<Shared>) {
    if shared.posting.get() || shared.done.get() || shared.key.borrow().is_none() {
        return;
    }
    shared.posting.set(true);
    let shared = shared.clone();
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            let next = shared.queue.borrow().first().cloned();
            let (Some(text), false) = (next, shared.done.get()) else { break };
            let key = shared.key.borrow().clone().unwrap_or_default();
            let url = format!("{}{key}", shared.post_base);
            let status = fetch(&url, &text).await;
            if shared.done.get() {
                break;
            }
            match status {
                Ok(200..=299) => {
                    shared.queue.borrow_mut().remove(0);
                }
                Ok(429) => sleep(RETRY_AFTER_429_MS).await,
                Ok(404) => shared.finish(LOST, "the stream has closed".into()),
                // As a WebSocket is closed for an oversized frame, or for
                // its origin.
                Ok(413) => shared.finish(1009, "frame too large".into()),
                Ok(403) => shared.finish(1008, "origin not allowed".into()),
                Ok(status) => shared.finish(LOST, format!("POST answered {status}")),
                Err(message) => shared.finish(LOST, message),
            }
        }
        shared.posting.set(false);
    });
}

/// POSTs `body` as text (a simple request: no CORS preflight); the status.
async fn fetch(url: &str, body: &str) -> Result<u16, String> {
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"POST".into());
    let _ = Reflect::set(&init, &"body".into(), &body.into());
    let _ = Reflect::set(&init, &"cache".into(), &"no-store".into());
    let response = JsFuture::from(global().fetch(url, &init)).await.map_err(describe)?;
    let status = Reflect::get(&response, &"status".into()).map_err(describe)?;
    Ok(status.as_f64().unwrap_or_default() as u16)
}

async fn sleep(ms: i32) {
    let wait = Promise::new(&mut |resolve, _| {
        let _ = global().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(wait).await;
}

/// A field of a small JSON object (an `open` or `close` event's data).
fn field(json: &str, name: &str) -> Option<JsValue> {
    let value = JSON::parse(json).ok().filter(JsValue::is_object)?;
    Reflect::get(&value, &name.into()).ok().filter(|v| !v.is_undefined())
}
