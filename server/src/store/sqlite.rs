//! The embedded store: one SQLite file, in WAL mode with a sync on every
//! commit (nothing acknowledged is lost in a power cut), migrations from
//! `migrations/sqlite/` applied when it opens.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use super::StoreError;

/// How long a writer waits for another's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: readers run beside the one writer (WAL).
const CONNECTIONS: u32 = 4;

/// How much of the file is read through a memory mapping (address space,
/// not memory: the kernel's page cache backs it).
const MMAP_BYTES: u64 = 1 << 30;

/// Each connection's page cache, in KiB.
const CACHE_KIB: u64 = 16 * 1024;

/// WAL pages (4 KiB) after which a commit copies them into the database:
/// 40 MiB of WAL at most between checkpoints (SQLite's default is 1,000).
const WAL_CHECKPOINT_PAGES: u32 = 10_000;

/// The store in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: Pool<Sqlite>,
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `url` (`sqlite://path`
    /// or `sqlite:path`) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::with_options(SqliteConnectOptions::from_str(url)?).await
    }

    /// Opens (creating when missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::with_options(SqliteConnectOptions::new().filename(path)).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Pages read through a shared mapping, not copied by read():
            // a batch touches index pages all over the file.
            .pragma("mmap_size", MMAP_BYTES.to_string())
            .pragma("cache_size", format!("-{}", CACHE_KIB))
            // Checkpoints less often: an index page rewritten by many
            // commits is copied into the database once per checkpoint.
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string());
        let pool =
            SqlitePoolOptions::new().max_connections(CONNECTIONS).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A transaction that takes the write lock at once: a deferred one that
    /// reads first could not upgrade while another writer commits (SQLite
    /// answers "database is locked" without waiting).
    async fn begin_write(&self) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

super::sql::sql_store!(SqliteStore, Sqlite, "");
