//! Presence with a store: the engine's presence for everything but unread
//! notifications, which the store keeps for offline users (within the same
//! caps and age as the engine's), so they survive restarts.
//!
//! The engine counted connections and kept notifications atomically; the
//! store cannot share its lock, so the two are ordered instead. A
//! connection is counted in before it takes what is kept, and a notifier
//! that kept one looks again afterwards and takes it itself if the user
//! connected meanwhile. A take is one `DELETE ... RETURNING`, so whichever
//! takes a notification delivers it: none is both kept and delivered, and
//! none is left behind while the user is online.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::{
    Member, Notification, Presence as UserPresence, RoomName, SetStatus, UserInfo,
};

use crate::engine::{Counted, Departures, EngineError, MemberKey, MemberPage, Opened, Presence};
use crate::store::{Store, StoreError, UnreadCaps};

/// The engine's presence (built to keep no notifications) with the store's
/// unread notifications.
#[derive(Debug)]
pub(crate) struct DurablePresence {
    pub inner: Arc<dyn Presence>,
    pub store: Arc<dyn Store>,
    pub caps: UnreadCaps,
}

/// What the client is told when the database fails (the error is logged).
pub(super) fn unavailable(err: &StoreError) -> EngineError {
    tracing::error!(%err, "database failed");
    EngineError::Unavailable("the database is unavailable; retry".into())
}

impl DurablePresence {
    /// Takes what is kept for `user_id` and delivers it to their open
    /// connections; keeps again what finds none (they left meanwhile).
    async fn deliver_kept(&self, user_id: &str) -> Result<(), EngineError> {
        let kept = self
            .store
            .take_notifications(user_id, self.caps.max_age)
            .await
            .map_err(|e| unavailable(&e))?;
        for notification in kept {
            if !self.inner.notify(user_id, notification.clone()).await? {
                self.store
                    .keep_notification(user_id, &notification, &self.caps)
                    .await
                    .map_err(|e| unavailable(&e))?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Presence for DurablePresence {
    fn on_departures(&self, listener: Departures) {
        self.inner.on_departures(listener);
    }

    async fn add_member(&self, room: &RoomName, user: &UserInfo) -> Result<Counted, EngineError> {
        self.inner.add_member(room, user).await
    }

    async fn remove_member(&self, room: &RoomName, user_id: &str) -> Result<Counted, EngineError> {
        self.inner.remove_member(room, user_id).await
    }

    async fn members_page(
        &self,
        room: &RoomName,
        after: Option<&MemberKey>,
        limit: usize,
    ) -> Result<MemberPage, EngineError> {
        self.inner.members_page(room, after, limit).await
    }

    async fn members_now(
        &self,
        room: &RoomName,
        user_ids: &[String],
    ) -> Result<(u64, Vec<Option<Member>>), EngineError> {
        self.inner.members_now(room, user_ids).await
    }

    async fn rooms_of(&self, user_id: &str) -> Result<Vec<RoomName>, EngineError> {
        self.inner.rooms_of(user_id).await
    }

    async fn connection_opened(&self, user: &UserInfo) -> Result<Opened, EngineError> {
        let mut opened = self.inner.connection_opened(user).await?;
        let kept = self
            .store
            .take_notifications(&user.id, self.caps.max_age)
            .await
            .map_err(|e| unavailable(&e))?;
        opened.unread.extend(kept);
        Ok(opened)
    }

    async fn connection_closed(&self, user_id: &str) -> Result<(), EngineError> {
        self.inner.connection_closed(user_id).await
    }

    async fn connection_expired(&self, user_id: &str) -> Result<Option<UserPresence>, EngineError> {
        self.inner.connection_expired(user_id).await
    }

    async fn set_status(
        &self,
        user_id: &str,
        status: SetStatus,
        custom: Option<String>,
    ) -> Result<UserPresence, EngineError> {
        self.inner.set_status(user_id, status, custom).await
    }

    async fn connected(&self, user_id: &str) -> Result<bool, EngineError> {
        self.inner.connected(user_id).await
    }

    async fn presence(&self, user_id: &str) -> Result<UserPresence, EngineError> {
        self.inner.presence(user_id).await
    }

    async fn online_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(u64, Vec<UserPresence>), EngineError> {
        self.inner.online_users(after, limit).await
    }

    async fn notify(&self, user_id: &str, notification: Notification) -> Result<bool, EngineError> {
        if self.inner.notify(user_id, notification.clone()).await? {
            return Ok(true);
        }
        let kept = self
            .store
            .keep_notification(user_id, &notification, &self.caps)
            .await
            .map_err(|e| unavailable(&e))?;
        if kept && self.inner.connected(user_id).await? {
            // Connected while it was being kept, after taking what was kept
            // before: it would wait for the next connection otherwise.
            self.deliver_kept(user_id).await?;
        }
        Ok(false)
    }
}
