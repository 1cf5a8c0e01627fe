//! How a message's parts read on screen: times (a clock, a human date for
//! the tooltip, RFC 3339 for machines), a stable avatar hue per user, and
//! message text split into plain text and `http(s)` links.

use roomcast_client::attachments::is_web_url;
use time::OffsetDateTime;
use wasm_bindgen::JsValue;

/// A time of day in the browser's time zone, like "14:05".
pub(crate) fn clock(t: OffsetDateTime) -> String {
    let date = js_date(t);
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// RFC 3339, for `<time datetime>` (machines read it; people read
/// [`human_time`]).
pub(crate) fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A date and time as people read it in `locale` (a BCP 47 tag; empty means
/// the browser's language), like "Sunday, December 6, 2026 at 2:05 PM":
/// the full date, minutes but no seconds, in the browser's time zone.
pub(crate) fn human_time(t: OffsetDateTime, locale: &str) -> String {
    let options = js_sys::Object::new();
    for (key, value) in [("dateStyle", "full"), ("timeStyle", "short")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    // An unknown tag makes the browser throw: fall back to its own language.
    let browser = browser_locale();
    let locale = [locale, browser.as_str()]
        .into_iter()
        .find(|tag| !tag.is_empty() && is_locale(tag))
        .unwrap_or("en");
    js_date(t).to_locale_string(locale, &options).into()
}

/// Whether the browser accepts `tag` as a locale.
fn is_locale(tag: &str) -> bool {
    let tags = js_sys::Array::of1(&JsValue::from_str(tag));
    js_sys::Intl::DateTimeFormat::supported_locales_of(&tags, &js_sys::Object::new()).length() == 1
}

/// The browser's preferred language ("en-US"), or "en".
fn browser_locale() -> String {
    web_sys::window().and_then(|w| w.navigator().language()).unwrap_or_else(|| "en".to_owned())
}

fn js_date(t: OffsetDateTime) -> js_sys::Date {
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as f64;
    js_sys::Date::new(&JsValue::from_f64(ms))
}

/// How many avatar colours there are: hues this far apart (30°) are told
/// apart at a glance, where any hue of 360 would give near twins.
const AVATAR_HUES: u32 = 12;

/// A hue (0..360) for `user_id`'s avatar: the same user always gets the
/// same colour, on every page. FNV-1a, which spreads short ids well.
pub(crate) fn avatar_hue(user_id: &str) -> u32 {
    let hash =
        user_id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % AVATAR_HUES * (360 / AVATAR_HUES)
}

/// A piece of message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Shown as it is.
    Text(String),
    /// An absolute `http:` or `https:` URL, shown as a link to itself.
    Link(String),
}

/// Splits `text` into plain text and links. Only a word (a run without
/// whitespace) that is an absolute `http:` or `https:` URL becomes a link,
/// without the brackets or quotes before it and the punctuation after it
/// ("see https://a.example/x." links `https://a.example/x`). Any other
/// scheme (`javascript:`, `data:`) stays text, and so does a URL inside a
/// word (`javascript:alert(1)//https://a.example`).
pub(crate) fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut plain_from = 0;
    for (start, word) in words(text) {
        let lead = word.len() - word.trim_start_matches(['(', '<', '[', '"', '\'']).len();
        let rest = &word[lead..];
        let mut url = rest.trim_end_matches(['.', ',', '!', '?', ':', ';', '>', ']', '"', '\'']);
        // A closing bracket belongs to the URL only when it opened one.
        while url.ends_with(')') && url.matches('(').count() < url.matches(')').count() {
            url = &url[..url.len() - 1];
        }
        if !is_web_url(url) {
            continue;
        }
        let at = start + lead;
        if at > plain_from {
            out.push(Segment::Text(text[plain_from..at].to_owned()));
        }
        out.push(Segment::Link(url.to_owned()));
        plain_from = at + url.len();
    }
    if plain_from < text.len() {
        out.push(Segment::Text(text[plain_from..].to_owned()));
    }
    out
}

/// The runs of `text` without whitespace, with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while rest.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let (start, _) = *rest.peek()?;
        let mut end = text.len();
        while let Some(&(i, c)) = rest.peek() {
            if c.is_whitespace() {
                end = i;
                break;
            }
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}
