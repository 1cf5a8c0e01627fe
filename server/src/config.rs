//! Configuration: command-line flags with environment fallbacks ([`Args`]),
//! checked and turned into the settings the server runs with ([`Config`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use rand::distr::{Alphanumeric, SampleString};

pub use crate::limits::Rate;

mod args;
mod hooks;
mod redis;
mod tokens;
mod webhooks;

pub use args::Args;
pub use hooks::{ConnectHook, FailureMode, HookLimits, Hooks, PublishHook};
pub use redis::RedisConfigError;
pub use tokens::{ClaimNames, Jwks, TokenSettings};
pub use webhooks::{Delivery as WebhookDelivery, Endpoint as WebhookEndpoint, Webhooks};

/// The database used when none is given and Redis is not either.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://roomcast-data/roomcast.db";

/// The `--database-url` that keeps nothing across restarts.
pub const VOLATILE_DATABASE: &str = "memory";

/// The shortest JWT secret accepted outside dev mode, in bytes: an HS256 key
/// should be at least as long as the hash's output (RFC 7518, section 3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The database the flags ask for (see [`Args::database_url`]); `None`
/// for none.
fn database_url(given: Option<String>, with_redis: bool) -> Result<Option<String>, ConfigError> {
    use crate::store::Backend;
    let Some(url) = given.map(|url| url.trim().to_owned()) else {
        return Ok((!with_redis).then(|| DEFAULT_DATABASE_URL.to_owned()));
    };
    match Backend::of(&url) {
        _ if url == VOLATILE_DATABASE => Ok(None),
        _ if url.is_empty() => Err(ConfigError::Empty("database-url")),
        Some(Backend::Sqlite(_)) if with_redis => Err(ConfigError::SqliteWithRedis),
        Some(_) => Ok(Some(url)),
        None => Err(ConfigError::OutOfRange {
            name: "database-url",
            rule: "sqlite://PATH, postgres://... or memory",
        }),
    }
}

/// The token settings; without a secret given (a JWKS alone), HMAC
/// algorithms are left out of the default and refused when asked for.
fn token_settings(flags: tokens::Flags, jwks_only: bool) -> Result<TokenSettings, ConfigError> {
    let explicit = !flags.algorithms.is_empty();
    let mut settings = TokenSettings::from_flags(flags)?;
    if jwks_only {
        if explicit && settings.accepts_hmac() {
            return Err(ConfigError::Missing("jwt-secret"));
        }
        settings.algorithms.retain(|alg| alg.family() != jsonwebtoken::AlgorithmFamily::Hmac);
    }
    Ok(settings)
}

/// Why the flags do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Outside dev mode both secrets are required.
    #[error("--{0} is required outside dev mode (--dev, or no secret given and no --dev=false)")]
    Missing(&'static str),
    /// A secret given as an empty string (an unset variable in a script).
    #[error("--{0} is empty")]
    Empty(&'static str),
    /// A JWT secret too short to resist guessing.
    #[error(
        "--jwt-secret is {0} bytes; outside dev mode it must be at least {MIN_JWT_SECRET_BYTES} \
         (make one with `openssl rand -hex 32`)"
    )]
    ShortSecret(usize),
    /// Dev mode with a secret fit for production: tokens a dev instance
    /// signs (`POST /api/dev/token`) would be valid in production.
    #[error(
        "--dev with a --jwt-secret of {MIN_JWT_SECRET_BYTES} bytes or more is refused: \
         dev tokens must never be valid on a production instance. Leave --jwt-secret \
         out in dev mode (one is made up), or give a short test secret"
    )]
    ProductionSecretInDev,
    /// Instances sharing Redis cannot share one SQLite file.
    #[error(
        "--database-url sqlite://... cannot be used with --redis-url: instances sharing Redis \
         need one database they all reach. Use postgres://..., or --database-url memory to \
         keep history only in Redis (bounded)"
    )]
    SqliteWithRedis,
    /// Webhooks keep their outbox in the database.
    #[error(
        "--webhook-url needs a database (--database-url sqlite://... or postgres://...): \
         events wait for delivery in its outbox, so that none is lost in a restart"
    )]
    WebhooksWithoutDatabase,
    /// Redis flags that cannot work together.
    #[error(transparent)]
    Redis(#[from] RedisConfigError),
    /// A number out of its range.
    #[error("--{name} must be {rule}")]
    OutOfRange {
        /// The flag.
        name: &'static str,
        /// What it must be.
        rule: &'static str,
    },
}

