//! The demo's sign-in: a token for a display name from the server's dev
//! endpoint (`POST /api/dev/token`, dev mode only), and where the server is.

use gloo_net::http::Request;
use roomcast_shared::api::{ApiErrorBody, DevTokenRequest, DevTokenResponse};

/// A signed token for `name`, or why there is none, for humans.
pub async fn token(name: String) -> Result<String, String> {
    let body = DevTokenRequest { name, role: None };
    let response = Request::post("/api/dev/token")
        .json(&body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("the server cannot be reached ({e})"))?;
    if response.ok() {
        let answer: DevTokenResponse = response.json().await.map_err(|e| e.to_string())?;
        return Ok(answer.token);
    }
    Err(match response.json::<ApiErrorBody>().await {
        Ok(body) => body.error.message,
        Err(_) => format!("the server answered {}", response.status()),
    })
}

/// The WebSocket endpoint of the server that served the page.
pub fn socket_url() -> String {
    let location = leptos::prelude::window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_else(|_| "127.0.0.1:8080".into());
    format!("{scheme}://{host}/ws")
}
