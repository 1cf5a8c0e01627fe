//! The server the SDK's browser tests run against: the real `roomcast`
//! binary in dev mode on a free port, plus a small control API on another
//! port that a test page calls to get tokens and to stop, start or restart
//! the server (a browser cannot send signals).
//!
//! Control API (CORS open, so a test page on any origin may call it):
//! - `POST /token` `{name}`: a dev token, as `POST /api/dev/token` answers.
//! - `POST /notify`: `POST /api/notify` with the API key (a backend's call).
//! - `POST /api/...`: passed on to the server with the API key, for the other
//!   backend calls (publishing into a room, for example).
//! - `POST /stop`: SIGTERM (clients get close 1012), then wait for the exit.
//! - `POST /start`: start again on the same port; answers once it listens.
//! - `POST /restart`: both.
//! - `POST /kill`: SIGKILL (a crash: no close frames, nothing flushed), then
//!   wait for the exit; `POST /start` brings it back.
//! - `POST /freeze`, `POST /thaw`: SIGSTOP and SIGCONT, so the server keeps
//!   its connections open but stops answering (a dead peer behind a live
//!   TCP connection, as after a network change).
//!
//! The secrets are fixed for the fixture's life, so a token stays valid
//! across restarts. History survives a restart only with Redis ([`Redis`]);
//! in memory, a restart starts new epochs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The backends' key of the fixture's server.
pub(crate) const API_KEY: &str = "sdk-test-key";
/// How long the server may take to listen after a start.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long it may take to exit after SIGTERM (its own grace is 5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a fixture's server keeps rooms and messages.
pub enum Backing<'a> {
    /// In memory: a restart forgets everything (`--database-url memory`).
    Memory,
    /// In Redis, bounded, with nothing else durable.
    Redis(&'a Redis),
    /// In a SQLite file, as `cargo xtask run` does by default.
    Sqlite(PathBuf),
}

impl Backing<'_> {
    fn args(&self) -> Vec<String> {
        match self {
            Self::Memory => vec!["--database-url".into(), "memory".into()],
            Self::Redis(redis) => {
                vec!["--redis-url".into(), redis.url(), "--database-url".into(), "memory".into()]
            }
            Self::Sqlite(path) => {
                vec!["--database-url".into(), format!("sqlite://{}", path.display())]
            }
        }
    }
}

/// A running server and its control API; both stop when dropped.
pub struct Fixture {
    server: Arc<Mutex<Server>>,
    control: SocketAddr,
}

struct Server {
    binary: PathBuf,
    addr: SocketAddr,
    static_dir: Option<PathBuf>,
    /// The flags that say where it keeps its state.
    backing: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Fixture {
    /// Starts `binary` (serving `static_dir` at `/`, keeping its state as
    /// `backing` says) and the control API. Server output goes to `log`.
    pub fn start(
        binary: &Path,
        static_dir: Option<&Path>,
        backing: Backing<'_>,
        log: &Path,
    ) -> Result<Self> {
        let addr = free_port()?;
        let mut server = Server {
            binary: binary.to_owned(),
            addr,
            static_dir: static_dir.map(Path::to_owned),
            backing: backing.args(),
            log: log.to_owned(),
            child: None,
        };
        server.start()?;
        let server = Arc::new(Mutex::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the control API")?;
        let control = listener.local_addr()?;
        let shared = server.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = handle(stream, &shared) {
                    eprintln!("fixture: {e:#}");
                }
            }
        });
        Ok(Self { server, control })
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.server.lock().expect("fixture lock").addr)
    }

    /// `http://127.0.0.1:<port>`: the server, and the app it serves.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.server.lock().expect("fixture lock").addr)
    }

    /// Where the server's output goes.
    pub fn log(&self) -> PathBuf {
        self.server.lock().expect("fixture lock").log.clone()
    }

    /// `http://127.0.0.1:<port>` of the control API.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(mut server) = self.server.lock() {
            let _ = server.stop();
        }
    }
}

