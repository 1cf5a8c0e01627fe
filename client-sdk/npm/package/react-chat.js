// roomcast/react's <Chat room="general" />: a whole chat on the hooks, in
// one line. Styled by roomcast/react/chat.css (CSS variables, light and
// dark); every part can be replaced by a prop.

import { createElement as h, Fragment, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import {
  Attachments,
  useConnectionState,
  useMessages,
  useNotifications,
  usePresence,
  useReadReceipts,
  useRoomEvent,
  useRoomcast,
  useTyping,
} from "./react.js";

/** Messages of one sender closer than this are shown as one group. */
const GROUP_MS = 5 * 60 * 1000;
/** How close to the top (px) scrolling loads older messages. */
const LOAD_OLDER_PX = 48;
/** How close to the bottom (px) counts as "at the newest message". */
const AT_BOTTOM_PX = 64;
/** How long a toast stays. */
const TOAST_MS = 6000;
/** How many toasts are shown at once. */
const TOASTS = 3;

/**
 * A whole chat for `room` on the provider's client. Props:
 * - `renderMessage(message, rendered)`: what to show for a message (given
 *   the default rendering);
 * - `onSend(content)`: returns `{content, data}` to send (to add data), or
 *   `null` to send nothing;
 * - `header`: replaces the header (`false`: none);
 * - `showMembers` (default true), `notifications` (toasts, default true),
 *   `placeholder`, `locale` (for dates and times).
 */
export function Chat({
  room,
  renderMessage,
  onSend,
  header,
  showMembers = true,
  notifications = true,
  placeholder = "Write a message",
  locale,
  className = "",
}) {
  const client = useRoomcast();
  const connection = useConnectionState();
  const me = connection.user;
  const { messages, pending, joined, hasMore, send, edit, remove, loadOlder, room: handle } = useMessages(room);
  const presence = usePresence(room);
  const { typing, setTyping } = useTyping(room);
  const { reads, seenBy, markRead } = useReadReceipts(room);
  const formats = useFormats(locale);
  const names = useMemo(() => new Map(presence.members.map((m) => [m.user_id, m.user.name])), [presence.members]);

  // Sends refused by the server (rejected, too large...): shown with retry
  // and discard, which the outbox does not keep.
  const [failed, setFailed] = useState([]);
  const sendOne = (content, data) =>
    send(content, data ? { data } : undefined).catch((error) =>
      setFailed((list) => [...list, { key: `${Date.now()}-${list.length}`, content, data, error: String(error?.message ?? error) }]),
    );

  // The "New messages" divider: after the user's read position when the
  // room opened, frozen until the room changes.
  const [divider, setDivider] = useState(undefined);
  useEffect(() => setDivider(undefined), [room]);
  useEffect(() => {
    if (divider !== undefined || !joined || !me) return;
    const own = reads.find((r) => r.user_id === me.id);
    const at = own ? messages.findIndex((m) => m.id === own.id) : -1;
    const next = messages.slice(at + 1).find((m) => m.sender.id !== me.id && !m.deleted);
    setDivider(own && next ? next.id : null);
  }, [divider, joined, me, reads, messages]);

  // The newest message is read while the page is visible, or once it is
  // shown again.
  const newest = messages[messages.length - 1];
  useEffect(() => {
    if (!newest) return undefined;
    const read = () => document.visibilityState === "visible" && markRead(newest.id);
    read();
    document.addEventListener("visibilitychange", read);
    return () => document.removeEventListener("visibilitychange", read);
    // Only a new newest message is a new read.
  }, [newest?.id]);

  const ownLast = [...messages].reverse().find((m) => m.sender.id === me?.id && !m.deleted);
  const readers = ownLast ? seenBy(ownLast.id).filter((id) => id !== me?.id) : [];
  // "Seen by" shows under the user's newest message, inside it.
  const seen = readers.length > 0 ? { id: ownLast.id, text: `Seen by ${readers.map((id) => names.get(id) ?? id).join(", ")}` } : null;

  const log = useRef(null);
  useStickToBottom(log, messages.length + pending.length + failed.length);
  useShowDivider(log, divider);
  const onScroll = () => {
    const el = log.current;
    if (el && el.scrollTop < LOAD_OLDER_PX && hasMore && messages.length > 0) keepScroll(el, () => loadOlder(50));
  };

  const headerNode =
    header === false
      ? null
      : header ??
        h(
          "header",
          { className: "rc-header" },
          h("h2", { className: "rc-title" }, `# ${room}`),
          h(
            "span",
            { className: "rc-count", "aria-label": `${presence.online} online of ${presence.count} members` },
            `${presence.online} online · ${presence.count} members`,
          ),
          me && h("span", { className: "rc-me" }, me.name),
        );

  return h(
    "section",
    { className: `roomcast-chat ${className}`.trim(), "aria-label": `Chat in ${room}` },
    headerNode,
    connection.state !== "open" &&
      h(
        "div",
        { className: "rc-banner", role: "alert" },
        connection.state === "connecting" || connection.state === "idle" ? "Connecting…" : "Connection lost: reconnecting…",
      ),
    notifications && h(Toasts, { client }),
    h(
      "div",
      { className: "rc-body" },
      h(
        "div",
        { className: "rc-main" },
        h(
          "ol",
          { className: "rc-log", role: "log", "aria-live": "polite", "aria-label": `Messages in ${room}`, ref: log, onScroll },
          hasMore && messages.length > 0 && h("li", { className: "rc-older" }, h("button", { type: "button", onClick: () => keepScroll(log.current, () => loadOlder(50)) }, "Load older messages")),
          // Deleted messages are among them as what they left (`deleted: true`).
          renderItems(messages, { me, divider, seen, formats, renderMessage, edit, remove }),
          pending.map((p) =>
            h("li", { key: p.client_id, className: "rc-message rc-own rc-pending", "data-testid": "rc-pending" }, h("div", { className: "rc-text" }, p.content), h("div", { className: "rc-meta" }, "Sending…")),
          ),
          failed.map((f) =>
            h(
              "li",
              { key: f.key, className: "rc-message rc-own rc-failed", "data-testid": "rc-failed" },
              h("div", { className: "rc-text" }, f.content),
              h(
                "div",
                { className: "rc-meta", role: "status" },
                `Not sent: ${f.error} `,
                h("button", { type: "button", onClick: () => { setFailed((l) => l.filter((x) => x !== f)); sendOne(f.content, f.data); } }, "Retry"),
                h("button", { type: "button", onClick: () => setFailed((l) => l.filter((x) => x !== f)) }, "Discard"),
              ),
            ),
          ),
        ),
        h("div", { className: "rc-typing", "aria-live": "polite", "data-testid": "rc-typing" }, typingLine(typing)),
        h(Composer, { placeholder, room, setTyping, onSend, sendOne }),
      ),
      showMembers && h(Members, { presence, me }),
    ),
  );
}

function useFormats(locale) {
  return useMemo(
    () => ({
      day: new Intl.DateTimeFormat(locale, { dateStyle: "full" }),
      time: new Intl.DateTimeFormat(locale, { timeStyle: "short" }),
      full: new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }),
    }),
    [locale],
  );
}

