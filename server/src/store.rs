//! The store boundary: what must outlive a process. Room events (messages,
//! edits, deletes) with each room's epoch and offsets, the idempotency keys
//! `(room, sender, client_id)` that keep `send` exactly-once across restarts,
//! read positions per user per room, and unread notifications per user.
//!
//! Two implementations with one behaviour: [`sqlite`] (embedded, the
//! default) and [`postgres`] (for many instances). Both share the SQL in
//! `store/sql.rs`; each applies its own versioned migrations
//! (`migrations/<backend>/`) when it connects.
//!
//! The store assigns offsets: [`Store::append`] takes a batch of changes for
//! any rooms, numbers them and commits them in one transaction, so that many
//! messages cost one commit.

use async_trait::async_trait;
use std::time::Duration;

use roomcast_shared::{
    ChatMessage, Notification, Position, ReadReceipt, RoomEvent, RoomName, UserInfo,
};
use time::OffsetDateTime;

pub mod copy;
pub mod ingest;
pub mod outbox;
mod plan;
pub mod postgres;
mod rows;
pub mod sanctions;
mod sql;
pub mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A change to append to a room's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum NewEvent {
    /// A new message; a duplicate of `(room, sender.id, client_id)` is not
    /// stored again.
    Message {
        /// The room.
        room: RoomName,
        /// The message id the caller chose (unique across rooms).
        id: String,
        /// The sender's idempotency key.
        client_id: String,
        /// Who sends it.
        sender: UserInfo,
        /// The text.
        content: String,
        /// When the server accepted it.
        created_at: OffsetDateTime,
        /// What the publish hook attached to it.
        data: Option<Box<serde_json::Value>>,
    },
    /// New text for a message.
    Edit {
        /// The room.
        room: RoomName,
        /// The message.
        id: String,
        /// Who edits: the sender, or `None` for an admin, who may edit
        /// anyone's.
        by: Option<String>,
        /// The new text.
        content: String,
        /// What happens to the message's data.
        data: DataEdit,
        /// When it was edited.
        edited_at: OffsetDateTime,
    },
    /// Deletes a message.
    Delete {
        /// The room.
        room: RoomName,
        /// The message.
        id: String,
        /// Who deletes: the sender, or `None` for an admin, who may delete
        /// anyone's.
        by: Option<String>,
    },
}

/// What an edit does to a message's `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum DataEdit {
    /// Leaves it as it is (the edit carried none).
    #[default]
    Keep,
    /// Replaces it.
    Replace(Box<serde_json::Value>),
    /// Removes it.
    Remove,
}

impl DataEdit {
    /// From an edit's checked data: absent keeps, none (`{}`) removes.
    pub fn from_edit(sent: Option<Option<Box<serde_json::Value>>>) -> Self {
        match sent {
            None => Self::Keep,
            Some(None) => Self::Remove,
            Some(Some(data)) => Self::Replace(data),
        }
    }

    /// Applies the edit to a message's data.
    pub fn apply(&self, data: &mut Option<Box<serde_json::Value>>) {
        match self {
            Self::Keep => {}
            Self::Replace(new) => *data = Some(new.clone()),
            Self::Remove => *data = None,
        }
    }
}

impl NewEvent {
    /// Whether every key can be stored (no NUL; texts are kept as JSON,
    /// where NUL is escaped).
    fn keys_are_valid(&self) -> bool {
        match self {
            Self::Message { id, client_id, sender, .. } => {
                valid_key(id) && valid_key(client_id) && valid_key(&sender.id)
            }
            Self::Edit { id, by, .. } | Self::Delete { id, by, .. } => {
                valid_key(id) && by.as_deref().is_none_or(valid_key)
            }
        }
    }

    /// The room it changes.
    pub fn room(&self) -> &RoomName {
        match self {
            Self::Message { room, .. } | Self::Edit { room, .. } | Self::Delete { room, .. } => {
                room
            }
        }
    }
}

