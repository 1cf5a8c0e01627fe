//! The embedded store: one SQLite file, in WAL mode with a sync on every
//! commit (nothing acknowledged is lost in a power cut), migrations from
//! `migrations/sqlite/` applied when it opens.
//!
//! The group committer writes through a connection of its own: SQLite
//! drops a connection's page cache whenever another connection has written
//! since its last transaction, so a committer taking whichever pooled
//! connection is free would read most of its pages again from the WAL at
//! every commit.
//!
//! Checkpoints (copying the WAL into the database file, so that the WAL can
//! start over) run on a connection of their own, beside the committer: a
//! checkpoint run by the committing connection held every send behind it
//! for as long as it copied and synced, 50 to 80 ms under load. The
//! background one copies the WAL as far as it reached when it started.
//! Under a load that never pauses it never reaches the WAL's end, so the
//! WAL could not start over; once it is long, the committer copies the few
//! commits made during the background's pass before its next transaction,
//! which then starts the WAL over.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use super::StoreError;
use super::sql::StoredRooms;

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

/// WAL pages (4 KiB) after which a commit copies them into the database
/// itself: 800 MiB, a bound reached only should the background checkpoint
/// fall behind (SQLite's default is 1,000 pages).
const WAL_CHECKPOINT_PAGES: u32 = 200_000;

/// How often the background checkpoint runs. Idle, it finds nothing to copy
/// and syncs nothing.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// WAL pages (400 MiB) past which the committer finishes a background
/// checkpoint, so that the WAL starts over. Each finish holds the commits
/// for a few milliseconds (a sync of the database file): under the mesh
/// benchmark's load (about 28,000 pages a second), finishing every second
/// kept the p99 over 20 ms and every four seconds brought it under
/// (docs/performance.md). A lighter load pauses often enough for a
/// background pass to reach the WAL's end now and then, which starts the
/// WAL over as well.
const WAL_RESTART_PAGES: i64 = 100_000;

/// The store in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: Pool<Sqlite>,
    /// The committer's connection ([`SqliteStore::begin_write`]), alone in
    /// its pool so that its page cache stays valid from one commit to the
    /// next.
    writer: Pool<Sqlite>,
    checkpoints: Arc<Checkpoints>,
    rooms: Arc<StoredRooms>,
}

/// The background checkpoint's connection, and what it leaves the
/// committer to finish.
#[derive(Debug)]
struct Checkpoints {
    pool: Pool<Sqlite>,
    /// Set when a background checkpoint left the WAL past
    /// [`WAL_RESTART_PAGES`]: the committer copies what was committed while
    /// it ran, and its next commit starts the WAL over.
    finish: AtomicBool,
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
            // A writer's own checkpoint only as a bound: checkpoints run
            // beside the committer (`checkpoint_in_background`).
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
        let writer =
            SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        let checkpoints = Arc::new(Checkpoints {
            pool: SqlitePoolOptions::new().max_connections(1).connect_with(options).await?,
            finish: AtomicBool::new(false),
        });
        tokio::spawn(checkpoint_in_background(Arc::downgrade(&checkpoints)));
        let store = Self { pool, writer, checkpoints, rooms: Arc::default() };
        store.finish_erase_upgrade().await?;
        Ok(store)
    }

    /// A transaction that takes the write lock at once: a deferred one that
    /// reads first could not upgrade while another writer commits (SQLite
    /// answers "database is locked" without waiting).
    ///
    /// First, when a background checkpoint left the WAL past
    /// [`WAL_RESTART_PAGES`], copies into the database what was committed
    /// while it ran (tens of milliseconds of commits), so that this
    /// transaction starts the WAL over.
    async fn begin_write(&self) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        if self.checkpoints.finish.swap(false, Ordering::Relaxed) {
            let mut writer = self.writer.acquire().await?;
            // Best effort: the WAL then starts over at a later finish.
            if let Err(error) =
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut *writer).await
            {
                tracing::warn!(%error, "finishing a checkpoint failed");
            }
        }
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Closes the pools, waiting for connections in use
    /// ([`Store::close`](super::Store::close)).
    pub(super) async fn close_pools(&self) {
        self.writer.close().await;
        self.checkpoints.pool.close().await;
        self.pool.close().await;
    }
}

