//! Access tokens (JWT) for WebSocket clients, and the API key for
//! backends. HMAC tokens (HS256 by default) are checked with the secret;
//! RS/PS/ES/EdDSA tokens with the identity provider's keys ([`jwks`]),
//! chosen by the token's `kid`. Only the configured algorithms are
//! accepted, and each family only with its own kind of key: a token that
//! says HS256 is never checked with a public key as its secret.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use roomcast_shared::Claims;
use roomcast_shared::room::validate_user_id;
use subtle::ConstantTimeEq;

use crate::config::{ClaimNames, TokenSettings};

mod claims;
pub(crate) mod jwks;

/// Why a token is refused. Every variant answers `unauthorized`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token has no exp claim (required outside dev mode)")]
    MissingExp,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("invalid token: {0}")]
    BadSubject(#[from] roomcast_shared::room::InvalidName),
    /// No key with the token's `kid` is held, even after asking the
    /// identity provider (within the refresh rate).
    #[error("invalid token: no key {0:?} in the identity provider's key set")]
    UnknownKey(String),
}

/// Checks tokens (and, in dev mode, issues them).
pub(crate) struct Tokens {
    decoding: DecodingKey,
    encoding: EncodingKey,
    /// Times, `iss` and `aud`; the algorithm is set per token, from the
    /// accepted list.
    validation: Validation,
    algorithms: Vec<Algorithm>,
    claims: ClaimNames,
    admin_role: String,
    jwks: Option<Arc<jwks::JwksCache>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("algorithms", &self.algorithms).finish_non_exhaustive()
    }
}

impl Tokens {
    /// HS256 with Roomcast's claim names; `require_exp` is false only in
    /// dev mode.
    pub fn new(secret: &str, require_exp: bool) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = true;
        // No grace after `exp`: an open connection closes exactly when its
        // token expires, so a token must not be accepted a moment later.
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        if require_exp {
            validation.required_spec_claims.insert("exp".to_owned());
        }
        let defaults = TokenSettings::default();
        Self {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
            algorithms: defaults.algorithms,
            claims: defaults.claims,
            admin_role: defaults.admin_role,
            jwks: None,
        }
    }

    /// Takes the accepted algorithms, claim names and admin role, and the
    /// JWKS cache (empty until [`jwks::keep_fresh`] runs) if one is set.
    pub fn with_settings(mut self, settings: &TokenSettings) -> std::io::Result<Self> {
        self.algorithms = settings.algorithms.clone();
        self.claims = settings.claims.clone();
        self.admin_role = settings.admin_role.clone();
        self.jwks = match &settings.jwks {
            Some(jwks) => Some(Arc::new(jwks::JwksCache::new(jwks.clone())?)),
            None => None,
        };
        Ok(self)
    }

    /// The JWKS cache, to keep fresh in the background.
    pub fn jwks(&self) -> Option<Arc<jwks::JwksCache>> {
        self.jwks.clone()
    }

    /// Requires tokens to carry this `iss`.
    pub fn with_issuer(mut self, issuer: Option<&str>) -> Self {
        if let Some(issuer) = issuer {
            self.validation.set_issuer(&[issuer]);
            self.validation.required_spec_claims.insert("iss".to_owned());
        }
        self
    }

    /// Requires tokens to carry this `aud`.
    pub fn with_audience(mut self, audience: Option<&str>) -> Self {
        match audience {
            Some(audience) => {
                self.validation.set_audience(&[audience]);
                self.validation.required_spec_claims.insert("aud".to_owned());
            }
            // Without a configured audience, a token's `aud` is not checked.
            None => self.validation.validate_aud = false,
        }
        self
    }

    /// Checks a token's algorithm, signature and times, and reads its
    /// claims. A `kid` not in the key set asks the identity provider once
    /// (within the refresh rate) before the token is refused.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match (self.check(token), &self.jwks) {
            (Err(TokenError::UnknownKey(_)), Some(jwks)) => {
                // Boxed: the fetch's state stays out of the session's future.
                Box::pin(jwks.refresh_for_unknown_kid()).await;
                self.check(token)
            }
            (checked, _) => checked,
        }
    }

    /// [`Self::verify`] with the keys held now.
    fn check(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let fetched;
        let key = if header.alg.family() == AlgorithmFamily::Hmac {
            &self.decoding
        } else {
            // Configuration allows asymmetric algorithms only with a JWKS.
            let jwks = self.jwks.as_ref().ok_or_else(|| TokenError::Invalid("no JWKS".into()))?;
            fetched =
                jwks.key(header.kid.as_deref(), header.alg).ok_or_else(|| match header.kid {
                    Some(kid) => TokenError::UnknownKey(kid),
                    // Not worth a fetch: a new set would not name a key either.
                    None => TokenError::Invalid(format!(
                        "the token has no kid, and the key set holds no single {:?} key",
                        header.alg
                    )),
                })?;
            &fetched
        };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &validation,
        )
        .map_err(refused)?;
        let claims = claims::read(data.claims, &self.claims, &self.admin_role)?;
        validate_user_id(&claims.sub)?;
        Ok(claims)
    }

    /// Signs claims (the dev token endpoint).
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }
}

