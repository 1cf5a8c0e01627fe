//! The rooms to switch between, with unread counts.

use leptos::prelude::*;

use crate::roomcast::{Rooms, expect_roomcast};

/// What a room is called on screen.
pub enum RoomTitle {
    /// A public room, by its name.
    Public(String),
    /// A direct conversation, by the other user's name (from any room that
    /// lists them).
    Direct(String),
}

/// The title of `room` as `me` sees it.
pub fn room_title(room: &str, me: &str, rooms: &Rooms) -> RoomTitle {
    let Some(pair) = room.strip_prefix("dm:") else { return RoomTitle::Public(room.to_owned()) };
    let other = pair.split(',').find(|id| *id != me).unwrap_or(me);
    let name = rooms
        .values()
        .flat_map(|v| v.state.members.iter())
        .find(|m| m.user.id == other)
        .map_or(other, |m| m.user.name.as_str());
    RoomTitle::Direct(name.to_owned())
}

/// How a room is named on screen: "# general" for public rooms, "@ Bob"
/// for a direct conversation.
pub fn room_label(room: &str, me: &str, rooms: &Rooms) -> String {
    match room_title(room, me, rooms) {
        RoomTitle::Public(name) => format!("# {name}"),
        RoomTitle::Direct(name) => format!("@ {name}"),
    }
}

/// A button per room; the selected one is marked as current. `rooms` picks
/// which rooms, in order (every joined room but the personal one when
/// absent).
#[component]
pub fn RoomList(
    selected: RwSignal<String>,
    #[prop(optional, into)] rooms: Option<Signal<Vec<String>>>,
) -> impl IntoView {
    let rc = expect_roomcast();
    let names = move || match rooms {
        Some(rooms) => rooms.get(),
        None => {
            rc.rooms().with(|r| r.keys().filter(|n| !n.starts_with("user:")).cloned().collect())
        }
    };
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    view! {
        <ul class="room-list">
            <For
                each=names
                key=|name| name.clone()
                children=move |name| {
                    let room = name.clone();
                    let label = {
                        let room = room.clone();
                        move || rc.rooms().with(|r| room_label(&room, &me(), r))
                    };
                    let unread = Memo::new({
                        let room = room.clone();
                        move |_| rc.rooms().with(|r| r.get(&room).map_or(0, |v| v.unread))
                    });
                    let current = {
                        let room = room.clone();
                        move || (selected.get() == room).then_some("page")
                    };
                    view! {
                        <li>
                            <button
                                class="room"
                                aria-current=current
                                on:click=move |_| selected.set(name.clone())
                            >
                                <span class="room-name">{label}</span>
                                <Show when=move || { unread.get() > 0 }>
                                    <span class="unread" aria-label=move || format!("{} unread", unread.get())>
                                        {move || unread.get()}
                                    </span>
                                </Show>
                            </button>
                        </li>
                    }
                }
            />
        </ul>
    }
}
