//! Sockets that hold the server's resources without using them: slowloris
//! requests closed after the header timeout, a connection cap that answers
//! 503 at once rather than leaving sockets in the backlog, and a closing
//! connection that cannot be kept open by a client that keeps sending.

use std::time::Duration;

use roomcast_server::Rate;
use roomcast_tests::TestServer;
use roomcast_tests::raw::{self, RawWs, read_head, wait_closed};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn sockets_that_send_half_a_request_or_nothing_are_closed_after_the_header_timeout() {
    let server = TestServer::with(|c| c.timing.header_timeout = HEADER_TIMEOUT).await;
    let addr = server.config().bind.to_string();
    let partial: [(&str, &[u8]); 4] = [
        ("nothing", b""),
        ("half a request line", b"GET /hea"),
        ("half the headers", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "),
        ("an upgrade without its blank line", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"),
    ];
    for (what, bytes) in partial {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        let closed = wait_closed(&mut tcp, Duration::from_secs(3)).await;
        let closed = closed.unwrap_or_else(|| panic!("{what}: still open after 3 s"));
        assert!(closed >= HEADER_TIMEOUT / 2, "{what}: closed before its time ({closed:?})");
    }
    // An idle keep-alive connection after a request is closed the same way.
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let head = read_head(&mut tcp).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(wait_closed(&mut tcp, Duration::from_secs(3)).await.is_some(), "idle keep-alive");
}

#[tokio::test]
async fn a_request_whose_body_comes_too_slowly_fails_after_the_body_timeout() {
    let body_timeout = Duration::from_millis(400);
    let server = TestServer::with(|c| c.timing.body_timeout = body_timeout).await;
    let addr = server.config().bind.to_string();
    let key = server.api_key().to_owned();
    // A publish, a fallback-transport POST and a Socket.IO poll: each
    // declares 100 bytes, sends 10, then nothing.
    let heads = [
        format!("POST /api/notify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"),
        "POST /sse/0123 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_owned(),
        "POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_owned(),
    ];
    for head in heads {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(b"{\"user_ids").await.unwrap();
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), read_head(&mut tcp)).await;
        let waited = started.elapsed();
        let line = head.lines().next().unwrap_or_default().to_owned();
        match answer {
            // An answer (an error status), or the connection closed.
            Ok(Some(answer)) => assert!(!answer.starts_with("HTTP/1.1 2"), "{line}: {answer}"),
            Ok(None) => {}
            Err(_) => panic!("{line}: still waiting for its body after 5 s"),
        }
        assert!(waited < Duration::from_secs(4), "{line}: {waited:?}");
    }
}

#[tokio::test]
async fn past_the_connection_cap_a_socket_gets_503_and_health_answers_once_idle_ones_go() {
    let server = TestServer::with(|c| {
        c.limits.max_connections = 8;
        c.timing.header_timeout = Duration::from_millis(800);
    })
    .await;
    let addr = server.config().bind.to_string();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Answered as soon as it is accepted, before it sends anything (a
    // request the server never reads could turn its close into a reset).
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let head = tokio::time::timeout(Duration::from_millis(500), read_head(&mut extra))
        .await
        .expect("an answer at once, not a socket left waiting")
        .expect("a response");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    // The idle sockets are closed after the header timeout; then there is room.
    for tcp in &mut idle {
        assert!(wait_closed(tcp, Duration::from_secs(3)).await.is_some(), "an idle socket stayed");
    }
    server.get("/health").await.expect(200);
}

#[tokio::test]
async fn a_closed_connection_that_keeps_sending_ends_within_the_drain_timeout() {
    let drain = Duration::from_millis(300);
    let server = TestServer::with(|c| {
        c.limits.frames = Rate::new(0.1, 2);
        c.limits.strikes = Rate::new(0.1, 1);
        c.timing.drain_timeout = drain;
    })
    .await;
    let mut ws = RawWs::connect(&server.config().bind.to_string()).await;
    // Refused for rate within a few frames (4008), and it keeps flooding
    // without reading.
    let frame = raw::text("not json");
    let batch: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 1000).collect();
    let start = tokio::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while ws.write(&batch).await.is_ok() {}
    })
    .await;
    let took = start.elapsed();
    assert!(ended.is_ok(), "the server was still reading after 30 s");
    assert!(took < drain + Duration::from_secs(2), "the connection lasted {took:?}");
}
