//! Bans and mutes kept in Redis, for a deployment without a store: one
//! hash whose fields are the sanctions (as JSON), so they live as long as
//! Redis keeps its data, and every instance loads them when it starts.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::Store;
use super::keys::SANCTIONS;
use crate::engine::EngineError;
use crate::moderation::{Keeper, Sanction};

/// The Redis [`Keeper`].
#[derive(Debug)]
pub(super) struct RedisKeeper(pub Arc<Store>);

#[async_trait]
impl Keeper for RedisKeeper {
    async fn keep(&self, sanction: &Sanction, on: bool) -> Result<bool, EngineError> {
        let field = serde_json::to_string(sanction).unwrap_or_default();
        let mut conn = self.0.conn();
        let changed: u64 = if on {
            self.0.exec(conn.hset(SANCTIONS, field, 1)).await?
        } else {
            self.0.exec(conn.hdel(SANCTIONS, field)).await?
        };
        Ok(changed > 0)
    }

    async fn load(&self) -> Result<Vec<Sanction>, EngineError> {
        let fields: Vec<String> = self.0.exec(self.0.conn().hkeys(SANCTIONS)).await?;
        // A field this version cannot read is skipped rather than failing
        // the start.
        Ok(fields.iter().filter_map(|field| serde_json::from_str(field).ok()).collect())
    }
}
