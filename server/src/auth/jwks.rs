//! The identity provider's public keys (a JWKS), held in memory and fetched
//! again in the background and when a token names a key not held, no more
//! often than the configured rate.
//!
//! The key set is hostile like any answer: read up to a bound, within a
//! timeout; a failed fetch (down, slow, huge, garbage) is logged and the
//! keys already held keep working. Symmetric (`oct`) keys and encryption
//! keys are ignored: HMAC tokens are checked with the secret only.

use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Jwks as Settings;
use crate::hooks::{HookError, HttpClient};

/// One usable key of the set.
struct Key {
    /// Absent for a provider that publishes one key and names none: only a
    /// token without `kid` can then use it.
    kid: Option<String>,
    /// The key's `alg`, when it names one: tokens must then use exactly it.
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: DecodingKey,
}

/// The cache of the identity provider's keys.
pub(crate) struct JwksCache {
    settings: Settings,
    http: HttpClient,
    /// Swapped whole after each good fetch; readers never wait for a fetch.
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the last fetch started; held during a fetch, so that tokens
    /// with an unknown `kid` wait for the one in flight rather than start
    /// their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        Ok(Self {
            settings,
            http: crate::hooks::client()?,
            keys: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The key that may check a token signed with `alg`: the one with the
    /// token's `kid`; for a token without `kid`, the set's only key of that
    /// algorithm (never a guess among several).
    pub fn key(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let mut fitting = keys
            .iter()
            .filter(|key| key.family == alg.family() && key.alg.is_none_or(|pinned| pinned == alg));
        match kid {
            Some(kid) => fitting.find(|key| key.kid.as_deref() == Some(kid)),
            None => match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            },
        }
        .map(|key| key.key.clone())
    }

    /// A token named a key not held: fetches the set again, unless a fetch
    /// started less than `min_refresh_interval` ago (then the keys stay).
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.settings.min_refresh_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch_and_swap("unknown kid").await;
    }

    /// Fetches the set and, if it is good, replaces the keys held.
    async fn fetch_and_swap(&self, why: &'static str) {
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.settings.url, keys = keys.len(), why, "JWKS fetched");
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Arc::new(keys);
            }
            Err(err) => tracing::warn!(
                url = %self.settings.url, why, error = %err,
                "JWKS fetch failed; the keys already held stay in use"
            ),
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, HookError> {
        use http_body_util::BodyExt as _;
        let request = axum::http::Request::get(self.settings.url.as_str())
            .header(axum::http::header::ACCEPT, "application/json")
            .header(axum::http::header::USER_AGENT, concat!("roomcast/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|err| HookError::Unreachable(err.to_string()))?;
        let max = self.settings.max_bytes;
        let call = async {
            let response = self.http.request(request).await.map_err(crate::hooks::reached)?;
            if response.status() != axum::http::StatusCode::OK {
                return Err(HookError::Status(response.status().as_u16()));
            }
            // Read up to the bound: a body without a length stops being
            // read as soon as it passes it.
            let limited = http_body_util::Limited::new(response.into_body(), max);
            match limited.collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    Err(HookError::TooLarge(max))
                }
                Err(err) => Err(HookError::Unreachable(err.to_string())),
            }
        };
        let timeout = self.settings.timeout;
        let body = tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| HookError::Timeout(timeout))??;
        parse(&body)
    }
}

/// The usable keys of a JWKS document. Each key is read on its own: one of
/// a kind this server does not know (an encryption key, a new curve) is
/// skipped rather than spoiling the set. A set with no usable key is a
/// failed fetch: it would lock every user out.
fn parse(body: &[u8]) -> Result<Vec<Key>, HookError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|err| HookError::Invalid(format!("not a JWKS: {err}")))?;
    let keys: Vec<Key> = set.keys.into_iter().filter_map(usable).collect();
    if keys.is_empty() {
        return Err(HookError::Invalid("no usable signing key in the JWKS".into()));
    }
    Ok(keys)
}

fn usable(value: serde_json::Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        // A shared secret published in a key set is no secret.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        Some(named) => Some(named.to_string().parse::<Algorithm>().ok()?),
        None => None,
    };
    if alg.is_some_and(|alg| alg.family() != family) {
        return None;
    }
    let kid = jwk.common.key_id.clone();
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key { kid, alg, family, key })
}

/// Fetches the set at once, then every `refresh_interval`, until shutdown.
pub(crate) async fn keep_fresh(cache: Arc<JwksCache>, shutdown: CancellationToken) {
    loop {
        {
            let mut last = cache.last_fetch.lock().await;
            *last = Some(Instant::now());
            cache.fetch_and_swap("periodic").await;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(cache.settings.refresh_interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_empty_and_secret_key_sets_are_failed_fetches() {
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"keys": []}"#).is_err());
        // An `oct` key (a shared secret) is never taken from a key set.
        let oct = br#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#;
        assert!(parse(oct).is_err());
    }

    #[test]
    fn unknown_kinds_are_skipped_and_pinned_algorithms_kept() {
        let set = br#"{"keys": [
            {"kty": "weird", "kid": "w"},
            {"kty": "EC", "crv": "P-256", "kid": "e", "alg": "ES256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let keys = parse(set).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("e"));
        assert_eq!(keys[0].alg, Some(Algorithm::ES256));
    }
}
