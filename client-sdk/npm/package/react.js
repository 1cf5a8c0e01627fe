// roomcast/react: React hooks over the Roomcast client.
//
// - One client per URL, shared by every component (through RoomcastProvider
//   or useWebSocket), reference-counted: the last unmount closes it. Closing
//   waits one task, so React StrictMode's unmount-and-remount keeps the
//   connection instead of opening a second one.
// - Rooms are reference-counted the same way: two components showing one
//   room share one join.
// - Components re-render only for what they read: the connection snapshot
//   changes on state changes only, a room snapshot on that room's changes,
//   and `lastMessage` updates only components that read it.

import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import { Client, attachments } from "./roomcast.js";

export { Chat } from "./react-chat.js";

// A server-side render (Next.js, Remix) has no WebSocket and no wasm: there
// the provider gives no client, and every hook returns the state a client
// has before it connects, which is also what the browser's first render
// (the hydration) reads, so the two agree.
const IN_BROWSER = typeof window !== "undefined" || typeof WorkerGlobalScope !== "undefined";

const clients = new Map(); // url -> { client, refs, timer }
const rooms = new WeakMap(); // client -> Map(room -> { handle, refs, timer })

// A client that is created during a render React then throws away is never
// retained; it is closed after this long.
const UNUSED_MS = 5000;

function clientFor(url, options) {
  let entry = clients.get(url);
  if (!entry) {
    // Created idle: connecting is a side effect, done when a component mounts.
    const client = new Client(url, { ...stripCallbacks(options), autoConnect: false });
    entry = { client, refs: 0, timer: null };
    clients.set(url, entry);
    entry.timer = setTimeout(() => dropClient(url, entry), UNUSED_MS);
  }
  return entry.client;
}

function retainClient(url) {
  const entry = clients.get(url);
  if (!entry) return;
  clearTimeout(entry.timer);
  entry.refs += 1;
  if (entry.refs === 1) entry.client.connect();
}

function releaseClient(url) {
  const entry = clients.get(url);
  if (!entry) return;
  entry.refs -= 1;
  if (entry.refs === 0) entry.timer = setTimeout(() => dropClient(url, entry), 0);
}

function dropClient(url, entry) {
  if (entry.refs === 0 && clients.get(url) === entry) {
    clients.delete(url);
    entry.client.close();
  }
}

function roomFor(client, name) {
  let byName = rooms.get(client);
  if (!byName) rooms.set(client, (byName = new Map()));
  let entry = byName.get(name);
  if (!entry) {
    entry = { handle: client.join(name), refs: 0, timer: null };
    byName.set(name, entry);
    entry.timer = setTimeout(() => dropRoom(client, name, entry), UNUSED_MS);
  }
  return entry.handle;
}

function retainRoom(client, name) {
  const entry = rooms.get(client)?.get(name);
  if (!entry) return;
  clearTimeout(entry.timer);
  entry.refs += 1;
}

function releaseRoom(client, name) {
  const entry = rooms.get(client)?.get(name);
  if (!entry) return;
  entry.refs -= 1;
  if (entry.refs === 0) entry.timer = setTimeout(() => dropRoom(client, name, entry), 0);
}

function dropRoom(client, name, entry) {
  const byName = rooms.get(client);
  if (entry.refs === 0 && byName?.get(name) === entry) {
    byName.delete(name);
    entry.handle.leave();
  }
}

// Callbacks are attached per component (so they can change between
// renders); the shared client is created without them.
function stripCallbacks(options = {}) {
  const { onConnect, onDisconnect, onError, onMessage, onStateChange, filter, ...rest } = options;
  return rest;
}

const noop = () => {};
const idle = () => IDLE;
const noRoom = () => NO_ROOM;
const IDLE = Object.freeze({
  state: "idle",
  isConnected: false,
  isLoading: false,
  sessionId: null,
  reconnectAttempts: 0,
  user: null,
  transport: "websocket",
});
const NO_ROOM = Object.freeze({
  room: "",
  joined: false,
  messages: Object.freeze([]),
  pending: Object.freeze([]),
  members: Object.freeze([]),
  member_count: 0,
  more_members: false,
  typing: Object.freeze([]),
  reads: Object.freeze([]),
  resets: 0,
});

const RoomcastContext = createContext(null);

/**
 * Calls the callbacks of `options` (`onConnect`, `onDisconnect`, `onError`,
 * `onStateChange`, `onMessage`) for `client`'s events, always the latest
 * render's; `onFrame` also gets every frame.
 */
