//! The state every handler shares: one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{ApiKey, Tokens};
use crate::config::Config;
use crate::engine::Engine;
use crate::engine::memory::MemoryEngine;
use crate::hub::Hub;
use crate::telemetry::Metrics;

/// A handle to the server's state; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: Config,
    pub tokens: Tokens,
    pub api_key: ApiKey,
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
    pub fn new(config: Config) -> Self {
        let metrics = Arc::new(Metrics::default());
        let hub = Arc::new(Hub::new(config.limits.send_queue, metrics.clone()));
        let engine = Arc::new(MemoryEngine::new(
            hub.clone(),
            config.history.clone(),
            config.limits.notifications_per_user,
        ));
        Self(Arc::new(Inner {
            tokens: Tokens::new(&config.jwt_secret, !config.dev),
            api_key: ApiKey::new(config.api_key.clone()),
            config,
            engine,
            hub,
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
