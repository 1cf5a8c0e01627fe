//! The HTTP API: endpoints for backends (behind the API key), health and
//! metrics for operators, and the dev-mode token endpoint.

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post, put};
use roomcast_shared::{ErrorCode, RoomName};

use crate::error::ApiError;
use crate::state::AppState;

mod control;
mod dev;
pub(crate) mod notify;
pub(crate) mod openapi;
mod ops;
mod presence;
pub(crate) mod rooms;
mod webhooks;

/// Routes under `/api` that need the API key, plus the open ones.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/api/notify", post(notify::notify))
        .route("/api/rooms/{room}/messages", post(rooms::publish_message).get(rooms::messages))
        .route(
            "/api/rooms/{room}/messages/{id}",
            patch(control::edit_message).delete(control::delete_message),
        )
        .route("/api/rooms/{room}/members/{user}", delete(control::remove_member))
        .route("/api/rooms/{room}/bans/{user}", put(control::ban).delete(control::unban))
        .route("/api/rooms/{room}/mutes/{user}", put(control::mute).delete(control::unmute))
        .route("/api/users/{id}/disconnect", post(control::disconnect))
        .route("/api/rooms/{room}/events", post(rooms::publish_event))
        .route("/api/rooms/{room}/presence", get(presence::room_presence))
        .route("/api/users/{id}/presence", get(presence::user_presence))
        .route("/api/users/online", get(presence::online_users))
        .route("/api/webhooks/dead-letters", get(webhooks::dead_letters))
        .route("/api/webhooks/dead-letters/replay", post(webhooks::replay))
        .route("/api/{*rest}", any(unknown_endpoint))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_api_key));
    let cors = state.origins.cors();
    // The origin check needs the policy alone, shared once rather than
    // cloned with the whole state on every request.
    let origins = Arc::new(state.origins.clone());
    Router::new()
        .merge(protected)
        .route("/api/dev/token", post(dev::token))
        .route("/api/openapi.json", get(openapi::document))
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(origins, crate::origin::check))
        .layer(cors)
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
}

/// Any other `/api` path: a JSON 404 like every API error.
async fn unknown_endpoint() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint: see /api/openapi.json")
}

/// Lets a request through only with `Authorization: Bearer <api key>`.
///
/// An address that keeps presenting a wrong key is refused (429) before its
/// key is even looked at, until its budget of failures refills: guessing
/// keys, or flooding the 401 path, is as slow as the budget.
async fn require_api_key(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Behind a trusted proxy, each backend counts against its own address.
    let (client, _) =
        crate::client_ip::client_addr(peer.ip(), request.headers(), &state.config.trusted_proxies);
    if let Err(wait) = state.api_failures.check(client) {
        let message = format!(
            "too many failed API key attempts from this address: retry in {} ms",
            wait.as_millis()
        );
        return Ok(too_many(message, wait));
    }
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !state.api_key.matches_header(header) {
        state.api_failures.failed(client);
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong API key: send Authorization: Bearer <key>",
        ));
    }
    let budget =
        state.api_rate.lock().unwrap_or_else(|e| e.into_inner()).take(state.config.limits.api);
    if let Err(wait) = budget {
        let message = format!("API rate limit exceeded: retry in {} ms", wait.as_millis());
        return Ok(too_many(message, wait));
    }
    Ok(next.run(request).await)
}

/// A 429 with its `Retry-After`.
fn too_many(message: String, wait: std::time::Duration) -> Response {
    let mut response = ApiError::new(ErrorCode::RateLimited, message).into_response();
    if let Ok(seconds) = wait.as_secs().max(1).to_string().parse() {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds);
    }
    response
}

/// `axum::Json` whose rejections are API errors (JSON, with a code).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(ErrorCode::BadRequest, rejection.body_text())
    }
}

/// `axum::extract::Query` whose rejections are API errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(ErrorCode::BadRequest, rejection.body_text())
    }
}

/// Parses a room name from a path segment.
pub(crate) fn room(name: String) -> Result<RoomName, ApiError> {
    RoomName::new(name).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))
}
