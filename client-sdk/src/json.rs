//! A small JSON reader: what the client needs to read server frames, JWT
//! claims and the `data` JavaScript hands over, without serde's
//! deserializer.
//!
//! serde_json's deserializer, with serde's generic visitors, one
//! instantiation per type read and the error formatting it brings (`f64`
//! `Display` among it), took 56 KB of the 316 KB wasm. This reader is one
//! non-generic scanner: the caller walks an object's keys and reads each
//! value as the type it expects, so a frame is read in one pass with no
//! intermediate tree. It accepts exactly the JSON that serde_json accepts
//! (RFC 8259; nesting under 128 deep, lone surrogates refused), and reads
//! numbers as serde_json with `float_roundtrip` does (correctly rounded);
//! the tests check it against serde_json on any text and any value.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// Arrays and objects may nest fewer levels deep than this, as in
/// serde_json: deeper input is refused rather than read with unbounded
/// recursion.
const MAX_DEPTH: u32 = 128;

/// A position in a JSON text. Every read returns `None` for text that is
/// not what it expects (or not JSON), after which the reader is spent.
pub struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

/// A JSON number as serde_json classifies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// A non-negative integer that fits a `u64`.
    Unsigned(u64),
    /// A negative integer that fits an `i64`.
    Signed(i64),
    /// Any other number (a fraction, an exponent, `-0`, a larger integer).
    Float(f64),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { text, at: 0, depth: 0 }
    }

    /// Reads a whole document with `read`: nothing but whitespace may follow.
    pub fn document<T>(text: &'a str, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let mut reader = Self::new(text);
        let value = read(&mut reader)?;
        (reader.peek().is_none()).then_some(value)
    }

    /// The next byte after whitespace, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.at) {
            self.at += 1;
        }
        bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.peek()?;
        self.text[self.at..].starts_with(word).then(|| self.at += word.len())
    }

    fn nested<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let value = read(self);
        self.depth -= 1;
        value
    }

    /// Reads an object, calling `field` with each key; `field` must read
    /// the key's value.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.nested(|r| {
            if r.peek()? == b'}' {
                r.at += 1;
                return Some(());
            }
            loop {
                let key = r.string()?;
                r.eat(b':')?;
                field(r, key)?;
                match r.peek()? {
                    b',' => r.at += 1,
                    b'}' => {
                        r.at += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        })
    }

    /// Reads an array, calling `item` to read each element.
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.nested(|r| {
            if r.peek()? == b']' {
                r.at += 1;
                return Some(());
            }
            loop {
                item(r)?;
                match r.peek()? {
                    b',' => r.at += 1,
                    b']' => {
                        r.at += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        })
    }

    /// Reads an array whose elements `read` reads.
    pub fn list<T>(&mut self, mut read: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        self.array(|r| {
            items.push(read(r)?);
            Some(())
        })?;
        Some(items)
    }

    /// `null` as `None`, anything else read by `read`.
    pub fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// Reads a boolean.
    pub fn bool(&mut self) -> Option<bool> {
        if self.peek()? == b't' {
            self.literal("true").map(|()| true)
        } else {
            self.literal("false").map(|()| false)
        }
    }

    /// Reads a string: borrowed from the text unless it has escapes.
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        loop {
            match *bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Borrowed(&self.text[start..self.at - 1]));
                }
                b'\\' => break,
                0..0x20 => return None,
                _ => self.at += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            let run = self.at;
            loop {
                match *bytes.get(self.at)? {
                    b'"' | b'\\' => break,
                    0..0x20 => return None,
                    _ => self.at += 1,
                }
            }
            out.push_str(&self.text[run..self.at]);
            self.at += 1;
            if bytes[self.at - 1] == b'"' {
                return Some(Cow::Owned(out));
            }
            let escape = *bytes.get(self.at)?;
            self.at += 1;
            out.push(match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode_escape()?,
                _ => return None,
            });
        }
    }

    /// The character of a `\u` escape (after the `u`), with the low half
    /// of a surrogate pair when the first is a high half.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                self.text[self.at..].starts_with("\\u").then(|| self.at += 2)?;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            _ => char::from_u32(first),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Reads a number.
    pub fn number(&mut self) -> Option<Num> {
        self.peek()?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while bytes.get(r.at).is_some_and(u8::is_ascii_digit) {
                r.at += 1;
            }
            (r.at > from).then_some(())
        };
        let negative = bytes[self.at] == b'-';
        if negative {
            self.at += 1;
        }
        if bytes.get(self.at) == Some(&b'0') {
            self.at += 1;
        } else {
            digits(self)?;
        }
        let integer_end = self.at;
        if bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = bytes.get(self.at) {
                self.at += 1;
            }
            digits(self)?;
        }
        let text = &self.text[start..self.at];
        if self.at == integer_end {
            let magnitude = &self.text[start + usize::from(negative)..self.at];
            if let Ok(n) = magnitude.parse::<u64>() {
                if !negative {
                    return Some(Num::Unsigned(n));
                }
                if n != 0
                    && let Some(n) = 0i64.checked_sub_unsigned(n)
                {
                    return Some(Num::Signed(n));
                }
            }
        }
        let float = parse_float(text)?;
        float.is_finite().then_some(Num::Float(float))
    }

    /// Reads a non-negative integer that fits a `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        match self.number()? {
            Num::Unsigned(n) => Some(n),
            _ => None,
        }
    }

    /// Reads any number as an `f64`.
    pub fn f64(&mut self) -> Option<f64> {
        Some(match self.number()? {
            Num::Unsigned(n) => n as f64,
            Num::Signed(n) => n as f64,
            Num::Float(f) => f,
        })
    }

    /// Reads a value of any type, kept as its text.
    pub fn raw(&mut self) -> Option<&'a str> {
        self.peek()?;
        let start = self.at;
        self.skip()?;
        Some(&self.text[start..self.at])
    }

    /// Reads a value of any type and drops it.
    pub fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(|r, _| r.skip()),
            b'[' => self.array(Self::skip),
            b'"' => self.string().map(drop),
            b'n' => self.literal("null"),
            b't' | b'f' => self.bool().map(drop),
            _ => self.number().map(drop),
        }
    }

    /// Reads a value of any type as a `serde_json::Value` (for a later
    /// key, the same key's later value wins, as in serde_json).
    pub fn value(&mut self) -> Option<Value> {
        Some(match self.peek()? {
            b'{' => {
                let mut map = Map::new();
                self.object(|r, key| {
                    map.insert(key.into_owned(), r.value()?);
                    Some(())
                })?;
                Value::Object(map)
            }
            b'[' => Value::Array(self.list(Self::value)?),
            b'"' => Value::String(self.string()?.into_owned()),
            b'n' => self.literal("null").map(|()| Value::Null)?,
            b't' | b'f' => Value::Bool(self.bool()?),
            _ => Value::Number(match self.number()? {
                Num::Unsigned(n) => Number::from(n),
                Num::Signed(n) => Number::from(n),
                Num::Float(f) => Number::from_f64(f)?,
            }),
        })
    }
}

