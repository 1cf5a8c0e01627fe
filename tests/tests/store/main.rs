//! The store suite: one behaviour, proven against both stores. Each test is
//! an `async fn name(backend: &Backend)` and `both_stores!` runs it as
//! `name::sqlite` (a real file in a temporary directory) and
//! `name::postgres` (a database of its own on the binary's PostgreSQL).

mod behaviour;
mod copy;
mod hostile;
mod outbox;
mod sanctions;
mod upgrade;

use std::path::PathBuf;

use roomcast_server::store::{DataEdit, NewEvent, Outcome, PostgresStore, SqliteStore, Store};
use roomcast_shared::{RoomEvent, RoomName, UserInfo};
use roomcast_tests::{RoomcastPostgres, unique_id};
use time::OffsetDateTime;

/// Where a test's store lives; [`Backend::open`] may be called again to
/// open it anew, as a restarted server would.
pub enum Backend {
    /// A SQLite file, removed with its directory at the end.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL.
    Postgres(String),
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir =
            std::env::temp_dir().join(unique_id(&format!("roomcast-store-{}", std::process::id())));
        std::fs::create_dir_all(&dir).expect("creating the SQLite directory");
        Self::Sqlite(dir.join("roomcast.db"))
    }

    pub async fn postgres() -> Self {
        Self::Postgres(RoomcastPostgres::shared().database().await)
    }

    /// Opens the store (applying migrations), as a server starting would.
    pub async fn open(&self) -> Box<dyn Store> {
        match self {
            Self::Sqlite(path) => Box::new(SqliteStore::open(path).await.expect("opening SQLite")),
            Self::Postgres(url) => {
                Box::new(PostgresStore::connect(url).await.expect("connecting to PostgreSQL"))
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Self::Sqlite(path) = self
            && let Some(dir) = path.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs each `async fn name(&Backend)` on both stores.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(&$crate::Backend::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(&$crate::Backend::postgres().await).await;
            }
        }
    )*};
}

pub fn room(name: &str) -> RoomName {
    RoomName::new(name).expect("a valid room name")
}

pub fn user(id: &str) -> UserInfo {
    UserInfo { id: id.into(), name: format!("name of {id}"), role: None, avatar: None }
}

/// A whole second, as RFC 3339 round-trips it exactly.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
        .expect("a valid time")
}

pub fn message(room_name: &str, sender: &str, client_id: &str, content: &str) -> NewEvent {
    NewEvent::Message {
        room: room(room_name),
        id: unique_id("msg"),
        client_id: client_id.into(),
        sender: user(sender),
        content: content.into(),
        data: None,
        created_at: now(),
    }
}

/// The event an outcome appended, failing the test otherwise.
pub fn appended(outcome: &Outcome) -> &RoomEvent {
    match outcome {
        Outcome::Appended(event) => event,
        other => panic!("expected an appended event, got {other:?}"),
    }
}

/// Appends one change; its outcome.
pub async fn append1(store: &dyn Store, event: NewEvent) -> Outcome {
    let mut outcomes = store.append(&[event]).await.expect("append");
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

/// An edit, by an admin, that replaces the message's text and its data
/// (`{"note": content}`).
pub fn replacing(id: &str, content: &str) -> NewEvent {
    NewEvent::Edit {
        room: room("r"),
        id: id.into(),
        by: None,
        content: content.into(),
        data: DataEdit::Replace(Box::new(serde_json::json!({"note": content}))),
        edited_at: now(),
    }
}

/// The id of the message a send carries.
pub fn id_of(send: &NewEvent) -> String {
    match send {
        NewEvent::Message { id, .. } => id.clone(),
        _ => unreachable!("not a send"),
    }
}
