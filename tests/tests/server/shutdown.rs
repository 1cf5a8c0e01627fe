//! Shutdown: resolving the shutdown future closes every socket with 1012, and
//! the `roomcast` binary prints its address, serves, and exits 0 on SIGTERM.

use roomcast_tests::{ServerProcess, TestServer, WsClient};

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

#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_and_exits_cleanly_on_sigterm() {
    // Secrets given, dev mode from the environment as a user would set it.
    let mut server = ServerProcess::spawn(
        &["--jwt-secret", "s3cret", "--api-key", "k3y"],
        &[("ROOMCAST_DEV", "1")],
    )
    .await;
    let addr = server.addr().to_owned();

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

    server.signal("TERM");
    assert_eq!(client.expect_close().await, 1012);
    let status = server.wait().await;
    assert!(status.success(), "roomcast exited with {status}");
}