/// A number in JSON's grammar (already checked), correctly rounded. In
/// the browser, by the JavaScript engine: Rust's own parser brings 10 KB
/// of tables of powers of five into the wasm.
#[cfg(target_arch = "wasm32")]
fn parse_float(text: &str) -> Option<f64> {
    Some(js_sys::parse_float(text))
}

/// A number in JSON's grammar (already checked), correctly rounded.
#[cfg(not(target_arch = "wasm32"))]
fn parse_float(text: &str) -> Option<f64> {
    text.parse().ok()
}

/// A finite float as JSON text that reads back as the same `f64`, by the
/// JavaScript engine (its shortest digits, as serde_json's): never bare
/// digits, so a reader that tells integers from floats (the server, a
/// backend in another language) still sees a float, and `-0.0` keeps its
/// sign, as serde_json writes them.
#[cfg(target_arch = "wasm32")]
pub fn float_text(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `toString(10)` throws only for a radix outside 2 to 36.
    let mut text =
        String::from(js_sys::Number::from(value).to_string_with_radix(10).unwrap_or_default());
    if !text.contains(['.', 'e']) {
        text.push_str(".0");
    }
    text
}

/// A whole JSON text as a `serde_json::Value`; `None` when it is not JSON.
pub fn value(text: &str) -> Option<Value> {
    Reader::document(text, Reader::value)
}

// Native only: the oracle's property tests need proptest.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
