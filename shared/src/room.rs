//! Room names and the rules of who may join which room.
//!
//! Client and server both use these functions, so a client can tell before
//! sending a `join` whether the server will refuse it.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

/// Longest room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 128;

/// A valid room name: 1 to 128 bytes of letters and digits of any script
/// (with their combining marks), and `_ . : @ , -`.
///
/// Precisely: every character is one of `A-Z a-z 0-9 _ . : @ , -` or a
/// non-ASCII character that may continue a Unicode identifier
/// (`XID_Continue`: letters, marks, digits, connector punctuation), the first
/// one is not a combining mark, and the name is in Normalization Form C (the
/// server checks that one; see [`RoomName::new`]). So `général`, `日本語`,
/// `नमस्ते` and `чат-2` are rooms, while spaces, emoji, symbols, invisible
/// characters (zero-width, bidi controls) and a decomposed `é` that would look
/// like another room's name are not.
///
/// Deserializing checks the name, so a frame with an invalid room name never
/// reaches the code that handles it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

/// `type RoomName = string` in TypeScript. Written out because the derive
/// cannot read `#[serde(try_from, into)]` and warns on every build.
#[cfg(feature = "typescript")]
impl ts_rs::TS for RoomName {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn docs() -> Option<String> {
        Some(
            "/**\n * A valid room name: 1 to 128 bytes of letters and digits of any \
             script (NFC) and `_ . : @ , -`.\n */\n"
                .to_owned(),
        )
    }

    fn name(_: &ts_rs::Config) -> String {
        "RoomName".to_owned()
    }

    fn inline(_: &ts_rs::Config) -> String {
        "string".to_owned()
    }

    fn decl(_: &ts_rs::Config) -> String {
        "type RoomName = string;".to_owned()
    }

    fn decl_concrete(cfg: &ts_rs::Config) -> String {
        Self::decl(cfg)
    }

    fn output_path() -> Option<std::path::PathBuf> {
        Some("RoomName.ts".into())
    }
}

/// Why a string is not a valid room name or user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    what: Invalid,
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    Room,
    /// Allowed characters, but not composed: it could look like another room.
    RoomNotNfc,
    User,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = Quoted(&self.name);
        match self.what {
            Invalid::Room => write!(
                f,
                "invalid room name {shown}: use 1 to {MAX_ROOM_NAME_LEN} bytes of letters and \
                 digits of any script and _ . : @ , -"
            ),
            Invalid::RoomNotNfc => write!(
                f,
                "invalid room name {shown}: not in Unicode Normalization Form C; compose it \
                 first (String.prototype.normalize(\"NFC\"))"
            ),
            Invalid::User => write!(
                f,
                "invalid user id {shown}: use 1 to {MAX_USER_ID_LEN} characters of A-Z a-z 0-9 _ . : @ -"
            ),
        }
    }
}

impl std::error::Error for InvalidName {}

/// A name in an error message: its first 40 characters in double quotes,
/// with quotes, backslashes and control characters escaped as `{:?}` would.
/// Unlike `{:?}` it shows other characters as they are (a zero-width space
/// stays invisible), and it needs no `Debug`: the browser SDK is built
/// without `Debug` output, and its users see this message.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars().take(40) {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\0' => f.write_str("\\0")?,
                '\t' => f.write_str("\\t")?,
                '\r' => f.write_str("\\r")?,
                '\n' => f.write_str("\\n")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// The ASCII characters of room names and user ids.
fn is_ascii_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | ',' | '-')
}

/// Whether `name` is made of room-name characters: ASCII ones, or letters,
/// marks and digits of any script (`XID_Continue`), not starting with a mark.
fn has_room_chars(name: &str) -> bool {
    let is_room_char = |c: char| is_ascii_name_char(c) || (!c.is_ascii() && is_xid_continue(c));
    // A combining mark first would attach itself to whatever text precedes
    // the name where it is shown.
    let starts_well = name.chars().next().is_some_and(|c| c.is_ascii() || may_start(c));
    starts_well && name.chars().all(is_room_char)
}

