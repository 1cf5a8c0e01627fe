//! `use_roomcast`: reactive bindings over the SDK's [`Connection`]. The
//! connection's state, every joined room (messages, members, typing,
//! receipts, what waits to be sent) and the user's notifications become
//! signals; requests are methods on the [`Roomcast`] handle.
//!
//! The handle is `Copy` and goes into the Leptos context, so every component
//! below the one that called `use_roomcast` reaches the same connection with
//! [`expect_roomcast`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use leptos::prelude::*;
use roomcast_client::room::RoomState;
use roomcast_client::web::{Connection, Observer};
use roomcast_client::{ConnectionState, Core, Event, Options};
use roomcast_shared::{ChatMessage, Notification, SetStatus, UserInfo};
use serde::Deserialize;

mod traces;

/// Settings of [`use_roomcast_with_options`].
#[derive(Debug, Clone, Default)]
pub struct RoomcastOptions {
    /// The client's settings: backoff, queue size, history per join, ...
    pub client: Options,
}

/// The connection as a badge or banner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connectivity {
    /// The lifecycle state.
    pub state: ConnectionState,
    /// Failed attempts since the last stable connection.
    pub attempts: u32,
    /// When the next attempt starts (ms since the epoch), while waiting.
    pub retry_at: Option<u64>,
}

/// A message of the user's that the server has not acknowledged yet, or
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The operation id of the send.
    pub op: u64,
    /// What was written.
    pub content: String,
    /// Why the server refused it, once it has.
    pub failed: Option<String>,
}

/// What the client knows of one room, as a UI shows it: the SDK's state of
/// the room, and what only the UI keeps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomView {
    /// The room's name.
    pub name: String,
    /// The SDK's state of the room: whether it is joined, messages in order,
    /// members with presence, who is typing, read receipts. Shared: changing
    /// what only the UI keeps copies no messages.
    pub state: Arc<RoomState>,
    /// The user's sends still waiting for the server, or refused.
    pub outgoing: Vec<Outgoing>,
    /// Messages from others since the room was last marked read.
    pub unread: u32,
    /// Whether older messages may exist on the server.
    pub has_older: bool,
    /// Whether a page of older messages is on its way.
    pub loading_older: bool,
    /// Why joining failed, if it did.
    pub error: Option<String>,
    /// The first message the user had not read when they last opened the
    /// room ([`Roomcast::open`]): where the "New messages" divider goes.
    pub first_unread: Option<String>,
    /// Opened, and where reading stopped not known yet (the room's
    /// messages have not come).
    opening: bool,
}

impl RoomView {
    /// The ids of the users (other than `me`) who have read `message_id`.
    pub fn seen_by<'a>(&'a self, message_id: &str, me: &str) -> Vec<&'a str> {
        self.state.seen_by(message_id).filter(|user| *user != me).collect()
    }

    /// A user's display name: a member's, else the sender's of a loaded
    /// message (readers known from `joined` may have left), else the id.
    pub fn name_of<'a>(&'a self, user_id: &'a str) -> &'a str {
        let member = self.state.members.iter().find(|m| m.user.id == user_id).map(|m| &m.user);
        let sender = || self.state.messages.iter().rev().find(|m| m.sender.id == user_id);
        member
            .map(|u| u.name.as_str())
            .or_else(|| sender().map(|m| m.sender.name.as_str()))
            .unwrap_or(user_id)
    }
}

/// Every joined room, by name. Each room is shared: reading one clones a
/// pointer, and a change replaces only the room that changed.
pub type Rooms = BTreeMap<String, Arc<RoomView>>;

type MessageHook = Rc<dyn Fn(&ChatMessage)>;

/// The handle `use_roomcast` returns: signals to read, methods to act.
#[derive(Clone, Copy)]
pub struct Roomcast {
    conn: StoredValue<Connection, LocalStorage>,
    connectivity: RwSignal<Connectivity>,
    user: RwSignal<Option<UserInfo>>,
    rooms: RwSignal<Rooms>,
    notifications: RwSignal<Vec<Notification>>,
    last_error: RwSignal<Option<String>>,
    /// Sends in flight, by op: their room and content, to show them as
    /// failed if refused.
    sends: StoredValue<HashMap<u64, (String, String)>, LocalStorage>,
    /// History requests in flight, by op: their room.
    pages: StoredValue<HashMap<u64, String>, LocalStorage>,
    /// Refused sends, by room, until retried or dismissed.
    failed: StoredValue<HashMap<String, Vec<Outgoing>>, LocalStorage>,
    /// The last message id marked read, by room.
    marked: StoredValue<HashMap<String, String>, LocalStorage>,
    hooks: StoredValue<Vec<MessageHook>, LocalStorage>,
    /// How many messages a first join loads: fewer means there are no older.
    history: u16,
}

