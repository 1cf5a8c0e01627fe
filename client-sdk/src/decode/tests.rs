//! The decoder against serde's decoding of the protocol's types.

use super::*;
use roomcast_shared::Envelope;

/// Every server frame sample of the protocol decodes to exactly what
/// serde's own decoding of `ServerFrame` gives.
#[test]
fn agrees_with_serde_on_every_golden_sample() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tests/golden/server");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("golden samples") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Envelope<ServerFrame> = serde_json::from_str(&text).unwrap();
        let decoded = decode(&text).unwrap_or_else(|| panic!("{} not decoded", path.display()));
        assert_eq!(decoded.frame, expected.frame, "{}", path.display());
        let reference = expected.reference.and_then(|r| match r {
            roomcast_shared::Ref::Number(n) => n.as_u64(),
            roomcast_shared::Ref::Text(_) => None,
        });
        assert_eq!(decoded.reference, reference, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 17, "every frame type has a sample: {seen}");
}

/// A frame without one of its fields is refused, or read with that
/// field's default, exactly as serde's decoding of `ServerFrame` does:
/// every golden sample, each top-level field removed in turn.
#[test]
fn a_missing_field_is_refused_or_defaulted_as_serde_does() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tests/golden/server");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("golden samples") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let sample: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        for key in sample.keys().filter(|k| *k != "type") {
            let mut without = sample.clone();
            without.remove(key);
            let text = serde_json::to_string(&without).unwrap();
            let decoded = decode(&text).map(|d| d.frame);
            let kind = sample["type"].as_str().unwrap();
            if (kind, key.as_str()) == ("joined", "count") {
                // Deliberately lenient: a server from before member
                // counts sends none, and the count is then 0.
                let Some(ServerFrame::Joined(joined)) = decoded else { panic!("{text}") };
                assert_eq!(joined.count, 0);
                continue;
            }
            let expected = serde_json::from_str::<Envelope<ServerFrame>>(&text).ok();
            assert_eq!(decoded, expected.map(|e| e.frame), "{} without {key}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked}");
}

#[test]
fn unknown_types_and_odd_refs() {
    assert!(decode(r#"{"type":"hello_from_the_future","x":1}"#).is_none());
    assert!(decode("not json").is_none());
    let pong = r#"{"type":"pong","ref":"mine","time":"2026-11-22T10:00:00Z"}"#;
    assert_eq!(decode(pong).unwrap().reference, None);
    let joined = r#"{"type":"joined","room":"r","epoch":"e","offset":1,"members":[],
        "messages":[{"type":"nope","room":"r","id":"x","offset":1}]}"#;
    assert!(decode(joined).is_none(), "an unknown room event is an error, as with serde");
}

#[test]
fn a_joined_keeps_the_reads_it_can_read_and_drops_the_others() {
    let joined = r#"{"type":"joined","room":"r","epoch":"e","offset":0,"members":[],
        "messages":[],"reads":[{"user_id":"bob","id":"m1","read_at":"2026-11-22T10:00:00Z"},
        {"user_id":"carol","id":"m1","read_at":"yesterday"},{"id":"m1"},7,
        {"user_id":"dave","id":"m2","read_at":"2026-11-22T09:00:00Z","seat":"12B"}]}"#;
    let Some(Decoded { frame: ServerFrame::Joined(j), .. }) = decode(joined) else {
        panic!("the join is not lost for a bad receipt")
    };
    let readers: Vec<&str> = j.reads.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(readers, ["bob", "dave"]);
}

/// Every golden sample with any one field given twice, or given a value of
/// the wrong type, is refused as serde refuses it (a `data` field takes
/// any value, and a `ref` any string or number). Deliberately lenient:
/// `joined.reads` only needs to be an array; an unreadable receipt in it is
/// dropped, not the join.
#[test]
fn a_repeated_or_mistyped_field_is_judged_as_serde_does() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/tests/golden/server");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("golden samples") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let sample: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap();
        for (key, value) in sample.iter().filter(|(k, _)| *k != "type") {
            let inner = text.trim_end().strip_suffix('}').unwrap();
            let twice = format!("{inner},\"{key}\":{value}}}");
            let wrong = [r#"{"x":1}"#, "[true]", "-1.5", r#""text""#, "false"];
            let mistyped = wrong.iter().map(|w| {
                let mut changed = sample.clone();
                changed.insert(key.clone(), serde_json::from_str(w).unwrap());
                serde_json::to_string(&changed).unwrap()
            });
            for variant in std::iter::once(twice).chain(mistyped) {
                let decoded = decode(&variant).map(|d| d.frame);
                if key == "reads" && variant.contains(r#""reads":[true]"#) {
                    let Some(ServerFrame::Joined(joined)) = decoded else { panic!("{variant}") };
                    assert!(joined.reads.is_empty());
                    continue;
                }
                let expected = serde_json::from_str::<Envelope<ServerFrame>>(&variant).ok();
                assert_eq!(decoded, expected.map(|e| e.frame), "{variant}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 200, "{checked}");
}