function useCallbacks(client, options, onFrame) {
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  useEffect(() => {
    if (!client) return undefined;
    const call = (name) => (event) => latest.current?.[name]?.(event);
    const offs = [
      client.on("connect", call("onConnect")),
      client.on("disconnect", call("onDisconnect")),
      client.on("error", call("onError")),
      client.on("statechange", call("onStateChange")),
      client.on("message", (frame) => {
        latest.current?.onMessage?.(frame);
        onFrame?.(frame, latest.current);
      }),
    ];
    return () => offs.forEach((off) => off());
  }, [client]);
}

/**
 * Shares one client for `url` with every component below it. The callbacks
 * in `options` are called for as long as the provider is mounted (the
 * other options are read when the client is created).
 */
export function RoomcastProvider({ url, options, children }) {
  const client = IN_BROWSER ? clientFor(url, options) : null;
  useEffect(() => {
    retainClient(url);
    return () => releaseClient(url);
  }, [url]);
  useCallbacks(client, options);
  const value = useMemo(() => ({ url, client }), [url, client]);
  return createElement(RoomcastContext.Provider, { value }, children);
}

/** The client of the nearest RoomcastProvider, or null. */
export function useRoomcast() {
  return useContext(RoomcastContext)?.client ?? null;
}

/** The connection's snapshot; re-renders only when it changes. */
function useClientSnapshot(client) {
  const subscribe = useCallback((f) => (client ? client.subscribe(f) : noop), [client]);
  const get = useCallback(() => (client ? client.getSnapshot() : IDLE), [client]);
  return useSyncExternalStore(subscribe, get, idle);
}

/**
 * The connection for `url` (or the provider's, when `url` is omitted or the
 * same): `{isConnected, isLoading, state, sendMessage, lastMessage, client}`.
 */
export function useWebSocket(url, options = {}) {
  const provided = useContext(RoomcastContext);
  const own = url != null && provided?.url !== url;
  const client = own ? (IN_BROWSER ? clientFor(url, options) : null) : provided?.client ?? null;
  useEffect(() => {
    if (!own) return undefined;
    retainClient(url);
    return () => releaseClient(url);
  }, [own, url]);

  const readsLastMessage = useRef(false);
  const [lastMessage, setLastMessage] = useState(null);
  // Only components that read lastMessage re-render per frame.
  const onFrame = useCallback((frame, options) => {
    const filter = options?.filter;
    if (readsLastMessage.current && (!filter || filter(frame))) setLastMessage(frame);
  }, []);
  useCallbacks(client, options, onFrame);

  const snapshot = useClientSnapshot(client);
  const sendMessage = useCallback((frame) => (client ? client.sendMessage(frame) : false), [client]);
  return useMemo(() => {
    const result = {
      state: snapshot.state,
      isConnected: snapshot.isConnected,
      isLoading: snapshot.isLoading,
      sessionId: snapshot.sessionId,
      reconnectAttempts: snapshot.reconnectAttempts,
      user: snapshot.user,
      transport: snapshot.transport,
      sendMessage,
      client,
    };
    Object.defineProperty(result, "lastMessage", {
      enumerable: true,
      get() {
        readsLastMessage.current = true;
        return lastMessage;
      },
    });
    return result;
  }, [snapshot, sendMessage, client, lastMessage]);
}

/** `room`'s handle, the room joined (shared, counted) while mounted. */
function useJoinedRoom(client, room) {
  const handle = client && room ? roomFor(client, room) : null;
  useEffect(() => {
    if (!client || !room) return undefined;
    retainRoom(client, room);
    return () => releaseRoom(client, room);
  }, [client, room]);
  return handle;
}

/**
 * A joined room: `{messages, members, typing, send, ...}`. Re-renders only
 * when this room changes. Components showing the same room share one join.
 */