/// What [`Store::append`] did with one change of the batch.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a batch's outcomes live only until they are answered; boxing would allocate per event"
)]
pub enum Outcome {
    /// Stored as this event, with its offset.
    Appended(RoomEvent),
    /// A message with the same `(room, sender, client_id)` was stored before:
    /// its id and offset.
    Duplicate {
        /// The original message id.
        id: String,
        /// The original offset.
        offset: u64,
    },
    /// The message to edit or delete is not in the room (or was deleted).
    NotFound,
    /// The message belongs to someone else.
    NotTheSender,
    /// A key (id, sender, `client_id`) holds NUL, which PostgreSQL cannot
    /// keep: refused alike on both stores, nothing stored, the rest of the
    /// batch unharmed.
    Invalid,
}

/// Errors of the store: the database could not be reached or refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A user id holds NUL (see [`Outcome::Invalid`]).
    #[error("a key holds NUL")]
    Invalid,
    /// The database failed or refused a statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no database Roomcast supports.
    #[error("a `{0}` URL is neither sqlite://PATH nor postgres://...")]
    Unsupported(String),
    /// A stored row does not decode (written by a newer version?).
    #[error("stored data does not decode: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// A `read` to keep: `user_id` has read `room` up to message `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMark {
    /// The reader.
    pub user_id: String,
    /// The room.
    pub room: RoomName,
    /// The last message read.
    pub id: String,
    /// When.
    pub read_at: OffsetDateTime,
}

/// What is kept for one offline user: the newest notifications within a
/// count and a byte budget (bodies as JSON), none older than an age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadCaps {
    /// Most notifications kept.
    pub count: usize,
    /// Most bytes of notifications kept.
    pub bytes: usize,
    /// Age after which a notification is dropped.
    pub max_age: Duration,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Edits and deletes of room streams (and `message` events stored
    /// apart by earlier versions).
    pub events: u64,
    /// Messages, with their idempotency keys and their `message` events.
    pub messages: u64,
    /// Expired notifications.
    pub notifications: u64,
}

/// Durable rooms, read positions and notifications (and, through
/// [`ingest::IngestLog`], the ids of ingested envelopes; through
/// [`outbox::Outbox`], the webhook deliveries waiting).
#[async_trait]
pub trait Store:
    ingest::IngestLog + outbox::Outbox + sanctions::SanctionLog + Send + Sync + std::fmt::Debug
{
    /// Appends a batch of changes, for any rooms, in one transaction; one
    /// outcome per change, in order.
    async fn append(&self, batch: &[NewEvent]) -> Result<Vec<Outcome>, StoreError> {
        self.append_recorded(batch, &outbox::NoWebhooks).await
    }

    /// [`Store::append`], writing in the same transaction the webhook
    /// outbox's rows for each appended event.
    async fn append_recorded(
        &self,
        batch: &[NewEvent],
        outbox: &dyn outbox::EventRows,
    ) -> Result<Vec<Outcome>, StoreError>;

    /// The room's epoch (the store's: see the `meta` table) and latest
    /// offset (0 with no events). Offsets are never reused, whatever
    /// retention removed.
    async fn head(&self, room: &RoomName) -> Result<Position, StoreError>;

    /// The room's events after `offset` up to `offset + limit`, oldest
    /// first: fewer where the room has not reached `offset + limit`, or
    /// where retention removed some (offsets are never reused, so these
    /// are the first `limit` after `offset` whenever none is missing).
    async fn events_after(
        &self,
        room: &RoomName,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError>;

    /// Messages in their current state (edits applied, deletes gone), the
    /// newest `limit` below offset `before` (all when `None`), oldest first.
    async fn messages_before(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, StoreError>;

    /// Keeps read positions, in one transaction. A mark moves its user's
    /// position in the room forward only; one naming no message of the room
    /// is ignored.
    async fn set_reads(&self, marks: &[ReadMark]) -> Result<(), StoreError>;

    /// The offset of the message `user` has read `room` up to (0 when never).
    async fn read(&self, user: &str, room: &RoomName) -> Result<u64, StoreError>;

    /// The room's read positions, latest readers first, at most `limit`.
    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, StoreError>;

    /// Keeps a notification for `user`, who is offline, dropping the oldest
    /// kept to stay within `caps`. False (nothing kept) for one bigger than
    /// the byte budget alone.
    async fn keep_notification(
        &self,
        user: &str,
        notification: &Notification,
        caps: &UnreadCaps,
    ) -> Result<bool, StoreError>;

    /// Takes (returns and forgets) `user`'s kept notifications younger than
    /// `max_age`, oldest first.
    async fn take_notifications(
        &self,
        user: &str,
        max_age: Duration,
    ) -> Result<Vec<Notification>, StoreError>;

    /// Removes events and messages older than `events_before` (kept forever
    /// when `None`) and notifications older than `notifications_before`, in
    /// bounded steps so that writers are never held up for long.
    async fn prune(
        &self,
        events_before: Option<OffsetDateTime>,
        notifications_before: OffsetDateTime,
    ) -> Result<Pruned, StoreError>;

    /// Closes the store's connections once nothing uses it any more (the
    /// server's last step when it stops): SQLite then copies the WAL into
    /// the database and removes it, leaving the file whole.
    async fn close(&self);
}

/// Opens the store at `url`: `sqlite://PATH` or `sqlite:PATH` (the file
/// and its directory are created when missing) or `postgres://...` /
/// `postgresql://...`, with the schema brought up to date.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match open(url).await? {
        Opened::Sqlite(store) => std::sync::Arc::new(store),
        Opened::Postgres(store) => std::sync::Arc::new(store),
    })
}

