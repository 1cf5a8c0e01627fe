//! `GET /api/rooms/{room}/presence` and `GET /api/users/{id}/presence`.

use axum::extract::{Path, State};
use roomcast_shared::api::{ApiErrorBody, RoomPresence};
use roomcast_shared::room::validate_user_id;
use roomcast_shared::{ErrorCode, Presence};
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
