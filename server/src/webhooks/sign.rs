//! The signature of a delivery: HMAC-SHA256, keyed with
//! `--webhook-secret`, over `<timestamp>.<body>` (the timestamp in Unix
//! seconds, as sent in `Roomcast-Timestamp`), in lowercase hex in
//! `Roomcast-Signature`. The receiver recomputes it over the bytes it
//! received, compares in constant time, and refuses a timestamp too far
//! from its clock (a replayed delivery); `docs/integration.md` shows it
//! in Node, Python and Rust.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the Unix time of the attempt, in seconds.
pub(crate) const TIMESTAMP_HEADER: &str = "roomcast-timestamp";
/// The header with the signature.
pub(crate) const SIGNATURE_HEADER: &str = "roomcast-signature";
/// The header with the event's id.
pub(crate) const EVENT_ID_HEADER: &str = "roomcast-event-id";
/// The header with the event's type.
pub(crate) const EVENT_TYPE_HEADER: &str = "roomcast-event-type";

/// The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub(crate) fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // RFC 4231, test case 2 checks the primitive; the signature is
        // that primitive over "<timestamp>.<body>".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "the crates compute RFC 4231's value"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.what do ya want for nothing?");
        let expected = data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes());
        assert_eq!(signature(b"Jefe", 1_700_000_000, b"what do ya want for nothing?"), expected);
    }

    #[test]
    fn changes_with_the_secret_the_time_and_the_body() {
        let a = signature(b"secret", 1_700_000_000, b"{\"id\":\"1\"}");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(a, signature(b"secret", 1_700_000_001, b"{\"id\":\"1\"}"));
        assert_ne!(a, signature(b"secreT", 1_700_000_000, b"{\"id\":\"1\"}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, b"{\"id\":\"2\"}"));
    }
}
