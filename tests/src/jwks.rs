//! An identity provider's signing keys for tests: fixed RSA and P-256 test
//! keys (in `tests/keys`, made for these tests only: private halves as
//! DER, RSA public halves as PEM) that sign tokens, and
//! the JWKS document that publishes their public halves.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A private key with its `kid`, as an identity provider holds it.
pub struct SigningKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key, PEM (what an attacker can read from the JWKS).
    pub public_pem: &'static str,
}

impl SigningKey {
    /// RSA key `a` (RS256).
    pub fn rsa_a() -> Self {
        Self::rsa("a", include_bytes!("../keys/rsa-a.der"), include_str!("../keys/rsa-a.pub.pem"))
    }

    /// RSA key `b` (RS256): the key `a` rotates to.
    pub fn rsa_b() -> Self {
        Self::rsa("b", include_bytes!("../keys/rsa-b.der"), include_str!("../keys/rsa-b.pub.pem"))
    }

    /// A P-256 key (ES256).
    pub fn ec() -> Self {
        let encoding = EncodingKey::from_ec_der(include_bytes!("../keys/ec.der"));
        Self { kid: "ec", alg: Algorithm::ES256, encoding, public_pem: "" }
    }

    /// `private` is PKCS#1 DER, as jsonwebtoken reads it without PEM support.
    fn rsa(kid: &'static str, private: &[u8], public_pem: &'static str) -> Self {
        let encoding = EncodingKey::from_rsa_der(private);
        Self { kid, alg: Algorithm::RS256, encoding, public_pem }
    }

    /// The public key as a JWK, with its `kid` and `alg`.
    pub fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).expect("a JWK");
        jwk.common.key_id = Some(self.kid.to_owned());
        serde_json::to_value(jwk).expect("a JWK serializes")
    }

    /// The public key as a JWK naming no `kid`, as a provider with one key
    /// may publish it.
    pub fn jwk_without_kid(&self) -> Value {
        let mut jwk = self.jwk();
        jwk.as_object_mut().expect("a JWK object").remove("kid");
        jwk
    }

    /// `claims` signed with this key, the header naming no `kid`.
    pub fn sign_without_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.encoding)
            .expect("signing a token")
    }

    /// `claims` signed with this key, the header naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, self.alg, claims)
    }

    /// `claims` signed with this key, the header naming `kid` and `alg`.
    pub fn sign_as(&self, kid: &str, alg: Algorithm, claims: &Value) -> String {
        let header = Header { kid: Some(kid.to_owned()), ..Header::new(alg) };
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing a token")
    }
}

/// The JWKS document publishing these keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>()})
}

/// Claims of `sub` valid for an hour.
pub fn idp_claims(sub: &str) -> Value {
    let now = crate::now_secs();
    json!({"sub": sub, "name": sub, "iat": now, "exp": now + 3600})
}
