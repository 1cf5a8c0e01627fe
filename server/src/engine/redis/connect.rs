//! Reaching Redis: the client every connection of the engine comes from
//! (TLS for `rediss://`, verified against the system's CAs or those of
//! `--redis-ca-file`), and the check at start that the server is one the
//! engine can work with: recent enough, a single node, a primary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::{AsyncConnectionConfig, Client, RedisError, TlsCertificates};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The oldest Redis the engine works with: 6.2, for `XTRIM ... MINID` (the
/// append script trims a room's stream by age with it). The rest needs
/// less: RESP3 and its push messages on the subscriber (6.0), streams
/// (5.0), `HSET` with several fields (4.0), Lua with `cjson` (2.6).
pub(super) const MIN_VERSION: Version = Version { major: 6, minor: 2, patch: 0 };

/// Characters of a hostile `INFO` value repeated in a message at most.
const QUOTED_CHARS: usize = 64;

/// Why the engine cannot use the Redis it was given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot read --redis-ca-file {}: {source}", path.display())]
    CaFile { path: PathBuf, source: std::io::Error },
    #[error("--redis-ca-file {} holds no PEM certificate{detail}", path.display())]
    NoCertificate { path: PathBuf, detail: String },
    #[error("no connection within {timeout:?} (--redis-connect-timeout-ms){hint}")]
    Timeout { timeout: Duration, hint: Hint },
    #[error("cannot connect: {source}{hint}")]
    Connect { source: RedisError, hint: Hint },
    #[error("cannot check the Redis version: INFO failed: {0}")]
    Info(RedisError),
    #[error("{0}")]
    Unfit(#[from] Unfit),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// What makes a Redis that answers unfit for the engine, read from `INFO`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unfit {
    #[error("Redis {found} is too old: Roomcast needs Redis {MIN_VERSION} or newer")]
    TooOld { found: Version },
    #[error("INFO has no redis_version: this server does not look like Redis {MIN_VERSION}+")]
    NoVersion,
    #[error("INFO reports redis_version:{0:?}, which is not a version")]
    BadVersion(String),
    #[error(
        "Redis runs in cluster mode (cluster_enabled:1): Roomcast needs a single-node Redis \
         (a primary, with replicas if you like): its scripts touch keys of several rooms and \
         users at once, which a cluster refuses across slots"
    )]
    Cluster,
    #[error(
        "Redis is a replica (role:slave): Roomcast writes, so give it the primary's address \
         (the primary endpoint of a managed Redis)"
    )]
    Replica,
}

/// A hint added to a connection failure: which setting is likely wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// Nothing more to say (refused: nothing listens there).
    None,
    /// A `rediss://` URL whose handshake failed.
    Tls,
    /// A `redis://` URL whose connection was dropped or hung.
    Plain,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "",
            Self::Tls => {
                ". With rediss://, the port must serve TLS and Redis's certificate must be \
                 signed by a CA the server trusts (the system's, or --redis-ca-file) for the \
                 host name in the URL"
            }
            Self::Plain => ". If this Redis requires TLS, use a rediss:// URL",
        })
    }
}

/// A Redis version, as `INFO server` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// `major.minor[.patch]`, each a number of at most 9 digits; anything
    /// else is not a version.
    fn parse(text: &str) -> Option<Self> {
        let number = |part: &str| {
            let digits = !part.is_empty() && part.len() <= 9;
            (digits && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.parse().ok())?
        };
        let mut parts = text.trim().split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = match parts.next() {
            Some(part) => number(part)?,
            None => 0,
        };
        parts.next().is_none().then_some(Self { major, minor, patch })
    }
}

/// Whether the server that answered `INFO` with `info` can hold the
/// engine's state; its version when it can.
pub(crate) fn check_info(info: &str) -> Result<Version, Unfit> {
    let field = |name: &str| {
        info.lines()
            .filter_map(|line| line.trim_end_matches('\r').split_once(':'))
            .find_map(|(key, value)| (key == name).then_some(value))
    };
    let text = field("redis_version").ok_or(Unfit::NoVersion)?;
    let found = Version::parse(text)
        .ok_or_else(|| Unfit::BadVersion(text.chars().take(QUOTED_CHARS).collect()))?;
    if found < MIN_VERSION {
        return Err(Unfit::TooOld { found });
    }
    if field("cluster_enabled").is_some_and(|value| value.trim() != "0") {
        return Err(Unfit::Cluster);
    }
    if field("role").is_some_and(|role| matches!(role.trim(), "slave" | "replica")) {
        return Err(Unfit::Replica);
    }
    Ok(found)
}