/** Messages and deletion traces, with day separators, groups and the divider. */
function renderItems(items, { me, divider, seen, formats, renderMessage, edit, remove }) {
  const out = [];
  let lastDay = "";
  let last = null;
  for (const m of items) {
    const at = new Date(m.created_at);
    const day = formats.day.format(at);
    if (day !== lastDay) {
      out.push(h("li", { key: `day-${day}`, className: "rc-day", role: "separator" }, day));
      lastDay = day;
      last = null;
    }
    if (m.id === divider) {
      out.push(h("li", { key: "divider", className: "rc-divider", role: "separator", "data-testid": "rc-new-messages" }, "New messages"));
      last = null;
    }
    const grouped = last && last.sender.id === m.sender.id && at - new Date(last.created_at) < GROUP_MS && !last.deleted;
    const seenText = seen?.id === m.id ? seen.text : null;
    const rendered = h(Message, { message: m, own: m.sender.id === me?.id, grouped, seen: seenText, formats, edit, remove });
    out.push(h(Fragment, { key: m.id }, renderMessage ? renderMessage(m, rendered) : rendered));
    last = m;
  }
  return out;
}

function Message({ message: m, own, grouped, seen, formats, edit, remove }) {
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const at = new Date(m.created_at);
  const classes = ["rc-message", own && "rc-own", grouped && "rc-grouped", m.deleted && "rc-deleted"].filter(Boolean).join(" ");
  if (m.deleted) {
    return h("li", { className: classes, "data-testid": "rc-deleted" }, h("div", { className: "rc-text" }, "Message deleted"));
  }
  return h(
    "li",
    { className: classes, "data-testid": "rc-message", "aria-label": `Message from ${m.sender.name}` },
    !grouped &&
      h(
        "div",
        { className: "rc-from" },
        h("span", { className: "rc-avatar", "aria-hidden": true, style: { "--rc-hue": hue(m.sender.id) } }, initials(m.sender.name)),
        h("span", { className: "rc-name" }, m.sender.name),
        h("time", { dateTime: m.created_at, title: formats.full.format(at) }, formats.time.format(at)),
      ),
    // A grouped message has no sender line: its time sits in its corner.
    grouped && h("time", { className: "rc-aside", dateTime: m.created_at, title: formats.full.format(at) }, formats.time.format(at)),
    editing
      ? h(EditBox, { message: m, done: () => setEditing(false), edit })
      : h("div", { className: "rc-text" }, linkify(m.content), m.edited_at && h("span", { className: "rc-edited" }, " (edited)")),
    h(Attachments, { message: m }),
    seen && h("div", { className: "rc-seen", "data-testid": "rc-seen" }, seen),
    own &&
      !editing &&
      h(
        "div",
        { className: "rc-actions" },
        confirming
          ? h(
              Fragment,
              null,
              h("span", { role: "status" }, "Delete this message? "),
              h("button", { type: "button", onClick: () => remove(m.id).finally(() => setConfirming(false)) }, "Delete"),
              h("button", { type: "button", onClick: () => setConfirming(false) }, "Cancel"),
            )
          : h(
              Fragment,
              null,
              h("button", { type: "button", onClick: () => setEditing(true), "aria-label": "Edit message" }, "Edit"),
              h("button", { type: "button", onClick: () => setConfirming(true), "aria-label": "Delete message" }, "Delete"),
            ),
      ),
  );
}

