//! `roomcast db copy`: every table of one store into another, empty one
//! (SQLite to PostgreSQL, back, or SQLite to SQLite), so that a deployment
//! moves without its clients noticing: the epoch moves with the offsets, so
//! a client's `since` recovers on the new store.
//!
//! What keeps it safe:
//! - The source is read in one snapshot (one read transaction; PostgreSQL's
//!   `REPEATABLE READ`), so a writer still at work cannot tear the copy.
//! - The destination is written in one transaction, and each table's row
//!   count is checked against the source's before it commits: a copy that
//!   fails or is interrupted leaves the destination as empty as it was, and
//!   can simply be run again.
//! - A destination holding any room, event, message, read position or
//!   notification is refused: a copy never merges into live data.
//! - Memory stays bounded: each table is read in pages of `batch_rows` rows,
//!   keyset-paginated by its primary key, each page written by one
//!   multi-row `INSERT`.
//!
//! Why not `sqlx::AnyPool`: the stores' pools come from [`super::open`],
//! with their settings (WAL, a sync on every commit, timeouts) and
//! migrations; `Any` would connect a second way, and its value types are
//! the lowest common ones. As in `store/sql.rs`, one text is expanded for
//! each backend's types (here by [`on_backend!`]), so every value moves as
//! what it is: text as text, integers as `BIGINT`, `deleted` as a boolean.

use std::fmt;

use sqlx::{Postgres, QueryBuilder, Row as _, Sqlite, Transaction};

use super::{Backend, Opened, StoreError, from_db, to_db};

/// Rows per page when none is asked for.
pub const DEFAULT_BATCH_ROWS: u64 = 1_000;

/// Most rows per page: a page is one `INSERT`, and 2,500 rows of
/// `webhook_outbox`'s 11 columns stay under SQLite's 32,766 bound
/// parameters.
pub const MAX_BATCH_ROWS: u64 = 2_500;

/// A column's type, as both schemas declare it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
}

/// A table to copy: its columns, the primary key's first.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// How many leading columns make the primary key.
    key: usize,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
    }

    fn key_list(&self) -> String {
        self.columns[..self.key].iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
    }
}

/// Every table of the migrations but the delivery lease (`webhook_lease`,
/// which no stopped server holds). `meta` (the epoch) is
/// replaced, not added to: the destination's migrations made an epoch of
/// its own.
const TABLES: &[Table] = &[
    Table { name: "meta", columns: &[("key", Kind::Text), ("value", Kind::Text)], key: 1 },
    Table { name: "rooms", columns: &[("room", Kind::Text), ("latest", Kind::Int)], key: 1 },
    Table {
        name: "events",
        columns: &[
            ("room", Kind::Text),
            ("pos", Kind::Int),
            ("at", Kind::Int),
            ("body", Kind::Text),
            ("message_id", Kind::Text),
        ],
        key: 2,
    },
    Table {
        name: "messages",
        // Its key leads with the id (migration 0009).
        columns: &[
            ("id", Kind::Text),
            ("room", Kind::Text),
            ("sender", Kind::Text),
            ("client_id", Kind::Text),
            ("pos", Kind::Int),
            ("at", Kind::Int),
            ("body", Kind::Text),
            ("deleted", Kind::Bool),
            ("sent", Kind::Text),
        ],
        key: 2,
    },
    Table {
        name: "read_positions",
        columns: &[
            ("user_id", Kind::Text),
            ("room", Kind::Text),
            ("pos", Kind::Int),
            ("id", Kind::Text),
            ("read_at", Kind::Text),
            ("at", Kind::Int),
        ],
        key: 2,
    },
    Table {
        name: "notifications",
        columns: &[
            ("seq", Kind::Int),
            ("user_id", Kind::Text),
            ("at", Kind::Int),
            ("bytes", Kind::Int),
            ("body", Kind::Text),
        ],
        key: 1,
    },
    Table { name: "ingested", columns: &[("id", Kind::Text), ("at", Kind::Int)], key: 1 },
    Table {
        name: "webhook_outbox",
        columns: &[
            ("seq", Kind::Int),
            ("endpoint", Kind::Text),
            ("room", Kind::Text),
            ("event_id", Kind::Text),
            ("kind", Kind::Text),
            ("body", Kind::Text),
            ("at", Kind::Int),
            ("attempts", Kind::Int),
            ("dead", Kind::Bool),
            ("error", Kind::Text),
            ("message_id", Kind::Text),
        ],
        key: 1,
    },
    Table {
        name: "sanctions",
        columns: &[
            ("room", Kind::Text),
            ("user_id", Kind::Text),
            ("kind", Kind::Text),
            ("at", Kind::Int),
        ],
        key: 3,
    },
];

