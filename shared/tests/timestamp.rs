//! The small RFC 3339 codec (`roomcast_shared::timestamp`) agrees with the
//! `time` crate's, which the server uses: the same text for every value, and
//! the same value (or refusal) for any text, hostile text included.

use proptest::prelude::*;
use roomcast_shared::timestamp::{format, parse};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// What `time` makes of `text`.
fn time_parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Text shaped like a timestamp, with each part drawn from valid and
/// invalid values alike.
fn timestamp_like() -> impl Strategy<Value = String> {
    let two = prop_oneof!["[0-9]{2}", "[0-9]{1,3}", Just("60".to_owned()), Just("00".to_owned())];
    let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{0,12}", Just(".".to_owned())];
    let offset = prop_oneof![
        Just("Z".to_owned()),
        Just("z".to_owned()),
        "[+-][0-9]{2}:[0-9]{2}",
        "[+-](0[0-9]|1[0-9]|2[0-5]):[0-5][0-9]",
        "[+-][0-9]{2}[0-9]{2}",
        Just(String::new()),
        "[A-Za-z+ ]",
    ];
    (
        prop_oneof!["[0-9]{4}", "[0-9]{3,5}", Just("0000".to_owned()), Just("9999".to_owned())],
        prop_oneof!["0[0-9]|1[0-3]", Just("02".to_owned()), Just("12".to_owned())],
        prop_oneof!["[0-3][0-9]", Just("31".to_owned()), Just("29".to_owned())],
        prop_oneof![Just("T"), Just("t"), Just(" "), Just("x"), Just("")],
        prop_oneof!["[0-2][0-9]", Just("23".to_owned())],
        prop_oneof!["[0-5][0-9]", Just("59".to_owned()), two.clone()],
        prop_oneof!["[0-5][0-9]", Just("59".to_owned()), Just("60".to_owned()), two],
        fraction,
        offset,
        prop_oneof![Just(""), Just(""), Just(" "), Just("Z")],
    )
        .prop_map(|(y, mo, d, sep, h, mi, s, frac, off, tail)| {
            format!("{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{off}{tail}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn formats_as_time_does(
        seconds in -80_000_000_000i64..300_000_000_000,
        nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000, Just(500_000_000), Just(120_000)],
        offset in -86_399i32..86_400,
        whole_minutes in any::<bool>(),
    ) {
        let offset = if whole_minutes { offset / 60 * 60 } else { offset };
        let Ok(offset) = UtcOffset::from_whole_seconds(offset) else { return Ok(()) };
        let Ok(t) = OffsetDateTime::from_unix_timestamp(seconds) else { return Ok(()) };
        let Some(t) = t.replace_nanosecond(nanos).ok().and_then(|t| t.checked_to_offset(offset))
        else {
            return Ok(());
        };
        prop_assert_eq!(format(&t), t.format(&Rfc3339).ok());
    }

    #[test]
    fn parses_as_time_does(text in timestamp_like()) {
        prop_assert_eq!(parse(&text), time_parse(&text), "{}", text);
    }

    #[test]
    fn any_text_is_refused_or_read_as_time_reads_it(text in "\\PC{0,40}") {
        prop_assert_eq!(parse(&text), time_parse(&text), "{}", text);
    }

    #[test]
    fn round_trips(seconds in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
        let t = OffsetDateTime::from_unix_timestamp(seconds).unwrap().replace_nanosecond(nanos).unwrap();
        prop_assert_eq!(parse(&format(&t).unwrap()), Some(t));
    }
}

#[test]
fn the_edges_agree() {
    for text in [
        "2026-11-22T10:00:00Z",
        "2026-11-22t10:00:00z",
        "2026-11-22 10:00:00.123456789123+01:30",
        "2026-11-22T10:00:00.1-00:30",
        "2026-11-22T10:00:00.-00:30",
        "2026-11-22T10:00:00+24:00",
        "2026-11-22T10:00:00+23:60",
        "2026-02-29T10:00:00Z",
        "2024-02-29T10:00:00Z",
        "2026-06-30T23:59:60Z",
        "2026-06-30T23:59:60.5Z",
        "2026-06-29T23:59:60Z",
        "2026-07-01T00:59:60+01:00",
        "9999-12-31T23:59:60-01:00",
        "0000-01-01T00:00:00+01:00",
        "2026-11-22T10:00:00",
        "2026-11-22T10:00:00Zjunk",
        "2026-11-22é10:00:00Z",
        "2026-00-22T10:00:00Z",
        "2026-13-22T10:00:00Z",
        "2026-11-00T10:00:00Z",
        "2026-11-22T24:00:00Z",
        "",
        "+2026-11-22T10:00:00Z",
    ] {
        assert_eq!(parse(text), time_parse(text), "{text}");
    }
    let odd = OffsetDateTime::UNIX_EPOCH.to_offset(UtcOffset::from_hms(1, 2, 3).unwrap());
    assert_eq!(format(&odd), None, "an offset with seconds has no RFC 3339 form");
    assert_eq!(odd.format(&Rfc3339).ok(), None);
}

/// The wire types read and write timestamps through the codec: JSON in,
/// the same JSON out, and a bad timestamp is an error, not a default.
#[test]
fn the_wire_types_use_it() {
    let text = r#"{"user_id":"bob","id":"m1","read_at":"2026-11-22T10:00:00.25+01:00"}"#;
    let receipt: roomcast_shared::ReadReceipt = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&receipt).unwrap(), text);
    let bad = r#"{"user_id":"bob","id":"m1","read_at":"yesterday"}"#;
    assert!(serde_json::from_str::<roomcast_shared::ReadReceipt>(bad).is_err());
    let message = r#"{"room":"r","id":"m","offset":1,"client_id":"c",
        "sender":{"id":"a","name":"A","role":null,"avatar":null},"content":"x",
        "created_at":"2026-11-22T10:00:00Z","edited_at":null}"#;
    let m: roomcast_shared::ChatMessage = serde_json::from_str(message).unwrap();
    assert_eq!(m.edited_at, None);
    let edited = message.replace("null}", "\"2026-11-22T10:01:00.5Z\"}");
    let m: roomcast_shared::ChatMessage = serde_json::from_str(&edited).unwrap();
    assert_eq!(m.edited_at.and_then(|t| format(&t)).as_deref(), Some("2026-11-22T10:01:00.5Z"));
}
