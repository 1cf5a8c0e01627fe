//! Access tokens (JWT, HS256) for WebSocket clients, and the API key for
//! backends.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use roomcast_shared::Claims;
use roomcast_shared::room::validate_user_id;
use subtle::ConstantTimeEq;

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
}

/// Checks tokens (and, in dev mode, issues them).
pub(crate) struct Tokens {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

impl Tokens {
    /// `require_exp` is false only in dev mode.
    pub fn new(secret: &str, require_exp: bool) -> Self {
        // Pinned to HS256: `none` and every other algorithm are refused, so an
        // attacker cannot pick how the signature is checked.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = true;
        // No grace after `exp`: an open connection closes exactly when its
        // token expires, so a token must not be accepted a moment later.
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        if require_exp {
            validation.required_spec_claims.insert("exp".to_owned());
        }
        Self {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
        }
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

    /// Checks a token's signature, algorithm and times, and its subject.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => TokenError::MissingExp,
                ErrorKind::MissingRequiredClaim(claim) => {
                    TokenError::Invalid(format!("missing the {claim} claim"))
                }
                ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
                ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
                _ => TokenError::Invalid(err.to_string()),
            })?;
        validate_user_id(&data.claims.sub)?;
        Ok(data.claims)
    }

    /// Signs claims (the dev token endpoint).
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
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
        assert_eq!(tokens.verify(&token).unwrap().sub, "alice");

        let expired = tokens.issue(&claims(Some(now() - 3600))).unwrap();
        assert!(matches!(tokens.verify(&expired), Err(TokenError::Expired)));

        let forever = tokens.issue(&claims(None)).unwrap();
        assert!(matches!(tokens.verify(&forever), Err(TokenError::MissingExp)));
        assert!(Tokens::new("secret", false).verify(&forever).is_ok());
    }

    #[test]
    fn wrong_secret_and_alg_none_are_refused() {
        let token = Tokens::new("other", false).issue(&claims(None)).unwrap();
        assert!(matches!(Tokens::new("secret", false).verify(&token), Err(TokenError::Invalid(_))));

        // {"alg":"none","typ":"JWT"} . {"sub":"alice","name":"Alice"} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsIm5hbWUiOiJBbGljZSJ9.";
        assert!(Tokens::new("secret", false).verify(none).is_err());
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
        assert!(strict.verify(&sign("auth.example", "chat")).is_ok());
        assert!(strict.verify(&sign("evil.example", "chat")).is_err());
        assert!(strict.verify(&sign("auth.example", "billing")).is_err());
        assert!(
            strict.verify(&Tokens::new("secret", false).issue(&claims(None)).unwrap()).is_err()
        );
        let relaxed = Tokens::new("secret", false).with_issuer(None).with_audience(None);
        assert!(relaxed.verify(&sign("anyone", "anything")).is_ok());
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
