//! Shutdown: resolving the shutdown future closes every socket with 1012, and
//! the `roomcast` binary prints its address, serves, and exits 0 on SIGTERM.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use roomcast_tests::{RECV_TIMEOUT, TestServer, WsClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

#[tokio::test]
async fn shutdown_closes_every_socket_with_1012() {
    let server = TestServer::start().await;
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.join("general").await;
    let mut tab = WsClient::connect_as(&server, "alice", "Alice").await.labelled("alice-tab");
    let mut unauthenticated = WsClient::connect(&server.ws_url()).await.labelled("unauthenticated");
    unauthenticated.assert_usable().await;
    assert!(!server.has_exited(), "run() returned before the shutdown signal");

    let url = server.http_url();
    server.stop().await;
    for client in [&mut alice, &mut tab, &mut unauthenticated] {
        assert_eq!(client.expect_close().await, 1012);
    }
    // The listener is gone too.
    let refused = reqwest::get(format!("{url}/health")).await;
    assert!(refused.is_err(), "the server still answers after shutdown: {refused:?}");
}

/// The `roomcast` binary of the same build profile as this test, built first
/// with `cargo build -p roomcast-server --bin roomcast` so it is never stale
/// (`cargo test -p roomcast-tests` builds only the server's library).
async fn roomcast_binary() -> PathBuf {
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
async fn listening_address(output: ChildStdout, child: &mut Child) -> String {
    let mut lines = BufReader::new(output).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("reading the server's stdout") {
            let plain = strip_ansi(&line);
            if let Some((_, rest)) = plain.split_once("listening on http://") {
                let addr: String =
                    rest.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
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
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
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

#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_and_exits_cleanly_on_sigterm() {
    let binary = roomcast_binary().await;
    let mut child = Command::new(&binary)
        // Secrets given, dev mode from the environment as a user would set it.
        .args(["--bind", "127.0.0.1:0", "--jwt-secret", "s3cret", "--api-key", "k3y"])
        .env("ROOMCAST_DEV", "1")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("ROOMCAST_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let stdout = child.stdout.take().expect("stdout");
    let addr = listening_address(stdout, &mut child).await;
    assert!(!addr.ends_with(":0"), "the printed address must be the bound one, got {addr}");

    let health: serde_json::Value = reqwest::get(format!("http://{addr}/health"))
        .await
        .expect("GET /health")
        .json()
        .await
        .expect("health JSON");
    assert_eq!(health["status"], "ok", "{health}");

    let token = reqwest::Client::new()
        .post(format!("http://{addr}/api/dev/token"))
        .json(&serde_json::json!({"name": "Alice"}))
        .send()
        .await
        .expect("POST /api/dev/token")
        .json::<serde_json::Value>()
        .await
        .expect("dev token JSON");
    let url = format!("ws://{addr}/ws?token={}", token["token"].as_str().expect("token"));
    let mut client = WsClient::connect(&url).await;
    client.assert_usable().await;

    let pid = child.id().expect("child pid").to_string();
    let killed =
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
    assert!(killed.success(), "kill -TERM {pid} failed");

    assert_eq!(client.expect_close().await, 1012);
    let status = tokio::time::timeout(RECV_TIMEOUT * 2, child.wait())
        .await
        .expect("roomcast did not exit within 10 s of SIGTERM")
        .expect("waiting for roomcast");
    assert!(status.success(), "roomcast exited with {status}");
}
