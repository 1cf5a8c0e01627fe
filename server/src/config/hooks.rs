//! The settings of the backend's hooks (`--publish-hook-url`,
//! `--connect-hook-url`): where they are, how long they may take, what a
//! failure means, and how much of a hook's answer is read.

use std::time::Duration;

use super::ConfigError;

/// What a message meets when the publish hook fails: it times out, cannot
/// be reached, answers an error status or an answer that breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FailureMode {
    /// Refused with `unavailable`: the client retries with the same
    /// `client_id`, and nothing unchecked is ever stored.
    #[default]
    Closed,
    /// Taken as sent: chat keeps working while the backend is down.
    Open,
}

/// The publish hook: asked before each `send` and `edit` is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishHook {
    /// Where the server POSTs (http or https).
    pub url: url::Url,
    /// How long one call may take, answer read included (default 2 s).
    pub timeout: Duration,
    /// What a failed call means (default [`FailureMode::Closed`]).
    pub on_failure: FailureMode,
}

/// The connect hook: asked who a WebSocket client without a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectHook {
    /// Where the server POSTs (http or https).
    pub url: url::Url,
    /// How long one call may take, answer read included (default 2 s).
    pub timeout: Duration,
    /// How often a connection it signed in is checked again (default 15
    /// minutes; `None`: never), so that a session ended in the backend
    /// ends here too.
    pub recheck: Option<Duration>,
}

/// Bounds on what the server reads from a hook and forwards to it. Every
/// answer is treated as hostile: past these, it counts as a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookLimits {
    /// Bytes of an answer's body read at most (default 64 KiB).
    pub max_response_bytes: usize,
    /// Bytes of a rejection's `reason` (and `code`) (default 512).
    pub max_reason_bytes: usize,
    /// Bytes of a message's `data`, as JSON (default 8 KiB).
    pub max_data_bytes: usize,
    /// Bytes of one forwarded header's value (default 8 KiB); a longer one
    /// is left out of the connect hook's request.
    pub max_header_bytes: usize,
    /// Rooms patterns a connect hook's answer may list (default 1000).
    pub max_rooms: usize,
    /// Bytes of a user's name, role, avatar or room pattern (default 1 KiB).
    pub max_field_bytes: usize,
}

impl Default for HookLimits {
    fn default() -> Self {
        Self {
            max_response_bytes: 64 * 1024,
            max_reason_bytes: 512,
            max_data_bytes: 8 * 1024,
            max_header_bytes: 8 * 1024,
            max_rooms: 1000,
            max_field_bytes: 1024,
        }
    }
}

/// Which hooks are configured, and the bounds on their answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `--publish-hook-url`; `None`: messages are stored as sent.
    pub publish: Option<PublishHook>,
    /// `--connect-hook-url`; `None`: only tokens authenticate.
    pub connect: Option<ConnectHook>,
    /// Bounds on answers and forwarded headers.
    pub limits: HookLimits,
}

impl Hooks {
    /// Checks the hook flags.
    pub(super) fn from_flags(
        publish_url: Option<String>,
        publish_timeout_ms: u64,
        on_failure: FailureMode,
        connect_url: Option<String>,
        connect_timeout_ms: u64,
        connect_recheck_secs: u64,
    ) -> Result<Self, ConfigError> {
        let publish = match publish_url {
            Some(url) => Some(PublishHook {
                url: hook_url(&url, "publish-hook-url")?,
                timeout: timeout(publish_timeout_ms, "publish-hook-timeout-ms")?,
                on_failure,
            }),
            None => None,
        };
        let connect = match connect_url {
            Some(url) => Some(ConnectHook {
                url: hook_url(&url, "connect-hook-url")?,
                timeout: timeout(connect_timeout_ms, "connect-hook-timeout-ms")?,
                recheck: (connect_recheck_secs > 0)
                    .then(|| Duration::from_secs(connect_recheck_secs.min(MAX_RECHECK_SECS))),
            }),
            None => None,
        };
        Ok(Self { publish, connect, limits: HookLimits::default() })
    }
}

/// The longest wait between checks of a hook's connection: a day (a
/// larger setting means this).
const MAX_RECHECK_SECS: u64 = 86_400;

