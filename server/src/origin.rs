//! Which web pages may use this server: the `Origin` of WebSocket upgrades
//! (others are closed with 1008) and of HTTP API calls (others get 403), and
//! the CORS headers that let allowed pages call the API.
//!
//! Requests without an `Origin` (backends, native clients, tools) are not
//! web pages and pass; the API key and tokens protect them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use roomcast_shared::ErrorCode;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// The origin rules, from `--allowed-origins` and dev mode.
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    allowed: Vec<String>,
    /// Dev mode: any page served from this machine (localhost, 127.0.0.1, [::1]).
    allow_local: bool,
}

impl OriginPolicy {
    pub fn new(allowed: Vec<String>, allow_local: bool) -> Self {
        Self { allowed, allow_local }
    }

    /// Whether a request with these headers may go on.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        self.allows_origin(origin, host)
    }

    fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if self.allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
            return true;
        }
        if self.allow_local && is_local(authority) {
            return true;
        }
        // With no list, a page may use the server it was served from.
        self.allowed.is_empty() && host.is_some_and(|host| host.eq_ignore_ascii_case(authority))
    }

    /// CORS headers for the HTTP API, for the origins this policy allows.
    pub fn cors(&self) -> CorsLayer {
        let policy = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, parts: &Parts| {
                let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
                origin.to_str().is_ok_and(|origin| policy.allows_origin(origin, host))
            }))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([AUTHORIZATION, CONTENT_TYPE])
    }
}

/// `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn is_local(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Refuses HTTP API calls from pages of other origins (403).
pub(crate) async fn check(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if policy.allows(request.headers()) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "this page's origin is not allowed (see --allowed-origins)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let listed = OriginPolicy::new(vec!["https://app.example.com".into()], false);
        assert!(listed.allows_origin("https://app.example.com", Some("api.example.com")));
        assert!(!listed.allows_origin("https://evil.example", Some("api.example.com")));
        assert!(!listed.allows_origin("http://localhost:5173", Some("api.example.com")));

        let dev = OriginPolicy::new(Vec::new(), true);
        for local in [
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "http://localhost",
        ] {
            assert!(dev.allows_origin(local, Some("127.0.0.1:8080")), "{local}");
        }
        assert!(!dev.allows_origin("https://evil.example", Some("127.0.0.1:8080")));

        let same_origin_only = OriginPolicy::new(Vec::new(), false);
        assert!(
            same_origin_only.allows_origin("https://chat.example.com", Some("chat.example.com"))
        );
        assert!(!same_origin_only.allows_origin("https://evil.example", Some("chat.example.com")));
        assert!(
            OriginPolicy::new(vec!["*".into()], false).allows_origin("https://any.where", None)
        );
    }
}
