//! The webhook outbox: events waiting to be POSTed, one row per event and
//! endpoint. A room event's rows are written by [`Store::append_recorded`]
//! in the transaction that stores the event, so an event acknowledged to a
//! client reaches the webhook even if the process dies right after; live
//! events (joins, presence, reads...) are written as they happen
//! ([`Outbox::enqueue`]). A delivered row is deleted; one that failed too
//! often is kept as a dead letter until replayed or expired.
//!
//! One SQL text for both stores, expanded by [`outbox_sql!`] as `sql.rs`
//! does for the rest of the store.
//!
//! [`Store::append_recorded`]: super::Store::append_recorded

use async_trait::async_trait;
use roomcast_shared::RoomEvent;
use time::OffsetDateTime;

use super::StoreError;

/// One event for one endpoint, as it waits in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The endpoint's URL (its name in the outbox).
    pub endpoint: String,
    /// The room the event is about; empty for a user's event. Deliveries
    /// of one room go in order.
    pub room: String,
    /// The event's id (the same for every endpoint).
    pub event_id: String,
    /// The event type.
    pub kind: &'static str,
    /// The exact body POSTed.
    pub body: String,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The message whose text the event carries (`message`,
    /// `message_updated`), so that its delete erases the row too.
    pub message_id: Option<String>,
}

/// A row waiting for delivery (or dead), as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The row's place in the outbox: rows of a room are delivered in this
    /// order.
    pub seq: i64,
    pub room: String,
    pub event_id: String,
    pub kind: String,
    pub body: String,
    /// When the event happened (Unix milliseconds).
    pub at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// A dead letter: a row whose deliveries all failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub endpoint: String,
    pub row: Pending,
    /// Why the last attempt failed.
    pub error: String,
}

/// How much waits in the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Rows waiting for delivery.
    pub pending: u64,
    /// When the oldest of them happened (Unix milliseconds).
    pub oldest_at: Option<i64>,
    /// Dead letters.
    pub dead: u64,
}

/// The rows the outbox keeps for a room event: what
/// [`Store::append_recorded`](super::Store::append_recorded) writes with it.
pub trait EventRows: Send + Sync {
    /// Adds the rows for `event`, which happened `at`, to `rows`.
    fn rows_for(&self, event: &RoomEvent, at: OffsetDateTime, rows: &mut Vec<OutboxRow>);

    /// The transaction holding the rows committed.
    fn committed(&self) {}
}

/// No webhook: no row.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWebhooks;

impl EventRows for NoWebhooks {
    fn rows_for(&self, _: &RoomEvent, _: OffsetDateTime, _: &mut Vec<OutboxRow>) {}
}