fn refused(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => TokenError::MissingExp,
        ErrorKind::MissingRequiredClaim(claim) => {
            TokenError::Invalid(format!("missing the {claim} claim"))
        }
        ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
        ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
        _ => TokenError::Invalid(err.to_string()),
    }
}

/// The backends' API key, compared in constant time.
pub(crate) struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// Whether an `Authorization` header value carries this key.
    pub fn matches_header(&self, header: Option<&str>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        presented.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> Claims {
        Claims { exp, ..Claims::new("alice", "Alice") }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn round_trip_and_expiry() {
        let tokens = Tokens::new("secret", true);
        let token = tokens.issue(&claims(Some(now() + 60))).unwrap();
        assert_eq!(tokens.check(&token).unwrap().sub, "alice");

        let expired = tokens.issue(&claims(Some(now() - 3600))).unwrap();
        assert!(matches!(tokens.check(&expired), Err(TokenError::Expired)));

        let forever = tokens.issue(&claims(None)).unwrap();
        assert!(matches!(tokens.check(&forever), Err(TokenError::MissingExp)));
        assert!(Tokens::new("secret", false).check(&forever).is_ok());
    }

    #[test]
    fn wrong_secret_and_alg_none_are_refused() {
        let token = Tokens::new("other", false).issue(&claims(None)).unwrap();
        assert!(matches!(Tokens::new("secret", false).check(&token), Err(TokenError::Invalid(_))));

        // {"alg":"none","typ":"JWT"} . {"sub":"alice","name":"Alice"} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsIm5hbWUiOiJBbGljZSJ9.";
        assert!(Tokens::new("secret", false).check(none).is_err());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        #[derive(serde::Serialize)]
        struct WithIss<'a> {
            sub: &'a str,
            name: &'a str,
            iss: &'a str,
            aud: &'a str,
        }
        let sign = |iss, aud| {
            let claims = WithIss { sub: "alice", name: "Alice", iss, aud };
            let key = EncodingKey::from_secret(b"secret");
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
        };
        let strict = Tokens::new("secret", false)
            .with_issuer(Some("auth.example"))
            .with_audience(Some("chat"));
        assert!(strict.check(&sign("auth.example", "chat")).is_ok());
        assert!(strict.check(&sign("evil.example", "chat")).is_err());
        assert!(strict.check(&sign("auth.example", "billing")).is_err());
        assert!(strict.check(&Tokens::new("secret", false).issue(&claims(None)).unwrap()).is_err());
        let relaxed = Tokens::new("secret", false).with_issuer(None).with_audience(None);
        assert!(relaxed.check(&sign("anyone", "anything")).is_ok());
    }

    #[test]
    fn api_key_needs_the_bearer_scheme_and_exact_key() {
        let key = ApiKey::new("k3y".into());
        assert!(key.matches_header(Some("Bearer k3y")));
        assert!(!key.matches_header(Some("Bearer k3")));
        assert!(!key.matches_header(Some("k3y")));
        assert!(!key.matches_header(None));
    }
}
