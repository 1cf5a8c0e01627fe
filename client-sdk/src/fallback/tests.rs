//! The transport policy through the situations it is for: a proxy that
//! blocks WebSockets, a server that is down, a network that lets
//! WebSockets through again.

use super::*;

fn auto() -> Fallback {
    Fallback::new(FallbackOptions::default())
}

/// Runs attempts that all end before `ready`; returns the transports used.
fn failing(policy: &mut Fallback, attempts: usize) -> Vec<Transport> {
    (0..attempts)
        .map(|_| {
            let t = policy.choose();
            policy.ended(false);
            t
        })
        .collect()
}

use Transport::{Sse, WebSocket as Ws};

#[test]
fn falls_back_after_the_configured_websocket_failures_in_a_row() {
    let mut p = auto();
    assert_eq!(failing(&mut p, 3), [Ws, Ws, Ws]);
    assert_eq!(p.choose(), Sse, "the fourth attempt uses the fallback");
    p.ready(0);
    assert_eq!(p.current(), Sse);
    // A fallback connection that worked and dropped reconnects on the
    // fallback: WebSockets are still presumed blocked.
    p.ended(true);
    assert_eq!(p.choose(), Sse);

    let mut one = Fallback::new(FallbackOptions { sse_after_failures: 1, ..Default::default() });
    assert_eq!(failing(&mut one, 1), [Ws]);
    assert_eq!(one.choose(), Sse);
}

#[test]
fn a_websocket_that_reaches_ready_resets_the_count() {
    let mut p = auto();
    failing(&mut p, 2);
    assert_eq!(p.choose(), Ws);
    p.ready(0);
    p.ended(true);
    assert_eq!(failing(&mut p, 2), [Ws, Ws], "two failures after a good connection are not three");
    assert_eq!(p.choose(), Ws);
}

#[test]
fn a_server_that_is_down_alternates_rather_than_settling_on_the_fallback() {
    // Both transports fail while the server is down: after the first
    // fallback failure, WebSocket and fallback take turns, so whichever
    // the server answers first wins.
    let mut p = auto();
    assert_eq!(failing(&mut p, 8), [Ws, Ws, Ws, Sse, Ws, Sse, Ws, Sse]);
}

#[test]
fn on_the_fallback_checks_come_ever_more_rarely_and_a_good_one_switches_back() {
    let mut p = Fallback::new(FallbackOptions {
        probe_min_ms: 1_000,
        probe_max_ms: 5_000,
        ..Default::default()
    });
    failing(&mut p, 3);
    assert_eq!(p.choose(), Sse);
    assert_eq!(p.probe_at(), None, "no check before ready");
    p.ready(100);
    let mut waits = vec![];
    let mut now = 100;
    for _ in 0..5 {
        let at = p.probe_at().expect("a check is due");
        waits.push(at - now);
        now = at;
        p.probe_started();
        assert_eq!(p.probe_at(), None, "one check at a time");
        assert!(!p.probed(false, now), "a failed check stays on the fallback");
    }
    assert_eq!(waits, [1_000, 2_000, 4_000, 5_000, 5_000]);
    // The fallback connection drops and comes back: the schedule goes on
    // where it was, rather than checking a blocked network at once.
    p.ended(true);
    assert_eq!(p.probe_at(), None, "no check without a connection");
    assert_eq!(p.choose(), Sse);
    p.ready(now);
    assert_eq!(p.probe_at(), Some(now + 5_000));
    p.probe_started();
    assert!(p.probed(true, now), "a WebSocket got through: switch");
    p.ended(true);
    assert_eq!(p.choose(), Ws);
    p.ready(now);
    assert_eq!(p.probe_at(), None, "no checks on a WebSocket");
    // Blocked again later: the checks start from the shortest wait.
    p.ended(true);
    failing(&mut p, 3);
    assert_eq!(p.choose(), Sse);
    p.ready(now);
    assert_eq!(p.probe_at(), Some(now + 1_000));
}

#[test]
fn a_late_check_result_after_a_switch_changes_nothing() {
    let mut p = auto();
    assert!(!p.probed(true, 0), "on WebSocket there is nothing to switch to");
    assert_eq!(p.choose(), Ws);
}

#[test]
fn the_transports_option_pins_one_transport() {
    let mut ws = Fallback::new(FallbackOptions {
        transports: Transports::WebSocketOnly,
        ..Default::default()
    });
    assert_eq!(failing(&mut ws, 10), [Ws; 10]);

    let mut sse =
        Fallback::new(FallbackOptions { transports: Transports::SseOnly, ..Default::default() });
    assert_eq!(sse.current(), Sse);
    assert_eq!(failing(&mut sse, 4), [Sse; 4]);
    sse.choose();
    sse.ready(0);
    assert_eq!(sse.probe_at(), None, "pinned to the fallback: no checks");
    assert!(!sse.probed(true, 0));
    assert_eq!(sse.choose(), Sse);
}

#[test]
fn fallback_urls_follow_the_websocket_url() {
    let urls = |u: &str| sse_urls(u);
    assert_eq!(
        urls("ws://localhost:8080/ws"),
        Some(("http://localhost:8080/sse".into(), "http://localhost:8080/sse/".into()))
    );
    assert_eq!(
        urls("wss://rt.example.com/chat/ws?token=abc"),
        Some((
            "https://rt.example.com/chat/sse?token=abc".into(),
            "https://rt.example.com/chat/sse/".into()
        ))
    );
    assert_eq!(urls("WSS://h/ws").map(|u| u.0), Some("https://h/sse".into()));
    // Anything else has no fallback rather than a guessed one.
    for bad in [
        "ws://h/socket",
        "ws://h/ws/",
        "ftp://h/ws",
        "ws:///ws",
        "/ws",
        "ws://h/wss",
        "ws:/h/ws",
        "ws:h://h/ws",
        "x:ws://h/ws",
    ] {
        assert_eq!(urls(bad), None, "{bad}");
    }
    assert_eq!(probe_url("wss://h/ws?token=secret"), "wss://h/ws");
    assert_eq!(probe_url("ws://h/ws"), "ws://h/ws");
}
