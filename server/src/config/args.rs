//! The `roomcast` command line ([`Args`]): every flag with its environment
//! fallback and default, parsed by clap. `config.rs` checks it into the
//! [`Config`](super::Config) the server runs with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use ipnet::IpNet;

use crate::command::Command;
use crate::logging::LogFormat;

/// The `roomcast` command line. Every flag has an environment fallback.
#[derive(Debug, Clone, Parser)]
#[command(name = "roomcast", version, about = "Real-time rooms, chat, presence and notifications")]
pub struct Args {
    /// A command to run instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(long, env = "ROOMCAST_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// How log lines are written: `text` for people, `json` (one object per
    /// line, with the span fields such as `request_id` and the connection's
    /// `id`) for log collectors. `RUST_LOG` sets the level either way.
    #[arg(long, env = "ROOMCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Secret that signs and checks access tokens (HS256), at least 32 bytes.
    /// Dev mode makes up a random one per process (or takes a short test
    /// secret, never one fit for production).
    #[arg(long, env = "ROOMCAST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Key backends present as `Authorization: Bearer <key>`; not empty. Dev
    /// mode makes one up and prints it.
    #[arg(long, env = "ROOMCAST_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Dev mode: tokens without `exp`, `POST /api/dev/token`, made-up secrets.
    /// On when neither a JWT secret nor an API key is given; `--dev=false`
    /// (or `ROOMCAST_DEV=0`) keeps it off even then.
    #[arg(
        long,
        env = "ROOMCAST_DEV",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_switch,
    )]
    pub dev: Option<bool>,

    /// Redis URL (`redis://host:port/db`, or `rediss://` for TLS): share
    /// rooms, history and presence with every instance on the same Redis
    /// (6.2 or newer, one primary, not cluster mode). Without it, one
    /// instance keeps everything in memory.
    #[arg(long, env = "ROOMCAST_REDIS_URL")]
    pub redis_url: Option<String>,

    /// PEM file of the CA certificates trusted for a `rediss://` Redis,
    /// instead of the system's (a managed Redis with a private CA).
    #[arg(long, env = "ROOMCAST_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// How long connecting to Redis may take (TCP, TLS handshake and
    /// authentication), in milliseconds; at start, the version check too.
    #[arg(long, env = "ROOMCAST_REDIS_CONNECT_TIMEOUT_MS", default_value_t = 2_000)]
    pub redis_connect_timeout_ms: u64,

    /// How long an instance's lease in Redis lasts, in milliseconds: after a
    /// crash, its users show offline to others within about this long.
    #[arg(long, env = "ROOMCAST_INSTANCE_LEASE_MS", default_value_t = 10_000)]
    pub instance_lease_ms: u64,

    /// RabbitMQ to ingest envelopes from (`amqp://user:pass@host:5672/vhost`);
    /// none: no ingest. See docs/integration.md.
    #[arg(long, env = "ROOMCAST_AMQP_URL")]
    pub amqp_url: Option<String>,

    /// The queue to consume (declared durable at start, with its dead-letter
    /// queue `<queue>.dead`).
    #[arg(long, env = "ROOMCAST_AMQP_QUEUE", default_value = "roomcast")]
    pub amqp_queue: String,

    /// Envelopes RabbitMQ sends this instance before it acknowledges them.
    #[arg(long, env = "ROOMCAST_AMQP_PREFETCH", default_value_t = 32)]
    pub amqp_prefetch: u16,

    /// Largest envelope, in bytes; a bigger one is dead-lettered.
    #[arg(long, env = "ROOMCAST_AMQP_MAX_ENVELOPE_BYTES", default_value_t = 256 * 1024)]
    pub amqp_max_envelope_bytes: usize,

    /// First wait before requeueing an envelope that failed for a transient
    /// reason, and before reconnecting; doubled on each failure in a row up
    /// to 30 s.
    #[arg(long, env = "ROOMCAST_AMQP_RETRY_MS", default_value_t = 500)]
    pub amqp_retry_ms: u64,

    /// How long the ids of applied notify and event envelopes are kept in
    /// the database, in hours (a redelivery later than this applies again).
    #[arg(long, env = "ROOMCAST_AMQP_DEDUP_HOURS", default_value_t = 7 * 24)]
    pub amqp_dedup_hours: u64,

    /// Without a database: how many applied notify and event envelope ids
    /// are kept in memory (the oldest forgotten first; lost at restart).
    #[arg(long, env = "ROOMCAST_AMQP_DEDUP_IDS", default_value_t = 100_000)]
    pub amqp_dedup_ids: usize,

    /// Directory of static files served at `/` (the demo UI). Defaults to
    /// `dist/` when it holds a built UI.
    #[arg(long, env = "ROOMCAST_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Events kept per room for history and recovery.
    #[arg(long, env = "ROOMCAST_HISTORY_SIZE", default_value_t = 1000)]
    pub history_size: usize,

    /// Age after which events leave a room's history, in seconds.
    #[arg(long, env = "ROOMCAST_HISTORY_MAX_AGE_SECS", default_value_t = 7 * 24 * 3600)]
    pub history_max_age_secs: u64,

    /// Largest message content, in bytes of UTF-8.
    #[arg(long, env = "ROOMCAST_MAX_CONTENT_BYTES", default_value_t = 4096)]
    pub max_content_bytes: usize,

    /// Largest `data` of a message (a JSON object a client or the API sends
    /// beside the content), in bytes of JSON; 0 refuses any.
    #[arg(long, env = "ROOMCAST_MAX_MESSAGE_DATA_BYTES", default_value_t = 8 * 1024)]
    pub max_message_data_bytes: usize,

    /// Deepest nesting of arrays and objects in a message's `data` (the
    /// object itself is 1).
    #[arg(long, env = "ROOMCAST_MAX_MESSAGE_DATA_DEPTH", default_value_t = 16)]
    pub max_message_data_depth: usize,

    /// Largest WebSocket frame, in bytes; bigger frames close with 1009.
    #[arg(long, env = "ROOMCAST_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Interval of the server's WebSocket pings, in milliseconds; a connection
    /// silent for twice this long is closed.
    #[arg(long, env = "ROOMCAST_HEARTBEAT_MS", default_value_t = 25_000)]
    pub heartbeat_ms: u64,

    /// How long a `/gateway` connection may go without sending a
    /// `HEARTBEAT` op, in milliseconds, before it is closed (1000,
    /// `heartbeat timeout`), as the gateway it replaces did.
    #[arg(long, env = "ROOMCAST_GATEWAY_HEARTBEAT_TIMEOUT_MS", default_value_t = 60_000)]
    pub gateway_heartbeat_timeout_ms: u64,

    /// How long a disconnected user stays a member and online, in
    /// milliseconds, so a reload does not flicker.
    #[arg(long, env = "ROOMCAST_PRESENCE_GRACE_MS", default_value_t = 3_000)]
    pub presence_grace_ms: u64,

    /// How long membership and presence changes are gathered before each
    /// room hears them, in milliseconds, as one `presence_diff` per room.
    #[arg(long, env = "ROOMCAST_PRESENCE_WINDOW_MS", default_value_t = 250)]
    pub presence_window_ms: u64,

    /// Frames queued for one connection before it counts as a slow consumer
    /// and is closed with 4009.
    #[arg(long, env = "ROOMCAST_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,

    /// Bytes of outbound frames one connection may hold (queued or being
    /// written) before it counts as a slow consumer and is closed with 4009.
    #[arg(long, env = "ROOMCAST_SEND_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub send_queue_bytes: usize,

    /// Sends one connection may have waiting for their ack (at least 1);
    /// past it, the connection's frames wait for the oldest ack. With a
    /// store, the sends in flight share commits.
    #[arg(long, env = "ROOMCAST_SENDS_IN_FLIGHT", default_value_t = 64)]
    pub sends_in_flight: usize,

    /// Connections (HTTP and WebSocket) open at once; past it a new socket
    /// gets 503 and is closed. 0: the descriptor limit less a reserve.
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Time a client has to send a request's head, in milliseconds, from
    /// connecting or from the end of its previous response; then the
    /// connection is closed.
    #[arg(long, env = "ROOMCAST_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// Time a client has to send a request's body, in milliseconds, once
    /// its head is in; then the request fails (408) and the connection is
    /// closed.
    #[arg(long, env = "ROOMCAST_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// Time a closing WebSocket has, in milliseconds, to take the last
    /// frames and answer the close, however much the client keeps sending.
    #[arg(long, env = "ROOMCAST_DRAIN_TIMEOUT_MS", default_value_t = 2_000)]
    pub drain_timeout_ms: u64,

    /// Unread notifications kept per offline user.
    #[arg(long, env = "ROOMCAST_NOTIFICATIONS_PER_USER", default_value_t = 100)]
    pub notifications_per_user: usize,

    /// Bytes of unread notifications (as JSON) kept per offline user; the
    /// oldest go first, and one bigger than this is not kept.
    #[arg(long, env = "ROOMCAST_NOTIFICATION_BYTES_PER_USER", default_value_t = 64 * 1024)]
    pub notification_bytes_per_user: usize,

    /// Age after which an unread notification is dropped, in seconds.
    #[arg(long, env = "ROOMCAST_NOTIFICATION_MAX_AGE_SECS", default_value_t = 7 * 24 * 3600)]
    pub notification_max_age_secs: u64,

    /// Bytes of history the in-memory engine keeps over all rooms; over it,
    /// the oldest events of any room go first.
    #[arg(long, env = "ROOMCAST_HISTORY_MEMORY_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub history_memory_bytes: usize,

    /// How long an offline user's status, custom text and last-seen time
    /// are remembered, in seconds (in memory: once nothing else is kept for
    /// them; in Redis: the TTL of their state).
    #[arg(long, env = "ROOMCAST_USER_IDLE_SECS", default_value_t = 3600)]
    pub user_idle_secs: u64,

    /// How often the in-memory engine drops what expired (old events and
    /// notifications, idle users, empty rooms), in milliseconds.
    #[arg(long, env = "ROOMCAST_SWEEP_INTERVAL_MS", default_value_t = 10_000)]
    pub sweep_interval_ms: u64,

    /// Frames per second one connection may send (bursts of twice as many).
    #[arg(long, env = "ROOMCAST_RATE_FRAMES", default_value_t = 50.0)]
    pub rate_frames: f64,

    /// Messages (send, edit, delete) per second one connection may send
    /// (bursts of twice as many). Raise it for load generators.
    #[arg(long, env = "ROOMCAST_RATE_MESSAGES", default_value_t = 10.0)]
    pub rate_messages: f64,

    /// Messages per second one user may send over all their connections to
    /// one instance (bursts of twice as many).
    #[arg(long, env = "ROOMCAST_RATE_USER_MESSAGES", default_value_t = 20.0)]
    pub rate_user_messages: f64,

    /// Requests per second the HTTP API accepts from backends (bursts of
    /// twice as many).
    #[arg(long, env = "ROOMCAST_RATE_API", default_value_t = 1000.0)]
    pub rate_api: f64,

    /// Failed API key attempts per second one client address may make
    /// (bursts of twice as many); past them it gets 429 until it waits.
    #[arg(long, env = "ROOMCAST_RATE_API_FAILURES", default_value_t = 1.0)]
    pub rate_api_failures: f64,

    /// Client addresses whose failed API key attempts are tracked at once.
    #[arg(long, env = "ROOMCAST_API_FAILURE_ADDRESSES", default_value_t = 10_000)]
    pub api_failure_addresses: usize,

    /// Joins per second one connection may send (bursts of twice as many).
    #[arg(long, env = "ROOMCAST_RATE_JOINS", default_value_t = 5.0)]
    pub rate_joins: f64,

    /// Rooms one connection may be in at once (its personal room aside).
    #[arg(long, env = "ROOMCAST_ROOMS_PER_CONNECTION", default_value_t = 100)]
    pub rooms_per_connection: usize,

    /// Members above which a room is big: its members get `occupancy`
    /// counts instead of `presence_diff` unless they joined with
    /// `member_events`.
    #[arg(long, env = "ROOMCAST_BIG_ROOM_MEMBERS", default_value_t = 1000)]
    pub big_room_members: usize,

    /// Members listed in a `joined` reply (the rest are paged with
    /// `members`), at most 500.
    #[arg(long, env = "ROOMCAST_JOINED_MEMBERS", default_value_t = 50)]
    pub joined_members: u16,

    /// Connections from one IP address. Without `--trusted-proxies`,
    /// loopback addresses (such as a local proxy) are not limited; with it,
    /// every client address is.
    #[arg(long, env = "ROOMCAST_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub connections_per_ip: usize,

    /// Proxies whose `X-Forwarded-For` is believed, comma-separated IP
    /// addresses or CIDR ranges (`127.0.0.1,10.0.0.0/8`). A connection from
    /// one of them counts against the right-most forwarded address that is
    /// not itself a trusted proxy.
    #[arg(long, env = "ROOMCAST_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,

    /// Connections one user may have open on one instance.
    #[arg(long, env = "ROOMCAST_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub connections_per_user: usize,

    /// Web origins allowed to use the server, comma-separated
    /// (`https://app.example.com`), or `*`. Without it, pages of the
    /// server's own origin (and, in dev mode, of localhost) are allowed.
    #[arg(long, env = "ROOMCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Required `iss` claim of tokens, when set.
    #[arg(long, env = "ROOMCAST_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim of tokens, when set.
    #[arg(long, env = "ROOMCAST_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Algorithms tokens may be signed with, comma-separated (HS256, HS384,
    /// HS512 with --jwt-secret; RS256, RS384, RS512, PS256, PS384, PS512,
    /// ES256, ES384, EdDSA with --jwt-jwks-url). Default: HS256, plus RS256
    /// and ES256 with a JWKS URL. `none` is always refused.
    #[arg(long, env = "ROOMCAST_JWT_ALGORITHMS", value_delimiter = ',')]
    pub jwt_algorithms: Vec<String>,

    /// The identity provider's JWKS URL (http or https): the public keys
    /// that check RS/PS/ES/EdDSA tokens, chosen by the token's `kid`.
    /// With it, --jwt-secret is optional outside dev mode.
    #[arg(long, env = "ROOMCAST_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// How long one JWKS fetch may take, in milliseconds.
    #[arg(long, env = "ROOMCAST_JWT_JWKS_TIMEOUT_MS", default_value_t = 5_000)]
    pub jwt_jwks_timeout_ms: u64,

    /// How often the JWKS is fetched again in the background, in seconds.
    #[arg(long, env = "ROOMCAST_JWT_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwt_jwks_refresh_secs: u64,

    /// The shortest wait between two JWKS fetches caused by tokens naming
    /// an unknown `kid`, in milliseconds.
    #[arg(long, env = "ROOMCAST_JWT_JWKS_MIN_REFRESH_MS", default_value_t = 10_000)]
    pub jwt_jwks_min_refresh_ms: u64,

    /// Bytes of a JWKS read at most.
    #[arg(long, env = "ROOMCAST_JWT_JWKS_MAX_BYTES", default_value_t = 256 * 1024)]
    pub jwt_jwks_max_bytes: usize,

    /// The claim that carries the user id (`sub`; `id`, `user_id`...). A
    /// number is taken as its decimal string.
    #[arg(long, env = "ROOMCAST_JWT_CLAIM_USER_ID", default_value = "sub")]
    pub jwt_claim_user_id: String,

    /// The claim that carries the display name (absent: the user id).
    #[arg(long, env = "ROOMCAST_JWT_CLAIM_NAME", default_value = "name")]
    pub jwt_claim_name: String,

    /// The claim that carries the role (a string or a list of strings).
    #[arg(long, env = "ROOMCAST_JWT_CLAIM_ROLE", default_value = "role")]
    pub jwt_claim_role: String,

    /// The claim that carries the avatar URL.
    #[arg(long, env = "ROOMCAST_JWT_CLAIM_AVATAR", default_value = "avatar")]
    pub jwt_claim_avatar: String,

    /// The claim that lists the public rooms (glob patterns) a token may join.
    #[arg(long, env = "ROOMCAST_JWT_CLAIM_ROOMS", default_value = "rooms")]
    pub jwt_claim_rooms: String,

    /// The role value that makes a token an admin's, compared without
    /// regard to case (`ADMIN` matches `admin`).
    #[arg(long, env = "ROOMCAST_JWT_ADMIN_ROLE", default_value = "admin")]
    pub jwt_admin_role: String,

    /// URL the server POSTs every `send` and `edit` to before storing it;
    /// the backend answers allow, reject or allow with replaced content
    /// (docs/integration.md). http or https.
    #[arg(long, env = "ROOMCAST_PUBLISH_HOOK_URL")]
    pub publish_hook_url: Option<String>,

    /// How long the publish hook may take to answer, in milliseconds.
    #[arg(long, env = "ROOMCAST_PUBLISH_HOOK_TIMEOUT_MS", default_value_t = 2_000)]
    pub publish_hook_timeout_ms: u64,

    /// What a message meets when the publish hook fails (times out, errs,
    /// answers garbage): `closed` refuses it (`unavailable`, the client
    /// retries), `open` takes it as sent.
    #[arg(long, env = "ROOMCAST_PUBLISH_HOOK_ON_FAILURE", default_value = "closed")]
    pub publish_hook_on_failure: super::hooks::FailureMode,

    /// URL the server POSTs a WebSocket upgrade's cookies and selected
    /// headers to when the client brings no token; the backend answers
    /// the user and their rooms, or refuses (docs/integration.md).
    #[arg(long, env = "ROOMCAST_CONNECT_HOOK_URL")]
    pub connect_hook_url: Option<String>,

    /// How long the connect hook may take to answer, in milliseconds.
    #[arg(long, env = "ROOMCAST_CONNECT_HOOK_TIMEOUT_MS", default_value_t = 2_000)]
    pub connect_hook_timeout_ms: u64,

    /// How often the connect hook is asked again about each connection it
    /// signed in, in seconds (at most a day; 0: never). A refusal closes
    /// the connection with 4001.
    #[arg(long, env = "ROOMCAST_CONNECT_HOOK_RECHECK_SECS", default_value_t = 900)]
    pub connect_hook_recheck_secs: u64,

    /// A URL the server POSTs events to (repeatable; in the variable,
    /// separated by spaces). Every event type by default; end it with
    /// `#types=message,read` to take only those (docs/integration.md).
    #[arg(long, env = "ROOMCAST_WEBHOOK_URL", value_delimiter = ' ')]
    pub webhook_url: Vec<String>,

    /// The HMAC-SHA256 key that signs every webhook delivery (at least 16
    /// bytes; required with --webhook-url).
    #[arg(long, env = "ROOMCAST_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// How long one webhook delivery may take, in milliseconds.
    #[arg(long, env = "ROOMCAST_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// The wait before a failed delivery's first retry, in milliseconds;
    /// each next wait doubles, with jitter.
    #[arg(long, env = "ROOMCAST_WEBHOOK_RETRY_INITIAL_MS", default_value_t = 500)]
    pub webhook_retry_initial_ms: u64,

    /// The longest wait between two attempts, in milliseconds.
    #[arg(long, env = "ROOMCAST_WEBHOOK_RETRY_MAX_MS", default_value_t = 30_000)]
    pub webhook_retry_max_ms: u64,

    /// Attempts before an event is dead-lettered (listed and replayed
    /// through the API).
    #[arg(long, env = "ROOMCAST_WEBHOOK_MAX_ATTEMPTS", default_value_t = 20)]
    pub webhook_max_attempts: u32,

    /// Deliveries in flight at once per URL, each for another room.
    #[arg(long, env = "ROOMCAST_WEBHOOK_CONCURRENCY", default_value_t = 16)]
    pub webhook_concurrency: usize,

    /// Where messages, read positions and unread notifications are kept:
    /// `sqlite://PATH`, `postgres://...`, or `memory` (nothing survives a
    /// restart). Default: SQLite at `roomcast-data/roomcast.db` under the
    /// working directory; with `--redis-url`, none (history lives only in
    /// Redis, bounded) unless PostgreSQL is given.
    #[arg(long, env = "ROOMCAST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Days messages are kept in the database; older ones are removed by a
    /// background task. Default: kept forever.
    #[arg(long, env = "ROOMCAST_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`; empty (a variable set to
/// nothing) is off. Anything else is an error rather than a guess.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "" | "0" | "false" | "no" | "off" | "n" => Ok(false),
        other => Err(format!("`{other}` is not a switch: use 1/true/yes or 0/false/no")),
    }
}

/// An IP address (a range of one) or a CIDR range.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR range"))
}
