//! `GET /health` and `GET /metrics`, for load balancers and Prometheus.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use roomcast_shared::api::Health;

use super::Json;
use crate::state::AppState;

/// The instance's health and its connection counts.
#[utoipa::path(
    get, path = "/health", tag = "operations",
    responses((status = 200, description = "Health", body = Health))
)]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let (connections, users, rooms) = state.hub.counts();
    Json(Health {
        status: if state.engine.healthy() { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        connections,
        users,
        rooms,
        broker: state.engine.name().to_owned(),
        amqp: state.ingest.describe().map(str::to_owned),
    })
}

/// Metrics in the OpenMetrics text format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
}
