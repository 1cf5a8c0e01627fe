//! The exported `Room` class: one handle on a joined room.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use super::data::data_option;
use super::inner::{Inner, Scope};
use super::transport;
use super::types::{
    AckPromise, Callback, HistoryOptionsArg, HistoryPromise, MembersOptionsArg, MembersPromise,
    RoomSnapshotValue, SendOptionsArg, StringsValue,
};

/// A handle on a joined room. Each handle leaves once; the room is left when
/// every handle has.
#[wasm_bindgen]
pub struct Room {
    inner: Rc<Inner>,
    name: String,
    handle: u32,
    left: Cell<bool>,
}

/// A promise rejected at once with `error`.
fn rejected(error: &crate::effect::ClientError) -> AckPromise {
    JsValue::from(js_sys::Promise::reject(&super::inner::js_error(error))).unchecked_into()
}

impl Room {
    pub(super) fn new(inner: Rc<Inner>, name: String) -> Self {
        let handle = inner.next_id();
        Self { inner, name, handle, left: Cell::new(false) }
    }

    /// Runs an outbox request, or rejects at once when this handle left.
    fn request(&self, run: impl FnOnce(&mut crate::machine::Core) -> u64) -> JsValue {
        if self.left.get() {
            let error = crate::effect::ClientError::new("left", format!("left {}", self.name));
            return js_sys::Promise::reject(&super::inner::js_error(&error)).into();
        }
        let op = run(&mut self.inner.core.borrow_mut());
        self.inner.promise(op).into()
    }
}

#[wasm_bindgen]
impl Room {
    /// The room's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether the room is joined on the current connection.
    #[wasm_bindgen(getter)]
    pub fn joined(&self) -> bool {
        let snapshot = self.inner.room_snapshot(&self.name);
        Reflect::get(&snapshot, &"joined".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Sends a message, with `options.data` (an object: attachments and
    /// other fields) if given: queued while disconnected, resent after a
    /// reconnect with the same `client_id`; resolves with the ack.
    pub fn send(&self, content: String, options: Option<SendOptionsArg>) -> AckPromise {
        let data = match data_option(&options.map(Into::into).unwrap_or(JsValue::UNDEFINED)) {
            Ok(data) => data,
            Err(error) => return rejected(&error),
        };
        self.request(|core| core.send_with_data(&self.name, content, data, transport::now()))
            .unchecked_into()
    }

    /// Edits one of the user's messages; `options.data` replaces its data
    /// (`{}` removes it), and without it the data is kept. Resolves with
    /// the ack.
    pub fn edit(&self, id: String, content: String, options: Option<SendOptionsArg>) -> AckPromise {
        let data = match data_option(&options.map(Into::into).unwrap_or(JsValue::UNDEFINED)) {
            Ok(data) => data,
            Err(error) => return rejected(&error),
        };
        self.request(|core| core.edit_with_data(&self.name, id, content, data, transport::now()))
            .unchecked_into()
    }

    /// Deletes one of the user's messages; resolves with the ack.
    #[wasm_bindgen(js_name = delete)]
    pub fn delete_message(&self, id: String) -> AckPromise {
        self.request(|core| core.delete(&self.name, id, transport::now())).unchecked_into()
    }

    /// Call with `true` on every keystroke and `false` when the user stops:
    /// throttled, and ended by itself after a pause.
    pub fn typing(&self, #[wasm_bindgen(js_name = isTyping)] is_typing: bool) {
        if !self.left.get() {
            self.inner.core.borrow_mut().typing(&self.name, is_typing, transport::now());
            self.inner.pump();
        }
    }

    /// Tells the room the user read up to message `id`.
    #[wasm_bindgen(js_name = markRead)]
    pub fn mark_read(&self, id: String) {
        if !self.left.get() {
            self.inner.core.borrow_mut().mark_read(&self.name, id);
            self.inner.pump();
        }
    }

    /// Loads older messages (`before` an offset, at most `limit`); they also
    /// join the room's snapshot.
    pub fn history(&self, options: Option<HistoryOptionsArg>) -> HistoryPromise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let field = |key: &str| {
            if options.is_object() {
                Reflect::get(&options, &key.into()).ok().and_then(|v| v.as_f64())
            } else {
                None
            }
        };
        let before = field("before").map(|n| n as u64);
        let limit = field("limit").map(|n| n.min(f64::from(u16::MAX)) as u16);
        self.request(|core| core.history(&self.name, before, limit)).unchecked_into()
    }

    /// Loads the next page of members (at most `limit`, default 100); they
    /// also join the room's snapshot (`more_members` says whether any are
    /// left).
    pub fn members(&self, options: Option<MembersOptionsArg>) -> MembersPromise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let limit = options
            .is_object()
            .then(|| Reflect::get(&options, &"limit".into()).ok().and_then(|v| v.as_f64()))
            .flatten()
            .map(|n| n.clamp(0.0, f64::from(u16::MAX)) as u16);
        self.request(|core| core.members(&self.name, limit)).unchecked_into()
    }

    /// Leaves (this handle): its listeners stop; the room is left when no
    /// other handle holds it.
    pub fn leave(&self) {
        if self.left.replace(true) {
            return;
        }
        self.inner.remove_handle(self.handle);
        let gone = {
            let mut core = self.inner.core.borrow_mut();
            core.leave(&self.name);
            !core.has_room(&self.name)
        };
        if gone {
            self.inner.forget_room(&self.name);
        }
        self.inner.pump();
    }

    /// Listens to `message`, `updated`, `deleted`, `typing`, `read`,
    /// `member_joined`, `member_left`, `presence_diff`, `occupancy`, `event`, `joined`, `reset` or
    /// `error`. Typed in the declarations by declaration merging.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: String, listener: Function) -> JsValue {
        let scope = Scope::Room { room: self.name.clone(), handle: self.handle };
        self.inner.add_listener(scope, event, listener)
    }

    /// Calls `listener` whenever the room's snapshot changes; returns a
    /// function that stops.
    pub fn subscribe(&self, listener: Callback) -> Callback {
        let f: Function = JsValue::from(listener).unchecked_into();
        self.inner.subscribe(Some(self.name.clone()), f).unchecked_into()
    }

    /// The ids of the users who have read message `id` or a later one,
    /// the user's own included (from the same read positions as the
    /// snapshot's `reads`).
    #[wasm_bindgen(js_name = seenBy)]
    pub fn seen_by(&self, id: String) -> StringsValue {
        let core = self.inner.core.borrow();
        let readers = js_sys::Array::new();
        if let Some(room) = core.room(&self.name) {
            for reader in room.seen_by(&id) {
                readers.push(&JsValue::from_str(reader));
            }
        }
        readers.unchecked_into()
    }

    /// `{room, joined, messages, pending, members, typing, reads, resets}`:
    /// the same frozen object until the room changes.
    #[wasm_bindgen(js_name = getSnapshot)]
    pub fn get_snapshot(&self) -> RoomSnapshotValue {
        self.inner.room_snapshot(&self.name).unchecked_into()
    }
}
