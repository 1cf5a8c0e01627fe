//! The demo app: sign in with a display name, then chat in public rooms and
//! direct conversations, with unread counts, toasts and browser
//! notifications for rooms that are not open.

use std::collections::BTreeSet;

use leptos::prelude::*;
use roomcast_client::ConnectionState;
use roomcast_shared::{ChatMessage, Notification, RoomName, Status, UserInfo};
use time::OffsetDateTime;
use web_sys::{NotificationOptions, NotificationPermission};

use crate::theme::ThemeToggle;
use crate::{dev, storage};
use roomcast_ui::components::{
    Chat, ConnectionBadge, NotificationToasts, PresenceList, ReconnectBanner, RoomList,
    StatusPicker, room_label,
};
use roomcast_ui::{Roomcast, use_roomcast};

const NAME_KEY: &str = "roomcast.name";
const ROOMS_KEY: &str = "roomcast.rooms";
/// The rooms everyone starts in.
const DEFAULT_ROOMS: [&str; 2] = ["general", "random"];
/// Most direct conversations joined ahead of time (with members seen
/// online), so that a first message to the user arrives; the server limits
/// joins per second.
const MAX_PREJOINED_DMS: usize = 6;

/// The demo: the sign-in form, then the chat.
#[component]
pub fn App() -> impl IntoView {
    let name = RwSignal::new(storage::load(NAME_KEY));
    view! {
        <Show
            when=move || name.get().is_some()
            fallback=move || view! { <SignIn name=name /> }
        >
            <Workspace name=name />
        </Show>
    }
}