/// Whether non-ASCII `c` is a letter, mark or digit (`XID_Continue`).
/// Without the `xid` feature (the wasm SDK) every one passes here and the
/// server alone checks, as with [`is_composed`].
fn is_xid_continue(c: char) -> bool {
    #[cfg(feature = "xid")]
    {
        unicode_ident::is_xid_continue(c)
    }
    #[cfg(not(feature = "xid"))]
    {
        let _ = c;
        true
    }
}

/// Whether non-ASCII `c` may start a room name: a letter or a digit, not
/// a mark. Without the `xid` feature, as [`is_xid_continue`].
fn may_start(c: char) -> bool {
    #[cfg(feature = "xid")]
    {
        unicode_ident::is_xid_start(c) || c.is_numeric()
    }
    #[cfg(not(feature = "xid"))]
    {
        let _ = c;
        true
    }
}

/// Whether `name` is in Normalization Form C. Without the `nfc` feature
/// (the wasm SDK) the server alone checks.
fn is_composed(name: &str) -> bool {
    #[cfg(feature = "nfc")]
    {
        name.is_ascii() || unicode_normalization::is_nfc(name)
    }
    #[cfg(not(feature = "nfc"))]
    {
        let _ = name;
        true
    }
}

impl RoomName {
    /// Checks `name` and wraps it.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_ROOM_NAME_LEN || !has_room_chars(&name) {
            return Err(InvalidName { what: Invalid::Room, name });
        }
        if !is_composed(&name) {
            return Err(InvalidName { what: Invalid::RoomNotNfc, name });
        }
        Ok(Self(name))
    }

    /// The personal room of `user_id`, where its notifications arrive.
    pub fn personal(user_id: &str) -> Result<Self, InvalidName> {
        Self::new(format!("user:{user_id}"))
    }

    /// The direct-message room of two users (ids sorted, as the rules want).
    pub fn direct(a: &str, b: &str) -> Result<Self, InvalidName> {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Self::new(format!("dm:{first},{second}"))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which namespace the room is in, from its prefix.
    pub fn kind(&self) -> RoomKind<'_> {
        let name = self.0.as_str();
        if let Some(user_id) = name.strip_prefix("user:") {
            RoomKind::Personal { user_id }
        } else if let Some(pair) = name.strip_prefix("dm:") {
            match pair.split_once(',') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(',') => {
                    RoomKind::Direct { a, b }
                }
                _ => RoomKind::MalformedDirect,
            }
        } else if name == "admin" || name.starts_with("admin:") {
            RoomKind::Admin
        } else {
            RoomKind::Public
        }
    }
}

impl TryFrom<String> for RoomName {
    type Error = InvalidName;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl std::str::FromStr for RoomName {
    type Err = InvalidName;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::new(name)
    }
}

impl From<RoomName> for String {
    fn from(room: RoomName) -> String {
        room.0
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace of a room, which decides who may join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind<'a> {
    /// `user:<id>`: only that user.
    Personal {
        /// The owner.
        user_id: &'a str,
    },
    /// `dm:<a>,<b>`: only users `a` and `b`.
    Direct {
        /// The first id as written.
        a: &'a str,
        /// The second id as written.
        b: &'a str,
    },
    /// `dm:` followed by something other than two ids: nobody may join.
    MalformedDirect,
    /// `admin` and `admin:*`: only admins.
    Admin,
    /// Anything else: any authenticated user the token's `rooms` claim allows.
    Public,
}

/// Longest user id, in bytes (so that `user:<id>` is a valid room name).
pub const MAX_USER_ID_LEN: usize = MAX_ROOM_NAME_LEN - "user:".len();

/// Checks a user id (a token's `sub`): room-name characters except `,`, which
/// separates the two ids of a `dm:` room.
pub fn validate_user_id(id: &str) -> Result<(), InvalidName> {
    if id.is_empty()
        || id.len() > MAX_USER_ID_LEN
        || !id.chars().all(|c| is_ascii_name_char(c) && c != ',')
    {
        return Err(InvalidName { what: Invalid::User, name: id.to_owned() });
    }
    Ok(())
}

/// The role that may join `admin` rooms and edit or delete any message.
pub const ADMIN_ROLE: &str = "admin";

/// Who is asking to join a room: the parts of a token the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The user's id (`sub`).
    pub user_id: &'a str,
    /// Whether the token has `role: "admin"`.
    pub is_admin: bool,
    /// The token's `rooms` claim: glob patterns of public rooms it may join.
    pub rooms: Option<&'a [String]>,
}