/// Connects to `url` with tokens from `token`, and provides the handle as
/// context. The connection closes when the calling component is unmounted.
pub fn use_roomcast<F, Fut>(url: impl Into<String>, token: F) -> Roomcast
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<String, String>> + 'static,
{
    use_roomcast_with_options(url, token, RoomcastOptions::default())
}

/// [`use_roomcast`] with settings.
pub fn use_roomcast_with_options<F, Fut>(
    url: impl Into<String>,
    token: F,
    options: RoomcastOptions,
) -> Roomcast
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<String, String>> + 'static,
{
    let history = options.client.history;
    let conn = Connection::new(url, options.client, token);
    let rc = Roomcast {
        conn: StoredValue::new_local(conn.clone()),
        connectivity: RwSignal::new(Connectivity {
            state: ConnectionState::Idle,
            attempts: 0,
            retry_at: None,
        }),
        user: RwSignal::new(None),
        rooms: RwSignal::new(BTreeMap::new()),
        notifications: RwSignal::new(Vec::new()),
        last_error: RwSignal::new(None),
        sends: StoredValue::new_local(HashMap::new()),
        pages: StoredValue::new_local(HashMap::new()),
        failed: StoredValue::new_local(HashMap::new()),
        marked: StoredValue::new_local(HashMap::new()),
        hooks: StoredValue::new_local(Vec::new()),
        history,
    };
    let observer: Observer = conn.observe(move |event| rc.on_event(event));
    let guard = StoredValue::new_local(Some(observer));
    on_cleanup(move || {
        guard.update_value(|g| drop(g.take()));
        rc.conn.with_value(Connection::close);
    });
    provide_context(rc);
    conn.connect();
    rc
}

/// The handle provided by an enclosing [`use_roomcast`].
///
/// # Panics
/// When no component above called `use_roomcast`.
pub fn expect_roomcast() -> Roomcast {
    expect_context::<Roomcast>()
}

impl Roomcast {
    /// The connection's state, attempts and retry time.
    pub fn connectivity(&self) -> Signal<Connectivity> {
        self.connectivity.into()
    }

    /// The signed-in user, while connected (kept across reconnects).
    pub fn user(&self) -> Signal<Option<UserInfo>> {
        self.user.into()
    }

    /// Every joined room, by name.
    pub fn rooms(&self) -> Signal<Rooms> {
        self.rooms.into()
    }

    /// One room, or `None` before it is joined; it changes only when that
    /// room does.
    pub fn room(
        &self,
        name: impl Fn() -> String + Send + Sync + 'static,
    ) -> Memo<Option<Arc<RoomView>>> {
        let rooms = self.rooms;
        Memo::new_with_compare(move |_| rooms.with(|r| r.get(&name()).cloned()), room_changed)
    }

    /// The user's notifications, oldest first, until dismissed.
    pub fn notifications(&self) -> Signal<Vec<Notification>> {
        self.notifications.into()
    }

    /// The latest error no request reported (a refused join, a token that
    /// could not be fetched, ...).
    pub fn last_error(&self) -> Signal<Option<String>> {
        self.last_error.into()
    }

    /// Calls `hook` with every new message from someone else, in any room
    /// (for notifications and sounds).
    pub fn on_message(&self, hook: impl Fn(&ChatMessage) + 'static) {
        self.hooks.update_value(|h| h.push(Rc::new(hook)));
    }

    /// Joins `room` (again: no-op) and keeps it joined across reconnects.
    pub fn join(&self, room: &str) -> Result<(), String> {
        let name = room.to_owned();
        if self.rooms.with_untracked(|r| r.contains_key(&name)) {
            return Ok(());
        }
        self.update(|core, _| core.join(&name)).map_err(|e| e.message)?;
        self.rooms.update(|r| {
            let view = RoomView { name: name.clone(), has_older: true, ..RoomView::default() };
            r.insert(name, Arc::new(view));
        });
        Ok(())
    }

    /// Sends a message; it shows as outgoing until the server has it.
    pub fn send(&self, room: &str, content: String) {
        // Noted before the client carries out the send: one refused at once
        // (the client closed, the room not joined, the queue full) settles
        // while `update` runs, and must show as failed, not vanish.
        self.update(|core, now| {
            let op = core.send(room, content.clone(), now);
            self.sends.update_value(|s| {
                s.insert(op, (room.to_owned(), content));
            });
        });
    }

    /// Sends a refused message again, as a new message.
    pub fn retry(&self, room: &str, op: u64) {
        let mut content = None;
        self.failed.update_value(|f| {
            if let Some(list) = f.get_mut(room) {
                content = list.iter().position(|o| o.op == op).map(|i| list.remove(i).content);
            }
        });
        if let Some(content) = content {
            self.send(room, content);
        }
    }