/// The longest any configured duration may be: far beyond any sensible
/// setting, far below what would overflow the clock's arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The settings the server runs with. Build one from [`Args`], or start from
/// [`Config::dev`] (tests, embedding) and change fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (the binary binds it; `run` takes a listener).
    pub bind: SocketAddr,
    /// Dev mode: tokens without `exp` and the dev token endpoint.
    pub dev: bool,
    /// HS256 secret for access tokens.
    pub jwt_secret: String,
    /// Web origins allowed besides the server's own (and localhost in dev).
    pub allowed_origins: Vec<String>,
    /// Required `iss` and `aud` claims, when set.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Accepted algorithms, the identity provider's keys (JWKS) and the
    /// claims that carry the user.
    pub tokens: TokenSettings,
    /// The backend's hooks (publish, connect), when configured.
    pub hooks: Hooks,
    /// Webhooks (`--webhook-url`), when configured: events posted to the
    /// backend through the store's outbox.
    pub webhooks: Webhooks,
    /// The backends' API key.
    pub api_key: String,
    /// Proxies whose `X-Forwarded-For` is believed (empty: none, and
    /// loopback clients are not limited per IP address).
    pub trusted_proxies: Vec<IpNet>,
    /// A text frame equal to this makes the session that reads it panic.
    /// Only for tests of a connection's teardown: no flag sets it, so the
    /// binary always runs with `None`.
    #[doc(hidden)]
    pub panic_on_frame: Option<String>,
    /// Static files served at `/`.
    pub static_dir: Option<PathBuf>,
    /// Redis URL; `None` runs the in-memory engine.
    pub redis_url: Option<String>,
    /// PEM file of the CAs trusted for a `rediss://` URL instead of the
    /// system's; `None` trusts the system's.
    pub redis_ca_file: Option<PathBuf>,
    /// RabbitMQ to ingest envelopes from; `None`: no ingest.
    pub amqp_url: Option<String>,
    /// The queue, its limits and its retries (used with `amqp_url`).
    pub amqp: crate::ingest::AmqpSettings,
    /// The database (`sqlite://...` or `postgres://...`) that keeps what
    /// must outlive the process; `None` keeps nothing beyond the engine
    /// (volatile in memory, bounded in Redis).
    pub database_url: Option<String>,
    /// How long the database keeps messages; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// How much history each room keeps.
    pub history: HistoryLimits,
    /// Sizes and queues.
    pub limits: Limits,
    /// Heartbeats, grace periods and timeouts.
    pub timing: Timing,
}

/// How much history each room keeps.
#[derive(Debug, Clone)]
pub struct HistoryLimits {
    /// Events kept per room (default 1000).
    pub max_events: usize,
    /// Age after which events are dropped (default 7 days).
    pub max_age: Duration,
    /// Bytes of history the in-memory engine keeps over all rooms, oldest
    /// events dropped first (default 256 MiB). Redis bounds its own memory.
    pub memory_bytes: usize,
}

