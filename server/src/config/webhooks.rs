//! The settings of webhooks (`--webhook-url`): where events go, which
//! types each URL takes, how deliveries are signed and retried, and how
//! much waits in memory.

use std::time::Duration;

use super::ConfigError;
use crate::webhooks::Kind;

/// Fewest bytes of `--webhook-secret`: a receiver trusts what it signs.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// One `--webhook-url`: a receiver and the event types it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where events are POSTed, without the `#types=` fragment (which is
    /// never sent). Also the endpoint's name in the outbox and the API.
    pub url: url::Url,
    /// The types it takes; every type when the URL names none.
    pub kinds: Vec<Kind>,
}

impl Endpoint {
    /// Whether the endpoint takes events of `kind`.
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// Retries, timeouts and bounds of deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// How long one POST may take, answer included (default 10 s).
    pub timeout: Duration,
    /// The wait before the first retry; each next one doubles it, with
    /// jitter (default 500 ms).
    pub retry_initial: Duration,
    /// The longest wait between two attempts (default 30 s).
    pub retry_max: Duration,
    /// Attempts before an event is dead-lettered (default 20: about seven
    /// minutes of retrying with the default waits).
    pub max_attempts: u32,
    /// Deliveries in flight at once per endpoint, each for another room
    /// (a room's events go one at a time, in order) (default 16).
    pub concurrency: usize,
    /// Events read ahead from the outbox per endpoint; the rest wait in the
    /// database (default 1,000).
    pub buffer: usize,
    /// Live events (joins, presence, reads...) waiting to be written to the
    /// outbox; past it they are dropped and counted (default 10,000).
    pub record_queue: usize,
    /// Days a dead letter is kept for replay (default 30).
    pub dead_letter_max_age: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            max_attempts: 20,
            concurrency: 16,
            buffer: 1_000,
            record_queue: 10_000,
            dead_letter_max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Webhooks: the endpoints (none: no webhook), their secret and delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Webhooks {
    pub endpoints: Vec<Endpoint>,
    /// The HMAC-SHA256 key of the `Roomcast-Signature` header.
    pub secret: String,
    pub delivery: Delivery,
}

/// The webhook flags, as given.
#[derive(Debug, Clone)]
pub(super) struct Flags {
    pub urls: Vec<String>,
    pub secret: Option<String>,
    pub timeout_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub max_attempts: u32,
    pub concurrency: usize,
}

impl Webhooks {
    /// Whether any endpoint is configured.
    pub fn enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Checks the webhook flags.
    pub(super) fn from_flags(flags: Flags) -> Result<Self, ConfigError> {
        let urls: Vec<&str> =
            flags.urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            return Ok(Self::default());
        }
        let endpoints = urls.into_iter().map(endpoint).collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = endpoints.iter().map(|e| e.url.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::OutOfRange {
                name: "webhook-url",
                rule: "given once per URL (list every type it takes in one #types=...)",
            });
        }
        let secret = match flags.secret {
            None => {
                return Err(ConfigError::OutOfRange {
                    name: "webhook-secret",
                    rule: "given with --webhook-url: every delivery is signed with it",
                });
            }
            Some(s) if s.trim().is_empty() => return Err(ConfigError::Empty("webhook-secret")),
            Some(s) if s.len() < MIN_WEBHOOK_SECRET_BYTES => {
                return Err(ConfigError::OutOfRange {
                    name: "webhook-secret",
                    rule: "at least 16 bytes (make one with `openssl rand -hex 32`)",
                });
            }
            Some(s) => s,
        };
        let ms = |value: u64, name, max: u64| {
            if value == 0 || value > max {
                Err(ConfigError::OutOfRange { name, rule: "1 to the documented maximum (ms)" })
            } else {
                Ok(Duration::from_millis(value))
            }
        };
        let timeout = ms(flags.timeout_ms, "webhook-timeout-ms", 60_000)?;
        let retry_initial = ms(flags.retry_initial_ms, "webhook-retry-initial-ms", 3_600_000)?;
        let retry_max = ms(flags.retry_max_ms, "webhook-retry-max-ms", 3_600_000)?;
        if retry_max < retry_initial {
            return Err(ConfigError::OutOfRange {
                name: "webhook-retry-max-ms",
                rule: "at least --webhook-retry-initial-ms",
            });
        }
        if !(1..=1_000).contains(&flags.max_attempts) {
            return Err(ConfigError::OutOfRange {
                name: "webhook-max-attempts",
                rule: "1 to 1000",
            });
        }
        if !(1..=256).contains(&flags.concurrency) {
            return Err(ConfigError::OutOfRange { name: "webhook-concurrency", rule: "1 to 256" });
        }
        let delivery = Delivery {
            timeout,
            retry_initial,
            retry_max,
            max_attempts: flags.max_attempts,
            concurrency: flags.concurrency,
            ..Delivery::default()
        };
        Ok(Self { endpoints, secret, delivery })
    }
}

