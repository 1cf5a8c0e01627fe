//! Server-side control for backends and moderators: edit or delete any
//! message, close a user's connections, take a user out of a room, and ban
//! or mute a user in a room. Each call goes through the engine like the
//! client frames it stands for, so the room hears of it with the frames
//! clients already know, on every instance (`moderation.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use roomcast_shared::api::{ApiErrorBody, EditMessageRequest};
use roomcast_shared::frame::Ack;
use roomcast_shared::room::{RoomKind, validate_user_id};
use roomcast_shared::{ErrorCode, RoomName};

use super::{Json, room};
use crate::engine::Change;
use crate::error::{ApiError, check_edit, edit_data};
use crate::moderation::{Control, Sanction, SanctionKind};
use crate::state::AppState;

/// Longest message id a path may name, in bytes: ids are UUIDs (36 bytes);
/// a longer one cannot name a message (as in `session/chat.rs`).
const MAX_MESSAGE_ID_LEN: usize = 128;

/// Checks a user id from a path.
fn user(id: &str) -> Result<(), ApiError> {
    validate_user_id(id).map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))
}

/// Checks a message id from a path.
fn message_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("a message id is 1 to {MAX_MESSAGE_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A room a user can be taken out of, banned from or muted in: not a
/// personal room, which its user never leaves.
fn shared_room(name: String) -> Result<RoomName, ApiError> {
    let room = room(name)?;
    if matches!(room.kind(), RoomKind::Personal { .. }) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a personal room cannot be left: use /api/users/{id}/disconnect",
        ));
    }
    Ok(room)
}

/// Replace the content of any message of the room (as an admin's `edit`
/// frame would): the room gets `message_updated`, and the change is stored
/// before the answer. `data` as in the `edit` frame: absent keeps the
/// message's, an object replaces it, `{}` removes it.
#[utoipa::path(
    patch, path = "/api/rooms/{room}/messages/{id}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("id" = String, Path, description = "Message id"),
    ),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "Edited", body = Ack),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
        (status = 404, description = "No such message in this room", body = ApiErrorBody),
        (status = 413, description = "Content too large", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn edit_message(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    Json(request): Json<EditMessageRequest>,
) -> Result<Json<Ack>, ApiError> {
    let room = room(name)?;
    message_id(&id)?;
    let sent = check_edit(&request.content, request.data.map(Box::new), &state.config.limits)?;
    let data = edit_data(&request.content, sent)?;
    let change = Change::Edit { id, content: request.content, data, sender: None };
    let appended = state.engine.streams.append(&room, change).await?;
    Ok(Json(Ack { id: appended.id, offset: appended.offset, client_id: None }))
}

/// Delete any message of the room (as an admin's `delete` frame would):
/// the room gets `message_deleted`, stored before the answer.
#[utoipa::path(
    delete, path = "/api/rooms/{room}/messages/{id}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("id" = String, Path, description = "Message id"),
    ),
    responses(
        (status = 200, description = "Deleted", body = Ack),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
        (status = 404, description = "No such message in this room", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete_message(
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Ack>, ApiError> {
    let room = room(name)?;
    message_id(&id)?;
    let appended = state.engine.streams.append(&room, Change::Delete { id, sender: None }).await?;
    Ok(Json(Ack { id: appended.id, offset: appended.offset, client_id: None }))
}

/// Close every connection of the user, on every instance, with close code
/// 4003 (a revoked or deactivated user: the connect hook or the token
/// issuer then refuses them). Accepted once every instance has been told.
#[utoipa::path(
    post, path = "/api/users/{id}/disconnect", tag = "control",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 202, description = "Every instance closes the user's connections"),
        (status = 400, description = "Invalid user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    user(&user_id)?;
    state.engine.control(&Control::Disconnect { user_id }).await?;
    state.metrics.control_calls.inc();
    Ok(StatusCode::ACCEPTED)
}

/// Take the user out of the room on every instance: each of their
/// connections in it gets `left` (without a `ref`), and the others see the
/// member leave. They may join again (ban them to stop that).
#[utoipa::path(
    delete, path = "/api/rooms/{room}/members/{user}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 202, description = "Every instance takes the user out of the room"),
        (status = 400, description = "Invalid room or user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = shared_room(name)?;
    user(&user_id)?;
    state.engine.control(&Control::Remove { room, user_id }).await?;
    state.metrics.control_calls.inc();
    Ok(StatusCode::ACCEPTED)
}

/// Sets or lifts a ban or mute.
async fn sanction(
    state: &AppState,
    name: String,
    user_id: String,
    kind: SanctionKind,
    on: bool,
) -> Result<StatusCode, ApiError> {
    let room = shared_room(name)?;
    user(&user_id)?;
    state.engine.sanction(Sanction { room, user_id, kind }, on).await?;
    state.metrics.control_calls.inc();
    Ok(StatusCode::NO_CONTENT)
}

/// Ban the user from the room: they are taken out of it on every instance
/// and a later `join` is refused (`forbidden`) until the ban is lifted.
/// Kept in the database (or Redis) before the answer. Banning again
/// changes nothing.
#[utoipa::path(
    put, path = "/api/rooms/{room}/bans/{user}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 204, description = "Banned"),
        (status = 400, description = "Invalid room or user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn ban(
    State(state): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    sanction(&state, name, user_id, SanctionKind::Ban, true).await
}

/// Lift a ban (lifting one that is not there is not an error).
#[utoipa::path(
    delete, path = "/api/rooms/{room}/bans/{user}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 204, description = "Not banned"),
        (status = 400, description = "Invalid room or user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn unban(
    State(state): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    sanction(&state, name, user_id, SanctionKind::Ban, false).await
}

/// Mute the user in the room: they can join and read, but `send`, `edit`
/// and `typing` are refused (`forbidden`) until the mute is lifted.
#[utoipa::path(
    put, path = "/api/rooms/{room}/mutes/{user}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 204, description = "Muted"),
        (status = 400, description = "Invalid room or user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn mute(
    State(state): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    sanction(&state, name, user_id, SanctionKind::Mute, true).await
}

/// Lift a mute (lifting one that is not there is not an error).
#[utoipa::path(
    delete, path = "/api/rooms/{room}/mutes/{user}", tag = "control",
    params(
        ("room" = String, Path, description = "Room name"),
        ("user" = String, Path, description = "User id"),
    ),
    responses(
        (status = 204, description = "Not muted"),
        (status = 400, description = "Invalid room or user id", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn unmute(
    State(state): State<AppState>,
    Path((name, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    sanction(&state, name, user_id, SanctionKind::Mute, false).await
}
