//! Log output that a client cannot forge or read secrets from: every event
//! stays on one line whatever its fields hold, and request URIs are logged
//! without their query values (a WebSocket client's `?token=` rides there).
//!
//! The binary installs the subscriber (`main.rs`) with [`OneLine`] around
//! its output, as text or JSON ([`LogFormat`]); the router gives every
//! request an id ([`RequestIds`], [`drop_foreign_request_id`]) and logs it
//! through [`request_span`], the parent of the span of a WebSocket
//! connection opened by that request: each line a message's path logs, from
//! the upgrade to the session's sends, names the request and the connection.

use std::io::{self, Write};

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, coloured on a terminal.
    Text,
    /// For collectors: one JSON object per line, with the spans' fields.
    Json,
}

/// The header that carries a request's id, in and out.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Longest request id taken from a client or proxy.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Makes a request id when the request has none: a UUID v7, so ids sort by
/// time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Keeps an `x-request-id` from the caller (a proxy or a backend tracing
/// its own calls) only when it is 1 to 64 of `A-Z a-z 0-9 . _ : -`: any
/// other is removed, and the request gets an id of ours. An id is logged
/// on every line of its request, so a caller must not choose one that
/// fills the log or reads as something else.
pub(crate) async fn drop_foreign_request_id(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let well_formed = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
    };
    let values = headers.get_all(REQUEST_ID).iter().collect::<Vec<_>>();
    if values.len() > 1 || values.first().is_some_and(|v| !well_formed(v)) {
        headers.remove(REQUEST_ID);
    }
    next.run(request).await
}

/// The span of one HTTP request: its id, method, path and the query's keys,
/// never its values.
pub(crate) fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!(
        "request",
        request_id = id,
        method = %request.method(),
        uri = %redacted(request.uri()),
        version = ?request.version(),
    )
}

/// The path and query of `uri`, each query value replaced by `[redacted]`.
fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_owned() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=[redacted]"),
            None => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// A [`MakeWriter`] whose writers escape every control character (line
/// breaks above all) but each event's final newline, so a newline in a
/// client's room name, id or message cannot start a line of its own.
/// `ansi` keeps the escape character for the formatter's colours.
#[derive(Debug, Clone)]
pub struct OneLine<M> {
    inner: M,
    ansi: bool,
}

impl<M> OneLine<M> {
    /// Wraps `inner`; `ansi` when the formatter writes colours.
    pub fn new(inner: M, ansi: bool) -> Self {
        Self { inner, ansi }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping { inner: self.inner.make_writer(), ansi: self.ansi }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Escaping { inner: self.inner.make_writer_for(meta), ansi: self.ansi }
    }
}

/// One event's writer (see [`OneLine`]). The formatter writes each event
/// whole, in one `write_all`, which reaches [`Write::write`] once.
#[derive(Debug)]
pub struct Escaping<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        let text = String::from_utf8_lossy(body);
        let escape = |c: char| {
            (c.is_control() && c != '\t' && !(self.ansi && c == '\u{1b}'))
                || matches!(c, '\u{2028}' | '\u{2029}')
        };
        if !text.chars().any(escape) {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if escape(c) {
                line.extend(c.escape_default());
            } else {
                line.push(c);
            }
        }
        self.inner.write_all(line.as_bytes())?;
        self.inner.write_all(end)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(text: &str, ansi: bool) -> String {
        let mut out = Vec::new();
        Escaping { inner: &mut out, ansi }.write_all(text.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_event_stays_on_one_line() {
        assert_eq!(through("plain\tline\n", false), "plain\tline\n");
        let forged = "join refused: x\n2099-01-01 INFO forged\r\n";
        assert_eq!(through(forged, false), "join refused: x\\n2099-01-01 INFO forged\\r\n");
        assert_eq!(through("a\u{2028}b\u{85}c\n", false), "a\\u{2028}b\\u{85}c\n");
        assert_eq!(through("\u{1b}[31mred\n", false), "\\u{1b}[31mred\n");
        assert_eq!(through("\u{1b}[31mred\n", true), "\u{1b}[31mred\n");
    }

    #[test]
    fn query_values_are_redacted() {
        let uri: Uri = "/ws?token=eyJ.secret.sig&x&debug=1".parse().unwrap();
        assert_eq!(redacted(&uri), "/ws?token=[redacted]&x&debug=[redacted]");
        assert_eq!(redacted(&"/health".parse().unwrap()), "/health");
    }
}
