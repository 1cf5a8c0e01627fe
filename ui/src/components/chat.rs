//! A room's conversation: the message list (history on scroll, outgoing
//! messages with their state, edit and delete, read receipts) and the
//! composer.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;
use roomcast_shared::ChatMessage;
use time::OffsetDateTime;

use super::attachments::Attachments;
use super::room_list::{RoomTitle, room_title};
use super::typing::TypingIndicator;
use crate::roomcast::{Outgoing, RoomView, expect_roomcast};

/// How close to the top (in pixels) scrolling loads older messages, and how
/// close to the bottom counts as "reading the latest".
const SCROLL_MARGIN: i32 = 48;
/// Longest message the composer accepts, in characters (the server's default
/// limit is 4 KiB).
const MAX_CHARS: u32 = 4000;

/// The message list, typing indicator and composer of `room`.
#[component]
pub fn Chat(#[prop(into)] room: Signal<String>) -> impl IntoView {
    view! {
        <div class="chat">
            <MessageList room=room />
            <TypingIndicator room=room />
            <Composer room=room />
        </div>
    }
}

/// The messages of `room`, oldest at the top; scrolling up loads older ones.
#[component]
pub fn MessageList(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let view = rc.room(move || room.get());
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    let editing = RwSignal::new(None::<String>);
    let log = NodeRef::<html::Div>::new();

    let label = move || match rc.rooms().with(|r| room_title(&room.get(), &me(), r)) {
        RoomTitle::Direct(name) => format!("Messages with {name}"),
        RoomTitle::Public(name) => format!("Messages in #{name}"),
    };
    let messages = move || view.get().map(|v| v.state.messages.clone()).unwrap_or_default();
    let outgoing = move || view.get().map(|v| v.outgoing.clone()).unwrap_or_default();
    let has_older = move || view.get().is_some_and(|v| v.has_older && !v.state.messages.is_empty());
    let loading = move || view.get().is_some_and(|v| v.loading_older);
    // The newest message of the user's own: where "Sent" / "Seen by" shows.
    let last_own = Memo::new(move |_| {
        let me = me();
        view.get().and_then(|v| {
            v.state.messages.iter().rev().find(|m| m.sender.id == me).map(|m| m.id.clone())
        })
    });

    // Keep the bottom in view as messages arrive, unless the user scrolled up
    // to read; keep the reading position when older messages are prepended.
    // (The room, the list's height and its first message at the last update.)
    let anchor = StoredValue::new((String::new(), 0, String::new()));
    Effect::new(move |_| {
        let first =
            view.with(|v| v.as_ref().and_then(|v| v.state.messages.first().map(|m| m.id.clone())));
        let room = room.get();
        let Some(el) = log.get() else { return };
        let (old_room, old_height, old_first) = anchor.get_value();
        let height = el.scroll_height();
        let switched = room != old_room;
        let prepended = !switched && !old_first.is_empty() && first.as_ref() != Some(&old_first);
        let near_bottom = old_height - el.scroll_top() - el.client_height() < SCROLL_MARGIN * 4;
        if prepended && el.scroll_top() < SCROLL_MARGIN * 4 {
            el.set_scroll_top(el.scroll_top() + height - old_height);
        } else if switched || near_bottom {
            el.set_scroll_top(height);
        }
        anchor.set_value((room, height, first.unwrap_or_default()));
    });
    let on_scroll = move |_| {
        if let Some(el) = log.get()
            && el.scroll_top() < SCROLL_MARGIN
            && has_older()
        {
            rc.load_older(&room.get_untracked());
        }
    };

    view! {
        <div
            class="messages"
            role="log"
            aria-label=label
            aria-live="polite"
            tabindex="0"
            node_ref=log
            on:scroll=on_scroll
        >
            <Show when=has_older>
                <button
                    class="load-older"
                    disabled=loading
                    on:click=move |_| rc.load_older(&room.get_untracked())
                >
                    {move || if loading() { "Loading…" } else { "Load older messages" }}
                </button>
            </Show>
            <Show when=move || view.get().is_some_and(|v| v.state.messages.is_empty() && v.outgoing.is_empty() && v.state.joined)>
                <p class="empty">"No messages yet. Say hello!"</p>
            </Show>
            <Show when=move || view.with(|v| v.as_ref().is_some_and(|v| v.error.is_some()))>
                <p class="room-error" role="alert">
                    {move || view.get().and_then(|v| v.error.clone()).unwrap_or_default()}
                </p>
            </Show>
            <For
                each=messages
                key=|m| (m.id.clone(), m.edited_at)
                children=move |m| {
                    view! { <Message message=m room=room view=view editing=editing last_own=last_own /> }
                }
            />
            <For
                each=outgoing
                key=|o| (o.op, o.failed.is_some())
                children=move |o| view! { <Pending outgoing=o room=room /> }
            />
        </div>
    }
}

