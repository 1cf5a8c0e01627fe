//! The OpenAPI document of the HTTP API, generated from the handlers and the
//! shared types, so it cannot drift from them.

use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Roomcast HTTP API", description = "Endpoints for backends: notifications, publishing into rooms, presence and history."),
    paths(
        super::notify::notify,
        super::rooms::publish_message,
        super::rooms::publish_event,
        super::rooms::messages,
        super::control::edit_message,
        super::control::delete_message,
        super::control::disconnect,
        super::control::remove_member,
        super::control::ban,
        super::control::unban,
        super::control::mute,
        super::control::unmute,
        super::presence::room_presence,
        super::presence::user_presence,
        super::presence::online_users,
        super::webhooks::dead_letters,
        super::webhooks::replay,
        super::dev::token,
        super::ops::health,
        super::ops::metrics,
    ),
    modifiers(&ApiKeyScheme)
)]
pub(crate) struct ApiDoc;

/// Declares the `api_key` bearer scheme the protected paths refer to.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /api/openapi.json`.
pub(crate) async fn document() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}
