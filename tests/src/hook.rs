//! [`HookServer`]: a real HTTP receiver for the server's hooks, on a free
//! port. It records each request (headers and JSON body) and answers what
//! the test scripted: JSON with a status, a slow answer, a huge body,
//! garbage.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

/// One answer of the hook.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status and JSON body.
    Json(u16, Value),
    /// This JSON, after a wait.
    Slow(Duration, Value),
    /// This status and raw body (not JSON, say).
    Raw(u16, String),
    /// A 200 whose body never ends within any sane bound: megabytes sent in
    /// chunks without a length.
    Huge,
}

impl Reply {
    /// `{"action":"allow"}`.
    pub fn allow() -> Self {
        Self::Json(200, serde_json::json!({"action": "allow"}))
    }
}

/// A request the hook received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Lowercase names; repeated headers joined with `, `.
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// The body's bytes as received (what a signature covers).
    pub raw: Bytes,
    /// The status the receiver answered.
    pub status: u16,
}

type Script = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<Script>>,
}

/// The receiver; stops when dropped.
pub struct HookServer {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl HookServer {
    /// Starts on 127.0.0.1 at a free port, answering `reply` to everything.
    pub async fn start(reply: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let script: Script = Arc::new(move |_| reply.clone());
        let shared = Shared { recorded: Arc::default(), script: Arc::new(Mutex::new(script)) };
        let app = axum::Router::new().fallback(answer).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// The URL of the hook (any path answers).
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `reply` from now on.
    pub fn answer(&self, reply: Reply) {
        self.answer_with(move |_| reply.clone());
    }

    /// Answers what `script` makes of each request's body.
    pub fn answer_with(&self, script: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *self.shared.script.lock().unwrap() = Arc::new(script);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Waits (up to a generous bound: deliveries retry with backoff) until
    /// the requests so far satisfy `done`; returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; received {:#?}",
                requests.iter().map(|r| &r.body).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A URL where nothing listens (a port bound, then released).
    pub async fn unreachable_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        drop(listener);
        format!("http://{addr}/hook")
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Shared>, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let mut joined: HashMap<String, String> = HashMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        joined
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let script = shared.script.lock().unwrap().clone();
    let reply = script(&body);
    let status = match &reply {
        Reply::Json(status, _) | Reply::Raw(status, _) => *status,
        Reply::Slow(..) | Reply::Huge => 200,
    };
    shared.recorded.lock().unwrap().push(Recorded { headers: joined, body, raw, status });
    let json = |status: u16, text: String| {
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(text))
            .expect("a response")
    };
    match reply {
        Reply::Json(status, value) => json(status, value.to_string()),
        Reply::Raw(status, text) => json(status, text),
        Reply::Slow(wait, value) => {
            tokio::time::sleep(wait).await;
            json(200, value.to_string())
        }
        Reply::Huge => {
            let chunks = futures_util::stream::iter(
                std::iter::once(Bytes::from_static(b"{\"action\":\"allow\",\"data\":\""))
                    .chain(std::iter::repeat_n(Bytes::from(vec![b'x'; 64 * 1024]), 64))
                    .map(Ok::<_, std::io::Error>),
            );
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(chunks))
                .expect("a response")
        }
    }
}
