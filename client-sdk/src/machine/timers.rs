//! What happens as time passes: reconnect attempts, connect and pong
//! timeouts, pings, the stable-connection reset, token refresh, typing
//! pauses. The host calls [`Core::tick`] at [`Core::next_deadline`].

use roomcast_shared::ClientFrame;

use super::{Core, Fetch, LOST, Phase, Request, TokenSource};
use crate::effect::{ConnectionState, Effect};

impl Core {
    /// The browser came back online, or the tab became visible: retry at
    /// once if waiting, and check an open connection with a ping.
    pub fn wake(&mut self, now: u64) {
        if self.state == ConnectionState::Reconnecting && self.conn.is_none() {
            self.retry_at = Some(now);
        } else if let Some(conn) = self.conn.as_mut().filter(|c| c.phase == Phase::Ready)
            && conn.pong_by.is_none()
        {
            conn.ping_at = Some(now);
        }
        self.tick(now);
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut at = [self.retry_at].into_iter().flatten().collect::<Vec<_>>();
        if let Some(c) = &self.conn {
            at.extend([c.deadline, c.ping_at, c.pong_by, c.stable_at].into_iter().flatten());
            if c.phase == Phase::Ready && self.source == TokenSource::Provider {
                at.extend(self.refresh_at);
            }
            if c.phase == Phase::Ready {
                at.extend(self.send_at);
                at.extend(self.join_at);
            }
        }
        at.extend(self.rooms.values().filter_map(|r| r.typing.deadline()));
        at.extend(self.outbox.next_retry());
        at.into_iter().min()
    }

    /// Runs whatever is due at `now`.
    pub fn tick(&mut self, now: u64) {
        self.clock = self.clock.max(now);
        if self.retry_at.is_some_and(|at| now >= at) && self.conn.is_none() {
            self.start_attempt(now);
        }
        if let Some(conn) = &mut self.conn {
            if conn.deadline.is_some_and(|at| now >= at) {
                self.effects.push(Effect::Close { code: 4000, reason: "connect timeout" });
                return self.disconnect(LOST, "connect timeout", now);
            }
            if conn.pong_by.is_some_and(|at| now >= at) {
                self.effects.push(Effect::Close { code: 4000, reason: "no pong" });
                return self.disconnect(LOST, "heartbeat timeout", now);
            }
            if conn.stable_at.is_some_and(|at| now >= at) {
                conn.stable_at = None;
                if self.attempts != 0 {
                    self.attempts = 0;
                    self.changed();
                }
            }
            if let Some(conn) = self.conn.as_mut().filter(|c| c.ping_at.is_some_and(|at| now >= at))
            {
                conn.ping_at = Some(now + conn.ping_every);
                conn.pong_by = Some(now + self.opts.pong_timeout_ms);
                self.request(Request::Ping, ClientFrame::Ping);
            }
            if self.is_ready()
                && self.source == TokenSource::Provider
                && self.fetching.is_none()
                && self.refresh_at.is_some_and(|at| now >= at)
            {
                self.refresh_at = None;
                self.fetching = Some(Fetch::Refresh);
                self.effects.push(Effect::FetchToken);
            }
        }
        if self.join_at.is_some_and(|at| now >= at) {
            self.flush_joins(now);
        }
        let retries_due = !self.outbox.due(now).is_empty();
        if retries_due || self.send_at.is_some_and(|at| now >= at) {
            self.send_at = None;
            self.flush_all(now);
        }
        let ready = self.is_ready();
        let mut typing_frames = Vec::new();
        for (name, room) in &mut self.rooms {
            if let Some(is_typing) = room.typing.tick(now)
                && ready
                && room.state.joined
            {
                typing_frames.push((name.clone(), is_typing));
            }
        }
        for (room, is_typing) in typing_frames {
            self.send_typing(&room, is_typing);
        }
    }
}
