//! The shared store for many instances: a PostgreSQL database, migrations
//! from `migrations/postgres/` applied when it connects (sqlx takes an
//! advisory lock, so instances starting together migrate once).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Pool, Postgres, Transaction};

use super::StoreError;
use super::sql::StoredRooms;

/// Connections per instance.
const CONNECTIONS: u32 = 8;

/// How long getting a connection may take before the call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: Pool<Postgres>,
    rooms: Arc<StoredRooms>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and brings the
    /// schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        // One connection first, so that a wrong address or password fails
        // at once with its own error (the pool would retry until its
        // timeout and report only that).
        let options: PgConnectOptions = url.parse()?;
        let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        probe.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let store = Self { pool, rooms: Arc::default() };
        store.finish_erase_upgrade().await?;
        Ok(store)
    }

    /// A transaction; the room rows it updates stay locked until it ends.
    async fn begin_write(&self) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Closes the pool, waiting for connections in use
    /// ([`Store::close`](super::Store::close)).
    pub(super) async fn close_pools(&self) {
        self.pool.close().await;
    }
}

super::sql::sql_store!(PostgresStore, Postgres, " FOR UPDATE", "INSERT INTO");
