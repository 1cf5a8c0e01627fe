//! Log output that a client cannot forge or read secrets from: every event
//! stays on one line whatever its fields hold, and request URIs are logged
//! without their query values (a WebSocket client's `?token=` rides there).
//!
//! The binary installs the subscriber (`main.rs`) with [`OneLine`] around
//! its output; the router logs requests through [`request_span`].

use std::io::{self, Write};

use axum::http::{Request, Uri};
use tracing_subscriber::fmt::MakeWriter;

/// The span of one HTTP request, at debug level: method, path and the
/// query's keys, never its values.
pub(crate) fn request_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
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
