//! The embedded store: one SQLite file, in WAL mode with a sync on every
//! commit (nothing acknowledged is lost in a power cut), migrations from
//! `migrations/sqlite/` applied when it opens.
//!
//! The group committer writes through a connection of its own: SQLite
//! drops a connection's page cache whenever another connection has written
//! since its last transaction, so a committer taking whichever pooled
//! connection is free would read most of its pages again from the WAL at
//! every commit.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use super::StoreError;

/// How long a writer waits for another's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: readers (and the occasional other writer) run
/// beside the committer's own connection (WAL).
const CONNECTIONS: u32 = 4;

/// How much of the file is read through a memory mapping (address space,
/// not memory: the kernel's page cache backs it).
const MMAP_BYTES: u64 = 1 << 30;

/// Each connection's page cache, in KiB.
const CACHE_KIB: u64 = 16 * 1024;

/// WAL pages (4 KiB) after which a commit copies them into the database:
/// 160 MiB of WAL at most between checkpoints (SQLite's default is 1,000).
/// Under load a page is rewritten by many commits and copied once per
/// checkpoint: in the mesh benchmark, 40,000 pages halve the p90 of
/// 10,000 (docs/performance.md, "What would close the gap", item 7).
const WAL_CHECKPOINT_PAGES: u32 = 40_000;

/// The store in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: Pool<Sqlite>,
    /// The committer's connection ([`SqliteStore::begin_write`]), alone in
    /// its pool so that its page cache stays valid from one commit to the
    /// next.
    writer: Pool<Sqlite>,
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
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string())
            // Statement journals (the pages a multi-row statement changed,
            // kept until it ends so that a failing one can be undone) in
            // memory: spilled, each commit's inserts created, wrote and
            // deleted a temporary file. They play no part in durability.
            .pragma("temp_store", "MEMORY");
        let pool = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = Self { pool, writer };
        store.finish_erase_upgrade().await?;
        Ok(store)
    }

    /// A transaction that takes the write lock at once: a deferred one that
    /// reads first could not upgrade while another writer commits (SQLite
    /// answers "database is locked" without waiting).
    async fn begin_write(&self) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

super::sql::sql_store!(SqliteStore, Sqlite, "", "INSERT OR FAIL INTO");
