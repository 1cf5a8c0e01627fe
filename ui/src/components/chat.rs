//! A room's conversation: the message list (history on scroll, a sender's
//! consecutive messages grouped, outgoing messages with their state, edit
//! and delete, read receipts, the "New messages" divider) and the composer.

use leptos::html;
use leptos::prelude::*;
use roomcast_shared::ChatMessage;
use time::{Duration, OffsetDateTime};

use super::message::{DeletedMessage, MAX_CHARS, Message, Pending};
use super::room_list::{RoomTitle, room_title};
use super::typing::TypingIndicator;
use crate::roomcast::expect_roomcast;

/// How close to the top (in pixels) scrolling loads older messages, and how
/// close to the bottom counts as "reading the latest".
const SCROLL_MARGIN: i32 = 48;
/// How close in time a sender's next message must follow for the two to
/// show as one group (one avatar and name).
const GROUP_WITHIN: Duration = Duration::minutes(5);

/// Where the "New messages" divider is in `log`'s scrolled content, if shown.
fn divider_top(log: &web_sys::HtmlDivElement) -> Option<i32> {
    let divider = log.query_selector(".unread-divider").ok()??;
    let offset = divider.get_bounding_client_rect().top() - log.get_bounding_client_rect().top();
    Some(log.scroll_top() + offset as i32)
}

/// The message list, typing indicator and composer of `room`. `locale` (a
/// BCP 47 tag such as "de-CH") formats dates; the browser's language when
/// absent.
#[component]
pub fn Chat(
    #[prop(into)] room: Signal<String>,
    #[prop(optional, into)] locale: Option<Signal<String>>,
) -> impl IntoView {
    view! {
        <div class="chat">
            <MessageList room=room locale=locale.unwrap_or_default() />
            <TypingIndicator room=room />
            <Composer room=room />
        </div>
    }
}

