//! Browser tests of the JavaScript API in headless Chromium, against the real
//! server that `cargo xtask test` starts. It passes the server's WebSocket
//! URL and its control API (tokens, stop, start) at compile time; without
//! them every test fails and says how to run it.
#![cfg(target_arch = "wasm32")]

mod support;

use js_sys::{Array, Function, Promise};
use roomcast_client::web::Client;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

use support::{
    Recorder, contents, control, get, notify, options, room_name, token, wait_until, ws_url,
};

wasm_bindgen_test_configure!(run_in_browser);

/// A client for `name` with a fixed token and fast reconnects.
async fn client(name: &str) -> Client {
    let opts = options(&[("token", token(name).await.into())]);
    let client = Client::new(ws_url(), Some(opts.unchecked_into())).expect("client");
    wait_until("connected", 10_000, || client.is_connected()).await;
    client
}

#[wasm_bindgen_test]
async fn connects_authenticates_joins_and_chats() {
    let alice = client("Alice").await;
    let bob = client("Bob").await;
    assert_eq!(alice.state().as_string().as_deref(), Some("open"));
    assert!(JsValue::from(alice.session_id()).is_string());
    assert_eq!(get(&alice.user().into(), "id").as_string().as_deref(), Some("alice"));

    let name = room_name("chat");
    let a = alice.join(name.clone()).expect("join");
    let b = bob.join(name.clone()).expect("join");
    wait_until("both joined", 5_000, || a.joined() && b.joined()).await;
    let seen = Recorder::on_room(&b, "message");
    // Listeners and subscriptions return their unsubscribe function.
    let noop: Function = Closure::<dyn FnMut()>::new(|| {}).into_js_value().unchecked_into();
    let off = b.on("joined".into(), noop.clone());
    assert!(off.is_function(), "room.on returns a function: {off:?}");
    let off = JsValue::from(b.subscribe(noop.clone().unchecked_into()));
    assert!(off.is_function(), "room.subscribe returns a function: {off:?}");
    let off = alice.on("message".into(), noop);
    assert!(off.is_function(), "client.on returns a function: {off:?}");

    let ack = JsFuture::from(Promise::from(JsValue::from(a.send("hello from alice".into(), None))))
        .await
        .expect("the send is acked");
    assert!(get(&ack, "id").is_string());
    assert_eq!(get(&ack, "offset").as_f64(), Some(1.0));

    wait_until("bob sees it", 5_000, || contents(&b.get_snapshot().into()) == ["hello from alice"])
        .await;
    assert_eq!(contents(&a.get_snapshot().into()), ["hello from alice"]);
    assert_eq!(Array::from(&get(&a.get_snapshot().into(), "pending")).length(), 0);
    assert_eq!(seen.count(), 1);

    // Snapshots keep their identity until something changes.
    let before: JsValue = b.get_snapshot().into();
    assert!(js_sys::Object::is(&before, &b.get_snapshot().into()));
    let client_before: JsValue = alice.get_snapshot().into();
    assert!(js_sys::Object::is(&client_before, &alice.get_snapshot().into()));

    // Typing reaches the other user.
    let typing = Recorder::on_room(&b, "typing");
    a.typing(true);
    wait_until("bob sees alice typing", 5_000, || typing.count() >= 1).await;
    alice.close();
    bob.close();
    assert_eq!(alice.state().as_string().as_deref(), Some("closed"));
}

#[wasm_bindgen_test]
async fn the_token_provider_is_asked_on_connect_after_4001_and_before_expiry() {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counter = calls.clone();
    // The first answer is a bad token: the server closes with 4001 and the
    // client asks once more. Later answers are good tokens.
    let provider = Closure::<dyn FnMut() -> Promise>::new(move || {
        counter.set(counter.get() + 1);
        let first = counter.get() == 1;
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(if first { "not-a-jwt".into() } else { token("Carol").await.into() })
        })
    });
    let provider: Function = provider.into_js_value().unchecked_into();
    // Dev tokens last 7 days: ask again 8 days before expiry, that is at once.
    let refresh_before = 8.0 * 24.0 * 3600.0 * 1000.0;
    let opts = options(&[
        ("token", provider.into()),
        ("refreshBeforeMs", refresh_before.into()),
        ("minDelayMs", 100.into()),
    ]);
    let carol = Client::new(ws_url(), Some(opts.unchecked_into())).expect("client");
    wait_until("connected after the 4001", 10_000, || carol.is_connected()).await;
    assert!(calls.get() >= 2, "asked again after 4001");
    let session = JsValue::from(carol.session_id()).as_string();
    let calls_at_connect = calls.get();
    // The refresh happens on the open connection: same session.
    wait_until("refreshed", 10_000, || calls.get() > calls_at_connect).await;
    support::sleep(500).await;
    assert!(carol.is_connected());
    let now = JsValue::from(carol.session_id()).as_string();
    assert_eq!(now, session, "refreshed without reconnecting");
    carol.close();
}

