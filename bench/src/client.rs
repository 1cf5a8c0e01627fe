//! Roomcast connections for load: tokens (signed here or fetched from the
//! dev endpoint), connect and authenticate, join, and the loop that drains a
//! connection into the [`Recorder`].

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, Stream, StreamExt, TryStreamExt, stream};
use jsonwebtoken::{EncodingKey, Header};
use roomcast_shared::Claims;
use roomcast_shared::api::{DevTokenRequest, DevTokenResponse};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::recorder::Recorder;
use crate::stream::LoadStream;

/// One load connection.
pub type Ws = WebSocketStream<LoadStream>;

/// How long a handshake, `ready` or `joined` may take. Joins into a room of
/// thousands carry the whole member list, so this is generous.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Token requests in flight when fetching from the dev endpoint.
const TOKEN_CONCURRENCY: usize = 32;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// Bytes read from a socket at once. tungstenite zero-fills this much
    /// before each read, so the default 128 KiB would cost more than the
    /// frames it reads.
    pub read_buffer: usize,
    /// Connections per local source address. One address has about 28,000
    /// ephemeral ports; past `per_source`, connections come from 127.0.0.2,
    /// 127.0.0.3, ...
    pub per_source: usize,
    /// Whether any connection needs an explicit source address.
    pub many_sources: bool,
    /// Delay ACKs (see [`LoadStream`]).
    pub delay_acks: bool,
}

impl Target {
    fn source(&self, index: usize) -> Option<Ipv4Addr> {
        // Binding costs a port search per socket, so it is done only when
        // one source address cannot hold every connection.
        if !self.many_sources {
            return None;
        }
        let n = u8::try_from(1 + index / self.per_source.max(1)).unwrap_or(u8::MAX);
        Some(Ipv4Addr::new(127, 0, 0, n))
    }
}

/// Where tokens come from.
pub enum Tokens {
    /// Signed here with the server's JWT secret (HS256).
    Secret(EncodingKey),
    /// Fetched from `POST /api/dev/token` (dev mode servers).
    Dev { http: reqwest::Client, url: String },
}

impl Tokens {
    pub fn new(addr: SocketAddr, secret: Option<&str>) -> Self {
        match secret {
            Some(secret) => Self::Secret(EncodingKey::from_secret(secret.as_bytes())),
            None => Self::Dev {
                http: reqwest::Client::new(),
                url: format!("http://{addr}/api/dev/token"),
            },
        }
    }

    /// A token for user `id` (lowercase letters, digits and dashes, so the
    /// dev endpoint maps the name to the same id).
    async fn token(&self, id: &str) -> Result<String> {
        match self {
            Self::Secret(key) => {
                let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
                let claims = Claims { exp: Some(exp), ..Claims::new(id, id) };
                Ok(jsonwebtoken::encode(&Header::default(), &claims, key)?)
            }
            Self::Dev { http, url } => {
                let body = DevTokenRequest { name: id.to_owned(), role: None };
                let response = http.post(url).json(&body).send().await?;
                if !response.status().is_success() {
                    bail!("{url} answered {}: is the server in dev mode?", response.status());
                }
                Ok(response.json::<DevTokenResponse>().await?.token)
            }
        }
    }

    /// Tokens for users `<prefix>-0` .. `<prefix>-<n-1>`, in order.
    pub async fn many(&self, prefix: &str, n: usize) -> Result<Vec<String>> {
        stream::iter(0..n)
            .map(|i| async move { self.token(&format!("{prefix}-{i}")).await })
            .buffered(TOKEN_CONCURRENCY)
            .try_collect()
            .await
    }
}

/// Connects, authenticates with the `auth` frame and waits for `ready`.
pub async fn connect(target: &Target, index: usize, token: &str) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = target.source(index) {
        socket.bind(SocketAddr::new(source.into(), 0))?;
    }
    let tcp = socket.connect(target.addr).await.with_context(|| format!("connecting #{index}"))?;
    // Frames are small and latency is what we measure: no Nagle delay.
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(target.read_buffer);
    let url = format!("ws://{}/ws", target.addr);
    let stream = LoadStream::new(tcp, target.delay_acks);
    let (mut ws, _) = tokio::time::timeout(
        REPLY_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")??;
    let auth = json!({"type": "auth", "token": token}).to_string();
    ws.send(Message::text(auth)).await?;
    expect(&mut ws, "ready").await?;
    Ok(ws)
}

/// Joins `room` and waits for `joined`.
pub async fn join(ws: &mut Ws, room: &str) -> Result<()> {
    ws.send(Message::text(json!({"type": "join", "room": room}).to_string())).await?;
    expect(ws, "joined").await
}

