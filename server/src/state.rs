//! The state every handler shares: one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{ApiKey, Tokens};
use crate::config::Config;
use crate::engine::{self, Engine};
use crate::hooks::Hooks;
use crate::hub::Hub;
use crate::ingest;
use crate::limits::{Bucket, PerAddress};
use crate::origin::OriginPolicy;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::webhooks::Webhooks;

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
    /// Shared state of the deployment: streams, presence, fan-out.
    pub engine: Engine,
    /// This instance's connections.
    pub hub: Arc<Hub>,
    /// The store behind the engine (`--database-url`), for ingest's
    /// envelope ids.
    pub engine_store: Option<Arc<dyn Store>>,
    /// The RabbitMQ consumer's state, for `/health`.
    pub ingest: ingest::Status,
    /// The backend's hooks and their HTTP client.
    pub hooks: Hooks,
    /// Webhooks, when configured (`--webhook-url`).
    pub webhooks: Option<Arc<Webhooks>>,
    pub metrics: Arc<Metrics>,
    /// The open connections of the fallback transport (`sse.rs`).
    pub sse: crate::sse::Streams,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Connection tasks and grace-period timers, awaited at shutdown.
    pub tasks: TaskTracker,
}

impl AppState {
    /// Builds the state, starting the engine the configuration asks for.
    pub async fn new(config: Config) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(
            config.limits.send_queue,
            config.limits.send_queue_bytes,
            metrics.clone(),
        ));
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let store = engine::open_store(&config).await?;
        let webhooks = match &store {
            Some(store) => Webhooks::start(
                &config.webhooks,
                store.clone(),
                metrics.clone(),
                &tasks,
                shutdown.clone(),
            )?,
            None => None,
        };
        let engine = engine::start(
            &config,
            store.clone(),
            webhooks.as_deref(),
            hub.clone(),
            metrics.clone(),
            &tasks,
            shutdown.clone(),
        )
        .await?;
        let hooks = Hooks::new(config.hooks.clone())?;
        let tokens = Tokens::new(&config.jwt_secret, !config.dev)
            .with_issuer(config.jwt_issuer.as_deref())
            .with_audience(config.jwt_audience.as_deref())
            .with_settings(&config.tokens)?;
        if let Some(jwks) = tokens.jwks() {
            tasks.spawn(crate::auth::jwks::keep_fresh(jwks, shutdown.clone()));
        }
        Ok(Self(Arc::new(Inner {
            hooks,
            webhooks,
            tokens,
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
            engine_store: store,
            ingest: ingest::Status::default(),
            metrics,
            sse: crate::sse::Streams::default(),
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
