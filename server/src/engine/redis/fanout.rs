//! Fan-out between instances through Redis pub/sub: subscribing to the
//! rooms this instance has members in, publishing frames, the wire format
//! of a published frame, and the handler that hands frames arriving from
//! Redis to this instance's hub.
//!
//! A published payload is `<offset>\t<exclude>\t<frame JSON>` on a room's
//! channel, or `<room> <room>...\t<exclude>\t<frame JSON>` on the channel
//! for several rooms. `<offset>` is empty for frames outside the stream;
//! `<exclude>` is empty, `u:<user>` or `c:<instance>:<connection>`, or `=`
//! for a membership or presence change (a `MemberChange` as JSON in place of
//! the frame), which goes to the hub's coalescer rather than to the
//! connections, or `!` for a control call (a `Control` as JSON), which the
//! hub applies to its connections. The JSON never holds a raw tab (JSON escapes it), so
//! splitting on the first two tabs is exact.

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, PushInfo, PushKind, Value};
use roomcast_shared::RoomName;
use tungstenite::Utf8Bytes;

use super::Store;
use super::keys::{self, MULTI_CHANNEL, channel_room};
use crate::engine::{EngineError, Fanout, MemberChange, RoomEventSink};
use crate::hub::{Delivery, Exclude, Hub};
use crate::moderation::Control;

/// The Redis fan-out.
pub(super) struct RedisFanout {
    store: Arc<Store>,
    hub: Arc<Hub>,
    /// Subscriptions, on a connection of their own so that delivering
    /// published frames never delays command replies.
    subscriber: ConnectionManager,
    /// Serializes subscribe and unsubscribe, so a leave and a join of the
    /// same room cannot cross (see `unwatch`).
    subscriptions: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RedisFanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFanout").field("store", &self.store).finish_non_exhaustive()
    }
}

impl RedisFanout {
    pub fn new(store: Arc<Store>, hub: Arc<Hub>, subscriber: ConnectionManager) -> Self {
        Self { store, hub, subscriber, subscriptions: tokio::sync::Mutex::new(()) }
    }
}

#[async_trait]
impl Fanout for RedisFanout {
    async fn watch(&self, room: &RoomName) -> Result<(), EngineError> {
        let _serial = self.subscriptions.lock().await;
        self.store.exec(self.subscriber.clone().subscribe(keys::room_channel(room))).await
    }

    async fn unwatch(&self, room: &RoomName) {
        let _serial = self.subscriptions.lock().await;
        // A connection may have joined since the hub found the room empty.
        if self.hub.has_members(room) {
            return;
        }
        let mut subscriber = self.subscriber.clone();
        let _ = self.store.exec(subscriber.unsubscribe(keys::room_channel(room))).await;
    }

    async fn broadcast(
        &self,
        rooms: &[RoomName],
        delivery: Delivery,
        exclude: Exclude,
    ) -> Result<(), EngineError> {
        publish(&self.store, rooms, &delivery, &exclude).await
    }

    async fn change(&self, rooms: &[RoomName], change: MemberChange) -> Result<(), EngineError> {
        publish_change(&self.store, rooms, &change).await
    }

    /// On the channel every instance listens to: a ban must reach
    /// instances without a member in the room yet, and a user's
    /// connections may be anywhere. This instance applies it when it comes
    /// back, like the others.
    async fn control(&self, control: &Control) -> Result<(), EngineError> {
        let text = serde_json::to_string(control).unwrap_or_default();
        let payload = format!("\t{CONTROL_TAG}\t{text}");
        let mut conn = self.store.conn();
        self.store.exec(conn.publish::<_, _, ()>(MULTI_CHANNEL, payload)).await
    }

    /// One pipeline: one round trip for a committed batch, in order.
    async fn publish_events(&self, events: Vec<(RoomName, Delivery)>) -> Result<(), EngineError> {
        let mut pipe = redis::pipe();
        for (room, delivery) in &events {
            let offset = delivery.offset.map(|o| o.to_string()).unwrap_or_default();
            let payload = format!("{offset}\t\t{}", delivery.text.as_str());
            pipe.publish(keys::room_channel(room), payload).ignore();
        }
        self.store.exec(pipe.query_async::<()>(&mut self.store.conn())).await
    }
}

/// Publishes a frame once for every instance's connections in any of
/// `rooms`: on the room's channel for one room, on the channel for several
/// otherwise.
pub(super) async fn publish(
    store: &Store,
    rooms: &[RoomName],
    delivery: &Delivery,
    exclude: &Exclude,
) -> Result<(), EngineError> {
    let exclude = exclude_tag(exclude, &store.instance);
    publish_tagged(store, rooms, &exclude, delivery.text.as_str()).await
}

/// The `<exclude>` part that marks a membership or presence change.
const CHANGE_TAG: &str = "=";

