//! The static UI: files from `--static-dir`, gzipped for clients that accept
//! it, and `index.html` for any other path (a single-page app's routes).

use std::path::PathBuf;

use roomcast_tests::{TestServer, unique_id};

/// A folder with an `index.html` and a compressible "wasm" file, removed
/// when dropped.
struct Site(PathBuf);

impl Site {
    fn new() -> Self {
        let name = unique_id(&format!("roomcast-static-{}", std::process::id()));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("create the site folder");
        std::fs::write(dir.join("index.html"), "<!doctype html><title>app</title>")
            .expect("write index.html");
        std::fs::write(dir.join("app.wasm"), app_bytes()).expect("write app.wasm");
        Self(dir)
    }

    /// A server serving this site.
    async fn serve(&self) -> TestServer {
        let dir = self.0.clone();
        TestServer::with(move |c| c.static_dir = Some(dir)).await
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 64 KiB that compress well, like code does.
fn app_bytes() -> Vec<u8> {
    (0..64 * 1024).map(|i| b"roomcast"[i % 8]).collect()
}

async fn fetch(server: &TestServer, path: &str, gzip: bool) -> (u16, Option<String>, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.http_url()));
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    let encoding =
        response.headers().get("content-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, encoding, response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn files_are_gzipped_only_for_clients_that_accept_it() {
    let site = Site::new();
    let server = site.serve().await;

    let (status, encoding, body) = fetch(&server, "/app.wasm", false).await;
    assert_eq!((status, encoding), (200, None));
    assert_eq!(body, app_bytes());

    let (status, encoding, body) = fetch(&server, "/app.wasm", true).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    assert!(body.len() < app_bytes().len() / 10, "gzip left {} bytes", body.len());
    assert_eq!(&body[..2], [0x1f, 0x8b], "not a gzip stream");
}

#[tokio::test]
async fn unknown_paths_get_the_app_and_the_api_stays_json() {
    let site = Site::new();
    let server = site.serve().await;

    let page = server.get("/rooms/general").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.text, "<!doctype html><title>app</title>");
    server.get("/api/no-such-endpoint").await.expect_error(401, "unauthorized");
    assert_eq!(server.get("/health").await.expect(200)["status"], "ok");
}
