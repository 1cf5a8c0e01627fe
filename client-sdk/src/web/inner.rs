//! The state behind a `Client` and its `Room` handles: the [`Core`], the
//! socket and timer, listeners and pending promises, and the pump that
//! carries out the core's effects.
//!
//! Re-entrancy: JavaScript callbacks run while the pump works, and may call
//! back into the client. The core is never borrowed while JavaScript runs,
//! and a nested pump returns at once, leaving new effects to the running one.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Function, JSON, Object, Promise};
use litemap::LiteMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::options::Callbacks;
use super::transport::{self, Link, Socket, SocketEvent, Timer, WakeEvents};
use crate::effect::{ClientError, ConnectionState, Effect, Event};
use crate::fallback::{self, Fallback, Transport, Transports};
use crate::machine::Core;
use crate::payload::{ClientSnapshot, Connected, Disconnected, RoomSnapshot, to_json};

mod probe;

/// Who a listener belongs to: the client, or one room handle.
#[derive(Clone, PartialEq)]
pub enum Scope {
    Client,
    Room { room: String, handle: u32 },
}

struct Listener {
    id: u32,
    scope: Scope,
    kind: String,
    f: Function,
}

/// A Rust callback for every event.
pub type EventObserver = Rc<dyn Fn(&Event)>;

pub struct Inner {
    url: String,
    /// The fallback's stream URL and POST prefix; `None` when the URL has
    /// none (it does not end in `/ws`).
    sse: Option<(String, String)>,
    pub core: RefCell<Core>,
    socket: RefCell<Option<Link>>,
    /// Bumped per socket, so events of a replaced socket are ignored.
    socket_gen: Cell<u32>,
    /// The current connection has authenticated (`ready`).
    link_ready: Cell<bool>,
    /// Which transport the next connection uses, and when to check.
    fallback: RefCell<Fallback>,
    /// A WebSocket check in progress, while on the fallback.
    probe: RefCell<Option<Socket>>,
    /// Bumped per check, so events of an abandoned check are ignored.
    probe_gen: Cell<u32>,
    /// When the check in progress counts as failed.
    probe_by: Cell<Option<u64>>,
    probe_timer: RefCell<Option<Timer>>,
    timer: RefCell<Option<Timer>>,
    wake: RefCell<Option<WakeEvents>>,
    provider: Option<Function>,
    callbacks: Callbacks,
    listeners: RefCell<Vec<Listener>>,
    /// `subscribe` listeners: of the client (`None`) or of a room.
    subscribers: RefCell<Vec<(u32, Option<String>, Function)>>,
    promises: RefCell<LiteMap<u64, (Function, Function)>>,
    /// Rust observers (the `Connection` API): every event, before listeners.
    observers: RefCell<Vec<(u32, EventObserver)>>,
    snapshot: RefCell<Option<(u64, JsValue)>>,
    room_snapshots: RefCell<LiteMap<String, (u64, JsValue)>>,
    pumping: Cell<bool>,
    next_id: Cell<u32>,
}

