//! The state every handler shares: one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{ApiKey, Tokens};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::memory::{self, MemoryEngine, MemorySettings};
use crate::engine::redis::{RedisEngine, RedisSettings, lease};
use crate::hub::Hub;
use crate::limits::{Bucket, PerAddress};
use crate::origin::OriginPolicy;
use crate::telemetry::Metrics;

/// A handle to the server's state; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: Config,
    pub tokens: Tokens,
    pub api_key: ApiKey,
    /// The HTTP API's request budget, all backends together.
    pub api_rate: std::sync::Mutex<Bucket>,
    /// Failed API key attempts per client address.
    pub api_failures: PerAddress,
    /// Which web pages may connect and call the API.
    pub origins: OriginPolicy,
    /// Shared state of the deployment (fan-out, history, presence, ...).
    pub engine: Arc<dyn Engine>,
    /// This instance's connections.
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Connection tasks and grace-period timers, awaited at shutdown.
    pub tasks: TaskTracker,
}

impl AppState {
    /// Builds the state, connecting to Redis when configured.
    pub async fn new(config: Config) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(
            config.limits.send_queue,
            config.limits.send_queue_bytes,
            metrics.clone(),
        ));
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let engine: Arc<dyn Engine> = match &config.redis_url {
            None => {
                let settings = MemorySettings::new(&config);
                let engine = Arc::new(MemoryEngine::new(hub.clone(), settings, metrics.clone()));
                let interval = config.timing.sweep_interval;
                tasks.spawn(memory::sweep(engine.clone(), interval, shutdown.clone()));
                engine
            }
            Some(url) => {
                let settings = RedisSettings {
                    url: url.clone(),
                    history: config.history.clone(),
                    unread_per_user: config.limits.notifications_per_user,
                    unread_bytes_per_user: config.limits.notification_bytes_per_user,
                    unread_max_age: config.limits.notification_max_age,
                    lease: config.timing.instance_lease,
                };
                let engine = RedisEngine::connect(hub.clone(), settings).await.map_err(|err| {
                    std::io::Error::other(format!("cannot use Redis at {url}: {err}"))
                })?;
                tasks.spawn(lease::keep(engine.clone(), shutdown.clone()));
                engine
            }
        };
        Ok(Self(Arc::new(Inner {
            tokens: Tokens::new(&config.jwt_secret, !config.dev)
                .with_issuer(config.jwt_issuer.as_deref())
                .with_audience(config.jwt_audience.as_deref()),
            api_key: ApiKey::new(config.api_key.clone()),
            api_rate: std::sync::Mutex::new(Bucket::new(config.limits.api)),
            api_failures: PerAddress::new(
                config.limits.api_failures,
                config.limits.api_failure_addresses,
            ),
            origins: OriginPolicy::new(config.allowed_origins.clone(), config.dev),
            config,
            engine,
            hub,
            metrics,
            shutdown,
            tasks,
        })))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