impl<'a> Access<'a> {
    /// The access of user `user_id` with this `role` and `rooms` claim.
    pub fn new(user_id: &'a str, role: Option<&str>, rooms: Option<&'a [String]>) -> Self {
        Self { user_id, is_admin: role == Some(ADMIN_ROLE), rooms }
    }
}

/// Why a join is refused; each maps to the `forbidden` error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Someone else's personal room.
    NotYourPersonalRoom,
    /// A direct room of two other users.
    NotInDirectRoom,
    /// `dm:` with ids not sorted or not exactly two of them.
    MalformedDirectRoom,
    /// An admin room and the token is not an admin's.
    AdminOnly,
    /// A public room the token's `rooms` claim does not list.
    NotInRoomsClaim,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotYourPersonalRoom => "only its owner may join a user: room",
            Self::NotInDirectRoom => "only its two users may join a dm: room",
            Self::MalformedDirectRoom => {
                "a dm: room is named dm:<a>,<b> with the two user ids sorted"
            }
            Self::AdminOnly => "only admins may join admin rooms",
            Self::NotInRoomsClaim => "the token's rooms claim does not allow this room",
        })
    }
}

impl std::error::Error for Denied {}

impl Access<'_> {
    /// Whether this user may join `room`.
    pub fn may_join(&self, room: &RoomName) -> Result<(), Denied> {
        match room.kind() {
            RoomKind::Personal { user_id } if user_id == self.user_id => Ok(()),
            RoomKind::Personal { .. } => Err(Denied::NotYourPersonalRoom),
            RoomKind::Direct { a, b } if a > b => Err(Denied::MalformedDirectRoom),
            RoomKind::Direct { a, b } if a == self.user_id || b == self.user_id => Ok(()),
            RoomKind::Direct { .. } => Err(Denied::NotInDirectRoom),
            RoomKind::MalformedDirect => Err(Denied::MalformedDirectRoom),
            RoomKind::Admin if self.is_admin => Ok(()),
            RoomKind::Admin => Err(Denied::AdminOnly),
            RoomKind::Public => match self.rooms {
                Some(patterns) if !patterns.iter().any(|p| glob_match(p, room.as_str())) => {
                    Err(Denied::NotInRoomsClaim)
                }
                _ => Ok(()),
            },
        }
    }
}