/// The tables that must be empty in the destination (all but `meta`).
const DATA_TABLES: &[&str] = &[
    "rooms",
    "events",
    "messages",
    "read_positions",
    "notifications",
    "ingested",
    "webhook_outbox",
    "sanctions",
];

/// One stored value.
#[derive(Debug, Clone)]
enum Value {
    /// A text, or NULL where the column allows it.
    Text(Option<String>),
    Int(i64),
    Bool(bool),
}

/// An open transaction on either backend.
enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Evaluates `$body` with `$conn` bound to the transaction and `$db` to
/// its database type, once per backend.
macro_rules! on_backend {
    ($tx:expr, $db:ident, $conn:ident => $body:expr) => {
        match $tx {
            Tx::Sqlite($conn) => {
                #[allow(dead_code, reason = "not every body names the type")]
                type $db = Sqlite;
                $body
            }
            Tx::Postgres($conn) => {
                #[allow(dead_code, reason = "not every body names the type")]
                type $db = Postgres;
                $body
            }
        }
    };
}

/// Binds `$value` as the next parameter of a separated list.
macro_rules! push_value {
    ($separated:expr, $value:expr) => {
        match $value {
            Value::Text(text) => $separated.push_bind(text),
            Value::Int(n) => $separated.push_bind(n),
            Value::Bool(b) => $separated.push_bind(b),
        }
    };
}

/// One table's rows on each side, counted after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: &'static str,
    /// Rows in the source's snapshot.
    pub source: u64,
    /// Rows in the destination, before it committed.
    pub destination: u64,
}

/// What a copy did: the rows of every table, compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// One entry per table, in copy order.
    pub tables: Vec<TableCount>,
}

impl fmt::Display for Copied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("copied; rows per table (source = destination):")?;
        for (i, count) in self.tables.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{} {} = {}", count.table, count.source, count.destination)?;
        }
        Ok(())
    }
}

/// Why a copy did not happen. Whatever the error, the destination holds
/// nothing of the copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// `--from` and `--to` are the same text.
    #[error("--from and --to name the same database")]
    SameDatabase,
    /// A URL names no database Roomcast supports.
    #[error("{side}: {error}")]
    Unsupported {
        /// `--from` or `--to`.
        side: &'static str,
        /// What is wrong with it.
        error: StoreError,
    },
    /// The source is a SQLite file that does not exist (opening it would
    /// make an empty store and copy nothing).
    #[error("--from: no SQLite file at {0}")]
    NoSource(String),
    /// A store could not be opened or brought up to date.
    #[error("opening {side}: {error}")]
    Open {
        /// `--from` or `--to`.
        side: &'static str,
        /// What failed.
        error: StoreError,
    },
    /// The destination holds data.
    #[error(
        "the destination already holds data ({0}); a copy goes only into an empty store, \
         never merging into live data: give --to a new, empty database"
    )]
    NotEmpty(String),
    /// A statement failed; the destination's transaction was rolled back.
    #[error("copying failed, nothing was written: {0}")]
    Database(#[from] sqlx::Error),
    /// The destination does not hold what the source does.
    #[error(
        "{table}: the source holds {expected} rows, the destination {found}; nothing was written"
    )]
    Mismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        expected: u64,
        /// Rows in the destination.
        found: u64,
    },
}

