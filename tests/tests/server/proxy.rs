//! Two instances behind nginx (the deployment's configuration): clients chat
//! through the proxy across instances, and survive an instance restarting.

use roomcast_tests::{Nginx, RedisServer, TestServer, WsClient};
use serde_json::{Value, json};

const SECRET: &str = "proxy-secret";

async fn instance_at(addr: &str, redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::at(addr, move |config| {
        config.redis_url = Some(url);
        config.jwt_secret = SECRET.into();
    })
    .await
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").to_string()
}

async fn connect(nginx: &Nginx, server: &TestServer, user: &str) -> WsClient {
    let token = server.token(user, user);
    let mut client =
        WsClient::connect(&format!("{}?token={token}", nginx.ws_url())).await.labelled(user);
    client.expect_type("ready").await;
    client
}

async fn connections(server: &TestServer) -> u64 {
    server.get("/health").await.expect(200)["connections"].as_u64().unwrap_or_default()
}

#[tokio::test]
async fn clients_behind_nginx_chat_across_instances_and_survive_a_restart() {
    let redis = RedisServer::start().await;
    let addrs = [free_addr(), free_addr()];
    let mut servers = [instance_at(&addrs[0], &redis).await, instance_at(&addrs[1], &redis).await];
    let nginx = Nginx::start([&addrs[0], &addrs[1]]).await;

    let health: Value =
        reqwest::get(format!("{}/health", nginx.http_url())).await.unwrap().json().await.unwrap();
    assert_eq!(health["broker"], "redis", "plain HTTP goes through too: {health}");

    let mut alice = connect(&nginx, &servers[0], "alice").await;
    let joined = alice.join("general").await;
    let hers = if connections(&servers[0]).await == 1 { 0 } else { 1 };
    let mut bob = connect(&nginx, &servers[0], "bob").await;
    bob.join("general").await;
    // least_conn spreads the two connections over the two instances.
    assert_eq!((connections(&servers[0]).await, connections(&servers[1]).await), (1, 1));

    alice.say("general", "through the proxy").await;
    let seen = bob.recv_where("alice's message", |f| f["type"] == "message").await;
    assert_eq!(seen["content"], "through the proxy");

    // Restart the instance alice is on: she is closed with 1012, reconnects
    // through nginx (to the other instance) and recovers what was said.
    let stopped = std::mem::replace(&mut servers[hers], instance_at(&free_addr(), &redis).await);
    stopped.stop().await;
    assert_eq!(alice.expect_close().await, 1012, "a restart closes with 1012");
    let said = bob.say("general", "while you were away").await;
    let mut alice = connect(&nginx, &servers[0], "alice").await;
    let since = json!({"epoch": joined["epoch"], "offset": seen["offset"]});
    let reply =
        alice.call_ok(json!({"type": "join", "room": "general", "since": since}), "joined").await;
    assert_eq!(reply["recovered"], true, "{reply}");
    let ids: Vec<&Value> = reply["messages"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, [&said["id"]], "exactly what was missed");

    // The instance comes back on its address and serves through nginx again.
    servers[hers] = instance_at(&addrs[hers], &redis).await;
    let mut carol = connect(&nginx, &servers[0], "carol").await;
    carol.join("general").await;
    carol.say("general", "back").await;
    assert_eq!(
        alice.recv_where("carol's message", |f| f["type"] == "message").await["content"],
        "back"
    );
    let total = connections(&servers[0]).await + connections(&servers[1]).await;
    assert_eq!(total, 3, "alice, bob and carol, wherever nginx put them");
}

/// Behind a proxy on the same host every client is 127.0.0.1 to the server.
/// With the proxy trusted (`--trusted-proxies`), each client counts against
/// its own address, the one nginx appends to `X-Forwarded-For`: what the
/// client writes there itself, however long or malformed, changes nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_counts_against_its_own_address() {
    let server = TestServer::with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a network")];
        config.limits.connections_per_ip = 2;
    })
    .await;
    let upstream = server.http_url().trim_start_matches("http://").to_owned();
    let nginx = Nginx::start([&upstream, &upstream]).await;
    let url = format!("{}?token={}", nginx.ws_url(), server.token("mallory", "Mallory"));
    // Two clients on this host, on other loopback addresses than nginx's.
    let mallory = Some("127.0.0.2".parse().expect("an address"));
    let other = Some("127.0.0.3".parse().expect("an address"));

    let mut kept = Vec::new();
    for n in 0..2 {
        let claimed = format!("198.51.100.{n}");
        let mut client =
            WsClient::connect_with(&url, mallory, &[("x-forwarded-for", &claimed)]).await;
        client.expect_type("ready").await;
        kept.push(client);
    }
    let too_long = vec!["127.0.0.1"; 400].join(", ");
    let hostile = [
        "198.51.100.9",
        "127.0.0.1",
        "not-an-address, 198.51.100.10",
        ",,,",
        too_long.as_str(),
        "[::1]:80, 2001:db8::7",
    ];
    for claimed in hostile {
        let mut refused =
            WsClient::connect_with(&url, mallory, &[("x-forwarded-for", claimed)]).await;
        assert_eq!(refused.expect_close().await, 4008, "claiming {claimed:.60}");
    }
    // Another client is not held back by mallory's connections.
    let mut neighbour = WsClient::connect_with(&url, other, &[]).await;
    neighbour.expect_type("ready").await;
    // And one of mallory's closing frees a slot (the gauge counts a
    // connection out when its address's slot is given back).
    kept.pop().expect("a connection").close().await;
    let deadline = tokio::time::Instant::now() + roomcast_tests::RECV_TIMEOUT;
    while open_connections(&server).await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "the closed connection is still counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut again = WsClient::connect_with(&url, mallory, &[]).await;
    again.expect_type("ready").await;
}

/// The `roomcast_connections` gauge of `/metrics`.
async fn open_connections(server: &TestServer) -> u64 {
    let metrics = server.get("/metrics").await.text;
    let value = metrics.lines().find_map(|line| line.strip_prefix("roomcast_connections "));
    value.and_then(|v| v.trim().parse::<f64>().ok()).map_or(u64::MAX, |v| v as u64)
}