/// Matches `text` against `pattern`, where `*` stands for any run of
/// characters (including none) and every other character for itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of `text` it has swallowed so far.
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, swallowed)) = backtrack {
            pi = star + 1;
            ti = swallowed + 1;
            backtrack = Some((star, swallowed + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    proptest::proptest! {
        /// The quoting in error messages is `{:?}`'s wherever `{:?}` leaves
        /// a character as it is or escapes it as a control character.
        #[test]
        fn names_in_errors_are_quoted_as_debug_would(
            name in r"[\x00-\x7f\u{80}-\u{9f}a-zé語\u{1F600}-\u{1F64F}]{0,50}"
        ) {
            let shown: String = name.chars().take(40).collect();
            proptest::prop_assert_eq!(Quoted(&name).to_string(), format!("{shown:?}"));
        }
    }

    #[test]
    fn room_names_are_validated() {
        for ok in ["general", "a", "org:42.team-x", "dm:alice,bob", "user:a@b.c", &"x".repeat(128)]
        {
            assert!(RoomName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "slash/", &"x".repeat(129), "semi;colon"] {
            assert!(RoomName::new(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<RoomName>("\"no spaces\"").unwrap_err();
        assert!(err.to_string().contains("invalid room name"), "{err}");
    }

    #[test]
    fn room_names_take_letters_and_digits_of_any_script() {
        let ok = ["général", "日本語", "नमस्ते", "чат-2", "١٢٣", "東京_2026", "Ελλάδα:news", "שלום"];
        for name in ok {
            assert!(RoomName::new(name).is_ok(), "{name}");
        }
        // 43 three-byte characters: 129 bytes.
        assert!(RoomName::new("語".repeat(43)).is_err(), "129 bytes");
        assert!(RoomName::new("語".repeat(42)).is_ok(), "126 bytes");
    }

    #[cfg(feature = "xid")]
    #[test]
    fn other_non_ascii_characters_are_refused() {
        let bad = [
            "emoji😀",
            "zero\u{200b}width",
            "bidi\u{202e}override",
            "\u{0301}starts-with-a-mark",
            "ideographic\u{3000}space",
            "math≈",
            "nbsp\u{a0}",
        ];
        for name in bad {
            assert!(RoomName::new(name).is_err(), "{name:?}");
        }
    }

    /// Without the `xid` feature (the wasm SDK) non-ASCII characters are the
    /// server's to check; ASCII ones and the length still are checked here.
    #[cfg(not(feature = "xid"))]
    #[test]
    fn without_xid_non_ascii_characters_are_left_to_the_server() {
        assert!(RoomName::new("emoji😀").is_ok());
        assert!(RoomName::new("emoji😀 space").is_err());
    }

    #[cfg(feature = "nfc")]
    #[test]
    fn a_decomposed_name_is_refused_with_how_to_compose_it() {
        assert!(RoomName::new("caf\u{e9}").is_ok());
        let err = RoomName::new("cafe\u{301}").unwrap_err().to_string();
        assert!(err.contains("Normalization Form C"), "{err}");
    }

    #[test]
    fn namespaces_come_from_prefixes() {
        assert_eq!(room("user:42").kind(), RoomKind::Personal { user_id: "42" });
        assert_eq!(room("dm:a,b").kind(), RoomKind::Direct { a: "a", b: "b" });
        assert_eq!(room("dm:a").kind(), RoomKind::MalformedDirect);
        assert_eq!(room("dm:a,b,c").kind(), RoomKind::MalformedDirect);
        assert_eq!(room("admin").kind(), RoomKind::Admin);
        assert_eq!(room("admin:ops").kind(), RoomKind::Admin);
        assert_eq!(room("administrators").kind(), RoomKind::Public);
        assert_eq!(RoomName::direct("zoe", "adam").unwrap().as_str(), "dm:adam,zoe");
    }

    #[test]
    fn access_rules() {
        let alice = Access { user_id: "alice", is_admin: false, rooms: None };
        let admin = Access { user_id: "root", is_admin: true, rooms: None };
        let patterns = vec!["team-*".to_owned(), "lobby".to_owned()];
        let limited = Access { user_id: "carol", is_admin: false, rooms: Some(&patterns) };

        assert_eq!(alice.may_join(&room("user:alice")), Ok(()));
        assert_eq!(alice.may_join(&room("user:bob")), Err(Denied::NotYourPersonalRoom));
        assert_eq!(alice.may_join(&room("dm:alice,bob")), Ok(()));
        assert_eq!(alice.may_join(&room("dm:bob,carol")), Err(Denied::NotInDirectRoom));
        assert_eq!(alice.may_join(&room("dm:bob,alice")), Err(Denied::MalformedDirectRoom));
        assert_eq!(admin.may_join(&room("dm:alice,bob")), Err(Denied::NotInDirectRoom));
        assert_eq!(alice.may_join(&room("admin")), Err(Denied::AdminOnly));
        assert_eq!(admin.may_join(&room("admin:ops")), Ok(()));
        assert_eq!(alice.may_join(&room("general")), Ok(()));
        assert_eq!(limited.may_join(&room("team-red")), Ok(()));
        assert_eq!(limited.may_join(&room("lobby")), Ok(()));
        assert_eq!(limited.may_join(&room("general")), Err(Denied::NotInRoomsClaim));
        assert_eq!(limited.may_join(&room("user:carol")), Ok(()));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("team-*", "team-"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*c", "abcbc"));
        assert!(!glob_match("a*c", "abcb"));
        assert!(!glob_match("lobby", "lobby2"));
        assert!(glob_match("*-eu", "shop-eu"));
    }

    #[test]
    fn user_ids() {
        assert!(validate_user_id("alice.smith@example.com").is_ok());
        assert!(validate_user_id("a,b").is_err());
        assert!(validate_user_id("").is_err());
        assert!(validate_user_id(&"u".repeat(MAX_USER_ID_LEN + 1)).is_err());
    }
}
