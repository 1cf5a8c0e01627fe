//! Reading `presence_diff` frames: who arrived, left or changed status in
//! them, so tests can wait for one user's news whatever else the window
//! carried.

use serde_json::Value;

use crate::frame_type;

/// The ids a list of members (`joins`), profiles (`leaves`) or presences
/// (`updates`) names.
fn ids<'a>(list: &'a Value, id: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().filter_map(move |entry| {
        let id = if id == "user.id" { &entry["user"]["id"] } else { &entry[id] };
        id.as_str().map(|id| (id, entry))
    })
}

/// The member object of `user` when `frame` is a diff it arrived in.
pub fn arrival<'a>(frame: &'a Value, user: &str) -> Option<&'a Value> {
    if frame_type(frame) != "presence_diff" {
        return None;
    }
    ids(&frame["joins"], "user.id").find(|(id, _)| *id == user).map(|(_, member)| member)
}

/// The profile of `user` when `frame` is a diff it left in.
pub fn departure<'a>(frame: &'a Value, user: &str) -> Option<&'a Value> {
    if frame_type(frame) != "presence_diff" {
        return None;
    }
    ids(&frame["leaves"], "id").find(|(id, _)| *id == user).map(|(_, profile)| profile)
}

/// The presence of `user` when `frame` is a diff that tells it (a status
/// change, or an arrival with its presence).
pub fn status<'a>(frame: &'a Value, user: &str) -> Option<&'a Value> {
    if frame_type(frame) != "presence_diff" {
        return None;
    }
    ids(&frame["updates"], "user_id")
        .find(|(id, _)| *id == user)
        .map(|(_, presence)| presence)
        .or_else(|| arrival(frame, user))
}

/// Whether `frame` is a diff about `user` alone.
pub fn only_about(frame: &Value, user: &str) -> bool {
    if frame_type(frame) != "presence_diff" {
        return false;
    }
    let mut all = ids(&frame["joins"], "user.id")
        .chain(ids(&frame["leaves"], "id"))
        .chain(ids(&frame["updates"], "user_id"))
        .peekable();
    all.peek().is_some() && all.all(|(id, _)| id == user)
}