/// The `<exclude>` part that marks a control call (`moderation.rs`), with
/// the `Control` as JSON in place of the frame; only on the multi-room
/// channel, with no rooms.
const CONTROL_TAG: &str = "!";

/// Publishes a membership or presence change for every instance's
/// coalescer (see [`Fanout::change`]).
pub(super) async fn publish_change(
    store: &Store,
    rooms: &[RoomName],
    change: &MemberChange,
) -> Result<(), EngineError> {
    let text = serde_json::to_string(change).unwrap_or_default();
    publish_tagged(store, rooms, CHANGE_TAG, &text).await
}

/// Publishes `<rooms or nothing>\t<tag>\t<text>` on the room's channel
/// for one room, on the channel for several otherwise.
async fn publish_tagged(
    store: &Store,
    rooms: &[RoomName],
    tag: &str,
    text: &str,
) -> Result<(), EngineError> {
    let (channel, payload) = match rooms {
        [] => return Ok(()),
        [room] => (keys::room_channel(room), format!("\t{tag}\t{text}")),
        _ => {
            let names: Vec<&str> = rooms.iter().map(RoomName::as_str).collect();
            (MULTI_CHANNEL.to_owned(), format!("{}\t{tag}\t{text}", names.join(" ")))
        }
    };
    store.exec(store.conn().publish::<_, _, ()>(channel, payload)).await
}

/// Writes the `<exclude>` part of a payload.
fn exclude_tag(exclude: &Exclude, instance: &str) -> String {
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

/// Delivers frames from Redis to this instance's hub, room events through
/// `sink` when there is one (a store's fan-in). It runs on the subscriber
/// connection's reader, so it must not wait: neither does.
pub(super) struct Receiver {
    hub: Arc<Hub>,
    instance: String,
    sink: Option<Arc<dyn RoomEventSink>>,
    /// With a sink, the room channels Redis has confirmed this instance's
    /// subscription to and not its unsubscription: as many as the rooms
    /// this instance receives.
    subscribed: std::sync::Mutex<std::collections::HashSet<RoomName>>,
}

impl Receiver {
    pub fn new(hub: Arc<Hub>, instance: String, sink: Option<Arc<dyn RoomEventSink>>) -> Self {
        Self { hub, instance, sink, subscribed: std::sync::Mutex::default() }
    }

    pub fn handle(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {}
            PushKind::Subscribe | PushKind::Unsubscribe => return self.subscription(&push),
            _ => return,
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
        if exclude == CHANGE_TAG {
            return self.change(channel, head, frame);
        }
        if exclude == CONTROL_TAG {
            match serde_json::from_str::<Control>(frame) {
                Ok(control) => {
                    self.hub.control(&control);
                }
                Err(_) => tracing::warn!(channel, "malformed control call from Redis"),
            }
            return;
        }
        let exclude = parse_exclude(exclude, &self.instance);
        let text = Utf8Bytes::from(frame.to_owned());
        if channel == MULTI_CHANNEL {
            let rooms: Vec<RoomName> =
                head.split(' ').filter_map(|r| RoomName::new(r).ok()).collect();
            self.hub.deliver_many(&rooms, &Delivery { offset: None, text }, &exclude);
        } else if let Some(room) = channel_room(channel) {
            let offset = head.parse().ok();
            match (&self.sink, offset) {
                (Some(sink), Some(_)) => sink.offer(room, text),
                _ => self.hub.deliver(&room, &Delivery { offset, text }, &exclude),
            }
        }
    }
}

impl Receiver {
    /// A room channel's subscription confirmed or ended. Confirmed again
    /// without having ended, it was restored after the connection to Redis
    /// was lost: what was published meanwhile is read from the store. (A
    /// first confirmation needs nothing: the joining client's snapshot
    /// reads the store after subscribing.)
    fn subscription(&self, push: &PushInfo) {
        let (Some(sink), Some(Value::BulkString(channel))) = (&self.sink, push.data.first()) else {
            return;
        };
        let Some(room) = std::str::from_utf8(channel).ok().and_then(channel_room) else { return };
        let mut subscribed = self.subscribed.lock().unwrap_or_else(|p| p.into_inner());
        if push.kind == PushKind::Unsubscribe {
            subscribed.remove(&room);
        } else if !subscribed.insert(room.clone()) {
            drop(subscribed);
            sink.missed(room);
        }
    }

    /// A membership or presence change: to the coalescer.
    fn change(&self, channel: &str, head: &str, json: &str) {
        let Ok(change) = serde_json::from_str::<MemberChange>(json) else {
            tracing::warn!(channel, "malformed member change from Redis");
            return;
        };
        if channel == MULTI_CHANNEL {
            let rooms: Vec<RoomName> =
                head.split(' ').filter_map(|r| RoomName::new(r).ok()).collect();
            self.hub.offer_change(&rooms, &change);
        } else if let Some(room) = channel_room(channel) {
            self.hub.offer_change(&[room], &change);
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
