//! The claims of a Roomcast access token (a JWT, HS256 by default).

use serde::{Deserialize, Serialize};

use crate::model::UserInfo;
use crate::room::Access;
// Kept here too: it is the value of the `role` claim. The room rules, which
// decide what it allows, own it.
pub use crate::room::ADMIN_ROLE;

/// What a token says about its bearer. Backends mint tokens with these claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The display name.
    pub name: String,
    /// `admin`, `member`, or any role of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Glob patterns (`*`) of the public rooms this token may join; absent
    /// means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// Expiry, in seconds since the Unix epoch (required outside dev mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Not before, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// The claims of user `sub`, displayed as `name`, and nothing else (no
    /// role, avatar, room patterns or times): set those with struct update
    /// syntax, `Claims { exp: Some(exp), ..Claims::new(id, name) }`.
    pub fn new(sub: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            sub: sub.into(),
            name: name.into(),
            role: None,
            avatar: None,
            rooms: None,
            exp: None,
            nbf: None,
            iat: None,
        }
    }

    /// Whether the token carries the admin role.
    pub fn is_admin(&self) -> bool {
        self.access().is_admin
    }

    /// The public profile the server shows to others.
    pub fn user(&self) -> UserInfo {
        UserInfo {
            id: self.sub.clone(),
            name: self.name.clone(),
            role: self.role.clone(),
            avatar: self.avatar.clone(),
        }
    }

    /// The view of the token the room rules need.
    pub fn access(&self) -> Access<'_> {
        Access::new(&self.sub, self.role.as_deref(), self.rooms.as_deref())
    }
}