    /// Forgets a refused message.
    pub fn discard(&self, room: &str, op: u64) {
        self.failed.update_value(|f| {
            if let Some(list) = f.get_mut(room) {
                list.retain(|o| o.op != op);
            }
        });
        self.refresh(room);
    }

    /// Replaces the content of one of the user's messages.
    pub fn edit(&self, room: &str, id: String, content: String) {
        self.update(|core, now| core.edit(room, id, content, now));
    }

    /// Deletes one of the user's messages.
    pub fn delete(&self, room: &str, id: String) {
        self.update(|core, now| core.delete(room, id, now));
    }

    /// The user is typing (`true`) or stopped; throttled by the client.
    pub fn typing(&self, room: &str, is_typing: bool) {
        self.update(|core, now| core.typing(room, is_typing, now));
    }

    /// The user has seen `room` up to its latest message: clears its unread
    /// count and tells the others (once per message, and not at all when
    /// the room already has the user there, as after a reload).
    pub fn mark_read(&self, room: &str) {
        let me = self.user.with_untracked(|u| u.as_ref().map(|u| u.id.clone()));
        self.note_first_unread(room, me.as_deref());
        let (latest, unread, known) = self.rooms.with_untracked(|r| {
            r.get(room).map_or((None, false, None), |v| {
                let known = me.as_deref().and_then(|me| v.state.reads.get(me));
                let latest = v.state.messages.last().map(|m| m.id.clone());
                (latest, v.unread > 0, known.map(|r| r.id.clone()))
            })
        });
        if unread {
            self.edit_room(room, |v| v.unread = 0);
        }
        let Some(latest) = latest else { return };
        let fresh = known.as_ref() != Some(&latest)
            && self.marked.with_value(|m| m.get(room) != Some(&latest));
        if fresh && self.connectivity.with_untracked(|c| c.state == ConnectionState::Open) {
            self.marked.update_value(|m| {
                m.insert(room.to_owned(), latest.clone());
            });
            self.update(|core, _| core.mark_read(room, latest));
        }
    }

    /// Loads a page of older messages into `room`.
    pub fn load_older(&self, room: &str) {
        let (before, busy) = self.rooms.with_untracked(|r| {
            r.get(room).map_or((None, true), |v| {
                (v.state.messages.first().map(|m| m.offset), v.loading_older || !v.has_older)
            })
        });
        if busy {
            return;
        }
        let op = self.update(|core, _| core.history(room, before, Some(50)));
        self.pages.update_value(|p| {
            p.insert(op, room.to_owned());
        });
        self.edit_room(room, |v| v.loading_older = true);
    }

    /// Loads the next page of `room`'s members (a big room lists only its
    /// first page in `joined`); they join the room's members when they come.
    pub fn load_more_members(&self, room: &str) {
        let more = self
            .rooms
            .with_untracked(|r| r.get(room).is_some_and(|v| v.state.members_cursor.is_some()));
        if more {
            self.update(|core, _| core.members(room, Some(MEMBERS_PAGE)));
        }
    }

    /// Tries to reconnect at once instead of waiting for the next attempt
    /// (or again, after the client gave up).
    pub fn reconnect_now(&self) {
        self.update(|core, now| match core.state() {
            ConnectionState::Closed => core.connect(now),
            _ => core.wake(now),
        });
    }

    /// Sets the user's status, now and after every reconnect.
    pub fn set_status(&self, status: SetStatus) {
        self.update(|core, _| core.set_status(status, None));
    }

    /// Shows a notification of the app's own (a message in another room)
    /// with the server's.
    pub fn push_notification(&self, n: Notification) {
        self.notifications.update(|list| list.push(n));
    }

    /// Removes a notification from [`notifications`](Self::notifications).
    pub fn dismiss(&self, id: &str) {
        self.notifications.update(|n| n.retain(|n| n.id != id));
    }

    /// Changes what only the UI keeps of `room` (unread, paging, error).
    fn edit_room(&self, room: &str, f: impl FnOnce(&mut RoomView)) {
        self.rooms.update(|r| {
            if let Some(view) = r.get_mut(room) {
                f(Arc::make_mut(view));
            }
        });
    }

    fn update<R>(&self, f: impl FnOnce(&mut Core, u64) -> R) -> R {
        self.conn.with_value(|c| c.update(f))
    }

