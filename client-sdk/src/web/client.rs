//! The exported `Client` class: construction from a URL and options, state
//! getters, rooms, presence, raw frames, listeners and the snapshot for
//! React's `useSyncExternalStore`.

use std::rc::Rc;

use js_sys::Function;
use roomcast_shared::SetStatus;
use wasm_bindgen::prelude::*;

use super::inner::{Inner, Scope};
use super::options;
use super::room::Room;
use super::transport;
use super::types::{
    Callback, ClientFrameArg, ClientOptionsArg, ClientSnapshotValue, NotificationListener,
    SessionIdValue, SetStatusArg, StateValue, UserValue,
};
use crate::effect::ConnectionState;
use crate::machine::Core;

/// A Roomcast connection that reconnects, recovers and resends by itself.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Client {
    /// A client for `url` (`ws://` or `wss://`, ending in `/ws`). Connects at
    /// once unless `options.autoConnect` is false.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, options: Option<ClientOptionsArg>) -> Result<Client, JsError> {
        let value: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let parsed = options::parse(&value).map_err(|e| JsError::new(&e))?;
        let core = Core::new(parsed.options, parsed.source, transport::seed());
        let inner = Inner::new(url, core, parsed.provider, parsed.callbacks);
        if parsed.auto_connect {
            inner.connect();
        }
        Ok(Client { inner })
    }

    /// Connects (from `idle`, or again after `closed`).
    pub fn connect(&self) {
        self.inner.connect();
    }

    /// Closes for good: no reconnect; waiting sends reject with `closed`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// `idle`, `connecting`, `open`, `reconnecting` or `closed`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> StateValue {
        JsValue::from_str(self.inner.core.borrow().state().as_str()).unchecked_into()
    }

    /// Whether the connection is open and authenticated.
    #[wasm_bindgen(getter, js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.inner.core.borrow().state() == ConnectionState::Open
    }

    /// Whether a connection is being established (`connecting` or
    /// `reconnecting`).
    #[wasm_bindgen(getter, js_name = isLoading)]
    pub fn is_loading(&self) -> bool {
        matches!(
            self.inner.core.borrow().state(),
            ConnectionState::Connecting | ConnectionState::Reconnecting
        )
    }

    /// The server's id of the open connection.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> SessionIdValue {
        let core = self.inner.core.borrow();
        core.session_id().map_or(JsValue::NULL, JsValue::from_str).unchecked_into()
    }

    /// Consecutive failed attempts since the last stable connection.
    #[wasm_bindgen(getter, js_name = reconnectAttempts)]
    pub fn reconnect_attempts(&self) -> u32 {
        self.inner.core.borrow().attempts()
    }

    /// The authenticated user, while connected.
    #[wasm_bindgen(getter)]
    pub fn user(&self) -> UserValue {
        let core = self.inner.core.borrow();
        let text = crate::payload::to_json(&core.user());
        super::inner::parse(&text).unchecked_into()
    }

    /// Joins `room` and returns a handle; joining a room twice returns
    /// another handle to the same room, which stays joined until every
    /// handle has left.
    pub fn join(&self, room: String) -> Result<Room, JsError> {
        self.inner.core.borrow_mut().join(&room).map_err(|e| JsError::new(&e.message))?;
        self.inner.pump();
        Ok(Room::new(self.inner.clone(), room))
    }

    /// Sets the user's status (`online`, `away`, `busy`, `invisible`) and
    /// optional custom text; sent again after every reconnect.
    #[wasm_bindgen(js_name = setStatus)]
    pub fn set_status(&self, status: SetStatusArg, custom: Option<String>) -> Result<(), JsError> {
        let value: JsValue = status.into();
        let status = match value.as_string().as_deref() {
            Some("online") => SetStatus::Online,
            Some("away") => SetStatus::Away,
            Some("busy") => SetStatus::Busy,
            Some("invisible") => SetStatus::Invisible,
            _ => return Err(JsError::new("status must be online, away, busy or invisible")),
        };
        self.inner.core.borrow_mut().set_status(status, custom);
        self.inner.pump();
        Ok(())
    }

    /// Sends a frame as is (an object or JSON text), if connected. Room
    /// messages should go through `room.send`, which queues and resends.
    #[wasm_bindgen(js_name = sendMessage)]
    pub fn send_message(&self, frame: ClientFrameArg) -> Result<bool, JsError> {
        let value: JsValue = frame.into();
        let text = match value.as_string() {
            Some(text) => text,
            None => js_sys::JSON::stringify(&value)
                .map(String::from)
                .map_err(|_| JsError::new("the frame cannot be turned into JSON"))?,
        };
        let sent = self.inner.core.borrow_mut().send_raw(text);
        self.inner.pump();
        Ok(sent)
    }

    /// Listens to `connect`, `disconnect`, `error`, `message`,
    /// `statechange`, `notification` or `presence`. Typed in the
    /// declarations by declaration merging.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: String, listener: Function) -> JsValue {
        self.inner.add_listener(Scope::Client, event, listener)
    }

    /// Listens to notifications for the user; returns a function that stops.
    #[wasm_bindgen(js_name = onNotification)]
    pub fn on_notification(&self, listener: NotificationListener) -> Callback {
        let f: Function = JsValue::from(listener).unchecked_into();
        self.inner.add_listener(Scope::Client, "notification".into(), f).unchecked_into()
    }

    /// Calls `listener` whenever the snapshot changes; returns a function that
    /// stops. For `useSyncExternalStore(client.subscribe, client.getSnapshot)`.
    pub fn subscribe(&self, listener: Callback) -> Callback {
        let f: Function = JsValue::from(listener).unchecked_into();
        self.inner.subscribe(None, f).unchecked_into()
    }

    /// `{state, isConnected, isLoading, sessionId, reconnectAttempts, user}`:
    /// the same frozen object until one of them changes.
    #[wasm_bindgen(js_name = getSnapshot)]
    pub fn get_snapshot(&self) -> ClientSnapshotValue {
        self.inner.snapshot().unchecked_into()
    }
}
