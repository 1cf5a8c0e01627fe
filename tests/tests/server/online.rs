//! `GET /api/users/online`: who is online on any instance, consistent with
//! presence (invisible users are not, users in their grace period are),
//! paged by id, with hostile cursors and limits refused.

use std::time::Duration;

use roomcast_tests::{Engine, TestServer, WsClient, every_engine, percent_encode};
use serde_json::{Value, json};

/// The online count and the ids of one page.
async fn online(server: &TestServer, query: &str) -> (u64, Vec<String>, Value) {
    let page = server.api_get(&format!("/api/users/online{query}")).await.expect(200);
    let ids = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_ne!(u["status"], "offline", "an online user's presence: {u}");
            u["user_id"].as_str().unwrap().to_owned()
        })
        .collect();
    (page["count"].as_u64().unwrap(), ids, page["cursor"].clone())
}

/// Polls until the online count is `count` (a closed connection counts
/// until its grace period ends).
async fn until_count(server: &TestServer, count: u64) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (now, ids, _) = online(server, "?limit=500").await;
        if now == count {
            return ids;
        }
        assert!(tokio::time::Instant::now() < deadline, "online count stays {now}, not {count}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

every_engine!(the_online_list_follows_presence_and_pages_by_id);
async fn the_online_list_follows_presence_and_pages_by_id(engine: Engine) {
    let server = TestServer::start_on(engine).await;
    assert_eq!(online(&server, "").await.0, 0, "nobody yet");
    let mut carol = WsClient::connect_as(&server, "carol", "Carol").await;
    let bob = WsClient::connect_as(&server, "bob", "Bob").await;
    let _alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let _alice_again = WsClient::connect_as(&server, "alice", "Alice").await;

    let (count, first, cursor) = online(&server, "?limit=2").await;
    assert_eq!((count, first.as_slice()), (3, ["alice", "bob"].map(str::to_owned).as_slice()));
    assert_eq!(cursor, "bob");
    let (_, rest, cursor) = online(&server, "?limit=2&cursor=bob").await;
    assert_eq!((rest, cursor), (vec!["carol".to_owned()], Value::Null), "each user once");

    // Invisible looks offline, to this list too; visible again comes back.
    carol.send(json!({"type": "presence", "status": "invisible"})).await;
    assert_eq!(until_count(&server, 2).await, ["alice", "bob"]);
    carol.send(json!({"type": "presence", "status": "away"})).await;
    assert_eq!(until_count(&server, 3).await, ["alice", "bob", "carol"]);
    let (_, away, _) = online(&server, "?cursor=bob").await;
    assert_eq!(away, ["carol"]);
    let page = server.api_get("/api/users/online?cursor=bob").await.expect(200);
    assert_eq!(page["users"][0]["status"], "away", "{page}");

    // The last connection closed: online through the grace period, then not.
    bob.close().await;
    assert_eq!(until_count(&server, 2).await, ["alice", "carol"]);
    let presence = server.api_get("/api/users/bob/presence").await.expect(200);
    assert_eq!(presence["status"], "offline", "the list agrees with presence: {presence}");
}

#[tokio::test]
async fn hostile_pages_are_refused() {
    let server = TestServer::start().await;
    let _alice = WsClient::connect_as(&server, "alice", "Alice").await;
    let long = "x".repeat(10_000);
    for query in [
        "?limit=0".to_owned(),
        "?limit=501".to_owned(),
        "?limit=-1".to_owned(),
        "?limit=99999999999".to_owned(),
        format!("?cursor={}", percent_encode("a,b")),
        format!("?cursor={}", percent_encode("naïve")),
        format!("?cursor={long}"),
        "?cursor=".to_owned(),
    ] {
        server.api_get(&format!("/api/users/online{query}")).await.expect_error(400, "bad_request");
    }
    let anonymous = server.get("/api/users/online").await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    // A cursor past everyone is an empty last page, not an error.
    let (count, ids, cursor) = online(&server, "?cursor=zzz").await;
    assert_eq!((count, ids.len(), cursor), (1, 0, Value::Null));
}