#[wasm_bindgen_test]
async fn a_server_restart_delivers_queued_sends_exactly_once_and_resets_rooms() {
    let fast = |name: &'static str| async move {
        let opts = options(&[
            ("token", token(name).await.into()),
            ("minDelayMs", 100.into()),
            ("maxDelayMs", 500.into()),
        ]);
        let c = Client::new(ws_url(), Some(opts.unchecked_into())).expect("client");
        wait_until("connected", 10_000, || c.is_connected()).await;
        c
    };
    let dave = fast("Dave").await;
    let erin = fast("Erin").await;
    let name = room_name("restart");
    let d = dave.join(name.clone()).expect("join");
    let e = erin.join(name.clone()).expect("join");
    wait_until("both joined", 5_000, || d.joined() && e.joined()).await;
    JsFuture::from(Promise::from(JsValue::from(d.send("before".into(), None)))).await.expect("ack");
    wait_until("erin sees it", 5_000, || contents(&e.get_snapshot().into()) == ["before"]).await;
    let resets = Recorder::on_room(&d, "reset");
    let disconnects = Recorder::on_client(&dave, "disconnect");

    control("/stop").await;
    wait_until("dave notices", 10_000, || !dave.is_connected()).await;
    let state = dave.state().as_string();
    let sends: Vec<JsFuture> = ["queued 1", "queued 2", "queued 3"]
        .into_iter()
        .map(|text| JsFuture::from(Promise::from(JsValue::from(d.send(text.into(), None)))))
        .collect();
    let pending = Array::from(&get(&d.get_snapshot().into(), "pending")).length();
    // Start again before asserting, so a failure here leaves the server up
    // for the tests after this one.
    control("/start").await;
    assert_eq!(state.as_deref(), Some("reconnecting"));
    assert_eq!(pending, 3, "the sends wait in the outbox");
    let first = disconnects.0.borrow()[0].clone();
    assert_eq!(get(&first, "willReconnect").as_bool(), Some(true));
    for send in sends {
        send.await.expect("queued sends are acked after the reconnect");
    }
    wait_until("dave's room reset", 10_000, || resets.count() >= 1).await;
    let expected = ["queued 1", "queued 2", "queued 3"];
    wait_until("erin sees the queued sends", 10_000, || {
        contents(&e.get_snapshot().into()) == expected
    })
    .await;
    wait_until("dave too", 5_000, || contents(&d.get_snapshot().into()) == expected).await;
    // The server holds each exactly once.
    let page =
        JsFuture::from(Promise::from(JsValue::from(e.history(None)))).await.expect("history");
    let stored: Vec<String> = Array::from(&get(&page, "messages"))
        .iter()
        .map(|m| get(&m, "content").as_string().unwrap_or_default())
        .collect();
    assert_eq!(stored, expected);
    assert!(dave.is_connected() && erin.is_connected());
    dave.close();
    erin.close();
}