export function useRoom(client, room) {
  const handle = useJoinedRoom(client, room);

  const subscribe = useCallback((f) => (handle ? handle.subscribe(f) : noop), [handle]);
  const get = useCallback(() => (handle ? handle.getSnapshot() : NO_ROOM), [handle]);
  const snapshot = useSyncExternalStore(subscribe, get, noRoom);

  const send = useCallback(
    (content, options) =>
      handle ? handle.send(content, options) : Promise.reject(new Error("no room")),
    [handle],
  );
  const actions = useMemo(
    () => ({
      setTyping: (isTyping) => handle?.typing(isTyping),
      markRead: (id) => handle?.markRead(id),
      edit: (id, content, options) =>
        handle ? handle.edit(id, content, options) : Promise.reject(new Error("no room")),
      remove: (id) => (handle ? handle.delete(id) : Promise.reject(new Error("no room"))),
      loadOlder: (limit = 50) =>
        handle
          ? handle.history({ before: snapshot.messages[0]?.offset, limit })
          : Promise.reject(new Error("no room")),
      loadMoreMembers: (limit = 100) =>
        handle ? handle.members({ limit }) : Promise.reject(new Error("no room")),
    }),
    // loadOlder reads the oldest message of the snapshot it was made with.
    [handle, snapshot.messages],
  );
  // Made anew when receipts or messages change, so memoized children that
  // take it as a prop redraw their "seen by".
  const seenBy = useCallback(
    (id) => (handle ? handle.seenBy(id) : []),
    [handle, snapshot.reads, snapshot.messages],
  );
  return useMemo(
    () => ({
      messages: snapshot.messages,
      pending: snapshot.pending,
      members: snapshot.members,
      memberCount: snapshot.member_count,
      moreMembers: snapshot.more_members,
      typing: snapshot.typing,
      reads: snapshot.reads,
      joined: snapshot.joined,
      resets: snapshot.resets,
      send,
      seenBy,
      ...actions,
      room: handle,
    }),
    [snapshot, send, seenBy, actions, handle],
  );
}

/** Calls `listener` for `event` of `room` while the component is mounted. */
export function useRoomEvent(room, event, listener) {
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => (room ? room.on(event, (e) => latest.current(e)) : undefined), [room, event]);
}

// Hooks by concern. Each reads one part of a room (or of the connection)
// and re-renders only when that part changes: a room's snapshot is a new
// object on every change of the room, so each hook keeps the part it read
// and hands out the same object until the part's content differs.

/** The provider's client, or `options.client`. */
function useClientOf(options) {
  const provided = useRoomcast();
  return options?.client ?? provided;
}

/**
 * `select(snapshot)` of `room`'s snapshot (joined while mounted), the same
 * object for as long as `key` of it (its JSON unless told) is the same.
 * `select` and `key` are module-level functions, the same on every render.
 */
function useRoomPart(client, room, select, key = JSON.stringify) {
  const handle = useJoinedRoom(client, room);
  const kept = useRef({ snapshot: null, part: undefined, json: "" });
  const subscribe = useCallback((f) => (handle ? handle.subscribe(f) : noop), [handle]);
  const get = useCallback(() => {
    const snapshot = handle ? handle.getSnapshot() : NO_ROOM;
    const last = kept.current;
    if (snapshot === last.snapshot) return last.part;
    const part = select(snapshot);
    const json = key(part);
    kept.current =
      json === last.json && last.part !== undefined
        ? { snapshot, part: last.part, json }
        : { snapshot, part, json };
    return kept.current.part;
  }, [handle]);
  const server = useRef(null);
  const getServer = useCallback(() => (server.current ??= select(NO_ROOM)), []);
  return [useSyncExternalStore(subscribe, get, getServer), handle];
}

const messagesOf = (s) => ({ messages: s.messages, pending: s.pending, joined: s.joined, resets: s.resets });
// A message changes only by an edit (which sets `edited_at`) or a delete
// (which sets `deleted`): its id, `edited_at` and `deleted` stand for it,
// cheaper than its JSON on every change of the room (typing, presence).
const messagesKey = (p) =>
  `${p.joined}|${p.resets}|${p.messages.map((m) => `${m.id}@${m.edited_at ?? ""}${m.deleted ? "-" : ""}`).join(",")}|${JSON.stringify(p.pending)}`;
const presenceOf = (s) => ({ members: s.members, count: s.member_count, more: s.more_members });
const typingOf = (s) => s.typing;
const readsOf = (s) => ({ reads: s.reads, messages: s.messages.length });
const occupancyOf = (s) => s.member_count;

/**
 * A room's messages: `{messages, pending, joined, send, edit, remove,
 * loadOlder, hasMore}`. `options.onDiscontinuity` is called when recovery
 * was impossible and the room was reloaded (messages may have been missed
 * while away: refetch what the page derived from them).
 */
export function useMessages(room, options = {}) {
  const client = useClientOf(options);
  const [part, handle] = useRoomPart(client, room, messagesOf, messagesKey);
  const [hasMore, setHasMore] = useState(true);
  const resets = useRef(part.resets);
  const latest = useRef(options);
  useEffect(() => {
    latest.current = options;
  });
  useEffect(() => {
    if (part.resets > resets.current) latest.current.onDiscontinuity?.({ room, resets: part.resets });
    resets.current = part.resets;
  }, [part.resets, room]);
  const none = () => Promise.reject(new Error("no room"));
  return useMemo(
    () => ({
      messages: part.messages,
      pending: part.pending,
      joined: part.joined,
      // A room's first event has offset 1: nothing is older than it.
      hasMore: hasMore && (part.messages[0]?.offset ?? 0) > 1,
      send: (content, sendOptions) => (handle ? handle.send(content, sendOptions) : none()),
      edit: (id, content, editOptions) => (handle ? handle.edit(id, content, editOptions) : none()),
      remove: (id) => (handle ? handle.delete(id) : none()),
      loadOlder: async (limit = 50) => {
        if (!handle) return none();
        const page = await handle.history({ before: part.messages[0]?.offset, limit });
        setHasMore(page.has_more);
        return page;
      },
      room: handle,
    }),
    [part, handle, hasMore],
  );
}

