//! The attachments convention of a message's `data`: `data.attachments`, a
//! list of `{url, name?, type?, size?}`, read defensively (the data is the
//! sender's). Only `http:` and `https:` URLs may become links or images:
//! anything else (`javascript:`, `data:`, relative) is shown as text.

use serde::Serialize;
use serde_json::Value;

/// One attachment of a message, as a renderer needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment<'a> {
    /// Where the file is, as sent.
    pub url: &'a str,
    /// The file's name, when it has a non-empty one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// Its MIME type, when it has one.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub mime: Option<&'a str>,
    /// Its size in bytes, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Whether `url` may be a link (`http:` or `https:`); otherwise show
    /// it as plain text.
    pub linkable: bool,
    /// Whether to show it inline as an image: linkable and `image/*`.
    pub image: bool,
}

impl Attachment<'_> {
    /// What to show for it: its name, or its URL.
    pub fn label(&self) -> &str {
        self.name.unwrap_or(self.url)
    }
}

/// The attachments in a message's `data`, in order; entries that are not
/// objects with a string `url` are skipped.
pub fn attachments(data: Option<&Value>) -> Vec<Attachment<'_>> {
    let Some(Value::Array(list)) = data.and_then(|d| d.get("attachments")) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let url = entry.get("url")?.as_str()?;
            let text = |key| entry.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
            let mime = text("type");
            let linkable = is_web_url(url);
            let image = linkable && mime.is_some_and(|m| m.get(..6).is_some_and(is_image_prefix));
            Some(Attachment {
                url,
                name: text("name"),
                mime,
                size: entry.get("size").and_then(Value::as_u64),
                linkable,
                image,
            })
        })
        .collect()
}

fn is_image_prefix(prefix: &str) -> bool {
    prefix.eq_ignore_ascii_case("image/")
}

/// Whether `url` is an absolute `http:` or `https:` URL that a browser
/// reads as one. Browsers drop leading spaces and control characters and
/// tabs or newlines anywhere (`" java\tscript:"` is `javascript:`), so a
/// URL holding any of them is refused outright rather than cleaned.
pub fn is_web_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    let scheme_end = if starts_with_ignore_case(url, "https://") {
        8
    } else if starts_with_ignore_case(url, "http://") {
        7
    } else {
        return false;
    };
    // A host must follow: `https:///x` or `https://` alone is no link.
    url[scheme_end..].chars().next().is_some_and(|c| c != '/' && c != '\\')
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_http_and_https_urls_are_links() {
        for url in [
            "https://example.com/a.png",
            "http://example.com",
            "HTTPS://EXAMPLE.COM/x?y=1#z",
            "https://例え.jp/ファイル",
        ] {
            assert!(is_web_url(url), "{url}");
        }
        for url in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "\u{0}https://example.com",
            " https://example.com",
            "https://exa\nmple.com",
            "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "//evil.example/x.png",
            "/relative/path.png",
            "https:///evil.example",
            "https:/\\evil.example",
            "https://",
            "https:",
            "",
        ] {
            assert!(!is_web_url(url), "{url:?}");
        }
    }

    #[test]
    fn attachments_are_read_defensively() {
        let data = json!({"attachments": [
            {"url": "https://example.com/p.png", "name": "p.png", "type": "image/png", "size": 10},
            {"url": "https://example.com/doc.pdf", "type": "application/pdf"},
            {"url": "javascript:alert(1)", "name": "click me", "type": "image/png"},
            {"url": "data:image/png;base64,AAAA", "type": "image/png"},
            {"name": "no url"},
            {"url": 42},
            "https://example.com/bare-string",
            {"url": "https://example.com/x", "name": "", "size": -1, "type": 7}
        ]});
        let found = attachments(Some(&data));
        let shown: Vec<(&str, bool, bool)> =
            found.iter().map(|a| (a.label(), a.linkable, a.image)).collect();
        assert_eq!(
            shown,
            [
                ("p.png", true, true),
                ("https://example.com/doc.pdf", true, false),
                ("click me", false, false),
                ("data:image/png;base64,AAAA", false, false),
                ("https://example.com/x", true, false),
            ]
        );
        assert_eq!((found[0].size, found[4].size, found[4].mime), (Some(10), None, None));

        for data in [json!({}), json!({"attachments": "x"}), json!([1]), json!("text")] {
            assert!(attachments(Some(&data)).is_empty(), "{data}");
        }
        assert!(attachments(None).is_empty());
    }
}