/// Sizes and queue lengths.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message content in bytes (default 4096).
    pub max_content_bytes: usize,
    /// Largest WebSocket frame in bytes (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Largest `data` of a message from a client or the API, in bytes of
    /// its JSON (default 8 KiB).
    pub max_message_data_bytes: usize,
    /// Deepest nesting of arrays and objects in a message's `data`, the
    /// object itself counting 1 (default 16).
    pub max_message_data_depth: usize,
    /// Outbound frames queued per connection (default 1024).
    pub send_queue: usize,
    /// Outbound bytes a connection may hold, queued or being written
    /// (default 1 MiB; one frame alone may be bigger).
    pub send_queue_bytes: usize,
    /// A connection's sends handed to the engine and not yet acknowledged
    /// (default 64); past it, the connection's next frame waits for the
    /// oldest ack. With a store, sends within this bound share commits.
    pub sends_in_flight: usize,
    /// Unread notifications kept per offline user (default 100).
    pub notifications_per_user: usize,
    /// Bytes of unread notifications (JSON) kept per offline user (default 64 KiB).
    pub notification_bytes_per_user: usize,
    /// Age after which unread notifications are dropped (default 7 days).
    pub notification_max_age: Duration,
    /// Longest custom status text, in bytes (default 128).
    pub max_custom_status_bytes: usize,
    /// Frames per connection (default 50/s, bursts of 100).
    pub frames: Rate,
    /// Messages (send, edit, delete) per connection (default 10/s, bursts of 20).
    pub messages: Rate,
    /// Joins per connection (default 5/s, bursts of 10).
    pub joins: Rate,
    /// Messages per user over all their connections to one instance
    /// (default 20/s, bursts of 40).
    pub user_messages: Rate,
    /// Requests to the HTTP API, all backends together (default 1000/s,
    /// bursts of 2000).
    pub api: Rate,
    /// Failed API key attempts per client address (IPv6: per /64)
    /// (default 1/s, bursts of 2).
    pub api_failures: Rate,
    /// Addresses tracked for failed API key attempts at once (default 10,000).
    pub api_failure_addresses: usize,
    /// Refusals for rate a connection may collect before it is closed with
    /// 4008 (default 1/s, bursts of 20).
    pub strikes: Rate,
    /// Rooms per connection, its personal room aside (default 100).
    pub rooms_per_connection: usize,
    /// Members above which a room is big: occupancy counts rather than
    /// member diffs to those who did not ask for them (default 1000).
    pub big_room_members: usize,
    /// Members in a `joined` reply's first page (default 50, at most
    /// `MAX_MEMBERS_LIMIT`).
    pub joined_members: usize,
    /// Open connections per user on one instance (default 20).
    pub connections_per_user: usize,
    /// Open connections per client IP address (default 1000; see
    /// [`Config::trusted_proxies`] for loopback addresses).
    pub connections_per_ip: usize,
    /// Open connections in all (default 0: the descriptor limit less a
    /// reserve, logged at start).
    pub max_connections: usize,
}

/// Heartbeats, grace periods and timeouts.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Interval of server pings (default 25 s); silence for twice as long
    /// closes the connection.
    pub heartbeat: Duration,
    /// Time to authenticate before close 4001 (default 10 s).
    pub auth_timeout: Duration,
    /// How long a `/gateway` connection may go without a `HEARTBEAT` op
    /// before it is closed (default 60 s, the original gateway's), beside
    /// the native silence rule that browsers' automatic pongs satisfy.
    pub gateway_heartbeat_timeout: Duration,
    /// How long a disconnected user stays a member and online (default 3 s).
    pub presence_grace: Duration,
    /// How long membership and presence changes are gathered into one
    /// `presence_diff` per room (default 250 ms).
    pub presence_window: Duration,
    /// Quiet time after which a typer is announced as stopped (default 5 s).
    pub typing_timeout: Duration,
    /// How long shutdown waits for connections to close (default 5 s).
    pub shutdown_grace: Duration,
    /// Lease of an instance in Redis (default 10 s).
    pub instance_lease: Duration,
    /// Time to connect to Redis, TLS handshake included (default 2 s).
    pub redis_connect_timeout: Duration,
    /// Time to send a request's head, from connecting or from the previous
    /// response (default 10 s).
    pub header_timeout: Duration,
    /// Time to send a request's body, once its head is in (default 10 s).
    pub body_timeout: Duration,
    /// Time a closing WebSocket's last frames may take (default 2 s).
    pub drain_timeout: Duration,
    /// How long the in-memory engine remembers an offline user with nothing
    /// else kept (default 1 hour).
    pub user_idle: Duration,
    /// Interval of the in-memory engine's sweep of what expired (default 10 s).
    pub sweep_interval: Duration,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        Self {
            max_events: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            memory_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_content_bytes: 4096,
            max_frame_bytes: 64 * 1024,
            max_message_data_bytes: 8 * 1024,
            max_message_data_depth: 16,
            send_queue: 1024,
            send_queue_bytes: 1024 * 1024,
            sends_in_flight: 64,
            notifications_per_user: 100,
            notification_bytes_per_user: 64 * 1024,
            notification_max_age: Duration::from_secs(7 * 24 * 3600),
            max_custom_status_bytes: 128,
            frames: Rate::new(50.0, 100),
            messages: Rate::new(10.0, 20),
            joins: Rate::new(5.0, 10),
            user_messages: Rate::new(20.0, 40),
            api: Rate::new(1000.0, 2000),
            api_failures: Rate::new(1.0, 2),
            api_failure_addresses: 10_000,
            strikes: Rate::new(1.0, 20),
            rooms_per_connection: 100,
            big_room_members: 1000,
            joined_members: 50,
            connections_per_user: 20,
            connections_per_ip: 1000,
            max_connections: 0,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(25),
            auth_timeout: Duration::from_secs(10),
            gateway_heartbeat_timeout: Duration::from_secs(60),
            presence_grace: Duration::from_secs(3),
            presence_window: Duration::from_millis(250),
            typing_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            instance_lease: Duration::from_secs(10),
            redis_connect_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(2),
            user_idle: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(10),
        }
    }
}