/// The client for `url` (already asking for RESP3): with `rediss://`, TLS
/// verified against `ca_file`'s certificates when given, the system's
/// otherwise.
pub(super) fn client(url: &str, ca_file: Option<&Path>) -> Result<Client, ConnectError> {
    let Some(path) = ca_file else { return Ok(Client::open(url)?) };
    let pem = std::fs::read(path)
        .map_err(|source| ConnectError::CaFile { path: path.to_owned(), source })?;
    // Checked here rather than left to the client: a file with nothing
    // usable in it would otherwise fail every handshake, far from its cause.
    let no_certificate = |detail: String| ConnectError::NoCertificate { path: path.into(), detail };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| no_certificate(format!(" ({err})")))?;
    if certificates.is_empty() {
        return Err(no_certificate(String::new()));
    }
    let tls = TlsCertificates { client_tls: None, root_cert: Some(pem) };
    Ok(Client::build_with_tls(url, tls)?)
}

/// Connects once (no retries: a wrong URL or CA must fail now, clearly)
/// within `timeout`, and checks with `INFO` that Redis can hold the
/// engine's state. Returns its version.
pub(super) async fn check(client: &Client, timeout: Duration) -> Result<Version, ConnectError> {
    let tls = matches!(client.get_connection_info().addr(), redis::ConnectionAddr::TcpTls { .. });
    let hint = |refused: bool| match (refused, tls) {
        (true, _) => Hint::None,
        (false, true) => Hint::Tls,
        (false, false) => Hint::Plain,
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let probe = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| ConnectError::Connect {
                hint: hint(source.is_connection_refusal()),
                source,
            })?;
        let info: String =
            redis::cmd("INFO").query_async(&mut connection).await.map_err(ConnectError::Info)?;
        Ok(check_info(&info)?)
    };
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or(Err(ConnectError::Timeout { timeout, hint: hint(false) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V7: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n\
                      # Replication\r\nrole:master\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n";

    fn version(major: u32, minor: u32, patch: u32) -> Version {
        Version { major, minor, patch }
    }

    #[test]
    fn a_recent_primary_passes() {
        assert_eq!(check_info(V7), Ok(version(7, 0, 15)));
        assert_eq!(check_info("redis_version:6.2.0"), Ok(MIN_VERSION), "the minimum itself");
        assert_eq!(check_info("redis_version:6.2"), Ok(MIN_VERSION));
        assert_eq!(check_info("redis_version:10.0.0\n"), Ok(version(10, 0, 0)), "not text order");
        assert_eq!(check_info("redis_version:255.255.255"), Ok(version(255, 255, 255)));
    }

    #[test]
    fn an_old_redis_is_refused_with_both_versions() {
        for (info, found) in [
            ("redis_version:6.0.20", version(6, 0, 20)),
            ("redis_version:5.0.14\r\n", version(5, 0, 14)),
            ("redis_version:6.1.999", version(6, 1, 999)),
        ] {
            assert_eq!(check_info(info), Err(Unfit::TooOld { found }), "{info}");
        }
        let message = check_info("redis_version:5.0.7").unwrap_err().to_string();
        assert!(message.contains("5.0.7") && message.contains("6.2.0"), "{message}");
    }

    #[test]
    fn hostile_info_is_refused_without_panic() {
        assert_eq!(check_info(""), Err(Unfit::NoVersion));
        assert_eq!(check_info("# Server\r\nredis_mode:standalone\r\n"), Err(Unfit::NoVersion));
        assert_eq!(check_info("xredis_version:7.0.0"), Err(Unfit::NoVersion), "whole keys only");
        for garbage in [
            "",
            "7",
            "v7.0.0",
            "7.0.0.1",
            "7..0",
            "-7.0.0",
            "7.0.0-rc1",
            "99999999999999999999.0.0",
            "4294967296.0.0",
            "7.0.\u{0}",
            "७.०.०",
        ] {
            let info = format!("redis_version:{garbage}\r\n");
            assert!(matches!(check_info(&info), Err(Unfit::BadVersion(_))), "{garbage:?}");
        }
        let long = format!("redis_version:{}", "9".repeat(100_000));
        let Err(Unfit::BadVersion(quoted)) = check_info(&long) else { panic!("accepted") };
        assert_eq!(quoted.chars().count(), QUOTED_CHARS, "a hostile value is cut short");
    }

    #[test]
    fn a_cluster_or_a_replica_is_refused() {
        let cluster = V7.replace("cluster_enabled:0", "cluster_enabled:1");
        assert_eq!(check_info(&cluster), Err(Unfit::Cluster));
        assert!(Unfit::Cluster.to_string().contains("single-node"));
        let replica = V7.replace("role:master", "role:slave");
        assert_eq!(check_info(&replica), Err(Unfit::Replica));
        // The first occurrence counts: a later line cannot hide an earlier one.
        let twice = format!("{cluster}cluster_enabled:0\r\n");
        assert_eq!(check_info(&twice), Err(Unfit::Cluster));
    }
}
