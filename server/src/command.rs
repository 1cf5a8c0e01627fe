//! The `roomcast` subcommands: without one, `roomcast` serves; with one, it
//! runs it and exits (no listener). Today: `roomcast db copy`.

use clap::Subcommand;

use crate::store::copy::{DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS};

/// What to run instead of the server.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Work on the durable store (SQLite or PostgreSQL).
    Db {
        /// What to do with it.
        #[command(subcommand)]
        command: DbCommand,
    },
}

/// `roomcast db ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Copy a whole store into a new, empty one (SQLite to PostgreSQL, back,
    /// or SQLite to SQLite).
    #[command(long_about = "Copy a whole store into a new, empty one: SQLite to PostgreSQL, \
        PostgreSQL to SQLite, or SQLite to SQLite.\n\n\
        Every room, event, message (edits and deletes included), read position and kept \
        notification moves, with the store's epoch, so clients' offsets stay valid and \
        they recover on the new store as on the old.\n\n\
        Stop the server first. The source is read in one snapshot and never written (its \
        schema is brought up to date). The destination is written in one transaction and \
        each table's rows are counted against the source's before it commits: a copy that \
        fails or is interrupted leaves it empty, and can be run again. A destination \
        holding any data is refused.")]
    Copy {
        /// The store to read: sqlite://PATH (an existing file) or
        /// postgres://USER@HOST:PORT/DATABASE.
        #[arg(long, value_name = "URL")]
        from: String,

        /// The store to fill: sqlite://PATH (created when missing) or
        /// postgres://USER@HOST:PORT/DATABASE (an existing, empty database).
        #[arg(long, value_name = "URL")]
        to: String,

        /// Rows read per query and written per INSERT; bounds the memory the
        /// copy holds.
        #[arg(
            long,
            env = "ROOMCAST_COPY_BATCH_ROWS",
            value_name = "ROWS",
            default_value_t = DEFAULT_BATCH_ROWS,
            value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_ROWS),
        )]
        batch_rows: u64,
    },
}
