//! [`Engine`], the state store a [`TestServer`](crate::TestServer) runs on,
//! and [`every_engine!`](crate::every_engine), which runs a test body on
//! each engine.
//!
//! A server on [`Engine::Redis`] gets a `redis-server` of its own. Sharing
//! one between tests would be faster to start, but Redis pub/sub channels
//! are common to all its databases, so two tests' `general` rooms would hear
//! each other even with a database each; a `redis-server` starts in about
//! 15 ms, which is cheap next to any test.

/// Where a test server keeps rooms, history, presence and notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// In the server's memory: one instance, nothing survives a restart.
    Memory,
    /// In a real `redis-server` started for the test.
    Redis,
    /// In memory, with a SQLite file in a temporary directory as the store:
    /// messages, read positions and unread notifications survive restarts.
    Sqlite,
    /// In a real `redis-server` started for the test, with a PostgreSQL
    /// database of its own (on the test binary's server) as the store: the
    /// deployment of many instances.
    RedisPostgres,
}

impl Engine {
    /// The name `/health` reports as `broker`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Memory | Engine::Sqlite => "memory",
            Engine::Redis | Engine::RedisPostgres => "redis",
        }
    }
}

/// Makes tests on every engine of plain `async fn name(engine: Engine)`
/// test bodies in the calling module.
///
/// ```ignore
/// /// What the test shows.
/// async fn a_message_reaches_the_room(engine: Engine) {
///     let server = TestServer::start_on(engine).await;
///     // ...
/// }
///
/// every_engine!(a_message_reaches_the_room);
/// ```
///
/// adds a module `a_message_reaches_the_room` holding four
/// `#[tokio::test]`s, `memory`, `redis`, `sqlite` and `redis_postgres`, so a
/// failure names its engine and `cargo test ::redis` runs every such test
/// on Redis. The bodies stay ordinary
/// functions that rustfmt formats, and a body left out of the list is dead
/// code, which the lints refuse.
#[macro_export]
macro_rules! every_engine {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn memory() {
                super::$test($crate::Engine::Memory).await
            }

            #[tokio::test]
            async fn redis() {
                super::$test($crate::Engine::Redis).await
            }

            #[tokio::test]
            async fn sqlite() {
                super::$test($crate::Engine::Sqlite).await
            }

            #[tokio::test]
            async fn redis_postgres() {
                super::$test($crate::Engine::RedisPostgres).await
            }
        }
    )+};
}
