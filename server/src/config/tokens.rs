//! The settings of access tokens beyond the HS256 secret: which algorithms
//! are accepted, where the identity provider's public keys are (a JWKS URL),
//! and which claims carry the user id, name, role, avatar and rooms.

use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::ConfigError;

/// The identity provider's key set (`--jwt-jwks-url`): fetched at start,
/// kept in memory, fetched again periodically and when a token names a key
/// it does not hold, at most once per `min_refresh_interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    /// Where the key set is (http or https).
    pub url: url::Url,
    /// How long one fetch may take, body read included (default 5 s).
    pub timeout: Duration,
    /// How often the key set is fetched again in the background (default 5 min).
    pub refresh_interval: Duration,
    /// The shortest time between two fetches asked by tokens with an
    /// unknown `kid` (default 10 s): a flood of made-up `kid`s costs the
    /// identity provider at most one request per interval.
    pub min_refresh_interval: Duration,
    /// Bytes of the key set read at most (default 256 KiB); a bigger one
    /// is a failed fetch and the keys already held stay.
    pub max_bytes: usize,
}

/// The claims that carry each part of the user (defaults: Roomcast's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// The user id (default `sub`); a JSON number is taken as its decimal string.
    pub user_id: String,
    /// The display name (default `name`); absent, the user id is shown.
    pub name: String,
    /// The role (default `role`): a string, or a list of strings.
    pub role: String,
    /// The avatar URL (default `avatar`).
    pub avatar: String,
    /// The glob patterns of the public rooms the token may join (default `rooms`).
    pub rooms: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            user_id: "sub".into(),
            name: "name".into(),
            role: "role".into(),
            avatar: "avatar".into(),
            rooms: "rooms".into(),
        }
    }
}

/// How tokens are checked, besides the secret, `iss` and `aud`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The algorithms a token may be signed with (default: HS256, plus
    /// RS256 and ES256 with a JWKS URL). HMAC ones are checked with the
    /// secret only, the others with the JWKS's keys only; `none` never.
    pub algorithms: Vec<Algorithm>,
    /// The identity provider's key set, when configured.
    pub jwks: Option<Jwks>,
    /// Which claims carry the user.
    pub claims: ClaimNames,
    /// The role value that makes a token an admin's, compared without
    /// regard to case (default `admin`).
    pub admin_role: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::HS256],
            jwks: None,
            claims: ClaimNames::default(),
            admin_role: roomcast_shared::room::ADMIN_ROLE.into(),
        }
    }
}

/// The token flags, as given.
pub(super) struct Flags {
    pub algorithms: Vec<String>,
    pub jwks_url: Option<String>,
    pub jwks_timeout_ms: u64,
    pub jwks_refresh_secs: u64,
    pub jwks_min_refresh_ms: u64,
    pub jwks_max_bytes: usize,
    pub claims: ClaimNames,
    pub admin_role: String,
}

impl TokenSettings {
    /// Checks the token flags.
    pub(super) fn from_flags(flags: Flags) -> Result<Self, ConfigError> {
        let jwks = match flags.jwks_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => Some(Jwks {
                url: super::hooks::hook_url(&url, "jwt-jwks-url")?,
                timeout: positive_ms(flags.jwks_timeout_ms, "jwt-jwks-timeout-ms")?,
                refresh_interval: Duration::from_secs(flags.jwks_refresh_secs.max(1)),
                min_refresh_interval: Duration::from_millis(flags.jwks_min_refresh_ms),
                max_bytes: match flags.jwks_max_bytes {
                    0 => {
                        return Err(ConfigError::OutOfRange {
                            name: "jwt-jwks-max-bytes",
                            rule: "greater than zero",
                        });
                    }
                    n => n,
                },
            }),
            None => None,
        };
        let algorithms = if flags.algorithms.is_empty() {
            let mut default = vec![Algorithm::HS256];
            if jwks.is_some() {
                default.extend([Algorithm::RS256, Algorithm::ES256]);
            }
            default
        } else {
            flags.algorithms.iter().map(|name| algorithm(name)).collect::<Result<_, _>>()?
        };
        let asymmetric = algorithms.iter().any(|alg| alg.family() != AlgorithmFamily::Hmac);
        if asymmetric && jwks.is_none() {
            return Err(ConfigError::OutOfRange {
                name: "jwt-algorithms",
                rule: "only HS256/HS384/HS512 without --jwt-jwks-url (public keys come from it)",
            });
        }
        let claims = flags.claims;
        for (name, value) in [
            ("jwt-claim-user-id", &claims.user_id),
            ("jwt-claim-name", &claims.name),
            ("jwt-claim-role", &claims.role),
            ("jwt-claim-avatar", &claims.avatar),
            ("jwt-claim-rooms", &claims.rooms),
            ("jwt-admin-role", &flags.admin_role),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Empty(name));
            }
        }
        Ok(Self { algorithms, jwks, claims, admin_role: flags.admin_role })
    }

    /// Whether HMAC tokens (checked with the secret) are accepted.
    pub fn accepts_hmac(&self) -> bool {
        self.algorithms.iter().any(|alg| alg.family() == AlgorithmFamily::Hmac)
    }
}

/// One `--jwt-algorithms` entry. `none` is not an algorithm jsonwebtoken
/// knows, so it is refused here too, with the reason.
fn algorithm(name: &str) -> Result<Algorithm, ConfigError> {
    let rule = "a comma-separated list of HS256, HS384, HS512, RS256, RS384, RS512, PS256, \
                PS384, PS512, ES256, ES384, EdDSA (never none)";
    name.trim()
        .parse::<Algorithm>()
        .map_err(|_| ConfigError::OutOfRange { name: "jwt-algorithms", rule })
}

fn positive_ms(ms: u64, name: &'static str) -> Result<Duration, ConfigError> {
    match ms {
        0 => Err(ConfigError::OutOfRange { name, rule: "greater than zero" }),
        ms => Ok(Duration::from_millis(ms)),
    }
}