/// An http(s) URL with a host and, optionally, `#types=a,b` naming the
/// event types it takes.
fn endpoint(text: &str) -> Result<Endpoint, ConfigError> {
    let refused = || ConfigError::OutOfRange {
        name: "webhook-url",
        rule: "an http:// or https:// URL with a host, optionally ending in #types=TYPE,TYPE",
    };
    let mut url = url::Url::parse(text).map_err(|_| refused())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refused());
    }
    let kinds = match url.fragment() {
        None => Kind::ALL.to_vec(),
        Some(fragment) => {
            let list = fragment.strip_prefix("types=").ok_or_else(refused)?;
            let mut kinds = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let kind = Kind::from_name(name).ok_or(ConfigError::OutOfRange {
                    name: "webhook-url",
                    rule: "#types= listing only message, message_updated, message_deleted, \
                           member_joined, member_left, presence, read, room_occupied, \
                           room_vacated, notification_delivered",
                })?;
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            if kinds.is_empty() {
                return Err(refused());
            }
            kinds
        }
    };
    url.set_fragment(None);
    Ok(Endpoint { url, kinds })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const SECRET: [&str; 2] = ["--webhook-secret", "a-webhook-secret-of-32-bytes...."];

    #[test]
    fn no_webhook_by_default() {
        assert!(!parse(&[]).unwrap().webhooks.enabled());
    }

    #[test]
    fn a_url_alone_takes_every_type_and_types_narrow_it() {
        let config = parse(
            &[
                &SECRET[..],
                &["--webhook-url", "https://app.example/hooks/all"],
                &["--webhook-url", "http://127.0.0.1:9000/x?k=1#types=message,read,message"],
            ]
            .concat(),
        )
        .unwrap();
        let [all, some] = &config.webhooks.endpoints[..] else { panic!("two endpoints") };
        assert_eq!(all.kinds, Kind::ALL);
        assert_eq!(some.url.as_str(), "http://127.0.0.1:9000/x?k=1", "the fragment is not sent");
        assert_eq!(some.kinds, [Kind::Message, Kind::Read]);
        assert!(some.wants(Kind::Read) && !some.wants(Kind::Presence));
        assert_eq!(config.webhooks.delivery, Delivery::default());
    }

    #[test]
    fn bad_urls_types_and_secrets_are_refused() {
        for bad in [
            "ftp://app.example/x",
            "app.example/x",
            "http://",
            "https://app.example/x#message",
            "https://app.example/x#types=",
            "https://app.example/x#types=message,everything",
        ] {
            let err = parse(&[&SECRET[..], &["--webhook-url", bad]].concat()).expect_err(bad);
            assert!(err.to_string().contains("webhook-url"), "{bad}: {err}");
        }
        let url = ["--webhook-url", "https://app.example/x"];
        let twice = parse(&[&SECRET[..], &url, &url].concat()).unwrap_err();
        assert!(twice.to_string().contains("once per URL"), "{twice}");
        let missing = parse(&url).unwrap_err();
        assert!(missing.to_string().contains("webhook-secret"), "{missing}");
        for secret in ["", "   ", "short"] {
            let err = parse(&[&url[..], &["--webhook-secret", secret]].concat()).unwrap_err();
            assert!(err.to_string().contains("webhook-secret"), "{secret:?}: {err}");
        }
    }

    #[test]
    fn webhooks_need_a_database() {
        let flags = [&SECRET[..], &["--webhook-url", "https://app.example/x"]].concat();
        let err = parse(&[&flags[..], &["--database-url", "memory"]].concat()).unwrap_err();
        assert!(matches!(err, ConfigError::WebhooksWithoutDatabase), "{err}");
        let sqlite = parse(&[&flags[..], &["--database-url", "sqlite://x/y.db"]].concat());
        assert!(sqlite.unwrap().webhooks.enabled());
    }

    #[test]
    fn delivery_bounds_are_checked() {
        let base = [&SECRET[..], &["--webhook-url", "https://app.example/x"]].concat();
        for (flag, bad) in [
            ("--webhook-timeout-ms", "0"),
            ("--webhook-timeout-ms", "60001"),
            ("--webhook-retry-initial-ms", "0"),
            ("--webhook-max-attempts", "0"),
            ("--webhook-concurrency", "0"),
            ("--webhook-concurrency", "257"),
        ] {
            let err = parse(&[&base[..], &[flag, bad]].concat()).expect_err(flag);
            assert!(err.to_string().contains(&flag[2..]), "{flag} {bad}: {err}");
        }
        let err = parse(
            &[&base[..], &["--webhook-retry-initial-ms", "5000", "--webhook-retry-max-ms", "100"]]
                .concat(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("webhook-retry-max-ms"), "{err}");
        let config = parse(
            &[&base[..], &["--webhook-retry-max-ms", "2000", "--webhook-max-attempts", "3"]]
                .concat(),
        )
        .unwrap();
        let delivery = config.webhooks.delivery;
        assert_eq!((delivery.retry_max, delivery.max_attempts), (Duration::from_secs(2), 3));
    }
}
