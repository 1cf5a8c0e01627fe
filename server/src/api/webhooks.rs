//! `/api/webhooks/dead-letters`: the webhook events whose deliveries all
//! failed, listed and replayed by the backend.

use std::sync::Arc;

use axum::extract::State;
use roomcast_shared::ErrorCode;
use roomcast_shared::api::ApiErrorBody;
use roomcast_shared::webhook::{DeadLetter, DeadLetterPage, ReplayRequest, ReplayResponse};
use serde::Deserialize;

use super::{Json, Query};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Store;

/// Most dead letters in one page, and most `seqs` in one replay.
const MAX_PAGE: usize = 1_000;

/// Longest `endpoint` filter, in bytes (no configured URL comes near).
const MAX_ENDPOINT_BYTES: usize = 2_048;

/// Paging parameters of the dead-letter list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct DeadLetterParams {
    /// Only those of this webhook URL (as configured, without `#types=`).
    endpoint: Option<String>,
    /// Only those after this `seq` (the `next` of the previous page).
    after: Option<i64>,
    /// How many (at most 1000; default 100).
    limit: Option<usize>,
}

fn store(state: &AppState) -> Result<&Arc<dyn Store>, ApiError> {
    state.engine_store.as_ref().ok_or_else(|| {
        ApiError::new(ErrorCode::NotFound, "webhooks need a database (--database-url)")
    })
}

fn unavailable(err: &crate::store::StoreError) -> ApiError {
    tracing::error!(%err, "dead letters not reached");
    ApiError::new(ErrorCode::Unavailable, "the database is unavailable; retry")
}

/// The dead letters, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/api/webhooks/dead-letters", tag = "webhooks",
    params(DeadLetterParams),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let store = store(&state)?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        let message = format!("limit must be 1 to {MAX_PAGE}");
        return Err(ApiError::new(ErrorCode::BadRequest, message));
    }
    if params.endpoint.as_ref().is_some_and(|e| e.len() > MAX_ENDPOINT_BYTES || e.contains('\0')) {
        return Err(ApiError::new(ErrorCode::BadRequest, "endpoint is not a webhook URL"));
    }
    let after = params.after.unwrap_or(0);
    let rows = store
        .dead_letters(params.endpoint.as_deref(), after, limit)
        .await
        .map_err(|e| unavailable(&e))?;
    let next = (rows.len() == limit).then(|| rows.last().map(|dead| dead.row.seq)).flatten();
    let dead_letters = rows
        .into_iter()
        .map(|dead| {
            let event = serde_json::from_str(&dead.row.body).map_err(|err| {
                tracing::error!(%err, seq = dead.row.seq, "dead letter unreadable");
                ApiError::new(ErrorCode::Internal, "a dead letter does not decode")
            })?;
            Ok(DeadLetter {
                seq: dead.row.seq,
                endpoint: dead.endpoint,
                attempts: dead.row.attempts,
                error: dead.error,
                event,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(DeadLetterPage { dead_letters, next }))
}

/// Delivers dead letters again (those of `seqs`, or all), in their
/// original order, as new attempts. Only those of a configured webhook URL
/// can be.
#[utoipa::path(
    post, path = "/api/webhooks/dead-letters/replay", tag = "webhooks",
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "Back in line", body = ReplayResponse),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
        (status = 409, description = "No webhook is configured", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Json(request): Json<ReplayRequest>,
) -> Result<Json<ReplayResponse>, ApiError> {
    let store = store(&state)?;
    let Some(webhooks) = &state.webhooks else {
        let message = "no webhook is configured (--webhook-url): nothing would deliver them";
        return Err(ApiError::new(ErrorCode::Conflict, message));
    };
    let seqs = match (request.all, request.seqs.is_empty()) {
        (true, true) => None,
        (false, false) if request.seqs.len() <= MAX_PAGE => Some(request.seqs.as_slice()),
        (false, false) => {
            let message = format!("at most {MAX_PAGE} seqs at once (or all: true)");
            return Err(ApiError::new(ErrorCode::TooLarge, message));
        }
        _ => {
            let message = "give either seqs (from the dead-letter list) or all: true";
            return Err(ApiError::new(ErrorCode::BadRequest, message));
        }
    };
    let endpoints = webhooks.endpoints();
    let replayed = store.replay(&endpoints, seqs).await.map_err(|e| unavailable(&e))?;
    webhooks.wake();
    Ok(Json(ReplayResponse { replayed }))
}
