//! `join`, `leave`, `history` and `members`: entering rooms, reading their
//! past and paging through who is in them.

use roomcast_shared::frame::{Joined, MAX_JOINED_READS};
use roomcast_shared::{MAX_HISTORY_LIMIT, Position, Ref, RoomName, ServerFrame, UserInfo};

use super::{Flow, Session};
use crate::engine::{MemberChange, page_request};
use crate::error::FrameError;
use crate::hub::encode_reply;
use crate::moderation::SanctionKind;
use crate::state::AppState;

/// Messages a `history` request returns when it gives no `limit`.
const DEFAULT_HISTORY_LIMIT: u16 = 50;

fn check_limit(limit: u16, field: &str) -> Result<usize, FrameError> {
    if limit > MAX_HISTORY_LIMIT {
        return Err(FrameError::bad_request(format!(
            "{field} must be at most {MAX_HISTORY_LIMIT}"
        )));
    }
    Ok(usize::from(limit))
}

impl Session {
    /// Checks the room rules for this connection's token.
    fn may_join(&self, room: &RoomName) -> Result<(), FrameError> {
        let authed = self.authed()?;
        authed
            .access()
            .may_join(room)
            .map_err(|denied| FrameError::forbidden(denied.to_string()))?;
        self.ensure_not_banned(room)
    }

    fn ensure_not_banned(&self, room: &RoomName) -> Result<(), FrameError> {
        if self.state.hub.sanctions.has(room, &self.authed()?.user.id, SanctionKind::Ban) {
            return Err(FrameError::forbidden(format!("you are banned from {room}")));
        }
        Ok(())
    }

    /// Refuses a muted user's `send`, `edit` and `typing` in `room`.
    pub(super) fn ensure_not_muted(&self, room: &RoomName) -> Result<(), FrameError> {
        let user_id = &self.authed()?.user.id;
        if self.state.hub.sanctions.has(room, user_id, SanctionKind::Mute) {
            return Err(FrameError::forbidden(format!(
                "you are muted in {room}: you can read, not send"
            )));
        }
        Ok(())
    }

    /// The hub says the server took this connection out of rooms
    /// (`moderation.rs`): each is left as if the client had asked, with a
    /// `left` without a `ref`.
    pub async fn on_nudge(&mut self) -> Flow {
        if self.settle().await == Flow::Stop {
            return Flow::Stop;
        }
        for room in self.state.hub.take_evictions(self.conn.id) {
            if !self.rooms.contains(&room) {
                continue;
            }
            if let Err(err) = self.leave(None, room).await {
                tracing::debug!(%err, "removal from a room failed");
            }
        }
        Flow::Continue
    }

    /// Whether the connection has joined `room` (its personal room counts).
    pub(super) fn ensure_joined(&self, room: &RoomName) -> Result<&super::Authed, FrameError> {
        let authed = self.authed()?;
        if self.rooms.contains(room) || *room == authed.personal {
            Ok(authed)
        } else {
            Err(FrameError::forbidden(format!("join {room} first")))
        }
    }

    pub(super) async fn join(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        since: Option<Position>,
        history: Option<u16>,
        member_events: bool,
    ) -> Result<(), FrameError> {
        self.may_join(&room)?;
        let history = check_limit(history.unwrap_or(0), "history")?;
        let max_rooms = self.state.config.limits.rooms_per_connection;
        if !self.rooms.contains(&room)
            && room != self.authed()?.personal
            && self.rooms.len() >= max_rooms
        {
            return Err(FrameError::forbidden(format!(
                "a connection may be in at most {max_rooms} rooms"
            )));
        }
        let was_member = self.rooms.contains(&room) || room == self.authed()?.personal;
        let hub = self.state.hub.clone();
        let prepared =
            self.prepare_joined(reference, &room, since.as_ref(), history, member_events).await;
        // A ban is recorded before its evictions look for the room's
        // connections: one that arrived while this join was under way is
        // either seen here or finds this connection in the room.
        let prepared = prepared.and_then(|ok| self.ensure_not_banned(&room).map(|()| ok));
        match prepared {
            Ok((joined, replayed_to)) => {
                hub.finish_join(&room, &self.conn, Some(joined), replayed_to);
                Ok(())
            }
            Err(err) if was_member => {
                hub.finish_join(&room, &self.conn, None, 0);
                Err(err)
            }
            Err(err) => {
                self.state.engine.leave(&room, &self.conn).await;
                if self.rooms.remove(&room) {
                    let user_id = self.authed()?.user.id.clone();
                    let _ = self.state.engine.presence.remove_member(&room, &user_id).await;
                }
                Err(err)
            }
        }
    }