/// Reads until a frame of type `kind`, skipping broadcasts (presence,
/// member events) that may come first.
async fn expect(ws: &mut Ws, kind: &str) -> Result<()> {
    let prefix = format!(r#"{{"type":"{kind}""#);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .with_context(|| format!("no `{kind}` within {REPLY_TIMEOUT:?}"))?;
        match next {
            Some(Ok(Message::Text(text))) if text.as_str().starts_with(&prefix) => return Ok(()),
            Some(Ok(Message::Text(text))) if text.as_str().starts_with(r#"{"type":"error""#) => {
                bail!("waiting for `{kind}`, the server answered {text}")
            }
            Some(Ok(Message::Close(frame))) => {
                bail!("closed while waiting for `{kind}`: {frame:?}")
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => bail!("connection ended while waiting for `{kind}`"),
        }
    }
}

/// Opens `tokens.len()` authenticated connections, `concurrency` at a time.
/// Returns them in order with the time the whole batch took.
pub async fn connect_many(
    target: &Target,
    tokens: &[String],
    concurrency: usize,
) -> Result<(Vec<Ws>, Duration)> {
    let started = Instant::now();
    let conns = stream::iter(tokens.iter().enumerate())
        .map(|(i, token)| connect(target, i, token))
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok((conns, started.elapsed()))
}

/// Joins connection `i` to `room_of(i)`, `concurrency` at a time, and
/// hands each to `start` as soon as it has joined, so that it is read from
/// while the others join (every join is announced to the room's members).
/// Returns the time the whole batch took.
pub async fn join_all(
    conns: Vec<Ws>,
    room_of: impl Fn(usize) -> String,
    concurrency: usize,
    start: impl FnMut(usize, Ws),
) -> Result<Duration> {
    join_each(conns, |_, ws| async move { Ok(ws) }, room_of, concurrency, start).await
}

/// Connects, authenticates and joins connection `i` to `room_of(i)`,
/// `concurrency` at a time, handing each to `start` as soon as it has
/// joined. No connection waits unread for the others: the server closes
/// connections silent for two heartbeats, and filling a room of thousands
/// takes a while. Returns the time the whole batch took.
pub async fn open_all(
    target: &Target,
    tokens: &[String],
    room_of: impl Fn(usize) -> String,
    concurrency: usize,
    start: impl FnMut(usize, Ws),
) -> Result<Duration> {
    join_each(tokens.iter(), |i, token| connect(target, i, token), room_of, concurrency, start)
        .await
}

/// For each item, `concurrency` at a time: `open` gives connection `i`,
/// which joins `room_of(i)` and goes to `start` as soon as it has joined.
/// Returns the time the whole batch took.
async fn join_each<T, Fut>(
    items: impl IntoIterator<Item = T>,
    open: impl Fn(usize, T) -> Fut,
    room_of: impl Fn(usize) -> String,
    concurrency: usize,
    mut start: impl FnMut(usize, Ws),
) -> Result<Duration>
where
    Fut: Future<Output = Result<Ws>>,
{
    let started = Instant::now();
    let (open, room_of) = (&open, &room_of);
    let mut joins = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| async move {
            let mut ws = open(i, item).await?;
            join(&mut ws, &room_of(i)).await.with_context(|| format!("joining #{i}"))?;
            Ok::<_, anyhow::Error>((i, ws))
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(joined) = joins.next().await {
        let (i, ws) = joined?;
        start(i, ws);
    }
    Ok(started.elapsed())
}

/// Handles one item read from a connection; false when the connection ended.
pub fn on_item(item: Option<Result<Message, WsError>>, recorder: &RefCell<Recorder>) -> bool {
    let code = match item {
        Some(Ok(Message::Text(text))) => {
            recorder.borrow_mut().frame(text.as_bytes());
            return true;
        }
        Some(Ok(Message::Close(frame))) => frame.map_or(0, |f| u16::from(f.code)),
        Some(Ok(_)) => return true,
        Some(Err(_)) | None => 0,
    };
    *recorder.borrow_mut().closed.entry(code).or_default() += 1;
    false
}

/// Reads a connection until it ends, recording what arrives.
pub async fn drain(
    mut ws: impl Stream<Item = Result<Message, WsError>> + Unpin,
    recorder: Rc<RefCell<Recorder>>,
) {
    while on_item(ws.next().await, &recorder) {}
}

/// A `send` frame; its `client_id` is shaped like the SDK's, the time
/// (Unix ms, 12 hex digits) first, then `seq` (unique per sender) where
/// the SDK has random bits: the store indexes keys in the order a real
/// client makes them.
pub fn send_frame(room: &str, content: &str, seq: u64) -> Message {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    Message::text(format!(
        r#"{{"type":"send","room":"{room}","content":"{content}","client_id":"c-{ms:012x}{seq:020x}"}}"#
    ))
}