/// The sign-in form: a display name, checked by asking for a token.
#[component]
fn SignIn(name: RwSignal<Option<String>>) -> impl IntoView {
    let input = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let chosen = input.get_untracked().trim().to_owned();
        if chosen.is_empty() {
            error.set(Some("Enter a name to sign in.".into()));
            return;
        }
        ask_notification_permission();
        busy.set(true);
        leptos::task::spawn_local(async move {
            match dev::token(chosen.clone()).await {
                Ok(_) => {
                    storage::save(NAME_KEY, Some(&chosen));
                    name.set(Some(chosen));
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="sign-in">
            <form on:submit=submit>
                <h1>"Roomcast"</h1>
                <p>"Real-time rooms, chat and presence. Pick a name to start."</p>
                <label for="display-name">"Display name"</label>
                <input
                    id="display-name"
                    autocomplete="nickname"
                    maxlength="64"
                    autofocus
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    aria-invalid=move || error.get().is_some().then_some("true")
                    aria-describedby="sign-in-error"
                />
                <p id="sign-in-error" class="error" role="alert">
                    {move || error.get()}
                </p>
                <button type="submit" disabled=move || busy.get()>"Sign in"</button>
            </form>
        </main>
    }
}

/// The signed-in app: header, rooms, the open conversation, people.
#[component]
fn Workspace(name: RwSignal<Option<String>>) -> impl IntoView {
    let display = name.get_untracked().unwrap_or_default();
    let rc = use_roomcast(dev::socket_url(), move || dev::token(display.clone()));

    let rooms = RwSignal::new(stored_rooms());
    let active = RwSignal::new(DEFAULT_ROOMS[0].to_owned());
    let opened_dms = RwSignal::new(BTreeSet::<String>::new());
    let show_people = RwSignal::new(false);
    for room in rooms.get_untracked() {
        let _ = rc.join(&room);
    }
    let me = move || rc.user().get().map(|u| u.id);

    // The open room is read while the page is visible, and its toasts are
    // no longer news. Opening it first notes where its unread messages
    // begin (the "New messages" divider).
    let open_room = rc.room(move || active.get());
    Effect::new(move |opened: Option<String>| {
        let _ = open_room.get();
        let room = active.get_untracked();
        if opened.as_ref() != Some(&room) {
            rc.open(&room);
        }
        if !is_hidden() {
            rc.mark_read(&room);
        }
        let about_room = rc.notifications().with_untracked(|list| {
            list.iter()
                .filter(|n| n.data.get("room").and_then(|r| r.as_str()) == Some(room.as_str()))
                .map(|n| n.id.clone())
                .collect::<Vec<_>>()
        });
        for id in about_room {
            rc.dismiss(&id);
        }
        room
    });
    let on_visible = window_event_listener(leptos::ev::visibilitychange, move |_| {
        if !is_hidden() {
            rc.mark_read(&active.get_untracked());
        }
    });
    on_cleanup(move || on_visible.remove());

    // Messages elsewhere (or while the page is hidden) become toasts and
    // browser notifications.
    rc.on_message(move |m| {
        let open = m.room.as_str() == active.get_untracked();
        if open && !is_hidden() {
            return;
        }
        if !open {
            toast(rc, m);
        }
        if is_hidden() {
            browser_notification(m);
        }
    });

    // A direct conversation arrives only in a joined room: join those with
    // the people seen online, so their first message shows up. (A memo, so
    // that the joins are looked at when that set changes, not per message.)
    let online_others = Memo::new(move |_| {
        let me = me().unwrap_or_default();
        rc.rooms().with(|r| {
            // Enough joined already: nothing to look at.
            if r.keys().filter(|n| n.starts_with("dm:")).count() >= MAX_PREJOINED_DMS {
                return BTreeSet::new();
            }
            r.iter()
                .filter(|(name, _)| !name.starts_with("dm:"))
                .flat_map(|(_, v)| v.state.members.iter())
                .filter(|m| m.user.id != me && m.presence.status != Status::Offline)
                .map(|m| m.user.id.clone())
                .collect::<BTreeSet<String>>()
        })
    });
    Effect::new(move |_| {
        let others = online_others.get();
        let Some(me) = me() else { return };
        let joined =
            rc.rooms().with_untracked(|r| r.keys().filter(|n| n.starts_with("dm:")).count());
        for other in others.into_iter().take(MAX_PREJOINED_DMS.saturating_sub(joined)) {
            if let Ok(dm) = RoomName::direct(&me, &other) {
                let _ = rc.join(dm.as_str());
            }
        }
    });

    let open_dm = Callback::new(move |user: UserInfo| {
        let Some(me) = me() else { return };
        let Ok(dm) = RoomName::direct(&me, &user.id) else { return };
        if rc.join(dm.as_str()).is_ok() {
            opened_dms.update(|o| {
                o.insert(dm.to_string());
            });
            active.set(dm.to_string());
            show_people.set(false);
        }
    });
    // Public rooms first, then conversations that have something in them.
    let nav_rooms = Signal::derive(move || {
        let mut list = rooms.get();
        let dms: Vec<String> = rc.rooms().with(|r| {
            r.iter()
                .filter(|(name, v)| {
                    name.starts_with("dm:")
                        && (!v.state.messages.is_empty() || opened_dms.with(|o| o.contains(*name)))
                })
                .map(|(name, _)| name.clone())
                .collect()
        });
        list.extend(dms);
        list
    });
    let title = move || {
        let me = me().unwrap_or_default();
        rc.rooms().with(|r| room_label(&active.get(), &me, r))
    };
    // Online means what the member list says: away, busy and invisible
    // (shown as offline) people are not counted.
    let online_count = move || {
        let room = active.get();
        rc.rooms().with(|r| {
            r.get(&room).map_or(0, |v| {
                v.state.members.iter().filter(|m| m.presence.status == Status::Online).count()
            })
        })
    };
    let sign_out = move |_| {
        storage::save(NAME_KEY, None);
        name.set(None);
    };
    let open_toast = Callback::new(move |n: Notification| {
        if let Some(room) = n.data.get("room").and_then(|r| r.as_str()) {
            active.set(room.to_owned());
        }
        rc.dismiss(&n.id);
    });

    view! {
        // While disconnected, presence is only the last known: shown dimmed.
        <div
            class="app"
            class:people-open=move || show_people.get()
            class:disconnected=move || rc.connectivity().get().state != ConnectionState::Open
        >
            <header class="top">
                <span class="brand">"Roomcast"</span>
                <ConnectionBadge />
                <span class="spacer"></span>
                <span class="me">{move || rc.user().get().map(|u| u.name)}</span>
                <StatusPicker />
                <ThemeToggle />
                <button class="sign-out" on:click=sign_out>"Sign out"</button>
            </header>
            <ReconnectBanner />
            <nav class="sidebar" aria-label="Rooms">
                <RoomList selected=active rooms=nav_rooms />
                <JoinRoom rooms=rooms active=active />
            </nav>
            <main class="conversation">
                <div class="room-header">
                    <h2>{title}</h2>
                    <span class="member-count">{move || format!("{} online", online_count())}</span>
                    <button
                        class="people-toggle"
                        aria-expanded=move || show_people.get().to_string()
                        aria-controls="people"
                        on:click=move |_| show_people.update(|s| *s = !*s)
                    >
                        "People"
                    </button>
                </div>
                <Chat room=active />
            </main>
            <aside id="people" class="people-panel" aria-label="People">
                <h2>"People"</h2>
                <PresenceList room=active on_message=open_dm />
            </aside>
            <NotificationToasts on_open=open_toast />
        </div>
    }
}

/// The form to join a public room by name, creating it if nobody has yet.
#[component]
fn JoinRoom(rooms: RwSignal<Vec<String>>, active: RwSignal<String>) -> impl IntoView {
    let rc = roomcast_ui::expect_roomcast();
    let input = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = input.get_untracked().trim().trim_start_matches('#').to_owned();
        if let Err(e) = public_room(&name).and_then(|()| rc.join(&name)) {
            error.set(Some(e));
            return;
        }
        rooms.update(|r| {
            if !r.contains(&name) {
                r.push(name.clone());
            }
        });
        storage::save(ROOMS_KEY, Some(&rooms.get_untracked().join(" ")));
        active.set(name);
        input.set(String::new());
        error.set(None);
    };
    view! {
        <form class="join" on:submit=submit>
            <label for="join-room">"Join or create a room"</label>
            <div class="join-row">
                <input
                    id="join-room"
                    placeholder="room-name"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    aria-describedby="join-error"
                />
                <button type="submit">"Join"</button>
            </div>
            <p id="join-error" class="error" role="alert">{move || error.get()}</p>
        </form>
    }
}

/// Whether `name` is a public room a user may pick here.
fn public_room(name: &str) -> Result<(), String> {
    let room = RoomName::new(name).map_err(|e| e.to_string())?;
    if room.as_str().contains(':') || room.as_str() == "admin" {
        return Err("Pick a public room name (letters, digits, dots, dashes).".into());
    }
    Ok(())
}

fn stored_rooms() -> Vec<String> {
    let mut rooms: Vec<String> = DEFAULT_ROOMS.map(str::to_owned).to_vec();
    for room in storage::load(ROOMS_KEY).unwrap_or_default().split_whitespace() {
        if public_room(room).is_ok() && !rooms.iter().any(|r| r == room) {
            rooms.push(room.to_owned());
        }
    }
    rooms
}

/// A title for a message elsewhere: "Bob in #general", or "Bob" for a
/// direct message.
fn message_title(m: &ChatMessage) -> String {
    if m.room.as_str().starts_with("dm:") {
        m.sender.name.clone()
    } else {
        format!("{} in #{}", m.sender.name, m.room.as_str())
    }
}

/// A toast for a message in a room that is not open.
fn toast(rc: Roomcast, m: &ChatMessage) {
    let now = js_sys::Date::now() as i128 * 1_000_000;
    rc.push_notification(Notification {
        id: format!("message-{}", m.id),
        title: message_title(m),
        body: m.content.clone(),
        data: serde_json::json!({ "room": m.room.as_str() }),
        created_at: OffsetDateTime::from_unix_timestamp_nanos(now)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    });
}

fn ask_notification_permission() {
    if web_sys::Notification::permission() == NotificationPermission::Default {
        let _ = web_sys::Notification::request_permission();
    }
}

/// A system notification, when the user allowed them.
fn browser_notification(m: &ChatMessage) {
    if web_sys::Notification::permission() != NotificationPermission::Granted {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(&m.content);
    options.set_tag(m.room.as_str());
    let _ = web_sys::Notification::new_with_options(&message_title(m), &options);
}

fn is_hidden() -> bool {
    document().hidden()
}