/// `--joined-members`: at most what one `members` page may hold.
fn joined_members(value: u16) -> Result<usize, ConfigError> {
    if value > roomcast_shared::MAX_MEMBERS_LIMIT {
        return Err(ConfigError::OutOfRange { name: "joined-members", rule: "at most 500" });
    }
    Ok(usize::from(value))
}

/// A made-up secret: 32 random alphanumerics (190 bits), long enough for
/// the production rule too.
fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), MIN_JWT_SECRET_BYTES)
}

impl Config {
    /// Dev-mode settings with fresh random secrets and every default.
    pub fn dev() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dev: true,
            jwt_secret: random_secret(),
            allowed_origins: Vec::new(),
            jwt_issuer: None,
            jwt_audience: None,
            tokens: TokenSettings::default(),
            hooks: Hooks::default(),
            webhooks: Webhooks::default(),
            api_key: random_secret(),
            trusted_proxies: Vec::new(),
            panic_on_frame: None,
            static_dir: None,
            redis_url: None,
            redis_ca_file: None,
            amqp_url: None,
            amqp: crate::ingest::AmqpSettings::default(),
            database_url: None,
            retention: None,
            history: HistoryLimits::default(),
            limits: Limits::default(),
            timing: Timing::default(),
        }
    }

    /// Whether every duration is within [`MAX_DURATION`]: the server adds
    /// them to the current instant, which a bigger one would overflow.
    pub fn check_durations(&self) -> Result<(), ConfigError> {
        let Timing { heartbeat, presence_grace, instance_lease, header_timeout, .. } = self.timing;
        let durations = [
            ("heartbeat-ms", heartbeat),
            ("gateway-heartbeat-timeout-ms", self.timing.gateway_heartbeat_timeout),
            ("presence-grace-ms", presence_grace),
            ("presence-window-ms", self.timing.presence_window),
            ("instance-lease-ms", instance_lease),
            ("redis-connect-timeout-ms", self.timing.redis_connect_timeout),
            ("header-timeout-ms", header_timeout),
            ("body-timeout-ms", self.timing.body_timeout),
            ("drain-timeout-ms", self.timing.drain_timeout),
            ("user-idle-secs", self.timing.user_idle),
            ("sweep-interval-ms", self.timing.sweep_interval),
            ("history-max-age-secs", self.history.max_age),
            ("notification-max-age-secs", self.limits.notification_max_age),
            ("retention-days", self.retention.unwrap_or_default()),
        ];
        match durations.into_iter().find(|(_, duration)| *duration > MAX_DURATION) {
            Some((name, _)) => Err(ConfigError::OutOfRange { name, rule: "at most 100 years" }),
            None => Ok(()),
        }
    }

    /// Whether the secrets are fit for the mode: outside dev mode, a JWT
    /// secret of at least [`MIN_JWT_SECRET_BYTES`] and an API key. [`run`]
    /// checks this too, so an embedded server cannot start without them.
    ///
    /// [`run`]: crate::run
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        if self.dev {
            return Ok(());
        }
        if self.jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::ShortSecret(self.jwt_secret.len()));
        }
        if self.api_key.trim().is_empty() {
            return Err(ConfigError::Empty("api-key"));
        }
        Ok(())
    }

    /// Checks the flags and fills in dev-mode secrets.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let dev = args.dev.unwrap_or_else(|| args.jwt_secret.is_none() && args.api_key.is_none());
        // With a JWKS, the secret is optional: tokens may come only from
        // the identity provider. One is made up then, and HMAC tokens are
        // refused unless --jwt-algorithms asks for them (which needs it).
        let jwks_only = !dev && args.jwt_secret.is_none() && args.jwt_jwks_url.is_some();
        let secret = |value: Option<String>, name| match value {
            Some(v) if v.trim().is_empty() => Err(ConfigError::Empty(name)),
            Some(v) => Ok(v),
            None if dev => Ok(random_secret()),
            None if jwks_only && name == "jwt-secret" => Ok(random_secret()),
            None => Err(ConfigError::Missing(name)),
        };
        if dev && args.jwt_secret.as_ref().is_some_and(|s| s.len() >= MIN_JWT_SECRET_BYTES) {
            return Err(ConfigError::ProductionSecretInDev);
        }
        let positive = |value: u64, name| {
            if value == 0 {
                Err(ConfigError::OutOfRange { name, rule: "greater than zero" })
            } else {
                Ok(value)
            }
        };
        let rate = |per_sec: f64, name| {
            if per_sec.is_finite() && per_sec > 0.0 {
                // Bursts of twice the rate: a human typing fast, a tab reconnecting.
                Ok(Rate::new(per_sec, (per_sec * 2.0).ceil().min(f64::from(u32::MAX)) as u32))
            } else {
                Err(ConfigError::OutOfRange { name, rule: "a positive number" })
            }
        };
        positive(args.history_size as u64, "history-size")?;
        positive(args.max_content_bytes as u64, "max-content-bytes")?;
        positive(args.send_queue as u64, "send-queue")?;
        positive(args.send_queue_bytes as u64, "send-queue-bytes")?;
        if args.max_frame_bytes < 1024 {
            return Err(ConfigError::OutOfRange { name: "max-frame-bytes", rule: "at least 1024" });
        }
        let config = Self {
            bind: args.bind,
            dev,
            jwt_secret: secret(args.jwt_secret, "jwt-secret")?,
            allowed_origins: args
                .allowed_origins
                .into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            jwt_issuer: args.jwt_issuer,
            jwt_audience: args.jwt_audience,
            tokens: token_settings(
                tokens::Flags {
                    algorithms: args.jwt_algorithms,
                    jwks_url: args.jwt_jwks_url,
                    jwks_timeout_ms: args.jwt_jwks_timeout_ms,
                    jwks_refresh_secs: args.jwt_jwks_refresh_secs,
                    jwks_min_refresh_ms: args.jwt_jwks_min_refresh_ms,
                    jwks_max_bytes: args.jwt_jwks_max_bytes,
                    claims: ClaimNames {
                        user_id: args.jwt_claim_user_id,
                        name: args.jwt_claim_name,
                        role: args.jwt_claim_role,
                        avatar: args.jwt_claim_avatar,
                        rooms: args.jwt_claim_rooms,
                    },
                    admin_role: args.jwt_admin_role,
                },
                jwks_only,
            )?,
            hooks: Hooks::from_flags(
                args.publish_hook_url,
                args.publish_hook_timeout_ms,
                args.publish_hook_on_failure,
                args.connect_hook_url,
                args.connect_hook_timeout_ms,
                args.connect_hook_recheck_secs,
            )?,
            webhooks: Webhooks::from_flags(webhooks::Flags {
                urls: args.webhook_url,
                secret: args.webhook_secret,
                timeout_ms: args.webhook_timeout_ms,
                retry_initial_ms: args.webhook_retry_initial_ms,
                retry_max_ms: args.webhook_retry_max_ms,
                max_attempts: args.webhook_max_attempts,
                concurrency: args.webhook_concurrency,
            })?,
            api_key: secret(args.api_key, "api-key")?,
            trusted_proxies: args.trusted_proxies,
            panic_on_frame: None,
            static_dir: args.static_dir,
            database_url: database_url(args.database_url, args.redis_url.is_some())?,
            retention: match args.retention_days {
                Some(days) => Some(Duration::from_secs(
                    positive(days, "retention-days")?.saturating_mul(86_400),
                )),
                None => None,
            },
            redis_url: args.redis_url,
            redis_ca_file: args.redis_ca_file,
            amqp_url: args.amqp_url.filter(|url| !url.trim().is_empty()),
            amqp: crate::ingest::AmqpSettings::from_flags(
                args.amqp_queue,
                args.amqp_prefetch,
                args.amqp_max_envelope_bytes,
                args.amqp_retry_ms,
                args.amqp_dedup_hours,
                args.amqp_dedup_ids,
            )?,
            history: HistoryLimits {
                max_events: args.history_size,
                max_age: Duration::from_secs(positive(
                    args.history_max_age_secs,
                    "history-max-age-secs",
                )?),
                memory_bytes: args.history_memory_bytes,
            },
            limits: Limits {
                max_content_bytes: args.max_content_bytes,
                max_frame_bytes: args.max_frame_bytes,
                max_message_data_bytes: args.max_message_data_bytes,
                max_message_data_depth: positive(
                    args.max_message_data_depth as u64,
                    "max-message-data-depth",
                )? as usize,
                send_queue: args.send_queue,
                send_queue_bytes: args.send_queue_bytes,
                sends_in_flight: positive(args.sends_in_flight as u64, "sends-in-flight")? as usize,
                notifications_per_user: args.notifications_per_user,
                notification_bytes_per_user: args.notification_bytes_per_user,
                notification_max_age: Duration::from_secs(positive(
                    args.notification_max_age_secs,
                    "notification-max-age-secs",
                )?),
                frames: rate(args.rate_frames, "rate-frames")?,
                messages: rate(args.rate_messages, "rate-messages")?,
                joins: rate(args.rate_joins, "rate-joins")?,
                user_messages: rate(args.rate_user_messages, "rate-user-messages")?,
                api: rate(args.rate_api, "rate-api")?,
                api_failures: rate(args.rate_api_failures, "rate-api-failures")?,
                api_failure_addresses: positive(
                    args.api_failure_addresses as u64,
                    "api-failure-addresses",
                )? as usize,
                rooms_per_connection: args.rooms_per_connection,
                big_room_members: args.big_room_members,
                joined_members: joined_members(args.joined_members)?,
                connections_per_ip: positive(args.connections_per_ip as u64, "connections-per-ip")?
                    as usize,
                max_connections: args.max_connections,
                connections_per_user: positive(
                    args.connections_per_user as u64,
                    "connections-per-user",
                )? as usize,
                ..Limits::default()
            },
            timing: Timing {
                heartbeat: Duration::from_millis(positive(args.heartbeat_ms, "heartbeat-ms")?),
                gateway_heartbeat_timeout: Duration::from_millis(positive(
                    args.gateway_heartbeat_timeout_ms,
                    "gateway-heartbeat-timeout-ms",
                )?),
                presence_grace: Duration::from_millis(args.presence_grace_ms),
                presence_window: Duration::from_millis(positive(
                    args.presence_window_ms,
                    "presence-window-ms",
                )?),
                instance_lease: Duration::from_millis(
                    positive(args.instance_lease_ms, "instance-lease-ms")?.max(300),
                ),
                redis_connect_timeout: Duration::from_millis(positive(
                    args.redis_connect_timeout_ms,
                    "redis-connect-timeout-ms",
                )?),
                header_timeout: Duration::from_millis(positive(
                    args.header_timeout_ms,
                    "header-timeout-ms",
                )?),
                body_timeout: Duration::from_millis(positive(
                    args.body_timeout_ms,
                    "body-timeout-ms",
                )?),
                drain_timeout: Duration::from_millis(positive(
                    args.drain_timeout_ms,
                    "drain-timeout-ms",
                )?),
                user_idle: Duration::from_secs(args.user_idle_secs),
                sweep_interval: Duration::from_millis(positive(
                    args.sweep_interval_ms,
                    "sweep-interval-ms",
                )?),
                ..Timing::default()
            },
        };
        config.check_secrets()?;
        redis::check(config.redis_url.as_deref(), config.redis_ca_file.as_deref())?;
        if config.retention.is_some_and(|kept| kept < config.history.max_age) {
            // Idempotency keys go with their messages: a resend within the
            // recovery window must still find its original.
            return Err(ConfigError::OutOfRange {
                name: "retention-days",
                rule: "at least the recovery window (--history-max-age-secs)",
            });
        }
        if config.webhooks.enabled() && config.database_url.is_none() {
            return Err(ConfigError::WebhooksWithoutDatabase);
        }
        config.check_durations()?;
        Ok(config)
    }
}

