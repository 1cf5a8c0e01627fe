//! The Redis flags checked together at start (`--redis-url`,
//! `--redis-ca-file`): a URL the client can use, TLS with certificate
//! verification, and a CA file only where TLS is asked for.

use std::path::Path;

use redis::IntoConnectionInfo;

/// Why the Redis flags cannot work.
#[derive(Debug, thiserror::Error)]
pub enum RedisConfigError {
    /// A URL the Redis client cannot parse (or an empty one).
    #[error(
        "--redis-url is not a Redis URL ({reason}): use redis://[user:password@]host:port/db, \
         or rediss://... for TLS"
    )]
    Url {
        /// What the client found wrong (never the URL: it may hold a password).
        reason: String,
    },
    /// `rediss://...#insecure` would accept any certificate: anyone on the
    /// path could read every message and impersonate Redis.
    #[error(
        "--redis-url with #insecure (TLS without certificate verification) is refused: \
         anyone between the server and Redis could read and change everything. Give the CA \
         that signed Redis's certificate with --redis-ca-file instead"
    )]
    Insecure,
    /// A CA file means TLS: with a plain `redis://` URL it would be ignored.
    #[error(
        "--redis-ca-file is given but --redis-url is not rediss://: the CA file is used only \
         with TLS. Use a rediss:// URL, or drop --redis-ca-file"
    )]
    CaWithoutTls,
}

/// Checks the Redis URL (when there is one) and the CA file against it.
pub(super) fn check(url: Option<&str>, ca_file: Option<&Path>) -> Result<(), RedisConfigError> {
    let Some(url) = url else {
        return match ca_file {
            Some(_) => Err(RedisConfigError::CaWithoutTls),
            None => Ok(()),
        };
    };
    let parsed = url::Url::parse(url.trim())
        .map_err(|err| RedisConfigError::Url { reason: err.to_string() })?;
    if parsed.fragment() == Some("insecure") {
        return Err(RedisConfigError::Insecure);
    }
    let info = url
        .trim()
        .into_connection_info()
        .map_err(|err| RedisConfigError::Url { reason: err.to_string() })?;
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    if ca_file.is_some() && !tls {
        return Err(RedisConfigError::CaWithoutTls);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let ca = Some(Path::new("ca.pem"));
        assert!(check(None, None).is_ok());
        assert!(check(Some("redis://127.0.0.1:6379/2"), None).is_ok());
        assert!(check(Some("rediss://user:pw@redis.example.com:6380"), None).is_ok());
        assert!(check(Some("rediss://redis.example.com:6380"), ca).is_ok());
        let insecure = check(Some("rediss://redis.example.com:6380/#insecure"), None);
        assert!(matches!(insecure, Err(RedisConfigError::Insecure)), "{insecure:?}");
        assert!(matches!(check(Some("redis://h:1"), ca), Err(RedisConfigError::CaWithoutTls)));
        assert!(matches!(check(None, ca), Err(RedisConfigError::CaWithoutTls)));
        for bad in ["", " ", "http://h:1", "redis://", "redis://h:1/notadb", "rediss://h/#other"] {
            let err = check(Some(bad), None);
            assert!(matches!(err, Err(RedisConfigError::Url { .. })), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_password_is_not_repeated() {
        let err = check(Some("redis://user:hunter2@h:1/x"), None).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
