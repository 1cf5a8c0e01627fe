//! Checking, while on the fallback transport, whether a WebSocket gets
//! through again: a throwaway WebSocket that sends a `ping` before
//! authenticating; a `pong` proves the way is open, and the client then
//! reconnects over WebSocket (the core's recovery makes the switch lose and
//! double nothing). When checks are due is the `Fallback` policy's call.

use std::rc::Rc;

use super::{Inner, Retired};
use crate::fallback;
use crate::web::transport::{self, Link, Socket, SocketEvent};

/// What a check sends: the server answers `pong` before authentication,
/// so a `pong` proves a WebSocket reaches the server (a proxy that accepts
/// the upgrade and then drops the socket does not pass).
const PROBE_PING: &str = r#"{"type":"ping","ref":1}"#;

impl Inner {
    /// The current connection authenticated: on the fallback, a check of
    /// WebSockets is now scheduled.
    pub(super) fn link_up(self: &Rc<Self>) {
        self.link_ready.set(true);
        self.fallback.borrow_mut().ready(transport::now());
        self.schedule_probe();
    }

    /// Sets the check timer to the deadline of the check in progress, or
    /// to when the next check is due.
    fn schedule_probe(&self) {
        let at = self.probe_by.get().or_else(|| self.fallback.borrow().probe_at());
        if let Some(timer) = &*self.probe_timer.borrow() {
            match at {
                Some(at) => timer.set(at.saturating_sub(transport::now())),
                None => timer.clear(),
            }
        }
    }

    pub(super) fn on_probe_timer(self: &Rc<Self>) {
        let now = transport::now();
        if self.probe_by.get().is_some_and(|by| now >= by) {
            return self.probe_done(false);
        }
        let due = self.fallback.borrow().probe_at().is_some_and(|at| now >= at);
        if due && self.probe.borrow().is_none() {
            self.fallback.borrow_mut().probe_started();
            let generation = self.probe_gen.get();
            let weak = Rc::downgrade(self);
            let report = move |event| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_probe(generation, event);
                }
            };
            match Socket::open(fallback::probe_url(&self.url), report) {
                Ok(socket) => {
                    *self.probe.borrow_mut() = Some(socket);
                    let timeout = self.core.borrow().options().connect_timeout_ms;
                    self.probe_by.set(Some(now + timeout));
                }
                Err(_) => return self.probe_done(false),
            }
        }
        self.schedule_probe();
    }

    fn on_probe(self: &Rc<Self>, generation: u32, event: SocketEvent) {
        if generation != self.probe_gen.get() {
            return;
        }
        match event {
            SocketEvent::Open => {
                if let Some(probe) = &*self.probe.borrow() {
                    probe.send(PROBE_PING);
                }
            }
            // A byte search: `str::contains` with a string pattern links the
            // standard library's 3 KB substring searcher.
            SocketEvent::Text(text) => {
                self.probe_done(text.as_bytes().windows(6).any(|w| w == b"\"pong\""));
            }
            SocketEvent::Closed { .. } => self.probe_done(false),
        }
    }

    /// A check ended: on success, switch to WebSocket by reconnecting.
    fn probe_done(self: &Rc<Self>, through: bool) {
        if let Some(probe) = self.stop_probe() {
            probe.close(1000, "checked");
        }
        if self.fallback.borrow_mut().probed(through, transport::now()) {
            self.core.borrow_mut().reconnect(transport::now());
            self.pump();
        }
        self.schedule_probe();
    }

    /// Abandons the check in progress, if any (dropped in a later task).
    pub(super) fn stop_probe(&self) -> Option<Retired> {
        self.probe_gen.set(self.probe_gen.get() + 1);
        self.probe_by.set(None);
        self.probe.borrow_mut().take().map(|s| Retired(Some(Link::Socket(s))))
    }
}