/// The configuration these flags make, as the binary would (for the
/// configuration's unit tests).
#[cfg(test)]
fn parse(flags: &[&str]) -> Result<Config, ConfigError> {
    use clap::Parser as _;
    let args =
        Args::try_parse_from(std::iter::once("roomcast").chain(flags.iter().copied())).unwrap();
    Config::from_args(args)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn no_flags_means_dev_mode_with_made_up_secrets() {
        let config = parse(&[]).unwrap();
        assert!(config.dev);
        assert_eq!(config.jwt_secret.len(), 32);
        assert_ne!(config.jwt_secret, config.api_key);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn production_needs_both_secrets() {
        let err = parse(&["--jwt-secret", SECRET]).unwrap_err();
        assert!(err.to_string().contains("--api-key"), "{err}");
        let config = parse(&["--jwt-secret", SECRET, "--api-key", "k"]).unwrap();
        assert!(!config.dev);
        assert!(parse(&["--jwt-secret", "s", "--dev"]).unwrap().dev);
    }

    #[test]
    fn empty_or_short_secrets_are_refused_outside_dev_mode() {
        let err = parse(&["--jwt-secret", "", "--api-key", ""]).unwrap_err();
        assert!(matches!(err, ConfigError::Empty("jwt-secret")), "{err}");
        let err = parse(&["--jwt-secret", SECRET, "--api-key", ""]).unwrap_err();
        assert!(matches!(err, ConfigError::Empty("api-key")), "{err}");
        let err = parse(&["--jwt-secret", "x", "--api-key", "k"]).unwrap_err();
        assert!(matches!(err, ConfigError::ShortSecret(1)), "{err}");
        assert!(err.to_string().contains("at least 32"), "{err}");
        let err = parse(&["--jwt-secret", &SECRET[1..], "--api-key", "k"]).unwrap_err();
        assert!(matches!(err, ConfigError::ShortSecret(31)), "{err}");
        // An embedded server's configuration gets the same check from `run`.
        let config = Config { dev: false, jwt_secret: String::new(), ..Config::dev() };
        assert!(config.check_secrets().is_err());
        assert!(Config { dev: false, ..Config::dev() }.check_secrets().is_ok());
    }

    #[test]
    fn dev_mode_refuses_a_production_secret() {
        let err = parse(&["--dev", "--jwt-secret", SECRET]).unwrap_err();
        assert!(matches!(err, ConfigError::ProductionSecretInDev), "{err}");
        let err = parse(&["--dev", "--jwt-secret", ""]).unwrap_err();
        assert!(matches!(err, ConfigError::Empty("jwt-secret")), "{err}");
        // A short test secret shared by dev instances is fine: production
        // never accepts one that short.
        assert!(parse(&["--dev", "--jwt-secret", "test-secret"]).unwrap().dev);
    }

    #[test]
    fn token_flags_pick_algorithms_keys_and_claims() {
        use jsonwebtoken::Algorithm::{ES256, HS256, RS256};
        let jwks = ["--jwt-jwks-url", "https://idp.example/jwks.json"];
        let config =
            parse(&[&["--jwt-secret", SECRET, "--api-key", "k"][..], &jwks].concat()).unwrap();
        assert_eq!(config.tokens.algorithms, [HS256, RS256, ES256]);
        // A JWKS alone: no secret needed, and no HMAC token accepted.
        let config = parse(&[&["--api-key", "k"][..], &jwks].concat()).unwrap();
        assert!(!config.dev);
        assert_eq!(config.tokens.algorithms, [RS256, ES256]);
        let err = parse(&[&["--api-key", "k", "--jwt-algorithms", "HS256"][..], &jwks].concat());
        assert!(matches!(err, Err(ConfigError::Missing("jwt-secret"))), "{err:?}");
        // Public-key algorithms need the keys; `none` is no algorithm.
        let err = parse(&["--jwt-secret", SECRET, "--api-key", "k", "--jwt-algorithms", "RS256"]);
        assert!(err.is_err());
        let err = parse(&["--jwt-secret", SECRET, "--api-key", "k", "--jwt-algorithms", "none"]);
        assert!(err.is_err());
        let err = parse(&["--api-key", "k", "--jwt-jwks-url", "ftp://idp.example/keys"]);
        assert!(err.is_err());
        let config =
            parse(&["--jwt-claim-user-id", "user_id", "--jwt-admin-role", "ADMIN"]).unwrap();
        assert_eq!(config.tokens.claims.user_id, "user_id");
        assert_eq!(config.tokens.admin_role, "ADMIN");
        assert!(parse(&["--jwt-claim-role", " "]).is_err());
    }

    #[test]
    fn dev_false_means_off() {
        let err = parse(&["--dev=false"]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing("jwt-secret")), "{err}");
        assert!(!parse(&["--dev=0", "--jwt-secret", SECRET, "--api-key", "k"]).unwrap().dev);
        assert!(parse(&["--dev=1"]).unwrap().dev);
        assert!(parse(&["--dev="]).is_err(), "empty is off, and off needs secrets");
        assert!(Args::try_parse_from(["roomcast", "--dev=maybe"]).is_err());
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let config = parse(&["--trusted-proxies", "127.0.0.1, 10.0.0.0/8,::1"]).unwrap();
        let nets: Vec<String> = config.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert!(Args::try_parse_from(["roomcast", "--trusted-proxies", "nginx"]).is_err());
        assert!(Args::try_parse_from(["roomcast", "--trusted-proxies", "10.0.0.0/33"]).is_err());
    }

    #[test]
    fn limits_are_checked() {
        assert!(parse(&["--send-queue", "0"]).is_err());
        assert!(parse(&["--max-frame-bytes", "10"]).is_err());
        assert_eq!(parse(&["--history-size", "5"]).unwrap().history.max_events, 5);
    }

    #[test]
    fn durations_no_clock_can_hold_are_refused() {
        let max = u64::MAX.to_string();
        for flag in ["--heartbeat-ms", "--presence-grace-ms", "--history-max-age-secs"] {
            let err = parse(&[flag, &max]).expect_err(flag);
            assert!(err.to_string().contains("at most 100 years"), "{flag}: {err}");
        }
        assert!(parse(&["--history-max-age-secs", &(50 * 365 * 24 * 3600).to_string()]).is_ok());
    }

    #[test]
    fn the_database_follows_the_deployment() {
        // These cases are about the flags: a database from the environment
        // would answer instead.
        assert!(
            std::env::var_os("ROOMCAST_DATABASE_URL").is_none(),
            "unset ROOMCAST_DATABASE_URL to run the configuration tests"
        );
        let redis = ["--redis-url", "redis://127.0.0.1:6379"];
        let database = |flags: &[&str]| parse(flags).map(|c| c.database_url);
        assert_eq!(database(&[]).unwrap().as_deref(), Some(DEFAULT_DATABASE_URL));
        assert_eq!(database(&["--database-url", "memory"]).unwrap(), None);
        assert_eq!(database(&redis).unwrap(), None, "Redis alone keeps today's behaviour");
        let pg = "postgres://u:p@db/roomcast";
        let shared = [&redis[..], &["--database-url", pg]].concat();
        assert_eq!(database(&shared).unwrap().as_deref(), Some(pg));
        let sqlite = [&redis[..], &["--database-url", "sqlite://x.db"]].concat();
        assert!(matches!(parse(&sqlite), Err(ConfigError::SqliteWithRedis)));
        for bad in ["", "mysql://x", "sqlite://", "x.db"] {
            assert!(database(&["--database-url", bad]).is_err(), "{bad:?}");
        }
        assert!(parse(&["--retention-days", "0"]).is_err());
        assert!(parse(&["--retention-days", "3"]).is_err(), "shorter than the 7-day window");
        let kept = parse(&["--retention-days", "30"]).unwrap().retention;
        assert_eq!(kept, Some(Duration::from_secs(30 * 86_400)));
        assert!(parse(&["--retention-days", &u64::MAX.to_string()]).is_err(), "no overflow");
    }
}
