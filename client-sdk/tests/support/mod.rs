//! Helpers of the browser tests: the fixture's URLs and control API, JS
//! object access, event recorders and polling.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use roomcast_client::web::{Client, Room};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

const HOW: &str = "run the browser tests with `cargo xtask test`, which starts the server";

/// The server's WebSocket URL, fixed at compile time.
pub fn ws_url() -> String {
    option_env!("ROOMCAST_TEST_WS")
        .unwrap_or_else(|| panic!("ROOMCAST_TEST_WS is not set: {HOW}"))
        .into()
}

fn control_url() -> &'static str {
    option_env!("ROOMCAST_TEST_CONTROL")
        .unwrap_or_else(|| panic!("ROOMCAST_TEST_CONTROL is not set: {HOW}"))
}

/// `fetch(url, {method: "POST", body})` and the response text; panics on
/// a status other than 2xx.
async fn post(url: &str, body: &str) -> String {
    let init = options(&[("method", "POST".into()), ("body", body.into())]);
    let fetch: Function =
        Reflect::get(&js_sys::global(), &"fetch".into()).unwrap().unchecked_into();
    let promise: Promise =
        fetch.call2(&JsValue::NULL, &url.into(), &init).unwrap().unchecked_into();
    let response = JsFuture::from(promise).await.unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    let ok = get(&response, "ok").as_bool().unwrap_or(false);
    let text: Function = get(&response, "text").unchecked_into();
    let text: Promise = text.call0(&response).unwrap().unchecked_into();
    let text = JsFuture::from(text).await.unwrap().as_string().unwrap_or_default();
    assert!(ok, "POST {url} failed: {text}");
    text
}

/// A dev token for `name`, from the fixture.
pub async fn token(name: &str) -> String {
    let reply =
        post(&format!("{}/token", control_url()), &format!("{{\"name\":\"{name}\"}}")).await;
    let value = js_sys::JSON::parse(&reply).unwrap();
    get(&value, "token").as_string().expect("a token")
}

/// Calls the fixture's control API (`/stop`, `/start`, `/restart`).
pub async fn control(path: &str) {
    post(&format!("{}{path}", control_url()), "").await;
}

/// Posts a notification as a backend would (`POST /api/notify`).
pub async fn notify(body: &str) {
    post(&format!("{}/notify", control_url()), body).await;
}

/// A room name unique to this run, so tests do not share rooms.
pub fn room_name(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// A plain object from key/value pairs.
pub fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

pub fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The `content` of each message of a room snapshot.
pub fn contents(snapshot: &JsValue) -> Vec<String> {
    Array::from(&get(snapshot, "messages"))
        .iter()
        .map(|m| get(&m, "content").as_string().unwrap_or_default())
        .collect()
}

pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let set_timeout: Function =
            Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap().unchecked_into();
        set_timeout.call2(&JsValue::NULL, &resolve, &ms.into()).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Polls `condition` every 20 ms; panics with `what` after `timeout_ms`.
pub async fn wait_until(what: &str, timeout_ms: u32, condition: impl Fn() -> bool) {
    let start = js_sys::Date::now();
    while !condition() {
        if js_sys::Date::now() - start > f64::from(timeout_ms) {
            panic!("timed out after {timeout_ms} ms waiting until {what}");
        }
        sleep(20).await;
    }
}

/// Records the events a listener receives.
#[derive(Clone, Default)]
pub struct Recorder(pub Rc<RefCell<Vec<JsValue>>>);

impl Recorder {
    /// A listener function that records what it is called with.
    pub fn listener(&self) -> Function {
        let events = self.0.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |e| events.borrow_mut().push(e))
            .into_js_value()
            .unchecked_into()
    }

    pub fn on_room(room: &Room, event: &str) -> Self {
        let r = Self(Rc::default());
        room.on(event.into(), r.listener());
        r
    }

    pub fn on_client(client: &Client, event: &str) -> Self {
        let r = Self(Rc::default());
        client.on(event.into(), r.listener());
        r
    }

    pub fn count(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn last(&self) -> JsValue {
        self.0.borrow().last().cloned().unwrap_or(JsValue::UNDEFINED)
    }
}