/// Copies the store at `from` into the empty store at `to` (created and
/// migrated when missing), reading and writing `batch_rows` rows at a time
/// (1 to [`MAX_BATCH_ROWS`]).
pub async fn copy(from: &str, to: &str, batch_rows: u64) -> Result<Copied, CopyError> {
    if from == to {
        return Err(CopyError::SameDatabase);
    }
    // Both URLs are checked before either store is opened (and migrated).
    let unsupported = StoreError::unsupported;
    let source_backend = Backend::of(from)
        .ok_or_else(|| CopyError::Unsupported { side: "--from", error: unsupported(from) })?;
    Backend::of(to)
        .ok_or_else(|| CopyError::Unsupported { side: "--to", error: unsupported(to) })?;
    if let Backend::Sqlite(path) = source_backend
        && !std::path::Path::new(path).exists()
    {
        return Err(CopyError::NoSource(path.to_owned()));
    }
    let batch = batch_rows.clamp(1, MAX_BATCH_ROWS);
    probe("--from", from).await?;
    probe("--to", to).await?;
    let source =
        super::open(from).await.map_err(|error| CopyError::Open { side: "--from", error })?;
    let destination =
        super::open(to).await.map_err(|error| CopyError::Open { side: "--to", error })?;
    let copied = copy_between(&source, &destination, batch).await;
    close(source).await;
    close(destination).await;
    copied
}

/// Connects once to a PostgreSQL `url`, for the server's own reason when
/// it cannot be reached (refused, unknown database, password): a pool only
/// says that it timed out.
async fn probe(side: &'static str, url: &str) -> Result<(), CopyError> {
    use sqlx::Connection as _;
    if Backend::of(url) == Some(Backend::Postgres) {
        let open = |error: sqlx::Error| CopyError::Open { side, error: error.into() };
        sqlx::PgConnection::connect(url).await.map_err(open)?.close().await.map_err(open)?;
    }
    Ok(())
}

/// The copy proper, between two opened stores.
async fn copy_between(
    source: &Opened,
    destination: &Opened,
    batch: u64,
) -> Result<Copied, CopyError> {
    let mut read = match source {
        Opened::Sqlite(store) => Tx::Sqlite(store.pool.begin().await?),
        Opened::Postgres(store) => Tx::Postgres(
            store.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
        ),
    };
    let mut write = match destination {
        Opened::Sqlite(store) => Tx::Sqlite(store.pool.begin_with("BEGIN IMMEDIATE").await?),
        Opened::Postgres(store) => {
            let mut tx = store.pool.begin().await?;
            // No server may write beside the copy (and so between the
            // emptiness check and the commit); readers may read.
            sqlx::query(
                "LOCK TABLE meta, rooms, events, messages, read_positions, notifications, \
                 ingested, webhook_outbox IN EXCLUSIVE MODE",
            )
            .execute(&mut *tx)
            .await?;
            Tx::Postgres(tx)
        }
    };
    let mut held = Vec::new();
    for table in DATA_TABLES {
        let rows = count(&mut write, table).await?;
        if rows > 0 {
            held.push(format!("{table}: {rows}"));
        }
    }
    if !held.is_empty() {
        return Err(CopyError::NotEmpty(held.join(", ")));
    }
    let mut tables = Vec::new();
    for table in TABLES {
        if table.name == "meta" {
            execute(&mut write, "DELETE FROM meta").await?;
        }
        let expected = count(&mut read, table.name).await?;
        copy_table(&mut read, &mut write, table, batch).await?;
        let found = count(&mut write, table.name).await?;
        if found != expected {
            return Err(CopyError::Mismatch { table: table.name, expected, found });
        }
        tables.push(TableCount { table: table.name, source: expected, destination: found });
    }
    if let Tx::Postgres(tx) = &mut write {
        // Explicit `seq` values leave the sequence where it was; the next
        // notification must come after every copied one. (SQLite's
        // AUTOINCREMENT follows the largest inserted by itself.)
        for table in ["notifications", "webhook_outbox"] {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), \
                 COALESCE(MAX(seq), 0) + 1, false) FROM {table}"
            ))
            .execute(&mut **tx)
            .await?;
        }
    }
    on_backend!(write, DB, tx => {
        tx.commit().await?;
    });
    on_backend!(read, DB, tx => {
        tx.rollback().await?;
    });
    Ok(Copied { tables })
}