/// Copies the WAL into the database every [`CHECKPOINT_EVERY`], until the
/// store is closed or dropped. `PASSIVE`: it never waits for the committer
/// or a reader, and neither waits for it. Two passes: the first copies the
/// commits since the last time, the second those made during the first
/// (tens of milliseconds); past [`WAL_RESTART_PAGES`] the committer copies
/// the few made during the second.
async fn checkpoint_in_background(checkpoints: Weak<Checkpoints>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(checkpoints) = checkpoints.upgrade() else {
            return;
        };
        let mut wal = 0;
        for _pass in 0..2 {
            // Three columns: whether it could not run, the WAL's pages, and
            // how many of them are now in the database.
            let pass = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&checkpoints.pool)
                .await;
            match pass {
                Ok((_, pages, copied)) if copied > 0 => wal = pages,
                Ok(_) => break,
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    tracing::warn!(%error, "background checkpoint failed");
                    break;
                }
            }
        }
        if wal >= WAL_RESTART_PAGES {
            checkpoints.finish.store(true, Ordering::Relaxed);
        }
    }
}

super::sql::sql_store!(SqliteStore, Sqlite, "", "INSERT OR FAIL INTO");

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::SqliteStore;

    /// A store in a directory of its own, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("roomcast-checkpoint-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            Self(dir)
        }

        fn db(&self) -> PathBuf {
            self.0.join("roomcast.db")
        }

        fn size(&self) -> u64 {
            std::fs::metadata(self.db()).expect("the database file").len()
        }

        /// The WAL header's checkpoint sequence number: one more each time
        /// the WAL starts over.
        fn wal_generation(&self) -> u32 {
            let header = std::fs::read(self.0.join("roomcast.db-wal")).expect("the WAL");
            u32::from_be_bytes(header[12..16].try_into().expect("a WAL header"))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes `rows` rows of a kilobyte in one of the committer's
    /// transactions.
    async fn write(store: &SqliteStore, rows: usize) {
        let mut tx = store.begin_write().await.expect("a write transaction");
        for _ in 0..rows {
            sqlx::query("INSERT INTO meta (key, value) VALUES (lower(hex(randomblob(16))), ?)")
                .bind("x".repeat(1024))
                .execute(&mut *tx)
                .await
                .expect("a row");
        }
        tx.commit().await.expect("a commit");
    }

    #[tokio::test]
    async fn the_background_copies_the_wal_and_lets_it_start_over() {
        let scratch = Scratch::new("background");
        let store = SqliteStore::open(&scratch.db()).await.expect("a store");
        let size = scratch.size();
        write(&store, 1_000).await;
        let generation = scratch.wal_generation();
        // Far under the committer's own checkpoint: only the background
        // copies these pages into the database file. Once a pass has
        // copied the whole WAL, the next commit starts it over.
        let deadline = Instant::now() + Duration::from_secs(10);
        while scratch.wal_generation() == generation {
            assert!(Instant::now() < deadline, "the WAL did not start over within 10 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
            write(&store, 1).await;
        }
        assert!(scratch.size() > size + 1_000_000, "the rows are not in the database file");
        store.close_pools().await;
    }

    #[tokio::test]
    async fn the_committer_finishes_what_the_background_left_before_writing() {
        let scratch = Scratch::new("finish");
        let store = SqliteStore::open(&scratch.db()).await.expect("a store");
        // The background's first pass runs as the store opens, the next a
        // second later: these pages wait in the WAL for the committer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        write(&store, 100).await;
        let generation = scratch.wal_generation();
        store.checkpoints.finish.store(true, Ordering::Relaxed);
        write(&store, 1).await;
        assert_eq!(scratch.wal_generation(), generation + 1, "the WAL did not start over");
        assert!(!store.checkpoints.finish.load(Ordering::Relaxed));
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM meta WHERE length(value) = 1024")
            .fetch_one(&store.pool)
            .await
            .expect("a count");
        assert_eq!(rows, 101);
        store.close_pools().await;
    }
}