/// An absolute http or https URL with a host.
pub(super) fn hook_url(text: &str, name: &'static str) -> Result<url::Url, ConfigError> {
    let refused = ConfigError::OutOfRange { name, rule: "an http:// or https:// URL with a host" };
    let url = url::Url::parse(text.trim()).map_err(|_| refused)?;
    let refused = ConfigError::OutOfRange { name, rule: "an http:// or https:// URL with a host" };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refused);
    }
    Ok(url)
}

/// A timeout above zero, at most a minute: a hook is on the path of every
/// message or sign-in, and a longer wait would hold the client's frames.
fn timeout(ms: u64, name: &'static str) -> Result<Duration, ConfigError> {
    if ms == 0 || ms > 60_000 {
        return Err(ConfigError::OutOfRange { name, rule: "1 to 60000 (milliseconds)" });
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::{Args, parse};
    use super::*;

    #[test]
    fn no_hook_by_default() {
        let hooks = parse(&[]).unwrap().hooks;
        assert_eq!((hooks.publish, hooks.connect), (None, None));
    }

    #[test]
    fn hook_urls_must_be_http_or_https() {
        let publish = parse(&["--publish-hook-url", "https://app.example/hooks/publish"]).unwrap();
        let hook = publish.hooks.publish.unwrap();
        assert_eq!(hook.url.as_str(), "https://app.example/hooks/publish");
        assert_eq!(hook.timeout, Duration::from_millis(2000));
        assert_eq!(hook.on_failure, FailureMode::Closed);
        let connect = parse(&["--connect-hook-url", "http://127.0.0.1:9000/who"]).unwrap();
        assert_eq!(connect.hooks.connect.unwrap().url.port(), Some(9000));
        for bad in ["", "app.example/hook", "ftp://app.example/x", "file:///etc/passwd", "http://"]
        {
            for flag in ["--publish-hook-url", "--connect-hook-url"] {
                let err = parse(&[flag, bad]).expect_err(bad);
                assert!(err.to_string().contains("http:// or https://"), "{flag} {bad:?}: {err}");
            }
        }
    }

    #[test]
    fn timeouts_and_failure_mode_are_checked() {
        let url = ["--publish-hook-url", "http://h/p", "--connect-hook-url", "http://h/c"];
        for flag in ["--publish-hook-timeout-ms", "--connect-hook-timeout-ms"] {
            for bad in ["0", "60001"] {
                let err = parse(&[&url[..], &[flag, bad]].concat()).expect_err(bad);
                assert!(err.to_string().contains(&flag[2..]), "{err}");
            }
        }
        let config = parse(
            &[&url[..], &["--publish-hook-timeout-ms", "250", "--publish-hook-on-failure", "open"]]
                .concat(),
        )
        .unwrap();
        let publish = config.hooks.publish.unwrap();
        assert_eq!(
            (publish.timeout, publish.on_failure),
            (Duration::from_millis(250), FailureMode::Open)
        );
        let flags = ["roomcast", "--publish-hook-on-failure", "maybe"];
        assert!(Args::try_parse_from(flags).is_err());
        // A timeout without a URL is not checked: no hook runs.
        assert!(parse(&["--publish-hook-timeout-ms", "0"]).unwrap().hooks.publish.is_none());
    }

    #[test]
    fn rechecks_are_every_quarter_hour_off_at_zero_and_at_most_daily() {
        let recheck = |extra: &[&str]| {
            let flags = [&["--connect-hook-url", "http://h/c"][..], extra].concat();
            parse(&flags).unwrap().hooks.connect.unwrap().recheck
        };
        assert_eq!(recheck(&[]), Some(Duration::from_secs(900)));
        assert_eq!(recheck(&["--connect-hook-recheck-secs", "0"]), None);
        assert_eq!(recheck(&["--connect-hook-recheck-secs", "5"]), Some(Duration::from_secs(5)));
        let huge = u64::MAX.to_string();
        let day = Some(Duration::from_secs(86_400));
        assert_eq!(recheck(&["--connect-hook-recheck-secs", &huge]), day);
        for bad in ["", "-1", "ten", "1.5"] {
            let flags = ["roomcast", "--connect-hook-recheck-secs", bad];
            assert!(Args::try_parse_from(flags).is_err(), "{bad:?}");
        }
    }
}
