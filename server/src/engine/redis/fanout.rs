//! Pub/sub between instances: the wire format of a published frame, and the
//! handler that hands frames arriving from Redis to this instance's hub.
//!
//! A published payload is `<offset>\t<exclude>\t<frame JSON>` on a room's
//! channel, or `<room> <room>...\t<exclude>\t<frame JSON>` on the channel
//! for several rooms. `<offset>` is empty for frames outside the stream;
//! `<exclude>` is empty, `u:<user>` or `c:<instance>:<connection>`. The frame
//! JSON never holds a raw tab (JSON escapes it), so splitting on the first
//! two tabs is exact.

use std::sync::Arc;

use redis::{PushInfo, PushKind, Value};
use roomcast_shared::RoomName;
use tungstenite::Utf8Bytes;

use super::keys::{MULTI_CHANNEL, channel_room};
use crate::hub::{Delivery, Exclude, Hub};

/// Writes the `<exclude>` part of a payload.
pub(super) fn exclude_tag(exclude: &Exclude, instance: &str) -> String {
    match exclude {
        Exclude::Nobody => String::new(),
        Exclude::User(user) => format!("u:{user}"),
        Exclude::Conn(id) => format!("c:{instance}:{id}"),
    }
}

fn parse_exclude(tag: &str, instance: &str) -> Exclude {
    if let Some(user) = tag.strip_prefix("u:") {
        return Exclude::User(user.into());
    }
    if let Some((from, id)) = tag.strip_prefix("c:").and_then(|rest| rest.rsplit_once(':'))
        && from == instance
        && let Ok(id) = id.parse()
    {
        return Exclude::Conn(id);
    }
    Exclude::Nobody
}

/// Delivers frames from Redis to this instance's hub. It runs on the
/// subscriber connection's reader, so it must not wait: hub delivery never
/// does.
pub(super) struct Receiver {
    pub hub: Arc<Hub>,
    pub instance: String,
}

impl Receiver {
    pub fn handle(&self, push: PushInfo) {
        if push.kind != PushKind::Message {
            return;
        }
        let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else {
            return;
        };
        let (Ok(channel), Ok(payload)) =
            (std::str::from_utf8(channel), std::str::from_utf8(payload))
        else {
            return;
        };
        let mut parts = payload.splitn(3, '\t');
        let (Some(head), Some(exclude), Some(frame)) = (parts.next(), parts.next(), parts.next())
        else {
            tracing::warn!(channel, "malformed payload from Redis");
            return;
        };
        let exclude = parse_exclude(exclude, &self.instance);
        let text = Utf8Bytes::from(frame.to_owned());
        if channel == MULTI_CHANNEL {
            let rooms: Vec<RoomName> =
                head.split(' ').filter_map(|r| RoomName::new(r).ok()).collect();
            self.hub.deliver_many(&rooms, &Delivery { offset: None, text }, &exclude);
        } else if let Some(room) = channel_room(channel) {
            let offset = head.parse().ok();
            self.hub.deliver(&room, &Delivery { offset, text }, &exclude);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_survive_the_trip_through_redis() {
        let user = exclude_tag(&Exclude::User("bob".into()), "i1");
        assert!(matches!(parse_exclude(&user, "i2"), Exclude::User(u) if &*u == "bob"));
        let conn = exclude_tag(&Exclude::Conn(7), "i1");
        assert!(matches!(parse_exclude(&conn, "i1"), Exclude::Conn(7)));
        // Another instance's connection id means nothing here.
        assert!(matches!(parse_exclude(&conn, "i2"), Exclude::Nobody));
        assert!(matches!(parse_exclude("", "i1"), Exclude::Nobody));
    }
}
