//! The end of a session: what the connection did on this instance and in the
//! engine is undone (hub, personal room, typing, membership and presence
//! after the grace period), whichever way its task ends.
//!
//! `Session::close` runs the teardown when the connection closes. When the
//! task ends any other way (a panic in a handler, the task dropped), the
//! session's `Drop` hands the same teardown to a new task: a connection that
//! stayed in the hub would count against its user's connection limit and
//! show them online forever.

use std::collections::HashSet;
use std::sync::Arc;

use roomcast_shared::{CloseCode, RoomName};

use super::chat::broadcast_typing;
use super::presence::expire;
use super::{Authed, Session};
use crate::hub::{Conn, Outbound};
use crate::state::AppState;

/// What an authenticated session leaves to undo.
pub(super) struct Teardown {
    state: AppState,
    conn: Arc<Conn>,
    authed: Authed,
    /// Rooms joined with `join` (the personal room is in `authed`).
    rooms: HashSet<RoomName>,
    /// Rooms where the connection was typing: told it stopped.
    typing: Vec<RoomName>,
}

impl Session {
    /// Takes out what must be undone, leaving a session with nothing to undo
    /// (`None` if it never authenticated: nothing was registered).
    pub(super) fn teardown(&mut self) -> Option<Teardown> {
        let authed = self.user.take()?;
        Some(Teardown {
            state: self.state.clone(),
            conn: self.conn.clone(),
            authed,
            rooms: std::mem::take(&mut self.rooms),
            typing: std::mem::take(&mut self.typing).into_keys().collect(),
        })
    }
}

impl Drop for Session {
    /// The drop guard: reached with something to undo only when the task
    /// ended without `close`.
    fn drop(&mut self) {
        let Some(teardown) = self.teardown() else { return };
        tracing::error!(user = ?teardown.authed.user.id, "connection ended abnormally; tidying up");
        let closing = Outbound::Close(CloseCode::GOING_AWAY, "internal error");
        teardown.conn.push(closing, &teardown.state.metrics);
        // No runtime (the process is ending): nothing is left to tidy for.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = teardown.state.tasks.clone();
            tasks.spawn_on(teardown.run(), &runtime);
        }
    }
}

impl Teardown {
    /// Out of the hub at once; membership and presence only after the grace
    /// period, so a reload does not flicker.
    pub(super) async fn run(self) {
        let Self { state, conn, authed, rooms, typing } = self;
        for room in &typing {
            broadcast_typing(&state, &authed, room, false).await;
        }
        let _ = state.engine.presence.connection_closed(&authed.user.id).await;
        state.engine.unregister(&conn, rooms.iter().chain([&authed.personal])).await;
        drop(conn);
        let mut rooms: Vec<RoomName> = rooms.into_iter().collect();
        rooms.push(authed.personal);
        let grace = state.config.timing.presence_grace;
        state.tasks.clone().spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                // Shutting down: every other member is leaving too.
                () = state.shutdown.cancelled() => return,
            }
            if let Err(err) = expire(&state, &authed.user, &rooms).await {
                tracing::warn!(user = ?authed.user.id, %err, "presence expiry failed");
            }
        });
    }
}
