//! `GET /api/rooms/{room}/presence`, `GET /api/users/{id}/presence` and
//! `GET /api/users/online`.

use axum::extract::{Path, State};
use roomcast_shared::api::{ApiErrorBody, OnlineUsers, RoomPresence};
use roomcast_shared::room::validate_user_id;
use roomcast_shared::{DEFAULT_MEMBERS_LIMIT, ErrorCode, MAX_MEMBERS_LIMIT, Presence};
use serde::Deserialize;

use super::{Json, Query, room};
use crate::engine::page_request;
use crate::error::ApiError;
use crate::state::AppState;

/// Where a page of members starts and how long it is.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct PageQuery {
    /// The previous page's `cursor`; the first page without.
    cursor: Option<String>,
    /// Members per page (1 to 500, default 100).
    limit: Option<u16>,
}

/// A page of a room's members and their presence, online first, then by
/// name.
#[utoipa::path(
    get, path = "/api/rooms/{room}/presence", tag = "presence",
    params(("room" = String, Path, description = "Room name"), PageQuery),
    responses(
        (status = 200, description = "Members", body = RoomPresence),
        (status = 400, description = "Invalid room name, cursor or limit", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn room_presence(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<RoomPresence>, ApiError> {
    let room = room(name)?;
    let (after, limit) = page_request(page.cursor.as_deref(), page.limit)
        .map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))?;
    let page = state.engine.presence.members_page(&room, after.as_ref(), limit).await?;
    Ok(Json(page.into_wire(room)))
}

/// A user's presence (offline when unknown).
#[utoipa::path(
    get, path = "/api/users/{id}/presence", tag = "presence",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Presence", body = Presence),
        (status = 400, description = "Invalid user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn user_presence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Presence>, ApiError> {
    validate_user_id(&id).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))?;
    Ok(Json(state.engine.presence.presence(&id).await?))
}

/// Where a page of online users starts and how long it is.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct OnlineQuery {
    /// The previous page's `cursor` (a user id); the first page without.
    cursor: Option<String>,
    /// Users per page (1 to 500, default 100).
    limit: Option<u16>,
}

/// How many users are online on any instance, and a page of them by id:
/// what `isUserOnline` and a connected-users count were in the systems
/// Roomcast replaces. Consistent with presence: an invisible user is not
/// online, one in the grace period after their last connection still is.
#[utoipa::path(
    get, path = "/api/users/online", tag = "presence",
    params(OnlineQuery),
    responses(
        (status = 200, description = "Online users", body = OnlineUsers),
        (status = 400, description = "Invalid cursor or limit", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn online_users(
    State(state): State<AppState>,
    Query(page): Query<OnlineQuery>,
) -> Result<Json<OnlineUsers>, ApiError> {
    let bad = |message: String| ApiError::new(ErrorCode::BadRequest, message);
    let limit = page.limit.unwrap_or(DEFAULT_MEMBERS_LIMIT);
    if limit == 0 || limit > MAX_MEMBERS_LIMIT {
        return Err(bad(format!("limit must be between 1 and {MAX_MEMBERS_LIMIT}")));
    }
    if let Some(cursor) = &page.cursor {
        validate_user_id(cursor)
            .map_err(|_| bad("cursor is not one this server gave out".into()))?;
    }
    let limit = usize::from(limit);
    let (count, users) = state.engine.presence.online_users(page.cursor.as_deref(), limit).await?;
    // A full page may have a next one; the last id is where it starts.
    let cursor = (users.len() == limit).then(|| users.last().map(|u| u.user_id.clone())).flatten();
    Ok(Json(OnlineUsers { count, users, cursor }))
}