    /// What the connection reported.
    fn on_event(&self, event: &Event) {
        match event {
            Event::StateChanged(_) | Event::SnapshotChanged => self.sync_connection(),
            Event::RoomChanged(room) => self.refresh(room),
            Event::Room { room, kind: "message", payload } => {
                if let Ok(m) = serde_json::from_str::<ChatMessage>(payload) {
                    self.incoming(room, &m);
                }
            }
            Event::Room { room, kind: "error", payload } => {
                let message = serde_json::from_str::<RoomError>(payload)
                    .map_or_else(|_| payload.clone(), |e| e.message);
                self.edit_room(room, |v| v.error = Some(message));
            }
            Event::Notification(n) => self.notifications.update(|list| {
                if !list.iter().any(|x| x.id == n.id) {
                    list.push(n.clone());
                }
            }),
            Event::Settle { op, result } => self.settled(*op, result),
            Event::Error(e) => self.last_error.set(Some(e.message.clone())),
            _ => {}
        }
    }

    fn sync_connection(&self) {
        let (connectivity, user) = self.conn.with_value(|c| {
            let core = c.core();
            let connectivity = Connectivity {
                state: core.state(),
                attempts: core.attempts(),
                retry_at: core.retry_at(),
            };
            (connectivity, core.user().cloned())
        });
        if self.connectivity.get_untracked() != connectivity {
            self.connectivity.set(connectivity);
        }
        // The user stays known while reconnecting, so the page keeps its name.
        if user.is_some() && self.user.with_untracked(|u| *u != user) {
            self.user.set(user);
        }
        if connectivity.state == ConnectionState::Open {
            self.last_error.set(None);
        }
    }

    /// A message from the stream (live or recovered).
    fn incoming(&self, room: &str, m: &ChatMessage) {
        let mine = self.user.with_untracked(|u| u.as_ref().is_some_and(|u| u.id == m.sender.id));
        if mine {
            return;
        }
        self.edit_room(room, |v| v.unread += 1);
        let hooks = self.hooks.get_value();
        for hook in hooks {
            hook(m);
        }
    }

    fn settled(&self, op: u64, result: &Result<String, roomcast_client::ClientError>) {
        if let Some((room, content)) = self.sends.try_update_value(|s| s.remove(&op)).flatten() {
            // A settled send also changes its room, which refreshes it; only
            // a refusal adds what the refresh would not know.
            if let Err(e) = result {
                let failed = Outgoing { op, content, failed: Some(e.message.clone()) };
                self.failed.update_value(|f| f.entry(room.clone()).or_default().push(failed));
                self.refresh(&room);
            }
        } else if let Some(room) = self.pages.try_update_value(|p| p.remove(&op)).flatten() {
            let has_more =
                result.as_ref().ok().and_then(|text| serde_json::from_str::<Page>(text).ok());
            self.edit_room(&room, |v| {
                v.loading_older = false;
                // A failed request may be tried again; an answer says.
                v.has_older = has_more.is_none_or(|p| p.has_more);
            });
        }
    }

    /// Rebuilds `room`'s view from the client's state.
    fn refresh(&self, room: &str) {
        let failed = self.failed.with_value(|f| f.get(room).cloned().unwrap_or_default());
        let fresh = self.conn.with_value(|c| {
            let core = c.core();
            let state = core.room(room)?;
            let waiting = core.pending_sends(room).map(|pending| Outgoing {
                op: pending.op,
                content: pending.content.to_owned(),
                failed: None,
            });
            Some(RoomView {
                name: room.to_owned(),
                state: Arc::new(state.clone()),
                outgoing: waiting.chain(failed).collect(),
                ..RoomView::default()
            })
        });
        let Some(mut fresh) = fresh else { return };
        self.rooms.update(|r| {
            let Some(view) = r.get_mut(room) else { return };
            fresh.unread = view.unread;
            // A first join that loaded less than it asked for loaded everything.
            let first_load =
                fresh.state.joined && !view.state.joined && view.state.messages.is_empty();
            let complete = first_load && fresh.state.messages.len() < usize::from(self.history);
            fresh.has_older = view.has_older && !complete;
            fresh.loading_older = view.loading_older;
            fresh.error = if fresh.state.joined { None } else { view.error.clone() };
            fresh.first_unread = view.first_unread.clone();
            fresh.opening = view.opening;
            *view = Arc::new(fresh);
        });
    }
}

/// Members a "load more" asks for.
const MEMBERS_PAGE: u16 = 100;

/// Whether a room memo changed, without walking its messages: a refresh
/// replaces the room, and an edit copies it while anyone (such as this memo)
/// still holds it (`Arc::make_mut`), so whoever saw the old value sees a new
/// pointer.
fn room_changed(old: Option<&Option<Arc<RoomView>>>, new: Option<&Option<Arc<RoomView>>>) -> bool {
    match (old, new) {
        (Some(Some(old)), Some(Some(new))) => !Arc::ptr_eq(old, new),
        (Some(None), Some(None)) => false,
        _ => true,
    }
}

#[derive(Deserialize)]
struct RoomError {
    message: String,
}

#[derive(Deserialize)]
struct Page {
    has_more: bool,
}
