//! The Roomcast server: WebSocket rooms, chat, presence, typing, read
//! receipts and notifications, with an HTTP API for backends.
//!
//! # Layout
//! - [`config`]: flags and environment into validated [`Config`].
//! - [`command`]: subcommands run instead of the server (`db copy`).
//! - `auth`: access tokens (JWT) and the backends' API key.
//! - `engine`: what instances share, by role: `streams` (history,
//!   idempotency, recovery), `presence` (membership, status, unread
//!   notifications) and `fanout` (rooms received, broadcasts), each with an
//!   in-memory and a Redis (`--redis-url`) implementation under `memory/`
//!   and `redis/`. `engine::start` picks one; nothing outside `engine`
//!   knows which one runs.
//! - [`store`]: what must outlive a process (room events, idempotency
//!   keys, read positions, notifications) in SQLite or PostgreSQL; not yet
//!   wired into the engine.
//! - `ingest`: envelopes consumed from RabbitMQ (`--amqp-url`), applied
//!   through the API's code.
//! - `origin`: which web pages may connect (1008) and call the API (403, CORS).
//! - `client_ip`: the address a connection counts against (trusted proxies).
//! - `limits`: token buckets for rate limits.
//! - `hub`: this instance's connections and which rooms each is in; delivers
//!   encoded frames to local connections.
//! - `session`: one authenticated WebSocket connection: handles each client
//!   frame, keeps typing timers, and tidies up when it ends.
//! - `serve`: the accept loop: connection cap, header timeout, accept
//!   errors.
//! - `ws`: the WebSocket endpoint (reader and writer tasks).
//! - `dialect`: the wire formats of the systems Roomcast replaces, on their
//!   own paths, as codecs over the same connection tasks and session.
//! - `api`: the HTTP API handlers, health, metrics and OpenAPI.
//! - `error`: request errors and what each does to the client.
//! - `state`: the handle every handler shares.
//! - `telemetry`: Prometheus metrics.
//! - [`logging`]: log lines a client cannot forge, URIs without their query
//!   values (tokens).
//!
//! The binary (`main.rs`) parses flags, installs logging and calls [`run`].

use std::future::Future;
use std::path::Path;

use axum::Router;
use axum::http::HeaderName;
use axum::response::Html;
use tokio::net::TcpListener;
use tower_http::compression::Compression;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

pub mod command;
pub mod config;
pub mod logging;
pub mod store;
pub mod webhooks;

#[doc(hidden)]
pub mod bench_support;

mod allocator;
mod api;
mod auth;
mod client_ip;
mod dialect;
mod engine;
mod error;
mod hooks;
mod hub;
mod ingest;
mod limits;
mod moderation;
mod origin;
mod serve;
mod session;
mod sse;
mod state;
mod telemetry;
mod ws;

pub use config::{Args, Config, ConfigError, HistoryLimits, Limits, Rate, Timing};
pub use ingest::AmqpSettings;

use crate::state::AppState;

/// Serves Roomcast on `listener` until `shutdown` resolves; then closes every
/// WebSocket with 1012 (clients reconnect at once) and returns when the
/// connections have ended or `config.timing.shutdown_grace` has passed.
/// Refuses to start (`InvalidInput`) outside dev mode without proper secrets
/// ([`Config::check_secrets`]).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    config.check_secrets().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let grace = config.timing.shutdown_grace;
    let state = AppState::new(config).await?;
    // Said once the engine and store are up (Redis and the database
    // checked): a process that says it listens serves.
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let app = app(state.clone());
    let token = state.shutdown.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing connections with 1012");
        token.cancel();
    };
    ingest::start(&state);
    let max_connections = serve::connection_cap(state.config.limits.max_connections);
    tokio::spawn(signal);
    let header_timeout = state.config.timing.header_timeout;
    serve::serve(listener, app, max_connections, header_timeout, state.shutdown.clone()).await;
    // Upgraded connections outlive the HTTP server; wait for them to close.
    state.tasks.close();
    if tokio::time::timeout(grace, state.tasks.wait()).await.is_err() {
        tracing::warn!("some connections did not close within {grace:?}");
    }
    state.engine.close().await;
    if let Some(webhooks) = &state.webhooks {
        webhooks.close().await;
    }
    if let Some(store) = &state.engine_store {
        store.close().await;
    }
    Ok(())
}

/// The whole HTTP surface: `/ws`, the API, and the static UI.
fn app(state: AppState) -> Router {
    let router = Router::new()
        .route("/ws", axum::routing::get(ws::upgrade))
        .merge(sse::router(&state))
        .merge(dialect::router())
        .merge(api::router(state.clone()));
    let router = dialect::socketio::mount(router, &state);
    let router = match state.config.static_dir.as_deref() {
        Some(dir) => router.fallback_service(static_files(dir)),
        None => router.route("/", axum::routing::get(no_ui)),
    };
    let body_timeout = state.config.timing.body_timeout;
    router
        .method_not_allowed_fallback(error::method_not_allowed)
        // A body sent slowly (a byte now and then) would hold its
        // connection and handler for as long as the client likes.
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        // Outermost last: a caller's malformed id is dropped, the request
        // gets one, its span logs it, and the response carries it back.
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(logging::REQUEST_ID)))
        .layer(TraceLayer::new_for_http().make_span_with(logging::request_span))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static(logging::REQUEST_ID),
            logging::RequestIds,
        ))
        .layer(axum::middleware::from_fn(logging::drop_foreign_request_id))
        .with_state(state)
}

/// Serves a built single-page app, gzipped for clients that accept it (the
/// demo's wasm shrinks to about 40%); unknown paths get its `index.html`
/// (200), as a single-page app's routes should.
fn static_files(dir: &Path) -> Compression<ServeDir<ServeFile>> {
    Compression::new(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html"))))
}

/// `/` when no UI is served: where to go from here.
async fn no_ui() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><title>Roomcast</title>",
        "<h1>Roomcast is running</h1>",
        "<p>WebSocket endpoint: <code>/ws</code>. HTTP API: <a href=\"/api/openapi.json\">/api/openapi.json</a>. ",
        "Health: <a href=\"/health\">/health</a>. No demo UI is being served (see <code>--static-dir</code>).</p>",
    ))
}
