//! Tokens from an identity provider: RS256/ES256 checked with a JWKS the
//! harness serves (rotating keys, a flood of unknown `kid`s, an endpoint
//! that is slow, huge or garbage), algorithm confusion, and the claim
//! layouts of other backends (`id` as a number, `user_id`, role `ADMIN`).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use roomcast_server::config::{ClaimNames, Jwks, TokenSettings};
use roomcast_tests::jwks::{SigningKey, idp_claims, jwks};
use roomcast_tests::{HookServer, Reply, TestServer, WsClient, now_secs};
use serde_json::{Value, json};

/// A server taking RS256/ES256 tokens with keys from `idp`, fetched again
/// on an unknown `kid` at most once per `min_refresh`.
async fn server_with_idp(idp: &HookServer, min_refresh: Duration) -> TestServer {
    let url = idp.url().parse().unwrap();
    let server = TestServer::with(|config| {
        config.tokens = TokenSettings {
            algorithms: vec![Algorithm::HS256, Algorithm::RS256, Algorithm::ES256],
            jwks: Some(Jwks {
                url,
                timeout: Duration::from_millis(500),
                refresh_interval: Duration::from_secs(3600),
                min_refresh_interval: min_refresh,
                max_bytes: 64 * 1024,
            }),
            ..TokenSettings::default()
        };
    })
    .await;
    idp.wait_for("the JWKS fetch at start", |requests| !requests.is_empty()).await;
    server
}

/// Authenticates with `token`; the `ready` frame's user.
async fn accepted(server: &TestServer, token: &str) -> Value {
    let client = WsClient::connect_with_token(server, token, "idp user").await;
    client.ready["user"].clone()
}

/// Authenticates with `token` and expects `unauthorized`, then close 4001.
async fn refused(server: &TestServer, token: &str) -> String {
    let mut client = WsClient::connect(&server.ws_url()).await;
    client.send(json!({"type": "auth", "token": token})).await;
    let error = client.expect_error("unauthorized").await;
    assert_eq!(client.expect_close().await, 4001);
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_rotating_key_is_followed_through_the_jwks() {
    let (a, b) = (SigningKey::rsa_a(), SigningKey::rsa_b());
    let idp = HookServer::start(Reply::Json(200, jwks(&[&a]))).await;
    let min_refresh = Duration::from_millis(300);
    let server = server_with_idp(&idp, min_refresh).await;

    assert_eq!(accepted(&server, &a.sign(&idp_claims("alice"))).await["id"], "alice");

    // The provider adds key b and starts signing with it: a token naming
    // `b` makes the server fetch the set again.
    idp.answer(Reply::Json(200, jwks(&[&a, &b])));
    tokio::time::sleep(min_refresh).await;
    assert_eq!(accepted(&server, &b.sign(&idp_claims("bob"))).await["id"], "bob");
    assert_eq!(accepted(&server, &a.sign(&idp_claims("alice"))).await["id"], "alice");

    // Key a is retired: once the set is fetched again, its tokens are refused.
    idp.answer(Reply::Json(200, jwks(&[&b])));
    tokio::time::sleep(min_refresh).await;
    refused(&server, &b.sign_as("c", Algorithm::RS256, &idp_claims("carol"))).await;
    refused(&server, &a.sign(&idp_claims("alice"))).await;
    assert_eq!(accepted(&server, &b.sign(&idp_claims("bob"))).await["id"], "bob");
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_its_algorithm() {
    let (a, b, ec) = (SigningKey::rsa_a(), SigningKey::rsa_b(), SigningKey::ec());
    // A provider with one RSA key that names none, and an EC key.
    let set = json!({"keys": [a.jwk_without_kid(), ec.jwk()]});
    let idp = HookServer::start(Reply::Json(200, set)).await;
    let server = server_with_idp(&idp, Duration::from_millis(100)).await;
    assert_eq!(accepted(&server, &a.sign_without_kid(&idp_claims("alice"))).await["id"], "alice");
    assert_eq!(accepted(&server, &ec.sign_without_kid(&idp_claims("erin"))).await["id"], "erin");
    // Another key's token is no match for the only key, with or without kid.
    refused(&server, &b.sign_without_kid(&idp_claims("mallory"))).await;
    refused(&server, &a.sign(&idp_claims("alice"))).await;

    // With two RSA keys, a token without kid is never tried against either.
    idp.answer(Reply::Json(200, jwks(&[&a, &b])));
    tokio::time::sleep(Duration::from_millis(100)).await;
    accepted(&server, &b.sign(&idp_claims("bob"))).await;
    let why = refused(&server, &a.sign_without_kid(&idp_claims("alice"))).await;
    assert!(why.contains("no kid"), "{why}");
}

#[tokio::test]
async fn es256_tokens_are_accepted_and_hs256_still_works_beside_the_jwks() {
    let ec = SigningKey::ec();
    let idp = HookServer::start(Reply::Json(200, jwks(&[&ec, &SigningKey::rsa_a()]))).await;
    let server = server_with_idp(&idp, Duration::from_secs(60)).await;
    assert_eq!(accepted(&server, &ec.sign(&idp_claims("erin"))).await["id"], "erin");
    assert_eq!(accepted(&server, &server.token("hana", "Hana")).await["id"], "hana");
}

#[tokio::test]
async fn algorithm_confusion_and_unlisted_algorithms_are_refused() {
    let a = SigningKey::rsa_a();
    let idp = HookServer::start(Reply::Json(200, jwks(&[&a]))).await;
    let server = server_with_idp(&idp, Duration::from_secs(60)).await;

    // HS256 "signed" with the public key's PEM as the HMAC secret, naming
    // key a: a server that took the algorithm from the token would accept it.
    let header = jsonwebtoken::Header {
        kid: Some("a".into()),
        ..jsonwebtoken::Header::new(Algorithm::HS256)
    };
    let secret = jsonwebtoken::EncodingKey::from_secret(a.public_pem.as_bytes());
    let confused = jsonwebtoken::encode(&header, &idp_claims("mallory"), &secret).unwrap();
    refused(&server, &confused).await;

    // RS384 with a real key, and HS384 with the real secret: not in the list.
    refused(&server, &a.sign_as("a", Algorithm::RS384, &idp_claims("mallory"))).await;
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS384),
        &idp_claims("mallory"),
        &jsonwebtoken::EncodingKey::from_secret(server.config().jwt_secret.as_bytes()),
    )
    .unwrap();
    refused(&server, &hs384).await;

    // Key a's JWK says nothing of ES256: an ES256 token naming it is refused.
    refused(&server, &SigningKey::ec().sign_as("a", Algorithm::ES256, &idp_claims("m"))).await;
}

