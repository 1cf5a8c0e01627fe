//! `/api/rooms/{room}/messages` and `/api/rooms/{room}/events`: backends
//! publish into rooms and read their history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use roomcast_shared::api::{ApiErrorBody, HistoryPage, PublishEventRequest, PublishMessageRequest};
use roomcast_shared::frame::Ack;
use roomcast_shared::{AppEvent, ErrorCode, MAX_HISTORY_LIMIT, RoomName, ServerFrame, UserInfo};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Json, Query, room};
use crate::engine::Change;
use crate::error::{ApiError, check_client_id, check_data, check_message};
use crate::hub::{Delivery, Exclude, encode};
use crate::state::AppState;

/// Longest event name, in bytes.
const MAX_EVENT_NAME_LEN: usize = 128;

fn system_user() -> UserInfo {
    UserInfo { id: "system".into(), name: "System".into(), role: None, avatar: None }
}

/// Publish a chat message into a room, on behalf of a user or as the system.
/// Idempotent per sender and `client_id`: a repeat answers 200 with the
/// original id and offset instead of 201.
#[utoipa::path(
    post, path = "/api/rooms/{room}/messages", tag = "rooms",
    params(("room" = String, Path, description = "Room name")),
    request_body = PublishMessageRequest,
    responses(
        (status = 201, description = "Published", body = Ack),
        (status = 200, description = "Already published with this client_id", body = Ack),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
        (status = 413, description = "Content or data too large", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn publish_message(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<PublishMessageRequest>,
) -> Result<(StatusCode, Json<Ack>), ApiError> {
    let room = room(name)?;
    let (ack, stored) = post_message(&state, room, request).await?;
    let status = if stored { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ack)))
}

/// Checks and appends a message posted by a backend (the HTTP API or
/// ingest); true when it was stored now, false for a repeat of its
/// `client_id`, which stores nothing. Returns once the change is stored
/// (with a database, committed).
pub(crate) async fn post_message(
    state: &AppState,
    room: RoomName,
    request: PublishMessageRequest,
) -> Result<(Ack, bool), ApiError> {
    let limits = &state.config.limits;
    let data = check_data(request.data.map(Box::new), limits)?;
    check_message(&request.content, data.as_deref(), limits.max_content_bytes)?;
    let client_id = request.client_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    check_client_id(&client_id)?;
    let sender = request.sender.map_or_else(system_user, UserInfo::from);
    roomcast_shared::room::validate_user_id(&sender.id)
        .map_err(|err| ApiError::new(ErrorCode::BadRequest, err.to_string()))?;
    let change =
        Change::Message { sender, content: request.content, client_id: client_id.clone(), data };
    let appended = state.engine.streams.append(&room, change).await?;
    let stored = appended.event.is_some();
    if stored {
        state.metrics.messages.inc();
    }
    Ok((Ack { id: appended.id, offset: appended.offset, client_id: Some(client_id) }, stored))
}

/// Publish an application event (not kept in history) to a room's members.
#[utoipa::path(
    post, path = "/api/rooms/{room}/events", tag = "rooms",
    params(("room" = String, Path, description = "Room name")),
    request_body = PublishEventRequest,
    responses(
        (status = 202, description = "Sent to the room's members", body = AppEvent),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn publish_event(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(request): Json<PublishEventRequest>,
) -> Result<(StatusCode, Json<AppEvent>), ApiError> {
    let room = room(name)?;
    let event = post_event(&state, room, request).await?;
    Ok((StatusCode::ACCEPTED, Json(event)))
}

/// Checks an application event posted by a backend (the HTTP API or
/// ingest) and broadcasts it to the room's members on every instance.
pub(crate) async fn post_event(
    state: &AppState,
    room: RoomName,
    request: PublishEventRequest,
) -> Result<AppEvent, ApiError> {
    if request.name.is_empty() || request.name.len() > MAX_EVENT_NAME_LEN {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("name must be 1 to {MAX_EVENT_NAME_LEN} bytes"),
        ));
    }
    let event = AppEvent {
        room: room.clone(),
        name: request.name,
        data: request.data,
        created_at: OffsetDateTime::now_utc(),
    };
    let delivery = Delivery { offset: None, text: encode(&ServerFrame::Event(event.clone())) };
    state.engine.fanout.broadcast(&[room], delivery, Exclude::Nobody).await?;
    Ok(event)
}

/// Paging parameters of the history endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct PageParams {
    /// Only messages with an offset below this one.
    before: Option<u64>,
    /// How many messages (at most 100; default 50).
    limit: Option<u16>,
}

/// A room's messages in their current state, newest `limit` below `before`,
/// oldest first.
#[utoipa::path(
    get, path = "/api/rooms/{room}/messages", tag = "rooms",
    params(("room" = String, Path, description = "Room name"), PageParams),
    responses(
        (status = 200, description = "A page of history", body = HistoryPage),
        (status = 400, description = "Invalid request", body = ApiErrorBody),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn messages(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let room = room(name)?;
    let limit = params.limit.unwrap_or(50);
    if limit > MAX_HISTORY_LIMIT {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("limit must be at most {MAX_HISTORY_LIMIT}"),
        ));
    }
    let page = state.engine.streams.history(&room, params.before, usize::from(limit)).await?;
    Ok(Json(HistoryPage { room, messages: page.messages, has_more: page.has_more }))
}
