//! One message as the list shows it: a delivered message (grouped under its
//! sender's header when it follows theirs, links clickable, edit and delete
//! with a confirmation), one of the user's still on its way or refused, and
//! the placeholder a deleted message leaves.

use std::sync::Arc;

use leptos::html;
use leptos::prelude::*;
use roomcast_shared::ChatMessage;
use time::OffsetDateTime;

use super::attachments::Attachments;
use super::format::{Segment, avatar_hue, clock, human_time, iso, segments};
use crate::roomcast::{Outgoing, RoomView, expect_roomcast};

/// Longest message the composer and the edit box accept, in characters (the
/// server's default limit is 4 KiB).
pub(crate) const MAX_CHARS: u32 = 4000;

/// One delivered message. `continued`: it follows a message of the same
/// sender closely, so it shows without their avatar and name (the label
/// still names them for screen readers).
#[component]
pub(crate) fn Message(
    message: ChatMessage,
    continued: bool,
    room: Signal<String>,
    view: Memo<Option<Arc<RoomView>>>,
    editing: RwSignal<Option<String>>,
    last_own: Memo<Option<String>>,
    locale: Signal<String>,
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
    let confirming = RwSignal::new(false);
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
    let content = message.content.clone();
    let data = message.data.clone();
    let (edit_id, delete_id) = (id.clone(), id.clone());
    view! {
        <article
            class="message"
            class:own=mine
            class:continued=continued
            aria-label=format!("Message from {sender}")
        >
            <Avatar user_id=message.sender.id.clone() name=sender.clone() hidden=continued />
            <div class="bubble">
                <header>
                    {(!continued).then(|| view! { <span class="author">{sender.clone()}</span> })}
                    <Time at=message.created_at locale=locale />
                    {message.edited_at.map(|_| view! { <span class="edited">"edited"</span> })}
                </header>
                <Show
                    when=is_editing.clone()
                    fallback=move || {
                        (!content.is_empty())
                            .then(|| view! { <p class="content">{linked(&content)}</p> })
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
                    <Show when=move || mine.get() && !is_editing() && !confirming.get()>
                        <span class="actions">
                            <button on:click={
                                let id = edit_id.clone();
                                move |_| editing.set(Some(id.clone()))
                            }>"Edit"</button>
                            <button on:click=move |_| confirming.set(true)>"Delete"</button>
                        </span>
                    </Show>
                    <Show when=move || confirming.get()>
                        <ConfirmDelete
                            on_confirm={
                                let id = delete_id.clone();
                                Callback::new(move |()| {
                                    confirming.set(false);
                                    rc.delete(&room.get_untracked(), id.clone());
                                })
                            }
                            on_cancel=Callback::new(move |()| confirming.set(false))
                        />
                    </Show>
                </footer>
            </div>
        </article>
    }
}

/// "Delete this message?" with Delete and Cancel; Cancel has the focus (the
/// safe choice for a stray Enter), and Escape cancels.
#[component]
fn ConfirmDelete(on_confirm: Callback<()>, on_cancel: Callback<()>) -> impl IntoView {
    let cancel = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        if let Some(el) = cancel.get() {
            let _ = el.focus();
        }
    });
    view! {
        <span
            class="confirm"
            role="alertdialog"
            aria-label="Delete this message?"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    on_cancel.run(());
                }
            }
        >
            <span>"Delete this message?"</span>
            <button class="danger" on:click=move |_| on_confirm.run(())>"Delete"</button>
            <button node_ref=cancel on:click=move |_| on_cancel.run(())>"Cancel"</button>
        </span>
    }
}

/// What a deleted message leaves: its place, its sender's avatar and
/// "Message deleted".
#[component]
pub(crate) fn DeletedMessage(trace: ChatMessage, locale: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let sender = trace.sender;
    let sender_id = sender.id.clone();
    let mine = move || rc.user().get().is_some_and(|u| u.id == sender_id);
    view! {
        <article
            class="message deleted"
            class:own=mine
            aria-label=format!("Deleted message from {}", sender.name)
        >
            <Avatar user_id=sender.id.clone() name=sender.name.clone() hidden=false />
            <div class="bubble">
                <header>
                    <span class="author">{sender.name.clone()}</span>
                    <Time at=trace.created_at locale=locale />
                </header>
                <p class="content">"Message deleted"</p>
            </div>
        </article>
    }
}

/// A sender's initial on a colour of their own (derived from their id);
/// `hidden` keeps its room without showing it (grouped messages line up).
#[component]
fn Avatar(user_id: String, name: String, hidden: bool) -> impl IntoView {
    let initial = name.chars().next().unwrap_or('?').to_uppercase().to_string();
    view! {
        <span
            class="avatar"
            class:spacer-avatar=hidden
            style=format!("--avatar-hue: {}", avatar_hue(&user_id))
            aria-hidden="true"
        >
            {(!hidden).then_some(initial)}
        </span>
    }
}

/// The time of day, with the full date and time in `locale` as its tooltip.
#[component]
fn Time(at: OffsetDateTime, locale: Signal<String>) -> impl IntoView {
    view! {
        <time datetime=iso(at) title=move || human_time(at, &locale.get())>
            {clock(at)}
        </time>
    }
}

/// Message text with its `http(s)` URLs as links that open in a new tab
/// without giving it this page (`noopener noreferrer`).
fn linked(text: &str) -> impl IntoView + use<> {
    segments(text)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => text.into_any(),
            Segment::Link(url) => view! {
                <a href=url.clone() target="_blank" rel="noopener noreferrer">{url.clone()}</a>
            }
            .into_any(),
        })
        .collect_view()
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
pub(crate) fn Pending(outgoing: Outgoing, room: Signal<String>) -> impl IntoView {
    let rc = expect_roomcast();
    let user = rc.user().get_untracked();
    let name = user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    let user_id = user.map(|u| u.id).unwrap_or_default();
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
            <Avatar user_id=user_id name=name.clone() hidden=false />
            <div class="bubble">
                <header>
                    <span class="author">{name.clone()}</span>
                </header>
                <p class="content">{linked(&outgoing.content)}</p>
                <footer>{status}</footer>
            </div>
        </article>
    }
}
