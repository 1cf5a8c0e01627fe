//! A message's attachments (`data.attachments`, read by the SDK): images
//! inline with their name as `alt`, other files as links named by their
//! file name. A URL that is not `http:` or `https:` (`javascript:`,
//! `data:`, relative) is shown as plain text: it never becomes an `href` or
//! a `src`.

use leptos::prelude::*;
use roomcast_client::attachments::attachments;
use serde_json::Value;

/// One attachment as shown: owned, since the view outlives the message.
struct Shown {
    url: String,
    label: String,
    linkable: bool,
    image: bool,
    size: Option<u64>,
}

/// The attachments of a message's `data`; nothing when it has none.
#[component]
pub fn Attachments(data: Option<Box<Value>>) -> impl IntoView {
    let shown: Vec<Shown> = attachments(data.as_deref())
        .into_iter()
        .map(|a| Shown {
            url: a.url.to_owned(),
            label: a.label().to_owned(),
            linkable: a.linkable,
            image: a.image,
            size: a.size,
        })
        .collect();
    (!shown.is_empty()).then(|| {
        view! { <ul class="attachments">{shown.into_iter().map(item).collect_view()}</ul> }
    })
}

fn item(a: Shown) -> impl IntoView {
    let size = a.size.map(|bytes| view! { <span class="size">{human_size(bytes)}</span> });
    let shown = if a.image {
        let src = a.url.clone();
        view! {
            <a href=a.url target="_blank" rel="noopener noreferrer nofollow">
                <img src=src alt=a.label loading="lazy" referrerpolicy="no-referrer" />
            </a>
        }
        .into_any()
    } else if a.linkable {
        view! {
            <a href=a.url target="_blank" rel="noopener noreferrer nofollow" download="">
                {a.label}
            </a>
        }
        .into_any()
    } else {
        // Shown, so nothing the sender attached is hidden, but inert.
        view! { <span class="unsafe-link" title="not a web link">{a.label}</span> }.into_any()
    };
    view! { <li class:image=a.image>{shown}{size}</li> }
}

/// `1234567` as `1.2 MB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