impl Inner {
    pub fn new(
        url: String,
        core: Core,
        provider: Option<Function>,
        callbacks: Callbacks,
    ) -> Rc<Self> {
        let sse = fallback::sse_urls(&url);
        let mut policy = core.options().fallback.clone();
        if sse.is_none() {
            policy.transports = Transports::WebSocketOnly;
        }
        let inner = Rc::new(Self {
            url,
            sse,
            core: RefCell::new(core),
            socket: RefCell::new(None),
            socket_gen: Cell::new(0),
            link_ready: Cell::new(false),
            fallback: RefCell::new(Fallback::new(policy)),
            probe: RefCell::new(None),
            probe_gen: Cell::new(0),
            probe_by: Cell::new(None),
            probe_timer: RefCell::new(None),
            timer: RefCell::new(None),
            wake: RefCell::new(None),
            provider,
            callbacks,
            listeners: RefCell::new(Vec::new()),
            subscribers: RefCell::new(Vec::new()),
            promises: RefCell::new(LiteMap::new_vec()),
            observers: RefCell::new(Vec::new()),
            snapshot: RefCell::new(None),
            room_snapshots: RefCell::new(LiteMap::new_vec()),
            pumping: Cell::new(false),
            next_id: Cell::new(0),
        });
        let weak = Rc::downgrade(&inner);
        *inner.timer.borrow_mut() = Some(Timer::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.core.borrow_mut().tick(transport::now());
                inner.pump();
            }
        }));
        let weak = Rc::downgrade(&inner);
        *inner.probe_timer.borrow_mut() = Some(Timer::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.on_probe_timer();
            }
        }));
        inner
    }

    /// The transport of the current (or latest) connection.
    pub fn transport(&self) -> Transport {
        self.fallback.borrow().current()
    }

    pub fn next_id(&self) -> u32 {
        self.next_id.set(self.next_id.get() + 1);
        self.next_id.get()
    }

    /// Starts connecting and listening for `online` / `visibilitychange`.
    pub fn connect(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        self.wake.borrow_mut().get_or_insert_with(|| {
            WakeEvents::listen(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.core.borrow_mut().wake(transport::now());
                    inner.pump();
                }
            })
        });
        self.core.borrow_mut().connect(transport::now());
        self.pump();
    }

    pub fn close(self: &Rc<Self>) {
        self.wake.borrow_mut().take();
        self.core.borrow_mut().close(transport::now());
        self.pump();
    }

    /// Carries out the core's effects until it has none, then schedules the
    /// next tick. Observers and subscribers hear of each changed room (and of
    /// a changed snapshot) once per batch of effects, after its other events.
    pub fn pump(self: &Rc<Self>) {
        if self.pumping.replace(true) {
            return;
        }
        loop {
            let effects = self.core.borrow_mut().take_effects();
            if effects.is_empty() {
                break;
            }
            // By name, each once (a sorted vector: smaller than a set).
            let mut rooms: LiteMap<String, ()> = LiteMap::new_vec();
            let mut client = false;
            for effect in effects {
                if let Effect::Emit(event) = &effect
                    && !matches!(event, Event::RoomChanged(_) | Event::SnapshotChanged)
                {
                    if matches!(event, Event::Connected { .. }) {
                        self.link_up();
                    }
                    self.observe(event);
                }
                match effect {
                    Effect::Open => self.open_socket(),
                    Effect::Send(text) => {
                        if let Some(socket) = &*self.socket.borrow() {
                            socket.send(&text);
                        }
                    }
                    Effect::Close { code, reason } => {
                        if let Some(socket) = self.retire_socket() {
                            socket.close(code, reason);
                        }
                    }
                    Effect::FetchToken => self.fetch_token(),
                    Effect::Emit(Event::RoomChanged(room)) => {
                        rooms.insert(room, ());
                    }
                    Effect::Emit(Event::SnapshotChanged) => client = true,
                    Effect::Emit(event) => self.dispatch(event),
                }
            }
            for room in rooms.keys() {
                self.observe(&Event::RoomChanged(room.clone()));
            }
            if client {
                self.observe(&Event::SnapshotChanged);
            }
            let subscribers: Vec<Function> = self
                .subscribers
                .borrow()
                .iter()
                .filter(|(_, room, _)| match room {
                    None => client,
                    Some(room) => rooms.contains_key(room),
                })
                .map(|(_, _, f)| f.clone())
                .collect();
            for f in subscribers {
                let _ = f.call0(&JsValue::NULL);
            }
        }
        self.pumping.set(false);
        let deadline = self.core.borrow().next_deadline();
        if let Some(timer) = &*self.timer.borrow() {
            match deadline {
                Some(at) => timer.set(at.saturating_sub(transport::now())),
                None => timer.clear(),
            }
        }
    }

    fn open_socket(self: &Rc<Self>) {
        drop(self.retire_socket());
        let generation = self.socket_gen.get();
        let weak: Weak<Self> = Rc::downgrade(self);
        let report = move |event| {
            if let Some(inner) = weak.upgrade() {
                inner.on_socket(generation, event);
            }
        };
        let transport = self.fallback.borrow_mut().choose();
        match Link::open(transport, &self.url, self.sse.as_ref(), report) {
            Ok(socket) => *self.socket.borrow_mut() = Some(socket),
            Err(message) => {
                let mut core = self.core.borrow_mut();
                core.emit_error("bad_request", format!("cannot open {}: {message}", self.url));
                core.close(transport::now());
            }
        }
    }

    /// Detaches the current socket: its events are ignored from now on, and
    /// it is dropped after the current call stack (never inside one of its
    /// own handlers).
    fn retire_socket(&self) -> Option<Retired> {
        self.socket_gen.set(self.socket_gen.get() + 1);
        let link = self.socket.borrow_mut().take()?;
        self.fallback.borrow_mut().ended(self.link_ready.replace(false));
        drop(self.stop_probe());
        Some(Retired(Some(link)))
    }

    fn on_socket(self: &Rc<Self>, generation: u32, event: SocketEvent) {
        if generation != self.socket_gen.get() {
            return;
        }
        let now = transport::now();
        match event {
            SocketEvent::Open => self.core.borrow_mut().opened(now),
            SocketEvent::Text(text) => self.core.borrow_mut().received(&text, now),
            SocketEvent::Closed { code, reason } => {
                drop(self.retire_socket());
                self.core.borrow_mut().closed(code, &reason, now);
            }
        }
        self.pump();
    }

    fn fetch_token(self: &Rc<Self>) {
        let now = transport::now();
        let Some(provider) = &self.provider else {
            return self.core.borrow_mut().token_failed("no token provider".into(), now);
        };
        let value = match provider.call0(&JsValue::NULL) {
            Ok(value) => value,
            Err(e) => return self.core.borrow_mut().token_failed(describe(&e), now),
        };
        let weak = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = JsFuture::from(Promise::resolve(&value)).await;
            let Some(inner) = weak.upgrade() else { return };
            let now = transport::now();
            match outcome.map(|v| v.as_string()) {
                Ok(Some(token)) => inner.core.borrow_mut().token_ready(token, now),
                Ok(None) => inner
                    .core
                    .borrow_mut()
                    .token_failed("the token provider must return a string".into(), now),
                Err(e) => inner.core.borrow_mut().token_failed(describe(&e), now),
            }
            inner.pump();
        });
    }

    /// Hands an event to the option callbacks and the listeners.
    fn dispatch(&self, event: Event) {
        let cb = &self.callbacks;
        match event {
            Event::StateChanged(state) => {
                self.emit(None, "statechange", cb.on_state_change.as_ref(), &|| {
                    JsValue::from_str(state.as_str())
                });
            }
            Event::Connected { session_id, user } => {
                self.emit(None, "connect", cb.on_connect.as_ref(), &|| {
                    parse(&to_json(&Connected { session_id: &session_id, user: &user }))
                });
            }
            Event::Disconnected { code, reason, reconnect } => {
                self.emit(None, "disconnect", cb.on_disconnect.as_ref(), &|| {
                    parse(&to_json(&Disconnected {
                        code,
                        reason: &reason,
                        will_reconnect: reconnect,
                    }))
                });
            }
            Event::Error(error) => {
                self.emit(None, "error", cb.on_error.as_ref(), &|| js_error(&error));
            }
            Event::Frame(text) => {
                self.emit(None, "message", cb.on_message.as_ref(), &|| parse(&text));
            }
            Event::Notification(n) => {
                let text = to_json(&n);
                self.emit(None, "notification", None, &|| parse(&text));
            }
            Event::Presence(p) => {
                let text = to_json(&p);
                self.emit(None, "presence", None, &|| parse(&text));
            }
            Event::Room { room, kind, payload } => {
                self.emit(Some(&room), kind, None, &|| parse(&payload));
            }
            Event::Settle { op, result } => {
                let Some((resolve, reject)) = self.promises.borrow_mut().remove(&op) else {
                    return;
                };
                let _ = match result {
                    Ok(text) => resolve.call1(&JsValue::NULL, &parse(&text)),
                    Err(error) => reject.call1(&JsValue::NULL, &js_error(&error)),
                };
            }
            Event::RoomChanged(_) | Event::SnapshotChanged => {}
        }
    }

    /// Calls `callback` and the listeners of `kind`: the client's (`room`
    /// is `None`) or those of every handle of `room`. The value is built only
    /// if someone listens, so frames nobody wants cost no JavaScript objects.
    /// (A `dyn` closure: one copy of this function in the wasm rather than
    /// one per event type.)
    fn emit(
        &self,
        room: Option<&str>,
        kind: &str,
        callback: Option<&Function>,
        value: &dyn Fn() -> JsValue,
    ) {
        let matches = |l: &Listener| {
            l.kind == kind
                && match (&l.scope, room) {
                    (Scope::Client, None) => true,
                    (Scope::Room { room: a, .. }, Some(b)) => a == b,
                    _ => false,
                }
        };
        let listeners: Vec<Function> =
            self.listeners.borrow().iter().filter(|l| matches(l)).map(|l| l.f.clone()).collect();
        if callback.is_none() && listeners.is_empty() {
            return;
        }
        let value = value();
        for f in callback.into_iter().chain(listeners.iter()) {
            // A throwing listener must not stop the others or the pump.
            let _ = f.call1(&JsValue::NULL, &value);
        }
    }

    pub fn add_listener(self: &Rc<Self>, scope: Scope, kind: String, f: Function) -> JsValue {
        let id = self.next_id();
        self.listeners.borrow_mut().push(Listener { id, scope, kind, f });
        let weak = Rc::downgrade(self);
        unsubscribe(move || {
            if let Some(inner) = weak.upgrade() {
                inner.listeners.borrow_mut().retain(|l| l.id != id);
            }
        })
    }

    /// Removes every listener of one room handle (it left).
    pub fn remove_handle(&self, handle: u32) {
        self.listeners
            .borrow_mut()
            .retain(|l| !matches!(&l.scope, Scope::Room { handle: h, .. } if *h == handle));
    }

    /// Calls `f` with every event until the returned id is passed to
    /// [`unobserve`](Self::unobserve).
    pub fn observe_with(&self, f: EventObserver) -> u32 {
        let id = self.next_id();
        self.observers.borrow_mut().push((id, f));
        id
    }

    pub fn unobserve(&self, id: u32) {
        self.observers.borrow_mut().retain(|(i, _)| *i != id);
    }

    fn observe(&self, event: &Event) {
        // Cloned out first: an observer may add or remove observers.
        let observers: Vec<_> = self.observers.borrow().iter().map(|(_, f)| f.clone()).collect();
        for f in observers {
            f(event);
        }
    }

    pub fn subscribe(self: &Rc<Self>, room: Option<String>, f: Function) -> JsValue {
        let id = self.next_id();
        self.subscribers.borrow_mut().push((id, room, f));
        let weak = Rc::downgrade(self);
        unsubscribe(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subscribers.borrow_mut().retain(|(i, _, _)| *i != id);
            }
        })
    }

    /// A promise settled by the core's `Settle` for `op`.
    pub fn promise(self: &Rc<Self>, op: u64) -> Promise {
        let promise = Promise::new(&mut |resolve, reject| {
            self.promises.borrow_mut().insert(op, (resolve, reject));
        });
        self.pump();
        promise
    }

    /// The client snapshot: the same frozen object until state, session or
    /// attempts change.
    pub fn snapshot(&self) -> JsValue {
        let core = self.core.borrow();
        let version = core.version();
        let transport = self.transport();
        // The transport is part of the snapshot's identity.
        let version = version * 2 + u64::from(transport == Transport::Sse);
        if let Some((v, value)) = &*self.snapshot.borrow()
            && *v == version
        {
            return value.clone();
        }
        let state = core.state();
        let value = freeze(parse(&to_json(&ClientSnapshot {
            state: state.as_str(),
            is_connected: state == ConnectionState::Open,
            is_loading: matches!(
                state,
                ConnectionState::Connecting | ConnectionState::Reconnecting
            ),
            session_id: core.session_id(),
            reconnect_attempts: core.attempts(),
            user: core.user(),
            transport: transport.as_str(),
        })));
        *self.snapshot.borrow_mut() = Some((version, value.clone()));
        value
    }

    /// A room's snapshot, rebuilt only when the room changed.
    pub fn room_snapshot(&self, room: &str) -> JsValue {
        let core = self.core.borrow();
        let version = core.room_version(room);
        if let Some((v, value)) = self.room_snapshots.borrow().get(room)
            && Some(*v) == version
        {
            return value.clone();
        }
        let Some((version, text)) = core.room_snapshot(room) else {
            let empty = RoomSnapshot {
                room,
                joined: false,
                messages: &[],
                pending: Vec::new(),
                members: &[],
                member_count: 0,
                more_members: false,
                typing: &[],
                reads: Vec::new(),
                resets: 0,
            };
            return freeze(parse(&to_json(&empty)));
        };
        let value = freeze(parse(&text));
        self.room_snapshots.borrow_mut().insert(room.to_owned(), (version, value.clone()));
        value
    }

    pub fn forget_room(&self, room: &str) {
        self.room_snapshots.borrow_mut().remove(room);
    }
}

