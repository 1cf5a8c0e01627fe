//! The ids of ingested envelopes whose effect is not a stored message
//! (notifications and room events; see `crate::ingest`), so that a
//! redelivered envelope is recognised after a restart and on every
//! instance. One SQL text for both stores, expanded by [`ingest_log!`] as
//! `sql.rs` does for the rest of the store.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

/// Envelope ids recorded as applied.
#[async_trait]
pub trait IngestLog: Send + Sync {
    /// Whether envelope `id` was recorded as applied.
    async fn ingested(&self, id: &str) -> Result<bool, StoreError>;

    /// Records envelope `id` as applied at `at`; recording it again changes
    /// nothing.
    async fn record_ingested(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Forgets the ids recorded before `before`; returns how many.
    async fn prune_ingested(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Implements [`IngestLog`] for `$store`, whose field `pool` is a
/// `sqlx::Pool`.
macro_rules! ingest_log {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ingest::IngestLog for $store {
            async fn ingested(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                $crate::store::check_user(id)?;
                let found = sqlx::query("SELECT 1 FROM ingested WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(found.is_some())
            }

            async fn record_ingested(
                &self,
                id: &str,
                at: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                $crate::store::check_user(id)?;
                sqlx::query("INSERT INTO ingested (id, at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind($crate::store::millis(at))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn prune_ingested(
                &self,
                before: time::OffsetDateTime,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM ingested WHERE at < $1")
                    .bind($crate::store::millis(before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

ingest_log!(super::SqliteStore);
ingest_log!(super::PostgresStore);