/// A store [`open`]ed by URL, still knowing its backend (for `copy`, which
/// reads and writes tables rather than rooms).
#[derive(Debug, Clone)]
pub enum Opened {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PostgresStore),
}

/// What [`connect`] does, keeping the backend's type.
pub async fn open(url: &str) -> Result<Opened, StoreError> {
    match Backend::of(url) {
        Some(Backend::Sqlite(path)) => {
            let path = std::path::Path::new(path);
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|err| {
                    StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                        err.kind(),
                        format!("creating {}: {err}", dir.display()),
                    )))
                })?;
            }
            Ok(Opened::Sqlite(SqliteStore::open(path).await?))
        }
        Some(Backend::Postgres) => Ok(Opened::Postgres(PostgresStore::connect(url).await?)),
        None => Err(StoreError::unsupported(url)),
    }
}

impl StoreError {
    /// [`StoreError::Unsupported`] naming only the URL's scheme: the rest
    /// may hold a password.
    pub fn unsupported(url: &str) -> Self {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        Self::Unsupported(scheme.chars().take(32).collect())
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
    /// A SQLite file at this path.
    Sqlite(&'a str),
    /// A PostgreSQL server.
    Postgres,
}

impl<'a> Backend<'a> {
    /// The database `url` names, if any Roomcast supports.
    pub fn of(url: &'a str) -> Option<Self> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            // Options after `?` are not ours to parse; a path is required.
            let path = path.split('?').next().unwrap_or_default();
            return (!path.is_empty()).then_some(Self::Sqlite(path));
        }
        (url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .then_some(Self::Postgres)
    }
}

/// Unix milliseconds, as `at` columns keep times.
pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether `key` can be stored alike in both databases.
fn valid_key(key: &str) -> bool {
    !key.contains('\0')
}

/// [`StoreError::Invalid`] unless `user` can be stored.
fn check_user(user: &str) -> Result<(), StoreError> {
    if valid_key(user) { Ok(()) } else { Err(StoreError::Invalid) }
}

/// Converts an offset or count to the database's integer, saturating (no
/// offset comes near `i64::MAX`).
fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Converts a stored integer back; stored offsets are never negative.
fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
