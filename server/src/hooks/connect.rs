//! The connect hook: a WebSocket client without a token (a web app whose
//! users have a session cookie) is who the backend says, from the
//! upgrade's cookies and a few of its headers.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use roomcast_shared::UserInfo;
use roomcast_shared::room::validate_user_id;
use serde::{Deserialize, Serialize};

use super::{HookError, Hooks};
use crate::config::HookLimits;

/// The headers of an upgrade the hook gets, lowercase. Nothing else of
/// the request is forwarded.
pub(crate) const FORWARDED_HEADERS: [&str; 5] =
    ["cookie", "authorization", "user-agent", "x-forwarded-for", "origin"];

/// What the connect hook is asked: the upgrade's forwarded headers and the
/// peer's address. Kept by a connection it authenticated, to ask again on
/// a refresh.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Request {
    /// Of [`FORWARDED_HEADERS`], those present, each at most
    /// `max_header_bytes` (a longer one is left out).
    pub headers: BTreeMap<&'static str, String>,
    /// The TCP peer's IP address (a proxy's, behind one).
    pub remote_addr: String,
}

impl Request {
    /// The forwarded part of an upgrade.
    pub fn of(headers: &HeaderMap, peer: std::net::IpAddr, limits: &HookLimits) -> Self {
        let mut forwarded = BTreeMap::new();
        for name in FORWARDED_HEADERS {
            // Repeated headers are joined as HTTP allows (cookies with "; ").
            let separator = if name == "cookie" { "; " } else { ", " };
            let values: Vec<&str> =
                headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            let value = values.join(separator);
            if value.is_empty() {
                continue;
            }
            if value.len() > limits.max_header_bytes {
                tracing::debug!(
                    header = name,
                    bytes = value.len(),
                    "header not forwarded: too long"
                );
                continue;
            }
            forwarded.insert(name, value);
        }
        Self { headers: forwarded, remote_addr: peer.to_string() }
    }

    /// Whether the upgrade carries credentials the backend could know.
    pub fn has_credentials(&self) -> bool {
        self.headers.contains_key("cookie") || self.headers.contains_key("authorization")
    }
}

/// Who the backend says the client is.
#[derive(Debug, Deserialize)]
struct Wire {
    user: WireUser,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct WireUser {
    id: String,
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    avatar: Option<String>,
}

/// The backend's answer, checked.
#[derive(Debug, PartialEq)]
pub(crate) enum Identity {
    /// A user, with the rooms they may join (as a token's `rooms` claim).
    User { user: UserInfo, rooms: Option<Vec<String>> },
    /// 401 or 403: no session, or not allowed in.
    Refused,
}

impl Hooks {
    /// Asks the connect hook who the client is. `None` when no connect
    /// hook is configured.
    pub async fn identify(&self, request: &Request) -> Option<Result<Identity, HookError>> {
        let hook = self.settings.connect.as_ref()?;
        let identity = match self.post(&hook.url, hook.timeout, request).await {
            Ok(answer) if answer.status == 401 || answer.status == 403 => Ok(Identity::Refused),
            Ok(answer) if answer.status / 100 == 2 => parse(&answer.body, self.limits()),
            Ok(answer) => Err(HookError::Status(answer.status)),
            Err(err) => Err(err),
        };
        if let Err(err) = &identity {
            tracing::warn!(%err, "connect hook failed");
        }
        Some(identity)
    }
}

/// Checks an answer as a token's claims are checked, within the bounds.
fn parse(body: &[u8], limits: &HookLimits) -> Result<Identity, HookError> {
    let invalid = |why: String| HookError::Invalid(why);
    let wire: Wire = serde_json::from_slice(body).map_err(|err| invalid(err.to_string()))?;
    validate_user_id(&wire.user.id).map_err(|err| invalid(err.to_string()))?;
    let field = |name: &str, value: Option<&String>| match value {
        Some(value) if value.len() > limits.max_field_bytes => {
            Err(invalid(format!("{name} over {} bytes", limits.max_field_bytes)))
        }
        _ => Ok(()),
    };
    if wire.user.name.trim().is_empty() {
        return Err(invalid("user.name is empty".into()));
    }
    field("user.name", Some(&wire.user.name))?;
    field("user.role", wire.user.role.as_ref())?;
    field("user.avatar", wire.user.avatar.as_ref())?;
    if let Some(rooms) = &wire.rooms {
        if rooms.len() > limits.max_rooms {
            return Err(invalid(format!("rooms lists over {} patterns", limits.max_rooms)));
        }
        for pattern in rooms {
            field("a rooms pattern", Some(pattern))?;
        }
    }
    let WireUser { id, name, role, avatar } = wire.user;
    Ok(Identity::User { user: UserInfo { id, name, role, avatar }, rooms: wire.rooms })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn identity(answer: serde_json::Value) -> Result<Identity, HookError> {
        parse(answer.to_string().as_bytes(), &HookLimits::default())
    }

    #[test]
    fn answers_are_checked_like_claims() {
        let alice = identity(json!({"user":{"id":"alice","name":"Alice","role":"member"},
            "rooms":["general","team-*"]}));
        let Identity::User { user, rooms } = alice.unwrap() else { panic!("refused") };
        assert_eq!((user.id.as_str(), user.role.as_deref()), ("alice", Some("member")));
        assert_eq!(rooms.unwrap(), ["general", "team-*"]);
        let limits = HookLimits::default();
        for bad in [
            json!({"user":{"id":"a,b","name":"A"}}),
            json!({"user":{"id":"","name":"A"}}),
            json!({"user":{"id":"u".repeat(124),"name":"A"}}),
            json!({"user":{"id":"alice","name":" "}}),
            json!({"user":{"id":"alice","name":"n".repeat(limits.max_field_bytes + 1)}}),
            json!({"user":{"id":"alice","name":"A","avatar":"a".repeat(limits.max_field_bytes + 1)}}),
            json!({"user":{"id":"alice","name":"A"},"rooms":vec!["r"; limits.max_rooms + 1]}),
            json!({"user":{"id":"alice","name":"A"},"rooms":"general"}),
            json!({"user":{"id":42,"name":"A"}}),
            json!({"id":"alice","name":"A"}),
        ] {
            assert!(matches!(identity(bad.clone()), Err(HookError::Invalid(_))), "{bad}");
        }
        assert!(parse(b"<html>", &limits).is_err());
    }

    #[test]
    fn only_listed_headers_within_bounds_are_forwarded() {
        let limits = HookLimits::default();
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("sid=1"));
        headers.append("cookie", HeaderValue::from_static("theme=dark"));
        headers.insert("x-api-key", HeaderValue::from_static("secret"));
        headers.insert("sec-websocket-key", HeaderValue::from_static("k"));
        let long = "a".repeat(limits.max_header_bytes + 1);
        headers.insert("user-agent", HeaderValue::from_str(&long).unwrap());
        let request = Request::of(&headers, [127, 0, 0, 1].into(), &limits);
        assert_eq!(request.headers.len(), 1, "{:?}", request.headers);
        assert_eq!(request.headers["cookie"], "sid=1; theme=dark");
        assert!(request.has_credentials());
        assert_eq!(request.remote_addr, "127.0.0.1");
    }
}