function EditBox({ message, done, edit }) {
  const [text, setText] = useState(message.content);
  return h(
    "form",
    { className: "rc-edit", onSubmit: (e) => { e.preventDefault(); if (text.trim()) edit(message.id, text).finally(done); } },
    h("input", {
      "aria-label": "Edit message",
      value: text,
      autoFocus: true,
      onChange: (e) => setText(e.target.value),
      onKeyDown: (e) => e.key === "Escape" && done(),
    }),
  );
}

function Composer({ placeholder, room, setTyping, onSend, sendOne }) {
  const [draft, setDraft] = useState("");
  const input = useRef(null);
  // Switching rooms puts the focus where the user will type.
  useEffect(() => input.current?.focus(), [room]);
  const submit = (e) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text) return;
    const out = onSend ? onSend(text) : { content: text };
    setDraft("");
    setTyping(false);
    if (out) sendOne(out.content ?? text, out.data);
  };
  return h(
    "form",
    { className: "rc-composer", onSubmit: submit },
    h("input", {
      ref: input,
      "aria-label": placeholder,
      placeholder,
      value: draft,
      onChange: (e) => {
        setDraft(e.target.value);
        setTyping(e.target.value !== "");
      },
    }),
    h("button", { type: "submit", disabled: draft.trim() === "" }, "Send"),
  );
}