#[tokio::test]
async fn expired_and_incomplete_idp_tokens_are_refused() {
    let a = SigningKey::rsa_a();
    let idp = HookServer::start(Reply::Json(200, jwks(&[&a]))).await;
    let server = server_with_idp(&idp, Duration::from_secs(60)).await;
    let now = now_secs();
    let expired = json!({"sub": "alice", "exp": now - 60});
    assert!(refused(&server, &a.sign(&expired)).await.contains("expired"));
    let no_user = json!({"name": "Nobody", "exp": now + 60});
    assert!(refused(&server, &a.sign(&no_user)).await.contains("sub"));
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_the_provider_one_fetch_per_interval() {
    let a = SigningKey::rsa_a();
    let idp = HookServer::start(Reply::Json(200, jwks(&[&a]))).await;
    let server = server_with_idp(&idp, Duration::from_secs(60)).await;
    for n in 0..40 {
        let kid = format!("made-up-{n}");
        refused(&server, &a.sign_as(&kid, Algorithm::RS256, &idp_claims("mallory"))).await;
    }
    // The fetch at start counts: within the interval, none other is made.
    assert_eq!(idp.requests().len(), 1, "the JWKS endpoint was asked again");
    assert_eq!(accepted(&server, &a.sign(&idp_claims("alice"))).await["id"], "alice");
}

#[tokio::test]
async fn a_jwks_that_is_down_slow_huge_or_garbage_keeps_the_keys_held() {
    let a = SigningKey::rsa_a();
    let idp = HookServer::start(Reply::Json(200, jwks(&[&a]))).await;
    let min_refresh = Duration::from_millis(100);
    let server = server_with_idp(&idp, min_refresh).await;
    let broken = [
        Reply::Huge,
        Reply::Raw(200, "<html>not a key set</html>".into()),
        Reply::Json(200, json!({"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]})),
        Reply::Json(500, json!({"error": "down"})),
        // Past the fetch's timeout (500 ms).
        Reply::Slow(Duration::from_secs(5), jwks(&[&a])),
    ];
    for (n, reply) in broken.into_iter().enumerate() {
        idp.answer(reply);
        tokio::time::sleep(min_refresh).await;
        let before = idp.requests().len();
        let unknown = a.sign_as(&format!("new-{n}"), Algorithm::RS256, &idp_claims("mallory"));
        refused(&server, &unknown).await;
        assert_eq!(idp.requests().len(), before + 1, "an unknown kid asks the provider again");
        assert_eq!(accepted(&server, &a.sign(&idp_claims("alice"))).await["id"], "alice");
    }
}

#[tokio::test]
async fn claim_layouts_of_other_backends_are_read_as_configured() {
    // A Django-style token: HS256, the numeric id in `id`, role `ADMIN`.
    let server = TestServer::with(|config| {
        config.tokens = TokenSettings {
            claims: ClaimNames {
                user_id: "id".into(),
                name: "username".into(),
                role: "roles".into(),
                avatar: "picture".into(),
                rooms: "channels".into(),
            },
            admin_role: "ADMIN".into(),
            ..TokenSettings::default()
        };
    })
    .await;
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(server.config().jwt_secret.as_bytes()),
        )
        .unwrap()
    };
    let exp = now_secs() + 3600;
    let admin = sign(json!({"id": 42, "username": "Ada", "roles": ["staff", "ADMIN"],
        "picture": "https://example.com/ada.png", "exp": exp}));
    let mut client = WsClient::connect_with_token(&server, &admin, "ada").await;
    let user = &client.ready["user"];
    assert_eq!(
        (user["id"].as_str(), user["name"].as_str(), user["role"].as_str()),
        (Some("42"), Some("Ada"), Some("admin"))
    );
    assert_eq!(user["avatar"], "https://example.com/ada.png");
    client.join("admin").await;

    // A member: no admin rooms, and only the public rooms its claim lists.
    let member = sign(json!({"id": "u7", "roles": "member", "channels": ["team-*"], "exp": exp}));
    let mut client = WsClient::connect_with_token(&server, &member, "u7").await;
    assert_eq!(client.ready["user"]["name"], "u7", "no name claim: the id is shown");
    let reply = client.call(json!({"type": "join", "room": "admin"})).await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let reply = client.call(json!({"type": "join", "room": "general"})).await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    client.join("team-red").await;

    // Roomcast's own layout is refused: the user id is in `id` here.
    refused(&server, &server.token("alice", "Alice")).await;
    // An id of the wrong type, or not a valid user id, is refused.
    refused(&server, &sign(json!({"id": 4.5, "exp": exp}))).await;
    refused(&server, &sign(json!({"id": "a,b", "exp": exp}))).await;
    refused(&server, &sign(json!({"id": "u8", "channels": "team-*", "exp": exp}))).await;
}
