//! Who is in a room and how they are (online, away, busy, offline), with
//! the room's member count and "load more" for a big room's further pages,
//! and the picker for the user's own status.

use leptos::prelude::*;
use roomcast_shared::{Member, SetStatus, Status, UserInfo};

use crate::roomcast::expect_roomcast;

/// The word for a status, shown next to the coloured dot.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Online => "online",
        Status::Away => "away",
        Status::Busy => "busy",
        Status::Offline => "offline",
    }
}

/// The members of `room`, available ones first. With `on_message`, each
/// other member gets a "Message …" button (to open a direct conversation),
/// except in a direct conversation already.
#[component]
pub fn PresenceList(
    #[prop(into)] room: Signal<String>,
    #[prop(optional)] on_message: Option<Callback<UserInfo>>,
) -> impl IntoView {
    let rc = expect_roomcast();
    let view = rc.room(move || room.get());
    let members = move || {
        let mut members: Vec<Member> =
            view.get().map(|v| v.state.members.clone()).unwrap_or_default();
        members.sort_by_key(|m| m.presence.status == Status::Offline);
        members
    };
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    let count = move || view.get().map_or(0, |v| v.state.member_count);
    let more = move || view.get().is_some_and(|v| v.state.members_cursor.is_some());
    let load_more = move |_| rc.load_more_members(&room.get_untracked());
    view! {
        <p class="people-count" data-testid="member-count">
            {move || match count() {
                1 => "1 member".to_owned(),
                n => format!("{n} members"),
            }}
        </p>
        <ul class="people">
            <For
                each=members
                key=move |m| (room.get_untracked(), m.user.id.clone(), m.presence.status)
                children=move |m| {
                    let word = status_word(m.presence.status);
                    let user = m.user.clone();
                    let is_me = me() == user.id;
                    let direct = room.get_untracked().starts_with("dm:");
                    let custom = m.presence.custom.clone();
                    view! {
                        <li class=format!("person status-{word}")>
                            <span class="dot" aria-hidden="true"></span>
                            <span class="person-name">
                                {user.name.clone()}
                                {is_me.then_some(" (you)")}
                            </span>
                            <span class="person-status">{word}{custom.map(|c| format!(" · {c}"))}</span>
                            {(!is_me && !direct)
                                .then_some(on_message)
                                .flatten()
                                .map(|f| {
                                    let label = format!("Message {}", user.name);
                                    let user = user.clone();
                                    view! {
                                        <button
                                            class="icon dm-button"
                                            title=label.clone()
                                            aria-label=label
                                            on:click=move |_| f.run(user.clone())
                                        >
                                            "✉"
                                        </button>
                                    }
                                })}
                        </li>
                    }
                }
            />
        </ul>
        <Show when=more>
            <button class="load-more-members" on:click=load_more>
                "Load more"
            </button>
        </Show>
    }
}

/// A select for the user's status; the choice is kept across reconnects.
#[component]
pub fn StatusPicker() -> impl IntoView {
    let rc = expect_roomcast();
    let chosen = RwSignal::new("online".to_owned());
    let on_change = move |ev| {
        let value = event_target_value(&ev);
        let status = match value.as_str() {
            "away" => SetStatus::Away,
            "busy" => SetStatus::Busy,
            "invisible" => SetStatus::Invisible,
            _ => SetStatus::Online,
        };
        chosen.set(value);
        rc.set_status(status);
    };
    view! {
        <label class="status-picker">
            <span class="visually-hidden">"Status"</span>
            <select on:change=on_change prop:value=move || chosen.get()>
                <option value="online">"Online"</option>
                <option value="away">"Away"</option>
                <option value="busy">"Busy"</option>
                <option value="invisible">"Invisible"</option>
            </select>
        </label>
    }
}
