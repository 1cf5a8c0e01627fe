//! The envelope a service publishes to the queue: an `id` (the idempotency
//! key), a `type`, and the fields of the matching HTTP API body:
//!
//! ```json
//! {"id": "order-42-shipped", "type": "publish", "room": "orders",
//!  "content": "Order 42 shipped", "sender": {"id": "shop", "name": "Shop"}}
//! {"id": "n-7", "type": "notify", "user_ids": ["alice"], "title": "Hi"}
//! {"id": "e-9", "type": "event", "room": "orders", "name": "order.shipped",
//!  "data": {"order": 42}}
//! ```

use roomcast_shared::api::{NotifyRequest, PublishEventRequest, PublishMessageRequest};
use serde::Deserialize;

use crate::error::check_client_id;

/// One envelope, as published.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    /// Unique per effect: a redelivery or a resend with the same id is
    /// applied once.
    pub id: String,
    #[serde(flatten)]
    pub body: Body,
}

/// What the envelope asks for, by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Body {
    /// `POST /api/rooms/{room}/messages`; the envelope id is the message's
    /// `client_id`.
    Publish {
        room: String,
        #[serde(flatten)]
        request: PublishMessageRequest,
    },
    /// `POST /api/notify`.
    Notify(NotifyRequest),
    /// `POST /api/rooms/{room}/events`.
    Event {
        room: String,
        #[serde(flatten)]
        request: PublishEventRequest,
    },
}

/// Why an envelope is refused (and dead-lettered): it will never apply.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refused {
    #[error("too_large: the envelope is {size} bytes; at most {max} (--amqp-max-envelope-bytes)")]
    TooLarge { size: usize, max: usize },
    #[error("bad_request: not a valid envelope: {0}")]
    Malformed(String),
    #[error("bad_request: id: {0}")]
    BadId(String),
    #[error("bad_request: client_id, when given, must equal the envelope's id")]
    ClientIdMismatch,
}

impl Envelope {
    /// Parses and checks an envelope of `data`, at most `max` bytes.
    pub fn parse(data: &[u8], max: usize) -> Result<Self, Refused> {
        if data.len() > max {
            return Err(Refused::TooLarge { size: data.len(), max });
        }
        let mut envelope: Self =
            serde_json::from_slice(data).map_err(|err| Refused::Malformed(err.to_string()))?;
        check_client_id(&envelope.id).map_err(|err| Refused::BadId(err.to_string()))?;
        if let Body::Publish { request, .. } = &mut envelope.body {
            match &request.client_id {
                Some(given) if *given != envelope.id => return Err(Refused::ClientIdMismatch),
                _ => request.client_id = Some(envelope.id.clone()),
            }
        }
        Ok(envelope)
    }

    /// `publish`, `notify` or `event`, for logs.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Publish { .. } => "publish",
            Body::Notify(_) => "notify",
            Body::Event { .. } => "event",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_parses_with_its_api_fields() {
        let publish = br#"{"id":"a","type":"publish","room":"r","content":"hi"}"#;
        let envelope = Envelope::parse(publish, 1024).unwrap();
        let Body::Publish { room, request } = envelope.body else { panic!("not a publish") };
        assert_eq!((room.as_str(), request.client_id.as_deref()), ("r", Some("a")));
        let notify = br#"{"id":"b","type":"notify","user_ids":["u"],"title":"t"}"#;
        assert_eq!(Envelope::parse(notify, 1024).unwrap().kind(), "notify");
        let event = br#"{"id":"c","type":"event","room":"r","name":"n","data":{"x":1}}"#;
        assert_eq!(Envelope::parse(event, 1024).unwrap().kind(), "event");
    }

    #[test]
    fn hostile_envelopes_are_refused_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not a valid envelope"),
            (br#"{"id":"a","type":"launch","room":"r"}"#, "unknown variant"),
            (br#"{"type":"notify","user_ids":["u"],"title":"t"}"#, "missing field `id`"),
            (br#"{"id":"","type":"notify","user_ids":["u"],"title":"t"}"#, "id:"),
            (br#"{"id":"a\u0000","type":"notify","user_ids":["u"],"title":"t"}"#, "control"),
            (br#"{"id":1,"type":"notify","user_ids":["u"],"title":"t"}"#, "invalid type"),
            (br#"{"id":"a","type":"publish","room":"r","content":"x","client_id":"b"}"#, "equal"),
        ];
        for (data, reason) in cases {
            let err = Envelope::parse(data, 1024).expect_err("refused").to_string();
            assert!(err.contains(reason), "{err} should say {reason}");
        }
        let big = format!(
            r#"{{"id":"a","type":"notify","user_ids":["u"],"title":"{}"}}"#,
            "x".repeat(64)
        );
        assert!(
            Envelope::parse(big.as_bytes(), 32).unwrap_err().to_string().starts_with("too_large")
        );
    }
}
