//! [`RoomcastPostgres`]: a real PostgreSQL server on a free port, its data
//! and socket in a temporary directory, started once per test binary; each
//! test gets a database of its own ([`RoomcastPostgres::database`]).
//!
//! PostgreSQL refuses to run as root, so as root the server tools run as the
//! `postgres` user that Debian's package creates. A watcher process stops the
//! server when the test binary exits, however it exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection as _;

use crate::redis::free_port;

/// How to get the server tools when they are missing.
const INSTALL: &str = "apt-get install -y postgresql";

/// The test binary's PostgreSQL server.
#[derive(Debug)]
pub struct RoomcastPostgres {
    port: u16,
}

impl RoomcastPostgres {
    /// The server, started on first use.
    pub fn shared() -> &'static Self {
        static SERVER: OnceLock<RoomcastPostgres> = OnceLock::new();
        SERVER.get_or_init(Self::start)
    }

    /// A new, empty database; its `postgres://` URL.
    pub async fn database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connecting to the test PostgreSQL server");
        // `name` is ours (a counter), never user data.
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("creating a test database");
        self.url(&name)
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start() -> Self {
        let bin = server_tools();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("roomcast-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the PostgreSQL directory");
        let as_root = is_root();
        if as_root {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir), "chown");
        }
        let data = dir.join("data");
        let tool = |name: &str| {
            let mut command = if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(name));
                c
            } else {
                Command::new(bin.join(name))
            };
            command.current_dir(&dir);
            command
        };
        // A linguistic collation, as most clusters have (and ICU's, so no
        // system locale is needed): the stores must order alike under it.
        run(
            tool("initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--locale-provider=icu",
                "--icu-locale=en-US",
                "--no-sync",
            ]),
            "initdb",
        );
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display());
        run(
            tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("postgres.log"))
                .args(["-o", &options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        watch_and_stop(&dir, &tool("pg_ctl"), &data);
        Self { port }
    }
}

/// The folder with `initdb` and `pg_ctl`: Debian keeps them off PATH in
/// `/usr/lib/postgresql/<version>/bin`.
fn server_tools() -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
        versions
            .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .max_by_key(|bin| {
                let version = bin.parent().and_then(Path::file_name);
                version.and_then(|v| v.to_str()?.parse::<u32>().ok()).unwrap_or(0)
            })
    });
    if let Some(bin) = newest {
        return bin;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb was not found (in /usr/lib/postgresql/*/bin or on PATH): \
             install it with `{INSTALL}` (`cargo xtask test` does this)"
        )
    })
}

/// Starts a process that waits for this test binary to exit, then stops the
/// server (fast shutdown) and removes its directory.
fn watch_and_stop(dir: &Path, pg_ctl: &Command, data: &Path) {
    let mut stop: Vec<String> = vec![pg_ctl.get_program().to_string_lossy().into_owned()];
    stop.extend(pg_ctl.get_args().map(|a| a.to_string_lossy().into_owned()));
    stop.extend(["-D".into(), data.display().to_string(), "-m".into(), "fast".into()]);
    stop.extend(["-w".into(), "-t".into(), "30".into(), "stop".into()]);
    // The watcher runs in the background of a shell that exits at once (and
    // is waited for), so it outlives this process without being its child.
    let script = r#"(while kill -0 "$1" 2>/dev/null; do sleep 0.2; done; shift; dir="$1"; shift
"$@" || kill -QUIT "$(head -1 "$dir/data/postmaster.pid")"
rm -rf "$dir") >/dev/null 2>&1 </dev/null &"#;
    let started = Command::new("sh")
        .args(["-c", script, "watch"])
        .arg(std::process::id().to_string())
        .arg(dir)
        .args(&stop)
        .status()
        .expect("starting the PostgreSQL watcher");
    assert!(started.success(), "the PostgreSQL watcher did not start: {started}");
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e} ({INSTALL})"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
