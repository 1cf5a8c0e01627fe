//! Presence as the session sees it: `presence` (a status set by the
//! user), the announcement of a user coming online or going offline to
//! every room they are in (gathered into each room's next `presence_diff`,
//! `engine/diffs.rs`), and the end of a closed connection's grace period.
//! What is counted and kept is the engine's presence role
//! (`engine/presence.rs`).

use roomcast_shared::{Presence, RoomName, SetStatus, UserInfo};

use super::{Session, rooms};
use crate::engine::MemberChange;
use crate::error::FrameError;
use crate::state::AppState;

impl Session {
    /// `presence`: sets the user's status and tells everyone who shares a
    /// room with them.
    pub(super) async fn set_status(
        &mut self,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<(), FrameError> {
        let user_id = self.authed()?.user.id.clone();
        let max = self.state.config.limits.max_custom_status_bytes;
        if custom.as_ref().is_some_and(|c| c.len() > max) {
            return Err(FrameError::Reply(
                roomcast_shared::ErrorCode::TooLarge,
                format!("custom status is limited to {max} bytes"),
            ));
        }
        let presence = self.state.engine.presence.set_status(&user_id, status, custom).await?;
        self.announce_presence(presence).await
    }

    /// Tells every room this user is in of its new presence.
    pub(super) async fn announce_presence(&self, presence: Presence) -> Result<(), FrameError> {
        announce_presence(&self.state, presence).await
    }
}

async fn announce_presence(state: &AppState, presence: Presence) -> Result<(), FrameError> {
    let rooms = state.engine.presence.rooms_of(&presence.user_id).await?;
    let change = MemberChange::Status { user_id: presence.user_id };
    state.engine.fanout.change(&rooms, change).await?;
    Ok(())
}

/// The end of a closed connection's grace period.
pub(super) async fn expire(
    state: &AppState,
    user: &UserInfo,
    rooms: &[RoomName],
) -> Result<(), FrameError> {
    if let Some(presence) = state.engine.presence.connection_expired(&user.id).await? {
        announce_presence(state, presence).await?;
    }
    for room in rooms {
        if state.engine.presence.remove_member(room, &user.id).await?.user {
            rooms::announce_left(state, room, user).await?;
        }
    }
    Ok(())
}