#[wasm_bindgen_test]
async fn presence_and_notifications_reach_the_user() {
    let frank = client("Frank").await;
    let grace = client("Grace").await;
    let name = room_name("presence");
    let f = frank.join(name.clone()).expect("join");
    let g = grace.join(name.clone()).expect("join");
    wait_until("both joined", 5_000, || f.joined() && g.joined()).await;
    let status_of_frank = || {
        js_sys::Array::from(&get(&g.get_snapshot().into(), "members"))
            .iter()
            .find(|m| get(&get(m, "user"), "id").as_string().as_deref() == Some("frank"))
            .map(|m| get(&m, "status").as_string().unwrap_or_default())
    };
    wait_until("grace lists frank", 5_000, || status_of_frank().is_some()).await;
    frank.set_status(JsValue::from_str("away").unchecked_into(), Some("Lunch".into())).unwrap();
    wait_until("grace sees frank away", 5_000, || status_of_frank().as_deref() == Some("away"))
        .await;
    assert!(frank.set_status(JsValue::from_str("asleep").unchecked_into(), None).is_err());

    let notifications = Recorder::default();
    let off = frank.on_notification(notifications.listener().unchecked_into());
    notify(
        r#"{"user_ids":["frank"],"title":"Invoice paid","body":"Invoice 1042","data":{"id":1042}}"#,
    )
    .await;
    wait_until("frank is notified", 5_000, || notifications.count() == 1).await;
    let n = notifications.last();
    assert_eq!(get(&n, "title").as_string().as_deref(), Some("Invoice paid"));
    assert_eq!(get(&get(&n, "data"), "id").as_f64(), Some(1042.0));
    // After unsubscribing, nothing more arrives.
    let off: Function = JsValue::from(off).unchecked_into();
    off.call0(&JsValue::NULL).unwrap();
    notify(r#"{"user_ids":["frank"],"title":"Second"}"#).await;
    support::sleep(300).await;
    assert_eq!(notifications.count(), 1);
    frank.close();
    grace.close();
}

#[wasm_bindgen_test]
async fn a_silent_server_is_declared_dead_without_waiting_for_tcp() {
    let opts = options(&[
        ("token", token("Heidi").await.into()),
        ("pingIntervalMs", 300.into()),
        ("pongTimeoutMs", 300.into()),
        ("connectTimeoutMs", 1_000.into()),
        ("minDelayMs", 100.into()),
        ("maxDelayMs", 300.into()),
    ]);
    let heidi = Client::new(ws_url(), Some(opts.unchecked_into())).expect("client");
    wait_until("connected", 10_000, || heidi.is_connected()).await;
    let disconnects = Recorder::on_client(&heidi, "disconnect");
    // The server stops answering, but its TCP connections stay open.
    control("/freeze").await;
    wait_until("declared dead", 5_000, || disconnects.count() >= 1).await;
    control("/thaw").await;
    let first = disconnects.0.borrow()[0].clone();
    assert_eq!(get(&first, "reason").as_string().as_deref(), Some("heartbeat timeout"));
    assert_eq!(get(&first, "willReconnect").as_bool(), Some(true));
    wait_until("reconnected", 10_000, || heidi.is_connected()).await;
    heidi.close();
}

#[wasm_bindgen_test]
async fn a_dropped_connection_recovers_what_it_missed_exactly_once() {
    let opts = options(&[
        ("token", token("Ivan").await.into()),
        ("pingIntervalMs", 300.into()),
        ("pongTimeoutMs", 300.into()),
        ("connectTimeoutMs", 1_000.into()),
        ("minDelayMs", 100.into()),
        ("maxDelayMs", 300.into()),
    ]);
    let ivan = Client::new(ws_url(), Some(opts.unchecked_into())).expect("client");
    wait_until("ivan connected", 10_000, || ivan.is_connected()).await;
    let judy = client("Judy").await;
    let name = room_name("recover");
    let i = ivan.join(name.clone()).expect("join");
    let j = judy.join(name.clone()).expect("join");
    wait_until("both joined", 5_000, || i.joined() && j.joined()).await;
    JsFuture::from(Promise::from(JsValue::from(j.send("before".into(), None)))).await.expect("ack");
    wait_until("ivan sees it", 5_000, || contents(&i.get_snapshot().into()) == ["before"]).await;
    let resets = Recorder::on_room(&i, "reset");
    let messages = Recorder::on_room(&i, "message");

    // Ivan's connection dies; Judy, who has not noticed anything, writes on.
    // Her frames wait in the socket and land once the server runs again,
    // either live on Ivan's new connection or in the replay of his re-join.
    control("/freeze").await;
    wait_until("ivan notices", 5_000, || !ivan.is_connected()).await;
    let sends: Vec<JsFuture> = ["while you were away 1", "while you were away 2"]
        .into_iter()
        .map(|text| JsFuture::from(Promise::from(JsValue::from(j.send(text.into(), None)))))
        .collect();
    control("/thaw").await;
    for send in sends {
        send.await.expect("judy's sends are acked");
    }
    wait_until("ivan is back", 10_000, || ivan.is_connected()).await;
    let expected = ["before", "while you were away 1", "while you were away 2"];
    wait_until("ivan recovered", 10_000, || contents(&i.get_snapshot().into()) == expected).await;
    support::sleep(300).await;
    assert_eq!(contents(&i.get_snapshot().into()), expected, "nothing twice");
    assert_eq!(messages.count(), 2, "one message event per missed message");
    assert_eq!(resets.count(), 0, "the server still had the history: no reset");
    ivan.close();
    judy.close();
}

/// In the browser the JSON reader's fractions and exponents are read by
/// the JavaScript engine: they come out as Rust reads them natively (the
/// native tests check those against serde_json), correctly rounded.
#[wasm_bindgen_test]
fn json_numbers_read_in_the_browser_as_natively() {
    use roomcast_client::json::value;
    use serde_json::Value;
    let texts = [
        "0.1",
        "1e-7",
        "-2.5E+3",
        "123456789012345678901",
        "-98765432109876543210",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "5e-324",
        "-0",
        "0.30000000000000004",
        "9007199254740993.0",
        "1.00000000000000011102230246251565404236316680908203125",
    ];
    for text in texts {
        let expected: f64 = text.parse().unwrap();
        assert_eq!(value(text), Some(Value::from(expected)), "{text}");
    }
    assert_eq!(value("[1e400]"), None, "beyond f64 is refused, as serde_json refuses it");
    assert_eq!(value("-1e400"), None);
}

/// In the browser floats are written by the JavaScript engine
/// (`json::float_text`, what the SDK's payloads and frames use): each
/// reads back as the same `f64` and still as a float (a `.` or an
/// exponent), as serde_json writes them.
#[wasm_bindgen_test]
fn json_floats_written_in_the_browser_read_back_the_same() {
    use roomcast_client::json::float_text;
    // Rust's parser is correctly rounded (serde_json's default one is not
    // quite, beyond 17 digits).
    let values = [
        0.1,
        0.1 + 0.2,
        -2500.0,
        100.0,
        1e17,
        1e21,
        1.5e300,
        1e-7,
        -0.0,
        0.0,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        9007199254740993.0,
        -123456.789,
    ];
    for value in values {
        let text = float_text(value);
        assert!(roomcast_client::json::value(&text).is_some(), "{text} is JSON");
        let back: f64 = text.parse().expect("a number");
        assert_eq!(back.to_bits(), value.to_bits(), "{value} as {text}");
        assert!(text.contains(['.', 'e']), "{value} as {text} reads as a float");
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let value = f64::from_bits(x);
        if value.is_finite() {
            let back: f64 = float_text(value).parse().expect("a number");
            assert_eq!(back.to_bits(), value.to_bits(), "{value}");
        }
    }
}

/// The wasm build's timestamp codec writes what it read, and `null` for a
/// timestamp that has no RFC 3339 form (never one read from the wire).
#[wasm_bindgen_test]
fn timestamps_are_written_as_read_and_null_without_a_form() {
    use roomcast_shared::ReadReceipt;
    use time::{Date, Month, OffsetDateTime, Time};
    let text = r#"{"user_id":"bob","id":"m1","read_at":"2026-11-22T10:00:00.25+01:00"}"#;
    let receipt: ReadReceipt = serde_json::from_str(text).expect("a receipt");
    assert_eq!(serde_json::to_string(&receipt).expect("JSON"), text);
    let before_year_zero = Date::from_calendar_date(-1, Month::December, 31).expect("a date");
    let receipt = ReadReceipt {
        read_at: OffsetDateTime::new_utc(before_year_zero, Time::MIDNIGHT),
        ..receipt
    };
    assert_eq!(
        serde_json::to_string(&receipt).expect("JSON"),
        r#"{"user_id":"bob","id":"m1","read_at":null}"#
    );
}
