//! [`RedisServer`]: a real `redis-server` on a free port, with its data in a
//! directory of its own (append-only file, fsync on every write) so that it
//! can be stopped and started again without losing what it acknowledged.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A `redis-server` child process, killed (and its data removed) on drop.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("roomcast-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the Redis data directory");
        let mut server = Self { port, dir, child: None };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, as an operator would) and waits for it.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }

    /// Starts the server again on the same port, with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it with `apt-get install redis-server` \
                     (`cargo xtask test` does this)"
                )
            });
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Empties every database (`FLUSHALL`), as a lost or replaced Redis
    /// would be.
    pub async fn flush_all(&self) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).await.expect("connecting to redis-server");
        stream.write_all(b"FLUSHALL\r\n").await.expect("sending FLUSHALL");
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await.expect("FLUSHALL's reply");
        assert_eq!(&reply, b"+OK\r\n", "FLUSHALL answered {:?}", String::from_utf8_lossy(&reply));
    }

    /// Publishes `payload` on `channel`, as an instance would.
    pub async fn publish(&self, channel: &str, payload: &str) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).await.expect("connecting to redis-server");
        let mut command = b"*3\r\n$7\r\nPUBLISH\r\n".to_vec();
        for part in [channel, payload] {
            command.extend(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
        }
        stream.write_all(&command).await.expect("sending PUBLISH");
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).await.expect("PUBLISH's reply");
        assert_eq!(&reply, b":", "PUBLISH answered with an error");
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else { return false };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
}

/// A port of 127.0.0.1 that nothing listens on (right now).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}
