//! Fan-out in one process: the hub holds every connection, so there is
//! nothing to watch and a broadcast is a delivery.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_shared::RoomName;

use crate::engine::{EngineError, Fanout, MemberChange};
use crate::hub::{Delivery, Exclude, Hub};
use crate::moderation::Control;

/// The in-memory fan-out: straight to the hub.
#[derive(Debug)]
pub(crate) struct MemoryFanout {
    pub hub: Arc<Hub>,
}

#[async_trait]
impl Fanout for MemoryFanout {
    async fn watch(&self, _room: &RoomName) -> Result<(), EngineError> {
        Ok(())
    }

    async fn unwatch(&self, _room: &RoomName) {}

    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError> {
        self.hub.deliver_many(rooms, &delivery, &exclude);
        Ok(())
    }

    async fn change(&self, rooms: &[RoomName], change: MemberChange) -> Result<(), EngineError> {
        self.hub.offer_change(rooms, &change);
        Ok(())
    }

    async fn control(&self, control: &Control) -> Result<(), EngineError> {
        self.hub.control(control);
        Ok(())
    }
}
