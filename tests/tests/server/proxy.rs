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