/**
 * A room's members: `{members, count, online, moreMembers, loadMore,
 * setStatus}`. `online` counts members whose status is `online`.
 */
export function usePresence(room, options = {}) {
  const client = useClientOf(options);
  const [part, handle] = useRoomPart(client, room, presenceOf);
  return useMemo(
    () => ({
      members: part.members,
      count: part.count,
      online: part.members.filter((m) => m.status === "online").length,
      moreMembers: part.more,
      loadMore: (limit = 100) =>
        handle ? handle.members({ limit }) : Promise.reject(new Error("no room")),
      setStatus: (status, custom) => client?.setStatus(status, custom),
    }),
    [part, handle, client],
  );
}

/** Who else is typing in a room, and the setter for the user: `{typing, setTyping}`. */
export function useTyping(room, options = {}) {
  const client = useClientOf(options);
  const [typing, handle] = useRoomPart(client, room, typingOf);
  return useMemo(
    () => ({ typing, setTyping: (isTyping) => handle?.typing(isTyping) }),
    [typing, handle],
  );
}

/** A room's read positions: `{reads, seenBy, markRead}`. */
export function useReadReceipts(room, options = {}) {
  const client = useClientOf(options);
  const [part, handle] = useRoomPart(client, room, readsOf);
  return useMemo(
    () => ({
      reads: part.reads,
      seenBy: (id) => (handle ? handle.seenBy(id) : []),
      markRead: (id) => handle?.markRead(id),
    }),
    [part, handle],
  );
}

/** How many members a room has, whatever the size of the room. */
export function useOccupancy(room, options = {}) {
  const client = useClientOf(options);
  const [count] = useRoomPart(client, room, occupancyOf);
  return count;
}

/**
 * The connection's state: `{state, isConnected, isLoading, transport,
 * reconnectAttempts, sessionId, user}`; re-renders only when it changes.
 */
export function useConnectionState(options = {}) {
  const client = useClientOf(options);
  return useClientSnapshot(client);
}

/**
 * The user's notifications while mounted, newest last (at most
 * `options.keep`, default 50), and `dismiss(id)`. With a `listener`, it is
 * also called for each one. The older form `useNotifications(client,
 * listener)` is kept.
 */
export function useNotifications(first, second) {
  // `(client, listener)` (a client has `join`), `(listener)` or `(options)`.
  const isClient = typeof first?.join === "function";
  const options = isClient ? { client: first } : typeof first === "function" ? {} : first ?? {};
  const listener = isClient ? second : typeof first === "function" ? first : options.onNotification;
  const client = useClientOf(options);
  const keep = options.keep ?? 50;
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  const [list, setList] = useState([]);
  useEffect(
    () =>
      client
        ? client.onNotification((n) => {
            latest.current?.(n);
            setList((old) => [...old, n].slice(-keep));
          })
        : undefined,
    [client, keep],
  );
  const dismiss = useCallback((id) => setList((old) => old.filter((n) => n.id !== id)), []);
  return useMemo(() => ({ notifications: list, dismiss }), [list, dismiss]);
}

// A message's attachments (`data.attachments`): images inline, other files
// as links named by their name. Only http(s) URLs become an href or a src
// (`attachments` says which); any other URL is shown as text, never
// followed: `javascript:` or `data:` in a message is someone else's input.
export function Attachments({ message, className = "roomcast-attachments" }) {
  const list = useMemo(() => attachments(message), [message]);
  if (list.length === 0) return null;
  const link = (a, child) =>
    createElement("a", { href: a.url, target: "_blank", rel: "noopener noreferrer" }, child);
  return createElement(
    "ul",
    { className },
    list.map((a, i) =>
      createElement(
        "li",
        { key: i },
        a.image
          ? link(a, createElement("img", { src: a.url, alt: a.name ?? "", loading: "lazy" }))
          : a.linkable
            ? link(a, a.name ?? a.url)
            : createElement("span", { className: "inert" }, a.name ?? a.url),
      ),
    ),
  );
}
