//! The TypeScript declarations of the protocol (`src/web/protocol.d.ts`,
//! shipped in the npm package's `.d.ts`) are generated from the
//! `roomcast-shared` types themselves, and this test fails when the file
//! differs from what those types generate now.
//!
//! Why generation rather than checking hand-written declarations against the
//! golden samples: a sample shows one value of each frame, so an optional
//! field it leaves out, a variant of an enum it does not use or a field the
//! declarations have but the wire never carries would slip through. Deriving
//! the declarations with ts-rs, which reads the same serde attributes that
//! shape the JSON, covers every field and variant, and the golden samples
//! already pin those types to the wire. The cost stays out of every build
//! that ships: `roomcast-shared` derives `TS` only with its `typescript`
//! feature, which only this test turns on, so neither the server nor the wasm
//! SDK compiles ts-rs.
//!
//! After changing a protocol type, regenerate the file with
//! `UPDATE_TYPESCRIPT=1 cargo test -p roomcast-client --test typescript`
//! and review the diff: it is a change of the npm package's API.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::Path;

use roomcast_shared::frame::{
    Ack, ErrorFrame, Joined, Limits, MembersPage, PresenceDiff, RateLimit,
};
use roomcast_shared::{
    AppEvent, ChatMessage, ClientFrame, ErrorCode, Member, MessageDeleted, MessageUpdated,
    Notification, Position, Presence, ReadReceipt, Ref, RoomEvent, RoomName, ServerFrame,
    SetStatus, Status, UserInfo, UserRef,
};
use ts_rs::{Config, TS};

/// The generated file, relative to this crate.
const GENERATED: &str = "src/web/protocol.d.ts";

/// Set to regenerate the file instead of checking it.
const UPDATE_VAR: &str = "UPDATE_TYPESCRIPT";

/// One declaration: the TypeScript name, the `export type` text with its
/// JSDoc, and the names it refers to.
struct Declaration {
    name: String,
    text: String,
    uses: Vec<String>,
}

fn declare<T: TS + 'static>(cfg: &Config) -> Declaration {
    let docs = T::docs().unwrap_or_default();
    Declaration {
        name: T::ident(cfg),
        text: format!("{docs}export {}", T::decl(cfg)),
        uses: T::dependencies(cfg).into_iter().map(|d| d.ts_name).collect(),
    }
}

/// Every protocol type the package declares, in the file's order: the frames
/// first, then what they carry.
fn declarations() -> Vec<Declaration> {
    // serde_json writes u64 as a JSON number, and JavaScript reads it as one
    // (offsets and timestamps stay far below 2^53).
    let cfg = Config::new().with_large_int("number");
    vec![
        declare::<ServerFrame>(&cfg),
        declare::<ClientFrame>(&cfg),
        declare::<Ref>(&cfg),
        declare::<Joined>(&cfg),
        declare::<MembersPage>(&cfg),
        declare::<PresenceDiff>(&cfg),
        declare::<RoomEvent>(&cfg),
        declare::<Ack>(&cfg),
        declare::<ErrorFrame>(&cfg),
        declare::<ErrorCode>(&cfg),
        declare::<Limits>(&cfg),
        declare::<RateLimit>(&cfg),
        declare::<RoomName>(&cfg),
        declare::<Position>(&cfg),
        declare::<UserInfo>(&cfg),
        declare::<UserRef>(&cfg),
        declare::<ChatMessage>(&cfg),
        declare::<MessageUpdated>(&cfg),
        declare::<MessageDeleted>(&cfg),
        declare::<SetStatus>(&cfg),
        declare::<Status>(&cfg),
        declare::<Presence>(&cfg),
        declare::<Member>(&cfg),
        declare::<ReadReceipt>(&cfg),
        declare::<Notification>(&cfg),
        declare::<AppEvent>(&cfg),
    ]
}

/// The file's text: a header, then each declaration. Line ends are trimmed so
/// that the file has no trailing blanks.
fn generate() -> String {
    let mut out = String::from(
        "// The protocol's types, generated from roomcast-shared by\n\
         // client-sdk/tests/typescript.rs: do not edit. The frames the server\n\
         // sends carry a `ref` beside these fields when they answer a request\n\
         // (see `ServerFrame` in types.rs).\n",
    );
    for declaration in declarations() {
        out.push('\n');
        for line in declaration.text.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_referenced_type_is_declared() {
    let declarations = declarations();
    let declared: BTreeSet<&str> = declarations.iter().map(|d| d.name.as_str()).collect();
    for declaration in &declarations {
        for used in &declaration.uses {
            assert!(
                declared.contains(used.as_str()),
                "{} refers to {used}, which {GENERATED} does not declare: add it to \
                 `declarations()` in {}",
                declaration.name,
                file!(),
            );
        }
    }
}

#[test]
fn protocol_declarations_match_the_shared_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    let expected = generate();
    if std::env::var_os(UPDATE_VAR).is_some() {
        std::fs::write(&path, &expected).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{GENERATED}: {e}"));
    if actual == expected {
        return;
    }
    let (line, (was, now)) = actual
        .lines()
        .chain(std::iter::repeat(""))
        .zip(expected.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (was, now))| was != now)
        .expect("the texts differ, so some line does");
    panic!(
        "{GENERATED} is out of date with the roomcast-shared types.\n\
         First difference, line {} ({}):\n  file:      {was}\n  generated: {now}\n\
         Regenerate it with `{UPDATE_VAR}=1 cargo test -p roomcast-client --test typescript` \
         and review the diff: it changes the npm package's API.",
        line + 1,
        place(&expected, line, common_prefix(was, now)),
    );
}

/// How many leading bytes two lines share (at a character boundary).
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i)
}

/// Names the declaration (and frame `type`, inside a frame union) where the
/// generated text first differs: `line`, after its first `column` bytes.
fn place(text: &str, line: usize, column: usize) -> String {
    let mut before: Vec<&str> = text.lines().take(line + 1).collect();
    if let Some(last) = before.last_mut() {
        *last = &last[..column.min(last.len())];
    }
    // Declarations are separated by a blank line: past one, the difference
    // is in the doc comment of the next declaration.
    let blank = before.iter().rposition(|l| l.is_empty());
    let start = before.iter().rposition(|l| l.starts_with("export type "));
    if blank > start {
        let next = text.lines().skip(line).find(|l| l.starts_with("export type "));
        return match next {
            Some(next) => format!("the doc comment of {}", type_name(next)),
            None => "the header".to_owned(),
        };
    }
    let Some(start) = start else { return "the header".to_owned() };
    let name = type_name(before[start]);
    let variant = before[start..].iter().rev().find_map(|l| {
        let (_, rest) = l.rsplit_once("{ \"type\": \"")?;
        rest.split('"').next()
    });
    match variant {
        Some(variant) => format!("{name}, type \"{variant}\""),
        None => name.to_owned(),
    }
}

/// `X` of a line `export type X = ...`.
fn type_name(line: &str) -> &str {
    line.trim_start_matches("export type ").split([' ', '<']).next().unwrap_or("?")
}
