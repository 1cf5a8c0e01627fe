//! `POST /api/dev/token` (dev mode only): a signed token for a display name,
//! so the demo and tests can sign in without an identity provider.

use axum::extract::State;
use roomcast_shared::api::{ApiErrorBody, DevTokenRequest, DevTokenResponse};
use roomcast_shared::room::validate_user_id;
use roomcast_shared::{Claims, ErrorCode};
use time::OffsetDateTime;

use super::Json;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a dev token lasts.
const DEV_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// Longest display name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// The user id for a display name: lowercase letters and digits, other runs
/// of characters turned into single dashes.
fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// A signed token for a display name (dev mode only; 404 otherwise). Needs no
/// API key: it is the demo's sign-in.
#[utoipa::path(
    post, path = "/api/dev/token", tag = "dev",
    request_body = DevTokenRequest,
    responses(
        (status = 200, description = "A token", body = DevTokenResponse),
        (status = 400, description = "Invalid name", body = ApiErrorBody),
        (status = 404, description = "Not in dev mode", body = ApiErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    Json(request): Json<DevTokenRequest>,
) -> Result<Json<DevTokenResponse>, ApiError> {
    if !state.config.dev {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the dev token endpoint exists only in dev mode",
        ));
    }
    let name = request.name.trim();
    let id = slug(name);
    if name.chars().count() > MAX_NAME_CHARS || validate_user_id(&id).is_err() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "name must be 1 to {MAX_NAME_CHARS} characters with at least one letter or digit"
            ),
        ));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let claims = Claims {
        role: request.role,
        exp: Some(now + DEV_TOKEN_LIFETIME_SECS),
        iat: Some(now),
        ..Claims::new(id, name)
    };
    let token = state
        .tokens
        .issue(&claims)
        .map_err(|err| ApiError::new(ErrorCode::Internal, format!("signing failed: {err}")))?;
    Ok(Json(DevTokenResponse { token, user: claims.user() }))
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs() {
        assert_eq!(slug("Alice"), "alice");
        assert_eq!(slug("  Zoë  O'Brien "), "zo-o-brien");
        assert_eq!(slug("---"), "");
    }
}
