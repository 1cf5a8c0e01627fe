//! `GET /api/rooms/{room}/presence` and `GET /api/users/{id}/presence`.

use axum::extract::{Path, State};
use roomcast_shared::api::{ApiErrorBody, RoomPresence};
use roomcast_shared::room::validate_user_id;
use roomcast_shared::{ErrorCode, Presence};

use super::{Json, room};
use crate::error::ApiError;
use crate::state::AppState;

/// A room's members and their presence.
#[utoipa::path(
    get, path = "/api/rooms/{room}/presence", tag = "presence",
    params(("room" = String, Path, description = "Room name")),
    responses(
        (status = 200, description = "Members", body = RoomPresence),
        (status = 400, description = "Invalid room name", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn room_presence(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<RoomPresence>, ApiError> {
    let room = room(name)?;
    let members = state.engine.presence.members(&room).await?;
    Ok(Json(RoomPresence { room, members }))
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
