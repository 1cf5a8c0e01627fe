//! Origins: pages of other sites cannot open WebSockets (close 1008) or call
//! the HTTP API (403); allowed pages get CORS headers.

use roomcast_tests::{TestServer, WsClient};
use serde_json::json;

/// A production-like server (not dev mode) with these allowed origins.
async fn production(allowed: &[&str]) -> TestServer {
    let allowed: Vec<String> = allowed.iter().map(|o| o.to_string()).collect();
    TestServer::with(move |c| {
        c.dev = false;
        c.allowed_origins = allowed;
    })
    .await
}

#[tokio::test]
async fn dev_mode_allows_local_pages_and_refuses_others() {
    let server = TestServer::start().await;
    let mut local = WsClient::connect_from(&server.ws_url(), Some("http://localhost:5173")).await;
    local.assert_usable().await;
    let mut evil = WsClient::connect_from(&server.ws_url(), Some("https://evil.example")).await;
    assert_eq!(evil.expect_close().await, 1008);
    // Clients that are not web pages send no Origin and are not concerned.
    WsClient::connect(&server.ws_url()).await.assert_usable().await;
}

#[tokio::test]
async fn production_allows_listed_origins_and_its_own() {
    let server = production(&["https://app.example.com"]).await;
    let mut listed =
        WsClient::connect_from(&server.ws_url(), Some("https://app.example.com")).await;
    listed.assert_usable().await;
    for refused in ["http://localhost:5173", "https://evil.example"] {
        let mut client = WsClient::connect_from(&server.ws_url(), Some(refused)).await;
        assert_eq!(client.expect_close().await, 1008, "{refused}");
    }

    // Without a list, only pages served by the server itself.
    let server = production(&[]).await;
    let own = format!("http://{}", server.config().bind);
    WsClient::connect_from(&server.ws_url(), Some(&own)).await.assert_usable().await;
    let mut other = WsClient::connect_from(&server.ws_url(), Some("https://app.example.com")).await;
    assert_eq!(other.expect_close().await, 1008);
}

#[tokio::test]
async fn the_api_answers_other_origins_with_403_and_allowed_ones_with_cors() {
    let server = production(&["https://app.example.com"]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/users/alice/presence", server.http_url());
    let key = format!("Bearer {}", server.api_key());

    let refused =
        http.get(&url).header("authorization", &key).header("origin", "https://evil.example");
    let refused = refused.send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");

    let allowed =
        http.get(&url).header("authorization", &key).header("origin", "https://app.example.com");
    let allowed = allowed.send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");

    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{}/api/notify", server.http_url()))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed_headers =
        preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed_headers.contains("authorization"), "{allowed_headers}");

    // Backends send no Origin: the key alone decides.
    let backend =
        http.post(format!("{}/api/notify", server.http_url())).header("authorization", &key);
    let reply = backend.json(&json!({"user_ids": ["alice"], "title": "hi"})).send().await.unwrap();
    assert_eq!(reply.status(), 200);
}
