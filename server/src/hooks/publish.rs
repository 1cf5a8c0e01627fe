//! The publish hook: before a `send` or `edit` is stored, the backend
//! allows it, rejects it (the client gets `error` `rejected` with the
//! backend's reason) or allows it with replaced content and extra `data`.

use roomcast_shared::{RoomName, UserInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{HookError, Hooks};
use crate::config::{FailureMode, HookLimits};
use crate::error::check_content;

/// What the hook is asked about.
#[derive(Debug, Serialize)]
pub(crate) struct Request<'a> {
    /// `send` or `edit`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub room: &'a RoomName,
    pub user: &'a UserInfo,
    pub content: &'a str,
    /// For `send`: the sender's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    /// For `edit`: the message edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    /// The client's `data`, as checked: for `edit`, absent when the edit
    /// keeps the message's data and `{}` when it removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Value>,
}

/// The hook's answer, as it is on the wire.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Wire {
    Allow {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        data: Option<Value>,
    },
    Reject {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// What happens to the message.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Stored with this content (the client's or the hook's) and `data`.
    Allow { content: String, data: Option<Value> },
    /// Refused: the client gets `rejected` with `reason` (and `code`).
    Reject { code: Option<String>, reason: String },
}

/// Said to the user when the hook gives no reason.
const DEFAULT_REASON: &str = "the message was rejected";

impl Hooks {
    /// Asks the publish hook about a message; `None` takes it as sent
    /// (no hook configured, or a failed call with the open failure mode).
    /// A failed call with the closed mode gives the error back. Failures
    /// are logged.
    pub async fn check_publish(
        &self,
        request: Request<'_>,
        max_content_bytes: usize,
    ) -> Result<Option<Verdict>, HookError> {
        let Some(hook) = &self.settings.publish else { return Ok(None) };
        let verdict = match self.post(&hook.url, hook.timeout, &request).await {
            Ok(answer) if answer.status / 100 == 2 => {
                parse(&answer.body, self.limits(), max_content_bytes, request.content)
            }
            Ok(answer) => Err(HookError::Status(answer.status)),
            Err(err) => Err(err),
        };
        match verdict {
            Ok(verdict) => Ok(Some(verdict)),
            Err(err) => {
                let open = hook.on_failure == FailureMode::Open;
                tracing::warn!(room = %request.room, %err, open, "publish hook failed");
                if open { Ok(None) } else { Err(err) }
            }
        }
    }
}

/// Checks an answer against the contract and the bounds.
fn parse(
    body: &[u8],
    limits: &HookLimits,
    max_content_bytes: usize,
    sent: &str,
) -> Result<Verdict, HookError> {
    let invalid = |why: String| HookError::Invalid(why);
    let wire: Wire = serde_json::from_slice(body).map_err(|err| invalid(err.to_string()))?;
    match wire {
        Wire::Allow { content, data } => {
            if let Some(content) = &content {
                check_content(content, max_content_bytes)
                    .map_err(|err| invalid(format!("replaced content: {err}")))?;
            }
            if let Some(data) = &data {
                let bytes = serde_json::to_string(data).map_or(usize::MAX, |json| json.len());
                if bytes > limits.max_data_bytes {
                    return Err(invalid(format!(
                        "data is {bytes} bytes of JSON; the bound is {}",
                        limits.max_data_bytes
                    )));
                }
            }
            Ok(Verdict::Allow { content: content.unwrap_or_else(|| sent.to_owned()), data })
        }
        Wire::Reject { code, reason } => {
            if let Some(code) = &code
                && !is_code(code, limits.max_reason_bytes)
            {
                return Err(invalid("code: 1 to 64 of a-z A-Z 0-9 _ . - expected".into()));
            }
            let reason = match reason {
                Some(reason) if reason.len() > limits.max_reason_bytes => {
                    return Err(invalid(format!("reason over {} bytes", limits.max_reason_bytes)));
                }
                Some(reason) if !reason.trim().is_empty() => reason,
                _ => DEFAULT_REASON.to_owned(),
            };
            Ok(Verdict::Reject { code, reason })
        }
    }
}

/// A machine-readable code: short, no spaces or control characters.
fn is_code(code: &str, max: usize) -> bool {
    (1..=max.min(64)).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn verdict(answer: Value) -> Result<Verdict, HookError> {
        parse(answer.to_string().as_bytes(), &HookLimits::default(), 100, "sent")
    }

    #[test]
    fn answers_of_the_contract() {
        assert_eq!(
            verdict(json!({"action":"allow"})).unwrap(),
            Verdict::Allow { content: "sent".into(), data: None }
        );
        let rewritten = verdict(json!({"action":"allow","content":"hi @bob","data":{"m":["bob"]}}));
        assert_eq!(
            rewritten.unwrap(),
            Verdict::Allow { content: "hi @bob".into(), data: Some(json!({"m":["bob"]})) }
        );
        let rejected = verdict(json!({"action":"reject","code":"spam","reason":"No spam"}));
        assert_eq!(
            rejected.unwrap(),
            Verdict::Reject { code: Some("spam".into()), reason: "No spam".into() }
        );
        let bare = verdict(json!({"action":"reject"})).unwrap();
        assert_eq!(bare, Verdict::Reject { code: None, reason: DEFAULT_REASON.into() });
    }

    #[test]
    fn hostile_answers_are_failures() {
        let limits = HookLimits::default();
        for body in [
            &b"not json"[..],
            b"",
            b"[]",
            b"{\"action\":\"maybe\"}",
            b"{\"allow\":true}",
            b"{\"action\":\"allow\",\"content\":42}",
            b"{\"action\":\"reject\",\"reason\":[\"x\"]}",
        ] {
            let err = parse(body, &limits, 100, "sent").expect_err(&String::from_utf8_lossy(body));
            assert!(matches!(err, HookError::Invalid(_)), "{err}");
        }
        for answer in [
            json!({"action":"allow","content":"x".repeat(101)}),
            json!({"action":"allow","content":"   "}),
            json!({"action":"allow","data":"x".repeat(limits.max_data_bytes)}),
            json!({"action":"reject","reason":"x".repeat(limits.max_reason_bytes + 1)}),
            json!({"action":"reject","code":"has space"}),
            json!({"action":"reject","code":"c".repeat(65)}),
            json!({"action":"reject","code":""}),
        ] {
            assert!(verdict(answer.clone()).is_err(), "{answer}");
        }
    }
}