/// One delivered message.
#[component]
fn Message(
    message: ChatMessage,
    room: Signal<String>,
    view: Memo<Option<Arc<RoomView>>>,
    editing: RwSignal<Option<String>>,
    last_own: Memo<Option<String>>,
) -> impl IntoView {
    let rc = expect_roomcast();
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    let sender_id = message.sender.id.clone();
    let mine = Signal::derive(move || me() == sender_id);
    let id = message.id.clone();
    let is_editing = {
        let id = id.clone();
        move || editing.get().as_ref() == Some(&id)
    };
    let receipt = {
        let id = id.clone();
        move || {
            if last_own.get().as_ref() != Some(&id) {
                return None;
            }
            let me = me();
            let names: Vec<String> = view.with(|v| {
                v.as_ref()
                    .map(|v| {
                        v.seen_by(&id, &me).into_iter().map(|u| v.name_of(u).to_owned()).collect()
                    })
                    .unwrap_or_default()
            });
            Some(if names.is_empty() {
                "Sent".to_owned()
            } else {
                format!("Seen by {}", names.join(", "))
            })
        }
    };
    let sender = message.sender.name.clone();
    let initial = sender.chars().next().unwrap_or('?').to_uppercase().to_string();
    let content = message.content.clone();
    let data = message.data.clone();
    let (edit_id, delete_id) = (id.clone(), id.clone());
    view! {
        <article class="message" class:own=mine aria-label=format!("Message from {sender}")>
            <span class="avatar" aria-hidden="true">{initial}</span>
            <div class="bubble">
                <header>
                    <span class="author">{sender.clone()}</span>
                    <time datetime=iso(message.created_at) title=iso(message.created_at)>
                        {clock(message.created_at)}
                    </time>
                    {message.edited_at.map(|_| view! { <span class="edited">"edited"</span> })}
                </header>
                <Show
                    when=is_editing.clone()
                    fallback=move || {
                        (!content.is_empty())
                            .then(|| view! { <p class="content">{content.clone()}</p> })
                    }
                >
                    <EditBox
                        room=room
                        id=id.clone()
                        initial=message.content.clone()
                        editing=editing
                    />
                </Show>
                <Attachments data=data />
                <footer>
                    <span class="status">{receipt}</span>
                    <Show when=move || mine.get() && !is_editing()>
                        <span class="actions">
                            <button on:click={
                                let id = edit_id.clone();
                                move |_| editing.set(Some(id.clone()))
                            }>"Edit"</button>
                            <button on:click={
                                let id = delete_id.clone();
                                move |_| rc.delete(&room.get_untracked(), id.clone())
                            }>"Delete"</button>
                        </span>
                    </Show>
                </footer>
            </div>
        </article>
    }
}

/// The edit field that replaces a message's content while editing it.
#[component]
fn EditBox(
    room: Signal<String>,
    id: String,
    initial: String,
    editing: RwSignal<Option<String>>,
) -> impl IntoView {
    let rc = expect_roomcast();
    let text = RwSignal::new(initial.clone());
    let input = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let save = move || {
        let content = text.get_untracked().trim().to_owned();
        if !content.is_empty() && content != initial {
            rc.edit(&room.get_untracked(), id.clone(), content);
        }
        editing.set(None);
    };
    let save_key = save.clone();
    view! {
        <div class="edit">
            <label class="visually-hidden" for="edit-message">"Edit message"</label>
            <textarea
                id="edit-message"
                node_ref=input
                rows="2"
                maxlength=MAX_CHARS
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev| match ev.key().as_str() {
                    "Enter" if !ev.shift_key() => {
                        ev.prevent_default();
                        save_key();
                    }
                    "Escape" => editing.set(None),
                    _ => {}
                }
            ></textarea>
            <button on:click=move |_| save()>"Save"</button>
            <button on:click=move |_| editing.set(None)>"Cancel"</button>
        </div>
    }
}

/// A message of the user's that the server does not have yet, or refused.
#[component]
fn Pending(outgoing: Outgoing, room: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let name = rc.user().get_untracked().map(|u| u.name).unwrap_or_default();
    let initial = name.chars().next().unwrap_or('?').to_uppercase().to_string();
    let op = outgoing.op;
    let status = match &outgoing.failed {
        None => view! { <span class="status">"Sending…"</span> }.into_any(),
        Some(why) => view! {
            <span class="status failed" title=why.clone()>"Failed"</span>
            <span class="actions visible">
                <button on:click=move |_| rc.retry(&room.get_untracked(), op)>"Retry"</button>
                <button on:click=move |_| rc.discard(&room.get_untracked(), op)>"Discard"</button>
            </span>
        }
        .into_any(),
    };
    view! {
        <article
            class="message own"
            class:pending=outgoing.failed.is_none()
            class:failed=outgoing.failed.is_some()
            aria-label=format!("Message from {name}")
        >
            <span class="avatar" aria-hidden="true">{initial}</span>
            <div class="bubble">
                <header>
                    <span class="author">{name.clone()}</span>
                </header>
                <p class="content">{outgoing.content.clone()}</p>
                <footer>{status}</footer>
            </div>
        </article>
    }
}

/// The text field and send button of `room`. Enter sends, Shift+Enter adds
/// a line; typing is announced to the room (throttled by the client).
#[component]
pub fn Composer(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let text = RwSignal::new(String::new());
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    let label = move || match rc.rooms().with(|r| room_title(&room.get(), &me(), r)) {
        RoomTitle::Direct(name) => format!("Message {name}"),
        RoomTitle::Public(name) => format!("Message #{name}"),
    };
    let send = move || {
        let content = text.get_untracked().trim().to_owned();
        if content.is_empty() {
            return;
        }
        let room = room.get_untracked();
        rc.typing(&room, false);
        rc.send(&room, content);
        text.set(String::new());
    };
    let on_input = move |ev| {
        let value = event_target_value(&ev);
        rc.typing(&room.get_untracked(), !value.trim().is_empty());
        text.set(value);
    };
    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <label class="visually-hidden" for="composer">{label}</label>
            <textarea
                id="composer"
                rows="1"
                maxlength=MAX_CHARS
                placeholder=label
                prop:value=move || text.get()
                on:input=on_input
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <button type="submit" disabled=move || text.get().trim().is_empty()>"Send"</button>
        </form>
    }
}

/// A time of day in the browser's time zone, like "14:05".
fn clock(t: OffsetDateTime) -> String {
    let ms = (t.unix_timestamp_nanos() / 1_000_000) as f64;
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// RFC 3339, for `<time datetime>`.
fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
