//! Redis over TLS (`rediss://`), as a managed Redis requires it, and the
//! checks at start: a certificate no trusted CA signed, a TLS URL to a
//! plain port (and the reverse), bad TLS flags, and the version check
//! passing on a real Redis.

use std::path::Path;
use std::time::Duration;

use roomcast_tests::process::run_to_exit;
use roomcast_tests::{RedisServer, ServerProcess, TestServer, WsClient};
use serde_json::{Value, json};

/// Long enough for an instance outside dev mode (32 bytes at least).
const SECRET: &str = "tls-secret-shared-by-every-instance-of-the-test";
const API_KEY: &str = "tls-key";

async fn instance(url: &str, ca_file: &Path) -> TestServer {
    let (url, ca_file) = (url.to_owned(), ca_file.to_owned());
    TestServer::with(move |config| {
        config.redis_url = Some(url);
        config.redis_ca_file = Some(ca_file);
        config.jwt_secret = SECRET.into();
        config.api_key = API_KEY.into();
    })
    .await
}

/// Runs the binary with `redis` flags until it exits (it must not start):
/// returns what it printed.
async fn refused(redis: &[&str]) -> String {
    let args: Vec<&str> =
        ["--dev", "--redis-connect-timeout-ms", "1000"].iter().chain(redis).copied().collect();
    let (started, output) = run_to_exit(&args, &[]).await;
    assert!(!started, "{args:?} started: {output}");
    assert!(!output.contains("panicked"), "{output}");
    output
}

#[tokio::test]
async fn instances_share_rooms_over_tls() {
    let redis = RedisServer::start_tls().await;
    let (url, ca) = (redis.tls_url(), redis.ca_file());
    let (a, b) = (instance(&url, &ca).await, instance(&url, &ca).await);
    let mut alice = WsClient::connect_as(&a, "alice", "Alice").await;
    alice.join("general").await;
    let mut bob = WsClient::connect_as(&b, "bob", "Bob").await;
    let joined = bob.join("general").await;
    let members: Vec<&Value> =
        joined["members"].as_array().unwrap().iter().map(|m| &m["user_id"]).collect();
    assert_eq!(members, [&json!("alice"), &json!("bob")], "{joined}");
    assert_eq!(alice.recv_arrival("bob").await["user"]["id"], "bob");

    let ack = alice.say("general", "over TLS").await;
    let message = bob.recv_until("message").await;
    assert_eq!((&message["id"], &message["content"]), (&ack["id"], &json!("over TLS")));
    for server in [&a, &b] {
        let health = server.get("/health").await.expect(200);
        assert_eq!((&health["broker"], &health["status"]), (&json!("redis"), &json!("ok")));
    }
}

#[tokio::test]
async fn a_certificate_no_trusted_ca_signed_is_refused_at_start() {
    let redis = RedisServer::start_tls().await;
    let url = redis.tls_url();
    // The system's CAs (no --redis-ca-file) do not know the test's CA.
    let output = refused(&["--redis-url", &url]).await;
    assert!(output.contains("cannot use Redis") && output.contains("UnknownIssuer"), "{output}");
    assert!(output.contains("--redis-ca-file"), "the message names the fix: {output}");
    // Another CA than the one that signed Redis's certificate.
    let other = RedisServer::start_tls().await;
    let other_ca = other.ca_file();
    let output =
        refused(&["--redis-url", &url, "--redis-ca-file", other_ca.to_str().unwrap()]).await;
    assert!(output.contains("UnknownIssuer"), "{output}");
}

#[tokio::test]
async fn a_tls_url_to_a_plain_port_fails_at_start() {
    let redis = RedisServer::start_tls().await;
    let ca = redis.ca_file();
    let plain = redis.url().replace("redis://", "rediss://");
    let output = refused(&["--redis-url", &plain, "--redis-ca-file", ca.to_str().unwrap()]).await;
    assert!(output.contains("cannot use Redis"), "{output}");
    assert!(output.contains("the port must serve TLS"), "{output}");
}

#[tokio::test]
async fn a_plain_url_to_the_tls_port_fails_at_start() {
    let redis = RedisServer::start_tls().await;
    let url = format!("redis://127.0.0.1:{}", redis.tls_port());
    let output = refused(&["--redis-url", &url]).await;
    assert!(output.contains("cannot use Redis"), "{output}");
    assert!(output.contains("use a rediss:// URL"), "{output}");
}

#[tokio::test]
async fn tls_flags_are_checked_at_start() {
    let redis = RedisServer::start_tls().await;
    let url = redis.tls_url();
    let ca = redis.ca_file();
    let ca = ca.to_str().unwrap();

    let insecure = format!("{url}/#insecure");
    let output = refused(&["--redis-url", &insecure]).await;
    assert!(output.contains("#insecure") && output.contains("--redis-ca-file"), "{output}");

    let output = refused(&["--redis-url", &redis.url(), "--redis-ca-file", ca]).await;
    assert!(output.contains("--redis-url is not rediss://"), "{output}");

    let missing = "/no/such/dir/ca.pem";
    let output = refused(&["--redis-url", &url, "--redis-ca-file", missing]).await;
    assert!(output.contains("cannot read --redis-ca-file /no/such/dir/ca.pem"), "{output}");

    let dir = tempdir();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, b"\x00\xffnot a certificate\n").unwrap();
    let key_only = dir.join("key.pem");
    std::fs::copy(Path::new(ca).with_file_name("ca.key"), &key_only).unwrap();
    for file in [&garbage, &key_only] {
        let output =
            refused(&["--redis-url", &url, "--redis-ca-file", file.to_str().unwrap()]).await;
        assert!(output.contains("holds no PEM certificate"), "{file:?}: {output}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_real_redis_passes_the_version_check() {
    let redis = RedisServer::start().await;
    let server = ServerProcess::spawn(&["--dev", "--redis-url", &redis.url()], &[]).await;
    // The engine starts after the listener: its line comes soon after.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let checked = loop {
        let output = server.output();
        if let Some(line) = output.iter().find(|line| line.contains("Redis checked")) {
            break line.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no `Redis checked` line: {output:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The version `redis-server --version` prints, as INFO reported it.
    let version = std::process::Command::new("redis-server").arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let version = version.split("v=").nth(1).and_then(|v| v.split_whitespace().next()).unwrap();
    assert!(checked.contains(&format!("version={version}")), "{checked} (redis-server {version})");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "roomcast-tls-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
