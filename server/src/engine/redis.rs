//! The Redis engine: several instances share rooms through one Redis. This
//! file wires it: settings, the shared command connection with its health,
//! and [`start`]. The roles:
//!
//! - `streams.rs`: room streams live in Redis (a stream of events, a hash of
//!   messages in their current state, an index by offset, idempotency keys
//!   with expiry), so a client may recover on any instance; the epoch
//!   survives restarts. Appends run as Lua scripts (`scripts.rs`) that
//!   assign the offset, store and publish in one atomic step, which keeps
//!   every room in offset order everywhere.
//! - `fanout.rs`: each instance subscribes (one connection, RESP3 push) only
//!   to the rooms it has members in, and publishes each frame once per room.
//! - `presence.rs`: presence and membership are counted per instance, and
//!   each instance holds a lease; the survivors undo what a dead instance
//!   left (`lease.rs`), so nobody stays online after a crash.
//! - `keys.rs`: every key and channel name.
//! - `connect.rs`: the client (TLS with `rediss://`) and the check at start
//!   of the server's version and mode.
//!
//! When Redis is unreachable, operations fail with `unavailable` (nothing
//! pretends to succeed), `/health` says `degraded`, and the connections
//! reconnect with backoff and restore their subscriptions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Backend, Departures, Engine, EngineError};
use crate::config::{Config, HistoryLimits};
use crate::hub::Hub;

mod connect;
mod fanout;
mod keys;
mod lease;
mod presence;
mod sanctions;
mod scripts;
mod streams;

use fanout::RedisFanout;
use presence::RedisPresence;
use streams::RedisStreams;

/// How long one Redis command may take before it counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest pause between reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Settings of the Redis engine.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    pub url: String,
    pub history: HistoryLimits,
    pub unread_per_user: usize,
    /// Bytes of unread notifications (JSON) kept per user.
    pub unread_bytes_per_user: usize,
    /// Age after which unread notifications are dropped.
    pub unread_max_age: Duration,
    /// How long an instance's lease lasts without renewal.
    pub lease: Duration,
    /// How long an offline user's status and last-seen time are kept
    /// (`--user-idle-secs`, as the memory engine forgets an idle user).
    pub user_idle: Duration,
}

/// The connection for commands every role shares, and the instance's
/// identity and health.
pub(super) struct Store {
    /// This instance's id, in leases and per-instance counts.
    instance: String,
    /// Commands (multiplexed, reconnecting).
    commands: ConnectionManager,
    settings: RedisSettings,
    /// Whether the last command reached Redis (for `/health`).
    available: AtomicBool,
    /// Told what reaping a dead instance undid (see `lease.rs`).
    departures: OnceLock<Departures>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("instance", &self.instance).finish_non_exhaustive()
    }
}

fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

/// Connects (failing if Redis cannot be reached now, or is not one the
/// engine can use: see `connect.rs`), starts watching the channel for
/// multi-room frames, and spawns the instance lease on `tasks`.
/// Room events arriving from Redis go to `sink` when given (a store puts
/// them in order), to the hub otherwise.
pub(super) async fn start(
    url: &str,
    config: &Config,
    hub: Arc<Hub>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
    sink: Option<Arc<dyn super::RoomEventSink>>,
) -> Result<Engine, connect::ConnectError> {
    let settings = RedisSettings {
        url: url.to_owned(),
        history: config.history.clone(),
        unread_per_user: config.limits.notifications_per_user,
        unread_bytes_per_user: config.limits.notification_bytes_per_user,
        unread_max_age: config.limits.notification_max_age,
        lease: config.timing.instance_lease,
        user_idle: config.timing.user_idle,
    };
    // Every connection (commands and the lease, the subscriber) comes from
    // this client, so all of them use TLS with a rediss:// URL.
    let client = connect::client(&with_resp3(&settings.url), config.redis_ca_file.as_deref())?;
    let connect_timeout = config.timing.redis_connect_timeout;
    let version = connect::check(&client, connect_timeout).await?;
    tracing::info!(%version, "Redis checked");
    let connection = || {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(MAX_RECONNECT_DELAY)
    };
    let commands = client.get_connection_manager_with_config(connection()).await?;
    let instance = super::random_id();
    let receiver = fanout::Receiver::new(hub.clone(), instance.clone(), sink);
    let push = move |info: redis::PushInfo| {
        receiver.handle(info);
        Ok::<(), redis::aio::SendError>(())
    };
    let subscriber_config = connection().set_push_sender(push).set_automatic_resubscription();
    let mut subscriber = client.get_connection_manager_with_config(subscriber_config).await?;
    subscriber.subscribe(keys::MULTI_CHANNEL).await?;
    let store = Arc::new(Store {
        instance,
        commands,
        settings,
        available: AtomicBool::new(true),
        departures: OnceLock::new(),
    });
    tasks.spawn(lease::keep(store.clone(), shutdown));
    Ok(Engine {
        streams: Arc::new(RedisStreams(store.clone())),
        presence: Arc::new(RedisPresence(store.clone())),
        fanout: Arc::new(RedisFanout::new(store.clone(), hub.clone(), subscriber)),
        keeper: Some(Arc::new(sanctions::RedisKeeper(store.clone()))),
        backend: store,
        hub,
    })
}

impl Store {
    /// Runs one Redis call with a deadline, and records whether Redis
    /// answered (for `/health`). While Redis is down, calls fail within the
    /// deadline instead of waiting for the reconnection.
    async fn exec<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, call).await {
            Ok(result) => self.track(result),
            Err(_) => {
                self.available.store(false, Ordering::Relaxed);
                Err(EngineError::Unavailable(format!(
                    "Redis did not answer within {RESPONSE_TIMEOUT:?}"
                )))
            }
        }
    }

    fn track<T>(&self, result: Result<T, RedisError>) -> Result<T, EngineError> {
        match result {
            Ok(value) => {
                self.available.store(true, Ordering::Relaxed);
                Ok(value)
            }
            Err(err) => {
                if err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_connection_refusal()
                {
                    self.available.store(false, Ordering::Relaxed);
                }
                // The details (a script's error text, key names) are for
                // the log: the client learns only that the store failed.
                tracing::warn!(%err, "redis command failed");
                Err(EngineError::Unavailable("the shared store failed; try again".into()))
            }
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.commands.clone()
    }
}

#[async_trait]
impl Backend for Store {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn healthy(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    async fn close(&self) {
        lease::release(self).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_is_asked_for() {
        assert_eq!(with_resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(with_resp3("redis://h/?db=2"), "redis://h/?db=2&protocol=resp3");
        assert_eq!(with_resp3("redis://h/?protocol=resp3"), "redis://h/?protocol=resp3");
    }
}