/// The outbox's rows and its delivery lease.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Writes rows of live events, in one transaction.
    async fn enqueue(&self, rows: &[OutboxRow]) -> Result<(), StoreError>;

    /// `endpoint`'s rows waiting for delivery (not dead) after `after`, in
    /// outbox order, at most `limit`.
    async fn pending(
        &self,
        endpoint: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Pending>, StoreError>;

    /// The body row `seq` holds now (a delete may have erased it since it
    /// was read), or `None` when the row is gone.
    async fn body(&self, seq: i64) -> Result<Option<String>, StoreError>;

    /// Deletes delivered rows.
    async fn delivered(&self, seqs: &[i64]) -> Result<(), StoreError>;

    /// Records a failed attempt at row `seq`: its count and why, and
    /// whether the row is dead now.
    async fn failed(
        &self,
        seq: i64,
        attempts: u32,
        error: &str,
        dead: bool,
    ) -> Result<(), StoreError>;

    /// Dead letters after `after` in outbox order, at most `limit`, of one
    /// endpoint or of all.
    async fn dead_letters(
        &self,
        endpoint: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// Puts dead letters of `endpoints` back in line with no attempt
    /// counted: those of `seqs`, or every one. Returns how many.
    async fn replay(&self, endpoints: &[&str], seqs: Option<&[i64]>) -> Result<u64, StoreError>;

    /// Dead-letters the rows waiting for an endpoint not in `endpoints`
    /// (one removed from the configuration): nothing would deliver them.
    /// Returns how many.
    async fn orphan(&self, endpoints: &[&str]) -> Result<u64, StoreError>;

    /// Deletes dead letters that happened before `before`.
    async fn prune_dead(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// How much waits.
    async fn depth(&self) -> Result<Depth, StoreError>;

    /// Takes or renews the delivery lease for `owner` until `until` (Unix
    /// milliseconds): true when `owner` holds it (no other holder, or the
    /// other's expired by `now`). One instance delivers at a time, so a
    /// room's events go out in order.
    async fn lease(&self, owner: &str, now: i64, until: i64) -> Result<bool, StoreError>;

    /// Gives up `owner`'s lease (at shutdown), so another instance takes
    /// over at once rather than when it expires.
    async fn release(&self, owner: &str) -> Result<(), StoreError>;
}

/// Rows written per statement: within SQLite's limit on parameters (7
/// each).
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// Inserts `$rows` (a slice of [`OutboxRow`]) on `$conn` in statements of
/// [`ROWS_PER_STATEMENT`], as the store's other batches go in
/// ([`Rows::push_rows`](super::rows::Rows::push_rows)).
macro_rules! insert_rows {
    ($conn:expr, $db:ty, $rows:expr) => {{
        use $crate::store::rows::{Column, Rows as _};
        for chunk in $rows.chunks($crate::store::outbox::ROWS_PER_STATEMENT) {
            let mut query = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO webhook_outbox (endpoint, room, event_id, kind, body, at, message_id) ",
            );
            let columns = vec![
                Column::text(chunk, |r| r.endpoint.as_str()),
                Column::text(chunk, |r| r.room.as_str()),
                Column::text(chunk, |r| r.event_id.as_str()),
                Column::text(chunk, |r| r.kind),
                Column::text(chunk, |r| r.body.as_str()),
                Column::Int(chunk.iter().map(|r| $crate::store::millis(r.at)).collect()),
                Column::MaybeText(chunk.iter().map(|r| r.message_id.as_deref()).collect()),
            ];
            <$db>::push_rows(&mut query, columns);
            query.build().execute(&mut *$conn).await?;
        }
    }};
}

/// Implements [`Outbox`] for `$store`, whose field `pool` is a
/// `sqlx::Pool<$db>`.
macro_rules! outbox_sql {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::outbox::Outbox for $store {
            async fn enqueue(
                &self,
                rows: &[$crate::store::outbox::OutboxRow],
            ) -> Result<(), $crate::store::StoreError> {
                if rows.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                $crate::store::outbox::insert_rows!(tx, $db, rows);
                tx.commit().await?;
                Ok(())
            }

            async fn pending(
                &self,
                endpoint: &str,
                after: i64,
                limit: usize,
            ) -> Result<Vec<$crate::store::outbox::Pending>, $crate::store::StoreError> {
                let rows = sqlx::query(
                    "SELECT seq, room, event_id, kind, body, at, attempts FROM webhook_outbox \
                     WHERE endpoint = $1 AND NOT dead AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(endpoint)
                .bind(after)
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|row| Ok($crate::store::outbox::pending(row)?)).collect()
            }

            async fn body(&self, seq: i64) -> Result<Option<String>, $crate::store::StoreError> {
                let body = sqlx::query_scalar("SELECT body FROM webhook_outbox WHERE seq = $1")
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(body)
            }

            async fn delivered(&self, seqs: &[i64]) -> Result<(), $crate::store::StoreError> {
                for chunk in seqs.chunks($crate::store::outbox::ROWS_PER_STATEMENT) {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new("DELETE FROM webhook_outbox WHERE seq IN (");
                    let mut list = query.separated(", ");
                    for seq in chunk {
                        list.push_bind(*seq);
                    }
                    query.push(")");
                    query.build().execute(&self.pool).await?;
                }
                Ok(())
            }

            async fn failed(
                &self,
                seq: i64,
                attempts: u32,
                error: &str,
                dead: bool,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(
                    "UPDATE webhook_outbox SET attempts = $2, error = $3, dead = $4 WHERE seq = $1",
                )
                .bind(seq)
                .bind(i64::from(attempts))
                .bind(error)
                .bind(dead)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn dead_letters(
                &self,
                endpoint: Option<&str>,
                after: i64,
                limit: usize,
            ) -> Result<Vec<$crate::store::outbox::DeadLetter>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT seq, room, event_id, kind, body, at, attempts, endpoint, error \
                     FROM webhook_outbox WHERE dead AND seq > $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR endpoint = $2) ORDER BY seq LIMIT $3",
                )
                .bind(after)
                .bind(endpoint)
                .bind($crate::store::to_db(limit as u64))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::store::outbox::DeadLetter {
                            row: $crate::store::outbox::pending(row)?,
                            endpoint: row.try_get(7)?,
                            error: row.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
                        })
                    })
                    .collect()
            }

            async fn replay(
                &self,
                endpoints: &[&str],
                seqs: Option<&[i64]>,
            ) -> Result<u64, $crate::store::StoreError> {
                let mut replayed = 0;
                let all = [];
                let chunks: Box<dyn Iterator<Item = &[i64]> + Send> = match seqs {
                    Some(seqs) => {
                        Box::new(seqs.chunks($crate::store::outbox::ROWS_PER_STATEMENT))
                    }
                    None => Box::new(std::iter::once(&all[..])),
                };
                for chunk in chunks {
                    if endpoints.is_empty() {
                        break;
                    }
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE webhook_outbox SET dead = FALSE, attempts = 0 \
                         WHERE dead AND endpoint IN (",
                    );
                    let mut list = query.separated(", ");
                    for endpoint in endpoints {
                        list.push_bind(*endpoint);
                    }
                    query.push(")");
                    if seqs.is_some() {
                        query.push(" AND seq IN (");
                        let mut list = query.separated(", ");
                        for seq in chunk {
                            list.push_bind(*seq);
                        }
                        query.push(")");
                    }
                    replayed += query.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(replayed)
            }

            async fn orphan(&self, endpoints: &[&str]) -> Result<u64, $crate::store::StoreError> {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE webhook_outbox SET dead = TRUE, \
                     error = 'the webhook URL is no longer configured' WHERE NOT dead",
                );
                if !endpoints.is_empty() {
                    query.push(" AND endpoint NOT IN (");
                    let mut list = query.separated(", ");
                    for endpoint in endpoints {
                        list.push_bind(*endpoint);
                    }
                    query.push(")");
                }
                Ok(query.build().execute(&self.pool).await?.rows_affected())
            }

            async fn prune_dead(
                &self,
                before: time::OffsetDateTime,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query("DELETE FROM webhook_outbox WHERE dead AND at < $1")
                    .bind($crate::store::millis(before))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn depth(
                &self,
            ) -> Result<$crate::store::outbox::Depth, $crate::store::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT COUNT(*) FILTER (WHERE NOT dead), MIN(at) FILTER (WHERE NOT dead), \
                     COUNT(*) FILTER (WHERE dead) FROM webhook_outbox",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::store::outbox::Depth {
                    pending: $crate::store::from_db(row.try_get(0)?),
                    oldest_at: row.try_get(1)?,
                    dead: $crate::store::from_db(row.try_get(2)?),
                })
            }

            async fn lease(
                &self,
                owner: &str,
                now: i64,
                until: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(
                    "INSERT INTO webhook_lease (name, owner, until) VALUES ('delivery', $1, $2) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
                     until = excluded.until \
                     WHERE webhook_lease.owner = excluded.owner OR webhook_lease.until < $3",
                )
                .bind(owner)
                .bind(until)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release(&self, owner: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE webhook_lease SET until = 0 WHERE owner = $1")
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}

/// Reads a [`Pending`] from the first seven columns of `row` (`seq, room,
/// event_id, kind, body, at, attempts`).
pub(crate) fn pending<R: sqlx::Row>(row: &R) -> Result<Pending, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let attempts: i64 = row.try_get(6)?;
    Ok(Pending {
        seq: row.try_get(0)?,
        room: row.try_get(1)?,
        event_id: row.try_get(2)?,
        kind: row.try_get(3)?,
        body: row.try_get(4)?,
        at: row.try_get(5)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

pub(crate) use insert_rows;

outbox_sql!(super::SqliteStore, sqlx::Sqlite);
outbox_sql!(super::PostgresStore, sqlx::Postgres);