impl Server {
    fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .args(["--dev", "--jwt-secret", "sdk-test-secret", "--api-key", API_KEY])
            .args(["--bind", &self.addr.to_string(), "--presence-grace-ms", "500"])
            .args(&self.backing)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(dir) = &self.static_dir {
            command.arg("--static-dir").arg(dir);
        }
        let child = command.spawn().with_context(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                bail!("roomcast exited at start ({status}); see {}", self.log.display());
            }
            if Instant::now() > deadline {
                bail!("roomcast did not listen on {} within {START_TIMEOUT:?}", self.addr);
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// SIGTERM, so the server closes every connection with 1012 as in a
    /// real deploy; SIGKILL if it does not exit in time.
    fn stop(&mut self) -> Result<()> {
        // A frozen server would not act on SIGTERM.
        let _ = self.signal("-CONT");
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                bail!("roomcast ignored SIGTERM for {STOP_TIMEOUT:?} and was killed");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILL, as a crash or an OOM kill would end it.
    fn kill(&mut self) -> Result<()> {
        let mut child = self.child.take().context("the server is not running")?;
        child.kill().context("SIGKILL the server")?;
        child.wait()?;
        Ok(())
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to the running server.
    fn signal(&self, signal: &str) -> Result<()> {
        let child = self.child.as_ref().context("the server is not running")?;
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill {signal} failed ({status})");
        }
        Ok(())
    }
}

/// A throwaway redis-server on a free port, without persistence; stopped
/// when dropped.
pub struct Redis {
    addr: SocketAddr,
    child: Child,
}

impl Redis {
    pub fn start(log: &Path) -> Result<Self> {
        let addr = free_port()?;
        let log = std::fs::File::create(log)?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start redis-server (apt-get install redis-server)")?;
        let redis = Self { addr, child };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not listen on {addr} within {START_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?)
}

/// Answers one control request.
fn handle(mut stream: TcpStream, server: &Mutex<Server>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, body) = read_request(&mut stream)?;
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, reply) = match (method, path) {
        ("OPTIONS", _) => (204, String::new()),
        ("POST", "/token") => {
            let addr = server.lock().expect("fixture lock").addr;
            post(addr, "/api/dev/token", &body, None)?
        }
        ("POST", "/notify") => {
            let addr = server.lock().expect("fixture lock").addr;
            post(addr, "/api/notify", &body, Some(API_KEY))?
        }
        ("POST", api) if api.starts_with("/api/") => {
            let addr = server.lock().expect("fixture lock").addr;
            post(addr, api, &body, Some(API_KEY))?
        }
        ("POST", "/freeze" | "/thaw") => {
            let server = server.lock().expect("fixture lock");
            let signal = if path == "/freeze" { "-STOP" } else { "-CONT" };
            match server.signal(signal) {
                Ok(()) => (200, "{\"ok\":true}".to_owned()),
                Err(e) => (500, format!("{{\"error\":{:?}}}", format!("{e:#}"))),
            }
        }
        ("POST", "/kill") => match server.lock().expect("fixture lock").kill() {
            Ok(()) => (200, "{\"ok\":true}".to_owned()),
            Err(e) => (500, format!("{{\"error\":{:?}}}", format!("{e:#}"))),
        },
        ("POST", "/stop" | "/start" | "/restart") => {
            let mut server = server.lock().expect("fixture lock");
            let result = match path {
                "/stop" => server.stop(),
                "/start" => server.start(),
                _ => server.stop().and_then(|()| server.start()),
            };
            match result {
                Ok(()) => (200, "{\"ok\":true}".to_owned()),
                Err(e) => (500, format!("{{\"error\":{:?}}}", format!("{e:#}"))),
            }
        }
        _ => (404, "{\"error\":\"unknown fixture path\"}".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
         access-control-allow-origin: *\r\naccess-control-allow-headers: content-type\r\n\
         access-control-allow-methods: GET, POST, OPTIONS\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes())?;
    Ok(())
}

/// Reads a request's head and its body (by `content-length`).
fn read_request(stream: &mut TcpStream) -> Result<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            let body = String::from_utf8_lossy(&data[end + 4..]).into_owned();
            return Ok((head, body));
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            bail!("connection closed before the request head ended");
        }
        data.extend_from_slice(&buf[..n]);
    }
}

/// A JSON POST to the server; returns its status and body.
fn post(addr: SocketAddr, path: &str, body: &str, key: Option<&str>) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).context("connect to roomcast")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = key.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(502);
    Ok((status, body.to_owned()))
}
