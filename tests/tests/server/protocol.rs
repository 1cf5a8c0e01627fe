//! The WebSocket protocol itself (RFC 6455), spoken byte by byte: a
//! frame that breaks it closes with 1002, text that is not UTF-8 with
//! 1007, and an upgrade whose `Sec-WebSocket-Key` is not base64 of 16
//! bytes is refused with 400.

use roomcast_tests::raw::{self, RawWs, frame, read_head, upgrade_request};
use roomcast_tests::{TestServer, WsClient};
use tokio::io::AsyncWriteExt;

/// The close code the server answers `bytes` with, on a fresh connection.
async fn close_code_for(server: &TestServer, bytes: &[u8]) -> Option<u16> {
    let mut ws = RawWs::connect(&server.config().bind.to_string()).await;
    ws.write(bytes).await.expect("writing the frame");
    ws.close_code().await
}

#[tokio::test]
async fn frames_that_break_the_protocol_close_with_1002_or_1007() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("text that is not UTF-8", frame(0x81, &[0x7b, 0xff, 0xfe, 0x7d], true), 1007),
        ("a close reason that is not UTF-8", frame(0x88, &[0x03, 0xe8, 0xff], true), 1007),
        ("an unmasked client frame", frame(0x81, b"{}", false), 1002),
        ("RSV1 set without an extension", frame(0xc1, b"{}", true), 1002),
        ("RSV3 set", frame(0x91, b"{}", true), 1002),
        ("reserved data opcode 3", frame(0x83, b"{}", true), 1002),
        ("reserved control opcode 0xB", frame(0x8b, b"", true), 1002),
        ("a ping of 126 bytes", frame(0x89, &[b'p'; 126], true), 1002),
        ("a fragmented ping", frame(0x09, b"p", true), 1002),
        ("close code 999", frame(0x88, &999u16.to_be_bytes(), true), 1002),
        ("close code 1005 (never sent)", frame(0x88, &1005u16.to_be_bytes(), true), 1002),
        ("a close payload of one byte", frame(0x88, &[0x03], true), 1002),
        ("a continuation with nothing to continue", frame(0x80, b"x", true), 1002),
    ];
    let mut failures = Vec::new();
    for (what, bytes, expected) in cases {
        let code = close_code_for(&server, &bytes).await;
        if code != Some(expected) {
            failures.push(format!("{what}: expected {expected}, got {code:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_normal_close_is_answered_with_1000() {
    let server = TestServer::start().await;
    let code = close_code_for(&server, &frame(0x88, &1000u16.to_be_bytes(), true)).await;
    assert_eq!(code, Some(1000));
    // And the connection after a protocol error is the only one affected.
    let mut alice = WsClient::connect_as(&server, "alice", "Alice").await;
    alice.assert_usable().await;
}

#[tokio::test]
async fn an_upgrade_with_a_malformed_key_is_refused() {
    let server = TestServer::start().await;
    let addr = server.config().bind.to_string();
    for key in [
        "abc",
        // Base64 of 16 bytes without its padding, of 15 and of 17 bytes.
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25j",
        "dGhlIHNhbXBsZSBub25jZXMh",
        // 24 characters, but not base64.
        "!!!!!!!!!!!!!!!!!!!!!!==",
        "",
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(upgrade_request(&addr, key).as_bytes()).await.unwrap();
        let head = read_head(&mut tcp).await.expect("a response");
        assert!(head.starts_with("HTTP/1.1 400"), "key {key:?} got {head}");
    }
    // A well-formed key is accepted.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(upgrade_request(&addr, raw::GOOD_KEY).as_bytes()).await.unwrap();
    let head = read_head(&mut tcp).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "the RFC's example accept: {head}");
}