    /// Enters the room on this instance, counts the membership in and
    /// builds the `joined` reply.
    async fn prepare_joined(
        &mut self,
        reference: Option<Ref>,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
        member_events: bool,
    ) -> Result<(tungstenite::Utf8Bytes, u64), FrameError> {
        let engine = &self.state.engine;
        // From here on, the room's frames for this connection wait until the
        // `joined` reply is queued (see `Hub::finish_join`). Entered before
        // the snapshot is read, so nothing published after the snapshot can
        // be missed (what both contain, the hub drops).
        engine.enter(room, &self.conn, member_events).await?;
        let user = self.authed()?.user.clone();
        let personal = *room == self.authed()?.personal;
        if !personal && !self.rooms.contains(room) {
            if engine.presence.add_member(room, &user).await?.user {
                // Announced with the window's other changes (`engine/diffs.rs`):
                // the others' cost of this join does not grow with the room.
                let change = MemberChange::Joined { user };
                engine.fanout.change(std::slice::from_ref(room), change).await?;
            }
            self.rooms.insert(room.clone());
        }
        let snapshot = engine.streams.snapshot(room, since, history).await?;
        let first_page = self.state.config.limits.joined_members;
        let page = engine.presence.members_page(room, None, first_page).await?;
        let reads = engine.streams.reads(room, MAX_JOINED_READS).await?;
        let joined = Joined {
            room: room.clone(),
            epoch: snapshot.epoch,
            offset: snapshot.offset,
            count: page.count,
            members: page.members,
            cursor: page.next.map(|key| key.cursor()),
            messages: snapshot.events,
            recovered: snapshot.recovered,
            reads,
        };
        Ok((encode_reply(reference, ServerFrame::Joined(joined)), snapshot.offset))
    }

    pub(super) async fn leave(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
    ) -> Result<(), FrameError> {
        let authed = self.authed()?;
        if room == authed.personal {
            return Err(FrameError::forbidden(
                "the personal room cannot be left: notifications arrive there",
            ));
        }
        let user = authed.user.clone();
        if self.rooms.remove(&room) {
            self.stop_typing(&room).await;
            self.state.engine.leave(&room, &self.conn).await;
            if self.state.engine.presence.remove_member(&room, &user.id).await?.user {
                announce_left(&self.state, &room, &user).await?;
            }
        }
        // Leaving a room one is not in is not an error: the result is the same.
        self.reply(reference, ServerFrame::Left { room });
        Ok(())
    }

    /// `members`: a page of a joined room's members.
    pub(super) async fn members(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        cursor: Option<String>,
        limit: Option<u16>,
    ) -> Result<(), FrameError> {
        self.ensure_joined(&room)?;
        let (after, limit) = page_request(cursor.as_deref(), limit)
            .map_err(|err| FrameError::bad_request(err.to_string()))?;
        let page = self.state.engine.presence.members_page(&room, after.as_ref(), limit).await?;
        self.reply(reference, ServerFrame::Members(page.into_wire(room)));
        Ok(())
    }

    pub(super) async fn history(
        &mut self,
        reference: Option<Ref>,
        room: RoomName,
        before: Option<u64>,
        limit: Option<u16>,
    ) -> Result<(), FrameError> {
        self.may_join(&room)?;
        let limit = check_limit(limit.unwrap_or(DEFAULT_HISTORY_LIMIT), "limit")?;
        let page = self.state.engine.streams.history(&room, before, limit).await?;
        self.reply(
            reference,
            ServerFrame::History { room, messages: page.messages, has_more: page.has_more },
        );
        Ok(())
    }
}

/// Tells a room that a user's last connection left it (with the window's
/// other changes).
pub(super) async fn announce_left(
    state: &AppState,
    room: &RoomName,
    user: &UserInfo,
) -> Result<(), FrameError> {
    let change = MemberChange::Left { user: user.clone() };
    state.engine.fanout.change(std::slice::from_ref(room), change).await?;
    Ok(())
}