function Members({ presence, me }) {
  return h(
    "aside",
    { className: "rc-members", "aria-label": "Members" },
    h("h3", null, `Members (${presence.count})`),
    h(
      "ul",
      null,
      presence.members.map((m) =>
        h(
          "li",
          { key: m.user_id, className: `rc-member rc-${m.status}` },
          h("span", { className: "rc-dot", "aria-label": m.status, role: "img" }),
          m.user.name,
          m.user_id === me?.id ? " (you)" : "",
          m.custom ? h("span", { className: "rc-custom" }, ` · ${m.custom}`) : null,
        ),
      ),
    ),
  );
}

/**
 * Notifications as toasts, in the flow above the messages: they push the
 * conversation down rather than cover it, and at most TOASTS show.
 */
function Toasts({ client }) {
  const { notifications, dismiss } = useNotifications({ client });
  const shown = notifications.slice(-TOASTS);
  useEffect(() => {
    if (shown.length === 0) return undefined;
    const oldest = shown[0];
    const timer = setTimeout(() => dismiss(oldest.id), TOAST_MS);
    return () => clearTimeout(timer);
  }, [shown, dismiss]);
  return h(
    "div",
    { className: "rc-toasts", role: "region", "aria-label": "Notifications", "aria-live": "polite" },
    shown.map((n) =>
      h(
        "div",
        { key: n.id, className: "rc-toast", "data-testid": "rc-toast" },
        h("strong", null, n.title),
        n.body ? ` ${n.body}` : "",
        h("button", { type: "button", "aria-label": "Dismiss", onClick: () => dismiss(n.id) }, "×"),
      ),
    ),
  );
}

function typingLine(typing) {
  if (typing.length === 0) return "";
  const names = typing.map((u) => u.name);
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

/** Text with its http(s) links as links; any other scheme stays text. */
function linkify(text) {
  const parts = text.split(/(https?:\/\/[^\s<>"']+)/g);
  return parts.map((part, i) =>
    i % 2 === 1 ? h("a", { key: i, href: part, target: "_blank", rel: "noopener noreferrer" }, part) : part,
  );
}

function initials(name) {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
}

/** A stable hue per user id. */
function hue(id) {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + ch.codePointAt(0)) | 0;
  return String(Math.abs(hash) % 360);
}

/** Keeps the newest message in view when the user is at the bottom. */
function useStickToBottom(ref, size) {
  const atBottom = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const onScroll = () => {
      atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < AT_BOTTOM_PX;
    };
    el.addEventListener("scroll", onScroll);
    return () => el.removeEventListener("scroll", onScroll);
  }, [ref]);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [ref, size]);
}

/**
 * Opening a room with unread messages shows where they begin: the divider
 * near the top of the log, not the newest message (declared after
 * useStickToBottom, so it runs after it). Scrolling there leaves the
 * bottom, so new messages then keep the reading position.
 */
function useShowDivider(ref, divider) {
  useLayoutEffect(() => {
    const el = ref.current;
    const line = divider ? el?.querySelector(".rc-divider") : null;
    if (!line) return;
    el.scrollTop += line.getBoundingClientRect().top - el.getBoundingClientRect().top - LOAD_OLDER_PX;
  }, [ref, divider]);
}

/** Loads older messages without moving what the user looks at. */
function keepScroll(el, load) {
  if (!el || el.dataset.loading) return;
  el.dataset.loading = "1";
  const fromBottom = el.scrollHeight - el.scrollTop;
  load()
    .then(() => requestAnimationFrame(() => (el.scrollTop = el.scrollHeight - fromBottom)))
    .catch(() => {})
    .finally(() => delete el.dataset.loading);
}
