//! The reader against serde_json: the same verdict and the same value on
//! any text, and the same value for any value serde_json writes.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn serde(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

#[test]
fn agrees_with_serde_json_on_edge_cases() {
    let cases = [
        "",
        " ",
        "null",
        "true",
        "false",
        "nul",
        "tru",
        "0",
        "-0",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1E-2",
        "-1.5e3",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "-1e400",
        "[]",
        "[1,]",
        "[,1]",
        "{}",
        "{,}",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{1:2}"#,
        r#"{"a":1}x"#,
        r#"{"a":1} "#,
        "\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"",
        r#""\ud83d\ude00""#,
        r#""\ud83d""#,
        r#""\ude00""#,
        r#""\ud83dx""#,
        r#""\ud83d\u0041""#,
        r#""\x""#,
        r#""\u12""#,
        "\"a\u{1}b\"",
        "\"tab\there\"",
        "\"unterminated",
        r#""é😀""#,
        r#"{"a":1,"a":2}"#,
        "[1 2]",
        "\t\n\r [ true , false ] \n",
        "+1",
        "0x10",
        "NaN",
        "Infinity",
        "1.5E+2",
    ];
    for text in cases {
        assert_eq!(value(text), serde(text), "{text:?}");
    }
}

#[test]
fn nesting_is_bounded_as_in_serde_json() {
    for depth in [127, 128, 129, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(value(&text).is_some(), serde(&text).is_some(), "{depth}");
    }
    let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    assert_eq!(value(&deep), None);
}

#[test]
fn numbers_keep_serde_jsons_classes() {
    let number = |t: &str| Reader::document(t, Reader::number);
    assert_eq!(number("7"), Some(Num::Unsigned(7)));
    assert_eq!(number("-7"), Some(Num::Signed(-7)));
    assert_eq!(number("7.0"), Some(Num::Float(7.0)));
    assert_eq!(Reader::document("7.0", Reader::u64), None);
    assert_eq!(Reader::document("-7", Reader::u64), None);
    assert_eq!(Reader::document("3", Reader::f64), Some(3.0));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Fractions exact in binary: both parsers round them alike.
        (any::<i32>(), 0u32..8).prop_map(|(n, s)| Value::from(f64::from(n) / f64::from(1 << s))),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn reads_what_serde_json_writes(v in json_value()) {
        prop_assert_eq!(value(&serde_json::to_string(&v).unwrap()), Some(v.clone()));
        prop_assert_eq!(value(&serde_json::to_string_pretty(&v).unwrap()), Some(v));
    }

    #[test]
    fn judges_any_text_as_serde_json_does(text in r#"[\[\]{}",:0-9.eE+\- a-z\\u\t\n]{0,24}"#) {
        prop_assert_eq!(value(&text), serde(&text));
    }

    #[test]
    fn judges_mangled_json_as_serde_json_does(v in json_value(), cut in any::<prop::sample::Index>(),
            insert in r#"[\[\]{}",:0-9\\ntu]"#) {
        let text = serde_json::to_string(&v).unwrap();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let cut_short = &text[..at];
        prop_assert_eq!(value(cut_short), serde(cut_short));
        let spliced = format!("{}{}{}", &text[..at], insert, &text[at..]);
        prop_assert_eq!(value(&spliced), serde(&spliced));
    }
}
