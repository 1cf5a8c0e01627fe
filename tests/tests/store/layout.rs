//! The SQLite file's layout: a new database is made with small pages (a
//! commit writes whole pages to the WAL), and a database made before, with
//! SQLite's default 4 KiB pages, opens as it is with everything in it.

use std::path::Path;

use roomcast_server::store::{Outcome, SqliteStore, Store};
use roomcast_tests::unique_id;
use sqlx::{Connection, SqliteConnection};

use crate::copy::{CAPS, MAX_AGE, USERS, answers, contents, fill};
use crate::{Backend, append1, appended, message, room};

/// The page size the file at `path` was made with.
async fn page_size(path: &Path) -> i64 {
    let url = format!("sqlite://{}", path.display());
    let mut db = SqliteConnection::connect(&url).await.expect("opening the file");
    let size = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut db).await.expect("page_size");
    db.close().await.expect("closing");
    size
}

#[tokio::test]
async fn a_new_sqlite_database_has_1_kib_pages() {
    let backend = Backend::sqlite().await;
    let Backend::Sqlite(path) = &backend else { unreachable!() };
    let store = SqliteStore::open(path).await.expect("opening");
    append1(&store, message("lobby", "alice", "c1", "hello")).await;
    store.close().await;
    assert_eq!(page_size(path).await, 1024);
}

#[tokio::test]
async fn a_database_made_with_4_kib_pages_opens_with_everything_kept() {
    let backend = Backend::sqlite().await;
    let Backend::Sqlite(path) = &backend else { unreachable!() };
    // The file as an earlier server made it: SQLite's default pages, WAL.
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut db = SqliteConnection::connect(&url).await.expect("creating the file");
    sqlx::query("PRAGMA page_size = 4096").execute(&mut db).await.expect("page_size");
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut db).await.expect("WAL");
    db.close().await.expect("closing");
    let earlier = SqliteStore::open(path).await.expect("opening");
    let first = fill(&earlier, &contents()).await;
    let before = answers(&earlier).await;
    earlier.close().await;

    let store = SqliteStore::open(path).await.expect("reopening");
    assert_eq!(page_size(path).await, 4096, "a database keeps its page size");
    assert_eq!(answers(&store).await, before, "messages, events, heads and reads kept");
    for (u, user) in USERS.iter().enumerate() {
        let kept = store.take_notifications(user, MAX_AGE).await.unwrap();
        assert_eq!(kept.len(), u + 1, "{user}'s notifications kept");
    }
    let resend = message("lobby", &first.sender.id, &first.client_id, "again");
    let again = append1(&store, resend).await;
    assert_eq!(again, Outcome::Duplicate { id: first.id.clone(), offset: first.offset });
    let next = append1(&store, message("lobby", "carol", &unique_id("new"), "next")).await;
    assert_eq!(appended(&next).offset(), before.heads[0].offset + 1);
    assert!(
        store.keep_notification("carol", &crate::copy::notification("n"), &CAPS).await.unwrap()
    );
    assert_eq!(store.head(&room("lobby")).await.unwrap().epoch, before.heads[0].epoch);
    store.close().await;
}
