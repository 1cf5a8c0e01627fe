//! [`TestServer`]: the real server on 127.0.0.1:0 in a task of the test's
//! runtime, on either [`Engine`], with a oneshot-driven shutdown, and helpers
//! for its HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_server::Config;
use roomcast_shared::Claims;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Engine, PRESENCE_GRACE, RECV_TIMEOUT, RedisServer, TYPING_TIMEOUT, claims, sign};

/// The real server, running in a task of the test's runtime.
pub struct TestServer {
    addr: SocketAddr,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
    /// The `redis-server` this server was started with by
    /// [`start_on`](Self::start_on): it lives as long as the server (fields
    /// drop after [`Drop`] has signalled the shutdown) and moves on to the
    /// next server on [`restart`](Self::restart).
    redis: Option<RedisServer>,
    /// The directory of the SQLite store of a server on
    /// [`Engine::Sqlite`], removed when the last server using it drops.
    database: Option<Arc<TempDatabase>>,
}

/// A directory holding a test server's SQLite store; removed on drop.
#[derive(Debug)]
pub struct TempDatabase {
    dir: std::path::PathBuf,
}

impl TempDatabase {
    /// A new, empty directory for a store.
    pub fn new() -> Self {
        let dir = std::env::temp_dir()
            .join(crate::unique_id(&format!("roomcast-db-{}", std::process::id())));
        std::fs::create_dir_all(&dir).expect("creating the store's directory");
        Self { dir }
    }

    /// `sqlite://<dir>/roomcast.db`.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("roomcast.db").display())
    }
}

impl Default for TempDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestServer {
    /// A dev-mode server with the short test timings, on the memory engine.
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// A server whose configuration `adjust` changes after the test defaults
    /// ([`Config::dev`] with [`PRESENCE_GRACE`] and [`TYPING_TIMEOUT`]).
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::at("127.0.0.1:0", adjust).await
    }

    /// [`start`](Self::start) on `engine`; on Redis, with a `redis-server`
    /// of its own.
    pub async fn start_on(engine: Engine) -> Self {
        Self::with_on(engine, |_| {}).await
    }

    /// [`with`](Self::with) on `engine`: `adjust` sees the Redis URL
    /// already set.
    pub async fn with_on(engine: Engine, adjust: impl FnOnce(&mut Config)) -> Self {
        let redis = match engine {
            Engine::Memory | Engine::Sqlite => None,
            Engine::Redis | Engine::RedisPostgres => Some(RedisServer::start().await),
        };
        let database = (engine == Engine::Sqlite).then(|| Arc::new(TempDatabase::new()));
        let mut config = test_config();
        config.redis_url = redis.as_ref().map(RedisServer::url);
        config.database_url = match engine {
            Engine::RedisPostgres => Some(crate::RoomcastPostgres::shared().database().await),
            _ => database.as_ref().map(|d| d.url()),
        };
        adjust(&mut config);
        let mut server = Self::launch("127.0.0.1:0", config, redis).await;
        server.database = database;
        server
    }

    /// [`with`](Self::with) on a given address, such as the port of a
    /// server that was stopped and starts again behind a proxy.
    pub async fn at(addr: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        adjust(&mut config);
        Self::launch(addr, config, None).await
    }

    /// Stops the server and starts a new one with the same configuration
    /// (on a new port) and, on Redis, the same `redis-server` with its data:
    /// a deploy of the only instance, as clients see it.
    pub async fn restart(mut self) -> Self {
        let redis = self.redis.take();
        let database = self.database.take();
        let config = self.config.clone();
        self.stop().await;
        let mut server = Self::launch("127.0.0.1:0", config, redis).await;
        server.database = database;
        server
    }

    async fn launch(addr: &str, mut config: Config, redis: Option<RedisServer>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = listener.local_addr().expect("local address");
        config.bind = addr;
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let task = tokio::spawn(roomcast_server::run(listener, config.clone(), shutdown));
        let http = reqwest::Client::builder().timeout(RECV_TIMEOUT).build().expect("http client");
        Self { addr, config, shutdown: Some(tx), task: Some(task), http, redis, database: None }
    }

    /// The engine the server keeps its state in.
    pub fn engine(&self) -> Engine {
        match (&self.config.redis_url, &self.config.database_url) {
            (Some(_), Some(_)) => Engine::RedisPostgres,
            (Some(_), None) => Engine::Redis,
            (None, Some(_)) => Engine::Sqlite,
            (None, None) => Engine::Memory,
        }
    }

    /// The `redis-server` this server runs on, if it has one of its own.
    pub fn redis(&self) -> Option<&RedisServer> {
        self.redis.as_ref()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The backends' API key.
    pub fn api_key(&self) -> &str {
        &self.config.api_key
    }

    /// A token for `user_id`, valid for an hour.
    pub fn token(&self, user_id: &str, name: &str) -> String {
        self.token_with(&claims(user_id, name))
    }

    /// A token with these claims, signed with the server's secret.
    pub fn token_with(&self, claims: &Claims) -> String {
        sign(&self.config.jwt_secret, claims)
    }

    /// An admin's token.
    pub fn admin_token(&self, user_id: &str, name: &str) -> String {
        self.token_with(&Claims { role: Some("admin".into()), ..claims(user_id, name) })
    }

    /// Resolves the shutdown future and waits for `run` to return `Ok`.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("server task");
        let wait = self.config.timing.shutdown_grace + RECV_TIMEOUT;
        match tokio::time::timeout(wait, task).await {
            Err(_) => panic!("run() did not return within {wait:?} of the shutdown signal"),
            Ok(Err(e)) => panic!("the server task panicked: {e}"),
            Ok(Ok(Err(e))) => panic!("run() returned an error: {e}"),
            Ok(Ok(Ok(()))) => {}
        }
    }

    /// Whether `run` has returned (it should not before [`stop`](Self::stop)).
    pub fn has_exited(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// An HTTP request; `key` goes in `Authorization: Bearer`.
    pub async fn http(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> HttpReply {
        let url = format!("{}{path}", self.http_url());
        let mut request = self.http.request(method.clone(), &url);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.unwrap_or_else(|e| panic!("{method} {path} body: {e}"));
        HttpReply { what: format!("{method} {path}"), status, content_type, text }
    }

    /// `GET path` without a key.
    pub async fn get(&self, path: &str) -> HttpReply {
        self.http(reqwest::Method::GET, path, None, None).await
    }

    /// `GET path` with the API key.
    pub async fn api_get(&self, path: &str) -> HttpReply {
        self.http(reqwest::Method::GET, path, Some(&self.config.api_key), None).await
    }

    /// `POST path` with the API key and a JSON body.
    pub async fn api_post(&self, path: &str, body: Value) -> HttpReply {
        self.http(reqwest::Method::POST, path, Some(&self.config.api_key), Some(body)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// [`Config::dev`] with the short test timings.
fn test_config() -> Config {
    let mut config = Config::dev();
    config.timing.presence_grace = PRESENCE_GRACE;
    config.timing.typing_timeout = TYPING_TIMEOUT;
    config.timing.shutdown_grace = Duration::from_secs(2);
    config
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpReply {
    /// The request, for failure messages.
    pub what: String,
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub text: String,
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.what, self.text))
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{} answered {}: {}", self.what, self.status, self.text);
        self.json()
    }

    /// Asserts an error status with its JSON body `{error: {code, message}}`.
    pub fn expect_error(&self, status: u16, code: &str) {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "{}: {body}", self.what);
        assert!(
            body["error"]["message"].is_string(),
            "{}: error without message: {body}",
            self.what
        );
    }
}
