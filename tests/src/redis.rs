//! [`RedisServer`]: a real `redis-server` on a free port, with its data in a
//! directory of its own (append-only file, fsync on every write) so that it
//! can be stopped and started again without losing what it acknowledged.
//! [`RedisServer::start_tls`] adds a TLS port with a certificate signed by a
//! private CA made for the test (with the `openssl` command).

use std::path::{Path, PathBuf};
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
    /// The TLS port, when started with [`start_tls`](Self::start_tls).
    tls_port: Option<u16>,
}

/// Files of the test's certificate authority and Redis's certificate, in
/// the data directory.
const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "redis.crt";
const SERVER_KEY: &str = "redis.key";

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let mut server = Self::prepare(None);
        server.restart().await;
        server
    }

    /// Starts `redis-server` with a TLS port besides its plain one (the
    /// harness uses the plain one for itself). Its certificate, for
    /// `127.0.0.1` and `localhost`, is signed by a CA made for this server
    /// ([`ca_file`](Self::ca_file)), which no system trusts.
    pub async fn start_tls() -> Self {
        let mut server = Self::prepare(Some(free_port()));
        make_certificates(&server.dir);
        server.restart().await;
        server
    }

    fn prepare(tls_port: Option<u16>) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("roomcast-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the Redis data directory");
        Self { port, dir, child: None, tls_port }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:<tls port>` (only with [`start_tls`](Self::start_tls)).
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port())
    }

    /// The TLS port (only with [`start_tls`](Self::start_tls)).
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("a RedisServer started with start_tls")
    }

    /// The PEM file of the CA that signed the TLS port's certificate.
    pub fn ca_file(&self) -> PathBuf {
        assert!(self.tls_port.is_some(), "a RedisServer started with start_tls");
        self.dir.join(CA_CERT)
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
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir);
        if let Some(tls_port) = self.tls_port {
            let file = |name: &str| self.dir.join(name).into_os_string();
            command
                .args(["--tls-port", &tls_port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(file(SERVER_CERT))
                .arg("--tls-key-file")
                .arg(file(SERVER_KEY))
                .arg("--tls-ca-cert-file")
                .arg(file(CA_CERT));
        }
        let child = command
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

    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let tls_ready = match self.tls_port {
                Some(port) => TcpStream::connect(("127.0.0.1", port)).await.is_ok(),
                None => true,
            };
            if ping(self.port).await && tls_ready {
                return;
            }
            let exited = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                match self.tls_port {
                    Some(_) => panic!(
                        "redis-server exited ({status}) with TLS settings: this redis-server \
                         may be built without TLS. Install Debian's `redis-server` package \
                         (built with TLS: `apt-get install redis-server`), or build Redis with \
                         `make BUILD_TLS=yes`"
                    ),
                    None => panic!("redis-server exited ({status}) at start"),
                }
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

/// Makes a CA and a certificate for `127.0.0.1` and `localhost` signed by
/// it, with `openssl` (ECDSA P-256, valid for two days), in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}): install it with `apt-get install openssl`")
            });
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = [
        &["req", "-x509"][..],
        &key,
        &["-keyout", CA_KEY, "-out", CA_CERT, "-days", "2"],
        &["-addext", "basicConstraints=critical,CA:TRUE"],
        &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ]
    .concat();
    // A name of its own: a CA of another test server is another issuer.
    let unique = dir.file_name().and_then(|name| name.to_str()).unwrap_or("redis");
    let name = format!("/CN=Roomcast test CA {unique}");
    ca.extend(["-subj", name.as_str()]);
    openssl(&ca);
    openssl(
        &[
            &["req", "-new"][..],
            &key,
            &["-keyout", SERVER_KEY, "-out", "redis.csr"],
            &["-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("redis.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("writing the certificate's extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        CA_CERT,
        "-CAkey",
        CA_KEY,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "redis.ext",
        "-out",
        SERVER_CERT,
    ]);
}

/// A port of 127.0.0.1 that nothing listens on (right now).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}
