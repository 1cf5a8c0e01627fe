//! [`RabbitMq`]: a real RabbitMQ node on free ports, its data, logs and
//! Erlang cookie in a temporary directory, started once per test binary
//! (a node takes about 5 s to accept connections); each test uses queues
//! of its own ([`RabbitMq::queue`]).
//!
//! Debian's `/usr/sbin/rabbitmq-server` switches user and drops the
//! environment, so the node runs from `/usr/lib/rabbitmq/bin` configured
//! only through environment variables, with an `epmd` of its own. A
//! watcher process stops the node and `epmd` when the test binary exits,
//! however it exits.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis::free_port;

/// How to get the node when it is missing.
const INSTALL: &str = "apt-get install -y rabbitmq-server";

/// Where Debian's package keeps the node's own scripts.
const BIN: &str = "/usr/lib/rabbitmq/bin";

/// How long the node may take to accept AMQP connections.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// The test binary's RabbitMQ node.
#[derive(Debug)]
pub struct RabbitMq {
    port: u16,
    /// What `rabbitmqctl` needs to reach the node.
    env: Vec<(String, String)>,
    node: String,
}

impl RabbitMq {
    /// The node, started on first use.
    pub fn shared() -> &'static Self {
        static NODE: OnceLock<RabbitMq> = OnceLock::new();
        NODE.get_or_init(Self::start)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// A queue name no other test uses.
    pub fn queue(&self, prefix: &str) -> String {
        crate::unique_id(prefix)
    }

    // The node and `epmd` outlive this process on purpose: the watcher
    // stops them once it has exited.
    #[expect(clippy::zombie_processes, reason = "stopped by the watcher, not waited for")]
    fn start() -> Self {
        let server = Path::new(BIN).join("rabbitmq-server");
        assert!(
            server.is_file(),
            "{} was not found: install RabbitMQ with `{INSTALL}` (`cargo xtask test` does this)",
            server.display()
        );
        let (port, dist_port, epmd_port) = (free_port(), free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("roomcast-rmq-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the RabbitMQ directory");
        let plugins = dir.join("enabled_plugins");
        std::fs::write(&plugins, "[].\n").expect("writing the plugin list");
        let node = format!("rc{}@localhost", std::process::id());
        let env = environment(&dir, &node, port, dist_port, epmd_port, &plugins);

        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start epmd: {e} ({INSTALL})"));
        let log = std::fs::File::create(dir.join("server.out")).expect("creating the node's log");
        let node_process = Command::new(&server)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} ({INSTALL})", server.display()));
        watch_and_stop(&dir, &env, &node, node_process.id(), epmd.id());

        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < BOOT_TIMEOUT,
                "RabbitMQ did not accept connections on port {port} within {BOOT_TIMEOUT:?}; \
                 its output:\n{}",
                std::fs::read_to_string(dir.join("server.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { port, env, node }
    }

    /// Closes every client connection, as a broker restart or a network
    /// cut would (`rabbitmqctl close_all_connections`).
    pub fn close_all_connections(&self) {
        let output = Command::new(Path::new(BIN).join("rabbitmqctl"))
            .args(["-n", &self.node, "close_all_connections", "closed by a test"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running rabbitmqctl");
        assert!(
            output.status.success(),
            "rabbitmqctl close_all_connections failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The variables that configure the node (and `rabbitmqctl`, which must
/// find it through the same `epmd` and cookie).
fn environment(
    dir: &Path,
    node: &str,
    port: u16,
    dist_port: u16,
    epmd_port: u16,
    plugins: &Path,
) -> Vec<(String, String)> {
    let path = |p: PathBuf| p.display().to_string();
    [
        ("HOME", path(dir.to_path_buf())),
        ("RABBITMQ_NODENAME", node.to_owned()),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_owned()),
        ("RABBITMQ_NODE_PORT", port.to_string()),
        ("RABBITMQ_DIST_PORT", dist_port.to_string()),
        ("RABBITMQ_MNESIA_BASE", path(dir.join("mnesia"))),
        ("RABBITMQ_LOG_BASE", path(dir.join("log"))),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", path(plugins.to_path_buf())),
        ("ERL_EPMD_PORT", epmd_port.to_string()),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts a process that waits for this test binary to exit, then stops
/// the node (`rabbitmqctl stop`, else a kill), `epmd`, and removes the
/// directory.
fn watch_and_stop(dir: &Path, env: &[(String, String)], node: &str, server: u32, epmd: u32) {
    let script = r#"(while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
timeout 30 "$5/rabbitmqctl" -n "$3" stop || kill -9 "$4"
sleep 1; kill -9 "$4" "$6"; rm -rf "$2") >/dev/null 2>&1 </dev/null &"#;
    let started = Command::new("sh")
        .args(["-c", script, "watch"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(node)
        .arg(server.to_string())
        .arg(BIN)
        .arg(epmd.to_string())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .expect("starting the RabbitMQ watcher");
    assert!(started.success(), "the RabbitMQ watcher did not start: {started}");
}