/// The messages of `room`, oldest at the top; scrolling up loads older ones.
/// Dates are formatted for `locale` (the browser's language when empty).
#[component]
pub fn MessageList(
    #[prop(into)] room: Signal<String>,
    #[prop(optional, into)] locale: Signal<String>,
) -> impl IntoView {
    let rc = expect_roomcast();
    let view = rc.room(move || room.get());
    let me = move || rc.user().get().map(|u| u.id).unwrap_or_default();
    let editing = RwSignal::new(None::<String>);
    let log = NodeRef::<html::Div>::new();

    let label = move || match rc.rooms().with(|r| room_title(&room.get(), &me(), r)) {
        RoomTitle::Direct(name) => format!("Messages with {name}"),
        RoomTitle::Public(name) => format!("Messages in #{name}"),
    };
    let rows = move || {
        view.with(|v| {
            v.as_ref().map_or_else(Vec::new, |v| rows(&v.state.messages, v.first_unread.as_deref()))
        })
    };
    let outgoing = move || view.get().map(|v| v.outgoing.clone()).unwrap_or_default();
    let has_older = move || view.get().is_some_and(|v| v.has_older && !v.state.messages.is_empty());
    let loading = move || view.get().is_some_and(|v| v.loading_older);
    // The newest message of the user's own: where "Sent" / "Seen by" shows.
    let last_own = Memo::new(move |_| {
        let me = me();
        view.get().and_then(|v| {
            let own = v.state.messages.iter().rev().find(|m| m.sender.id == me && !m.deleted);
            own.map(|m| m.id.clone())
        })
    });

    // Opening a room with unread messages shows where they begin (the
    // divider near the top); otherwise keep the bottom in view as messages
    // arrive, unless the user scrolled up to read; keep the reading position
    // when older messages are prepended. (The room, the list's height, its
    // first message at the last update, and whether the divider was placed.)
    let anchor = StoredValue::new((String::new(), 0, String::new(), false));
    Effect::new(move |_| {
        let (first, unread) = view.with(|v| {
            let v = v.as_ref();
            let first = v.and_then(|v| v.state.messages.first().map(|m| m.id.clone()));
            (first, v.is_some_and(|v| v.first_unread.is_some()))
        });
        let room = room.get();
        let Some(el) = log.get() else { return };
        let (old_room, old_height, old_first, placed) = anchor.get_value();
        let height = el.scroll_height();
        let switched = room != old_room;
        let mut placed = placed && !switched;
        let prepended = !switched && !old_first.is_empty() && first.as_ref() != Some(&old_first);
        let near_bottom = old_height - el.scroll_top() - el.client_height() < SCROLL_MARGIN * 4;
        let divider = if placed || !unread { None } else { divider_top(&el) };
        if let Some(top) = divider {
            el.set_scroll_top(top - SCROLL_MARGIN);
            placed = true;
        } else if prepended && el.scroll_top() < SCROLL_MARGIN * 4 {
            el.set_scroll_top(el.scroll_top() + height - old_height);
        } else if switched || near_bottom {
            el.set_scroll_top(height);
        }
        anchor.set_value((room, height, first.unwrap_or_default(), placed));
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
                each=rows
                key=Row::key
                children=move |row| match row {
                    Row::Message { message, continued, divider } => view! {
                        {divider.then(|| view! {
                            <div class="unread-divider" role="separator" aria-label="New messages">
                                <span>"New messages"</span>
                            </div>
                        })}
                        <Message
                            message=message
                            continued=continued
                            room=room
                            view=view
                            editing=editing
                            last_own=last_own
                            locale=locale
                        />
                    }
                    .into_any(),
                    Row::Deleted(trace) => view! { <DeletedMessage trace=trace locale=locale /> }.into_any(),
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

/// A line of the message list.
#[derive(Clone)]
enum Row {
    /// A message; `continued` when it joins the group of the sender's
    /// message before it, `divider` when the unread messages begin here.
    Message { message: ChatMessage, continued: bool, divider: bool },
    /// What a deleted message left.
    Deleted(ChatMessage),
}

impl Row {
    /// What identifies a row's view: a new one is drawn when it changes.
    fn key(&self) -> (String, Option<OffsetDateTime>, bool, bool) {
        match self {
            Row::Message { message, continued, divider } => {
                (message.id.clone(), message.edited_at, *continued, *divider)
            }
            Row::Deleted(trace) => (format!("deleted {}", trace.id), None, false, false),
        }
    }
}

/// The rows of a room: its messages, each deleted one as the trace it
/// left; a message continues its sender's group when it follows one of
/// theirs within [`GROUP_WITHIN`] with nothing between.
fn rows(messages: &[ChatMessage], first_unread: Option<&str>) -> Vec<Row> {
    let mut out = Vec::with_capacity(messages.len());
    let mut before: Option<&ChatMessage> = None;
    for m in messages {
        if m.deleted {
            out.push(Row::Deleted(m.clone()));
            before = None;
            continue;
        }
        let divider = first_unread == Some(m.id.as_str());
        let continued = !divider
            && before.is_some_and(|b| {
                b.sender.id == m.sender.id && m.created_at - b.created_at <= GROUP_WITHIN
            });
        out.push(Row::Message { message: m.clone(), continued, divider });
        before = Some(m);
    }
    out
}

/// The text field and send button of `room`. Enter sends, Shift+Enter adds
/// a line; typing is announced to the room (throttled by the client). When
/// another room is opened, the field takes the focus.
#[component]
pub fn Composer(#[prop(into)] room: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let text = RwSignal::new(String::new());
    let input = NodeRef::<html::Textarea>::new();
    Effect::new(move |opened: Option<String>| {
        let now = room.get();
        if opened.is_some_and(|before| before != now)
            && let Some(el) = input.get_untracked()
        {
            let _ = el.focus();
        }
        now
    });
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
                node_ref=input
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
