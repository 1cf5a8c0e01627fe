//! `POST /api/notify`: a notification to every connection of some users.

use axum::extract::State;
use roomcast_shared::api::{ApiErrorBody, NotifyRequest, NotifyResponse};
use roomcast_shared::room::validate_user_id;
use roomcast_shared::{ErrorCode, Notification};
use time::OffsetDateTime;

use super::Json;
use crate::error::ApiError;
use crate::state::AppState;

/// Most users one notification may go to.
const MAX_RECIPIENTS: usize = 1000;

/// Notify users on every connection they have; offline users get it when
/// they next connect (a bounded number are kept per user).
#[utoipa::path(
    post, path = "/api/notify", tag = "notifications",
    request_body = NotifyRequest,
    responses(
        (status = 200, description = "Delivered or kept", body = NotifyResponse),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ApiErrorBody),
        (status = 413, description = "Bigger than an offline user may keep", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn notify(
    State(state): State<AppState>,
    Json(request): Json<NotifyRequest>,
) -> Result<Json<NotifyResponse>, ApiError> {
    post_notification(&state, request).await.map(Json)
}

/// Checks a notification posted by a backend (the HTTP API or ingest) and
/// delivers it to every connection of each user, or keeps it for users who
/// are offline. Returns once each user's `notify` has returned (with a
/// database, a kept notification is committed).
pub(crate) async fn post_notification(
    state: &AppState,
    request: NotifyRequest,
) -> Result<NotifyResponse, ApiError> {
    if request.user_ids.is_empty() || request.user_ids.len() > MAX_RECIPIENTS {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("user_ids must list 1 to {MAX_RECIPIENTS} users"),
        ));
    }
    if request.title.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::BadRequest, "title is empty"));
    }
    for user_id in &request.user_ids {
        validate_user_id(user_id)
            .map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))?;
    }
    let notification = Notification {
        id: uuid::Uuid::now_v7().to_string(),
        title: request.title,
        body: request.body,
        data: request.data,
        created_at: OffsetDateTime::now_utc(),
    };
    // What cannot be kept for an offline user is refused for everyone,
    // rather than delivered to some and silently dropped for others.
    let bytes = serde_json::to_string(&notification).map_or(usize::MAX, |json| json.len());
    let cap = state.config.limits.notification_bytes_per_user;
    if bytes > cap {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the notification is {bytes} bytes as JSON; at most {cap} can be kept for an \
                 offline user (--notification-bytes-per-user)"
            ),
        ));
    }
    let mut online = 0;
    for user_id in &request.user_ids {
        if state.engine.presence.notify(user_id, notification.clone()).await? {
            online += 1;
        }
        state.metrics.notifications.inc();
    }
    Ok(NotifyResponse { id: notification.id, online })
}
