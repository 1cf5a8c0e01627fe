//! The `roomcast` binary as a child process, for what a task in the test's
//! runtime cannot show: signals (SIGTERM, SIGKILL) and a real crash.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A `roomcast` process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    addr: String,
    /// Every line the process wrote to stdout (its log), as it comes.
    output: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `roomcast` with `args` (and `--bind 127.0.0.1:0`, and no
    /// database unless `args` or `env` name one) and waits for the address
    /// it prints.
    pub async fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start(None, args, env).await
    }

    /// [`spawn`](Self::spawn) in the working directory `dir`, with the
    /// database `roomcast` picks by default there (unless `args` or `env`
    /// name one).
    pub async fn spawn_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start(Some(dir), args, env).await
    }

    async fn start(dir: Option<&std::path::Path>, args: &[&str], env: &[(&str, &str)]) -> Self {
        let binary = roomcast_binary().await;
        let mut command = Command::new(&binary);
        command
            .args(["--bind", "127.0.0.1:0"])
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("ROOMCAST_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        match dir {
            Some(dir) => {
                command.current_dir(dir).env_remove("ROOMCAST_DATABASE_URL");
            }
            // Volatile unless the test asks for a database.
            None => {
                command.env("ROOMCAST_DATABASE_URL", "memory");
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child =
            command.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let addr = listening_address(stdout, &mut child, output.clone()).await;
        assert!(!addr.ends_with(":0"), "the printed address must be the bound one, got {addr}");
        Self { child, addr, output }
    }

    /// The lines the process has written to stdout so far, as written
    /// (colours are off: `NO_COLOR` is set).
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id (for `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Sends a signal (`TERM`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the process is running").to_string();
        let sent = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name} {pid} failed");
    }

    /// Waits for the process to exit (at most 10 s).
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("roomcast did not exit within 10 s")
            .expect("waiting for roomcast")
    }
}

/// Runs the `roomcast` binary with these flags and environment (and no
/// other `ROOMCAST_*` setting) until it exits, which it must within 10 s;
/// returns whether it succeeded and what it printed.
pub async fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let binary = roomcast_binary().await;
    let mut command = Command::new(binary);
    command.args(["--bind", "127.0.0.1:0"]).args(args).env("NO_COLOR", "1").kill_on_drop(true);
    for (key, _) in std::env::vars() {
        if key.starts_with("ROOMCAST_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(10), command.output())
        .await
        .expect("roomcast neither exited nor failed within 10 s: it started")
        .expect("running roomcast");
    let text = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    (output.status.success(), text.into_owned())
}

/// The `roomcast` binary of the same build profile as this test, built first
/// with `cargo build -p roomcast-server --bin roomcast` so it is never stale
/// (`cargo test -p roomcast-tests` builds only the server's library).
pub async fn roomcast_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // The test runs as target/<profile>/deps/server-<hash>.
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target directory");
    let binary = profile_dir.join(format!("roomcast{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        "roomcast-server",
        "--bin",
        "roomcast",
        "--target-dir",
    ]);
    command.arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    command.current_dir(env!("CARGO_MANIFEST_DIR")).kill_on_drop(true);
    let hint = "build it with `cargo build -p roomcast-server --bin roomcast`";
    match tokio::time::timeout(Duration::from_secs(600), command.status()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => panic!("`cargo build` of the roomcast binary failed ({status}); {hint}"),
        Ok(Err(e)) => eprintln!("could not run {cargo} ({e}); using {} as it is", binary.display()),
        Err(_) => {
            eprintln!("`cargo build` took over 10 minutes; using {} as it is", binary.display())
        }
    }
    assert!(binary.exists(), "no roomcast binary at {}; {hint}", binary.display());
    binary
}

/// Reads lines of `output` until one says `listening on http://<addr>`.
async fn listening_address(
    output: ChildStdout,
    child: &mut Child,
    kept: Arc<Mutex<Vec<String>>>,
) -> String {
    let mut lines = BufReader::new(output).lines();
    let mut seen = Vec::new();
    let keep =
        move |line: &str| kept.lock().unwrap_or_else(|e| e.into_inner()).push(line.to_owned());
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("reading the server's stdout") {
            keep(&line);
            let plain = strip_ansi(&line);
            if let Some((_, rest)) = plain.split_once("listening on http://") {
                // Up to the end of the address, in a text line or a JSON one.
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                return Some(addr);
            }
            seen.push(plain);
        }
        None
    })
    .await;
    match found {
        Ok(Some(addr)) => {
            // Keep draining stdout so the server never blocks on a full pipe.
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    keep(&line);
                }
            });
            addr
        }
        Ok(None) => panic!(
            "roomcast exited ({:?}) without a `listening on` line: {seen:?}",
            child.try_wait()
        ),
        Err(_) => panic!("no `listening on http://` line within 20 s; stdout so far: {seen:?}"),
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the end of the escape sequence (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
