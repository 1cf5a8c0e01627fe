//! Timestamps on the wire: RFC 3339 text, such as `2026-11-22T10:00:00.5Z`.
//!
//! [`rfc3339`] is what the wire types name in `#[serde(with = ...)]`. With
//! the `time-serde` feature (the server) it is the `time` crate's own RFC
//! 3339 codec; without it (the wasm SDK) it is [`format`] and [`parse`]
//! below, a few hundred bytes where `time`'s generic parsing and formatting
//! cost the SDK about 13 KB. The two agree: the same text for every value
//! `time` can format, and the same value (or a refusal) for any text; the
//! property tests in `tests/timestamp.rs` check it against `time`. They
//! differ in their error messages, and where `time`'s fails to write a
//! value with no RFC 3339 form, this one writes `null` (see
//! [`rfc3339::serialize`]).

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// `t` as RFC 3339 text, as `time` formats it: `Z` for UTC, the fraction of
/// a second without trailing zeros (none when whole). `None` where `time`
/// refuses too: a year outside 0000 to 9999, or an offset with seconds.
pub fn format(t: &OffsetDateTime) -> Option<String> {
    let year = t.year();
    let (offset_hours, offset_minutes, offset_seconds) = t.offset().as_hms();
    if !(0..10_000).contains(&year) || offset_hours.unsigned_abs() > 23 || offset_seconds != 0 {
        return None;
    }
    let mut out = String::with_capacity(35);
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    digits(&mut out, u32::from(t.day()), 2);
    out.push('T');
    digits(&mut out, u32::from(t.hour()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.minute()), 2);
    out.push(':');
    digits(&mut out, u32::from(t.second()), 2);
    let (mut fraction, mut width) = (t.nanosecond(), 9);
    if fraction != 0 {
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        out.push('.');
        digits(&mut out, fraction, width);
    }
    if t.offset().is_utc() {
        out.push('Z');
    } else {
        out.push(if t.offset().is_negative() { '-' } else { '+' });
        digits(&mut out, u32::from(offset_hours.unsigned_abs()), 2);
        out.push(':');
        digits(&mut out, u32::from(offset_minutes.unsigned_abs()), 2);
    }
    Some(out)
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
    }
}

/// Reads RFC 3339 text as `time` does: any one byte between date and time,
/// `Z` or `z` or a `+hh:mm`/`-hh:mm` offset, a fraction of any length (its
/// first nine digits count), and a leap second (`:60`) only where one may
/// be (the last second of a month in UTC), read as the nanosecond before.
/// `None` for anything else, or for a date or time that does not exist.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    let mut input = Input(text.as_bytes());
    let year = input.number(4)?;
    input.literal(b'-')?;
    let month = Month::try_from(input.number(2)? as u8).ok()?;
    input.literal(b'-')?;
    let day = input.number(2)? as u8;
    input.any()?;
    let hour = input.number(2)? as u8;
    input.literal(b':')?;
    let minute = input.number(2)? as u8;
    input.literal(b':')?;
    let mut second = input.number(2)? as u8;
    let mut nanosecond = 0;
    if input.literal(b'.').is_some() {
        let mut place = 100_000_000;
        nanosecond = input.digit()? * place;
        // Digits past the ninth count for nothing, as in `time`.
        while let Some(digit) = input.digit() {
            place /= 10;
            nanosecond += digit * place;
        }
    }
    let offset = match input.any()? {
        b'Z' | b'z' => UtcOffset::UTC,
        sign @ (b'+' | b'-') => {
            let hours = input.number(2)? as i8;
            if hours > 23 {
                return None;
            }
            input.literal(b':')?;
            let minutes = input.number(2)? as i8;
            let (hours, minutes) = if sign == b'-' { (-hours, -minutes) } else { (hours, minutes) };
            UtcOffset::from_hms(hours, minutes, 0).ok()?
        }
        _ => return None,
    };
    if !input.0.is_empty() {
        return None;
    }
    let leap = second == 60;
    if leap {
        second = 59;
        nanosecond = 999_999_999;
    }
    let date = Date::from_calendar_date(year as i32, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanosecond).ok()?;
    let t = OffsetDateTime::new_in_offset(date, time, offset);
    if leap && !last_second_of_a_month(&t) {
        return None;
    }
    Some(t)
}

/// Whether `t` is 23:59:59.999999999 on the last day of a month, in UTC:
/// where a leap second may stand.
fn last_second_of_a_month(t: &OffsetDateTime) -> bool {
    let Some(utc) = t.checked_to_offset(UtcOffset::UTC) else { return false };
    (utc.hour(), utc.minute(), utc.second(), utc.nanosecond()) == (23, 59, 59, 999_999_999)
        && utc.day() == utc.month().length(utc.year())
}

/// The bytes not read yet.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn any(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn digit(&mut self) -> Option<u32> {
        match self.0 {
            [d @ b'0'..=b'9', rest @ ..] => {
                self.0 = rest;
                Some(u32::from(d - b'0'))
            }
            _ => None,
        }
    }

    /// Exactly `n` ASCII digits.
    fn number(&mut self, n: usize) -> Option<u32> {
        (0..n).try_fold(0, |value, _| Some(value * 10 + self.digit()?))
    }

    fn literal(&mut self, byte: u8) -> Option<()> {
        match self.0 {
            [first, rest @ ..] if *first == byte => {
                self.0 = rest;
                Some(())
            }
            _ => None,
        }
    }
}

/// The serde codec the wire types use (`#[serde(with = ...)]`), with
/// `option` for an optional timestamp: `time`'s own with the `time-serde`
/// feature, [`format`] and [`parse`] without it.
#[cfg(feature = "time-serde")]
pub use time::serde::rfc3339;

/// The serde codec the wire types use (`#[serde(with = ...)]`), with
/// `option` for an optional timestamp: `time`'s own with the `time-serde`
/// feature, [`format`] and [`parse`] without it.
#[cfg(not(feature = "time-serde"))]
pub mod rfc3339 {
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};
    use time::OffsetDateTime;

    /// Writes `t` as RFC 3339 text, or `null` for a value that has no RFC
    /// 3339 form (a year before 0000, an offset with seconds), where
    /// `time`'s codec fails. The builds that use this codec (the wasm SDK
    /// and UI) hold only timestamps read by [`parse`](super::parse), which
    /// all have one; failing instead would link serde_json's error
    /// construction (1.6 KB gzip) into the wasm for a case that does not
    /// occur there.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        match super::format(t) {
            Some(text) => serializer.serialize_str(&text),
            None => serializer.serialize_none(),
        }
    }

    /// Reads RFC 3339 text.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        deserializer.deserialize_str(Text)
    }

    struct Text;

    impl Visitor<'_> for Text {
        type Value = OffsetDateTime;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<OffsetDateTime, E> {
            super::parse(text).ok_or_else(|| E::custom("not an RFC 3339 timestamp"))
        }
    }

    /// An optional timestamp: `null` (or absent, with `default`) is `None`.
    pub mod option {
        use serde::Serializer;
        use serde::de::{Deserializer, Visitor};
        use time::OffsetDateTime;

        /// Writes `Some` as RFC 3339 text, `None` as `null`.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Reads `null` or RFC 3339 text.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            deserializer.deserialize_option(Maybe)
        }

        struct Maybe;

        impl<'de> Visitor<'de> for Maybe {
            type Value = Option<OffsetDateTime>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 timestamp or null")
            }

            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::deserialize(d).map(Some)
            }
        }
    }
}