/// A detached connection, dropped in a later task.
pub(super) struct Retired(Option<Link>);

impl Retired {
    fn close(&self, code: u16, reason: &str) {
        if let Some(socket) = &self.0 {
            socket.close(code, reason);
        }
    }
}

impl Drop for Retired {
    fn drop(&mut self) {
        // Dropped once the current handlers have returned.
        if let Some(socket) = self.0.take() {
            wasm_bindgen_futures::spawn_local(async move { drop(socket) });
        }
    }
}

fn unsubscribe(f: impl FnOnce() + 'static) -> JsValue {
    Closure::once_into_js(f)
}

pub fn parse(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or(JsValue::NULL)
}

fn freeze(value: JsValue) -> JsValue {
    if let Some(object) = value.dyn_ref::<Object>() {
        Object::freeze(object);
    }
    value
}

/// An `Error` with a `code`, as promises reject and `onError` receives.
pub fn js_error(error: &ClientError) -> JsValue {
    let e = js_sys::Error::new(&error.message);
    e.set_name("RoomcastError");
    let _ = js_sys::Reflect::set(&e, &"code".into(), &error.code.as_str().into());
    if let Some(ms) = error.retry_after_ms {
        let _ = js_sys::Reflect::set(&e, &"retryAfterMs".into(), &(ms as f64).into());
    }
    if let Some(reason) = &error.reason_code {
        let _ = js_sys::Reflect::set(&e, &"reasonCode".into(), &reason.as_str().into());
    }
    e.into()
}

fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
