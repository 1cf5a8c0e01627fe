//! [`Connection`]: the browser client for Rust code (a Leptos or Yew app),
//! the same engine as the JavaScript `Client` without going through
//! JavaScript values: the app reads the [`Core`] and observes [`Event`]s.

use std::cell::Ref;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use super::inner::Inner;
use super::options::Callbacks;
use super::transport;
use crate::effect::Event;
use crate::fallback::Transport;
use crate::machine::{Core, TokenSource};
use crate::options::Options;

/// A reconnecting, recovering connection driven from Rust.
///
/// Everything the client knows (state, rooms, messages, members, the
/// outbox) is read through [`core`](Self::core); requests go through
/// [`update`](Self::update); what happens arrives at the observers given to
/// [`observe`](Self::observe). Requests that take an operation id (`send`,
/// `history`, ...) settle as [`Event::Settle`] with that id.
#[derive(Clone)]
pub struct Connection {
    inner: Rc<Inner>,
}

impl Connection {
    /// A connection to `url` (`ws://` or `wss://`, ending in `/ws`) that asks
    /// `token` for a token on every (re)connect and before the current one
    /// expires. Call [`connect`](Self::connect) to start.
    pub fn new<F, Fut>(url: impl Into<String>, options: Options, token: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<String, String>> + 'static,
    {
        let provider = Closure::<dyn Fn() -> Promise>::new(move || {
            let token = token();
            wasm_bindgen_futures::future_to_promise(async move {
                token.await.map(JsValue::from).map_err(|e| js_sys::Error::new(&e).into())
            })
        });
        let provider: Function = provider.into_js_value().unchecked_into();
        let core = Core::new(options, TokenSource::Provider, transport::seed());
        let inner = Inner::new(url.into(), core, Some(provider), Callbacks::default());
        Self { inner }
    }

    /// Connects (from idle, or again after [`close`](Self::close)).
    pub fn connect(&self) {
        self.inner.connect();
    }

    /// Closes for good: no reconnect; waiting requests fail with `closed`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// The transport of the current (or latest) connection: WebSocket, or
    /// the fallback (Server-Sent Events and POSTs) where WebSockets fail.
    /// It changes with a (re)connect, which `Event::StateChanged` and
    /// `Event::Connected` announce.
    pub fn transport(&self) -> Transport {
        self.inner.transport()
    }

    /// The client's state, for reading. Do not hold it across calls to
    /// [`update`](Self::update).
    pub fn core(&self) -> Ref<'_, Core> {
        self.inner.core.borrow()
    }

    /// Makes a request of the client (`f` gets the current time in ms, as
    /// [`Core::typing`] wants it), then carries out what it asked for.
    pub fn update<R>(&self, f: impl FnOnce(&mut Core, u64) -> R) -> R {
        let result = f(&mut self.inner.core.borrow_mut(), transport::now());
        self.inner.pump();
        result
    }

    /// Calls `observer` with every event from now on, until the returned
    /// guard is dropped. Observers may call back into the connection.
    /// `RoomChanged` and `SnapshotChanged` come once per batch of changes,
    /// after the batch's other events.
    pub fn observe(&self, observer: impl Fn(&Event) + 'static) -> Observer {
        let id = self.inner.observe_with(Rc::new(observer));
        Observer { inner: Rc::downgrade(&self.inner), id }
    }

    /// The browser's clock, in ms since the Unix epoch: what
    /// [`Core::retry_at`] is measured in.
    pub fn now() -> u64 {
        transport::now()
    }
}

/// Stops an observer when dropped.
#[must_use = "the observer stops when this is dropped"]
pub struct Observer {
    inner: std::rc::Weak<Inner>,
    id: u32,
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.unobserve(self.id);
        }
    }
}