/// Copies `table` page by page, in primary key order.
async fn copy_table(
    source: &mut Tx,
    destination: &mut Tx,
    table: &Table,
    batch: u64,
) -> Result<(), sqlx::Error> {
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = read_page(source, table, after.as_deref(), batch).await?;
        let Some(last) = rows.last() else { break };
        let full = rows.len() as u64 == batch;
        after = Some(last[..table.key].to_vec());
        write_page(destination, table, rows).await?;
        if !full {
            break;
        }
    }
    Ok(())
}

/// At most `limit` rows of `table` whose key comes after `after` (from the
/// first when `None`), in key order.
async fn read_page(
    tx: &mut Tx,
    table: &Table,
    after: Option<&[Value]>,
    limit: u64,
) -> Result<Vec<Vec<Value>>, sqlx::Error> {
    // Table and column names are this file's constants; values are bound.
    let head = format!("SELECT {} FROM {}", table.column_list(), table.name);
    let order = format!(" ORDER BY {} LIMIT ", table.key_list());
    on_backend!(tx, DB, tx => {
        let mut query = QueryBuilder::<DB>::new(head);
        if let Some(key) = after {
            query.push(format!(" WHERE ({}) > (", table.key_list()));
            let mut separated = query.separated(", ");
            for value in key.iter().cloned() {
                push_value!(separated, value);
            }
            separated.push_unseparated(")");
        }
        query.push(order).push_bind(to_db(limit));
        let rows = query.build().fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| {
                        Ok(match kind {
                            Kind::Text => Value::Text(row.try_get(i)?),
                            Kind::Int => Value::Int(row.try_get(i)?),
                            Kind::Bool => Value::Bool(row.try_get(i)?),
                        })
                    })
                    .collect()
            })
            .collect()
    })
}

/// Inserts `rows` (not empty) into `table` with one statement.
async fn write_page(tx: &mut Tx, table: &Table, rows: Vec<Vec<Value>>) -> Result<(), sqlx::Error> {
    let head = format!("INSERT INTO {} ({}) ", table.name, table.column_list());
    on_backend!(tx, DB, tx => {
        let mut query = QueryBuilder::<DB>::new(head);
        query.push_values(rows, |mut separated, row| {
            for value in row {
                push_value!(separated, value);
            }
        });
        query.build().execute(&mut **tx).await?;
    });
    Ok(())
}

/// The rows of `table` as `tx` sees them.
async fn count(tx: &mut Tx, table: &str) -> Result<u64, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let rows: i64 = on_backend!(tx, DB, tx => sqlx::query_scalar(&sql).fetch_one(&mut **tx).await?);
    Ok(from_db(rows))
}

/// Runs one statement of ours.
async fn execute(tx: &mut Tx, sql: &str) -> Result<(), sqlx::Error> {
    on_backend!(tx, DB, tx => {
        sqlx::query(sql).execute(&mut **tx).await?;
    });
    Ok(())
}

/// Closes a store's pool, so that the file or the server sees every
/// transaction ended before the process exits.
async fn close(store: Opened) {
    match store {
        Opened::Sqlite(store) => store.close_pools().await,
        Opened::Postgres(store) => store.close_pools().await,
    }
}
