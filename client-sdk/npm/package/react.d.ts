// Types of roomcast/react: React hooks over the Roomcast client.

import type { ReactNode } from "react";
import type {
  Ack,
  ChatMessage,
  Client,
  ClientFrame,
  ClientOptions,
  ConnectionState,
  Transport,
  HistoryPage,
  MembersPage,
  Member,
  Notification,
  PendingMessage,
  ReadReceipt,
  Room,
  RoomEventMap,
  SendOptions,
  ServerFrame,
  SetStatus,
  UserInfo,
  UserRef,
} from "./roomcast.js";

export interface RoomcastProviderProps {
  /** The server's WebSocket URL, such as `wss://chat.example.com/ws`. */
  url: string;
  /**
   * Read when the client is created (the first time this URL is used); the
   * callbacks (`onConnect`, `onDisconnect`, `onError`, `onStateChange`,
   * `onMessage`) are called while the provider is mounted, the latest
   * render's each time.
   */
  options?: ClientOptions;
  children?: ReactNode;
}

/** Shares one client for `url` with every component below it. */
export function RoomcastProvider(props: RoomcastProviderProps): ReactNode;

/** The client of the nearest RoomcastProvider, or null. */
export function useRoomcast(): Client | null;

export interface UseWebSocketOptions extends ClientOptions {
  /** Which frames update `lastMessage` (default: all but internal pongs). */
  filter?: (frame: ServerFrame) => boolean;
}

export interface UseWebSocketResult {
  state: ConnectionState;
  isConnected: boolean;
  /** Connecting or reconnecting. */
  isLoading: boolean;
  sessionId: string | null;
  reconnectAttempts: number;
  user: UserInfo | null;
  /** `"websocket"`, or `"sse"` while the client uses the fallback (Server-Sent Events and POSTs) where WebSockets fail. */
  transport: Transport;
  /** Sends a frame as is if connected; returns whether it was sent. */
  sendMessage: (frame: ClientFrame | string) => boolean;
  /** The last frame; components that never read it do not re-render per frame. */
  readonly lastMessage: ServerFrame | null;
  client: Client | null;
}

/**
 * The connection for `url`, or the provider's when `url` is omitted or the
 * same. One client per URL is shared by every component and closed after
 * the last one unmounts.
 */
export function useWebSocket(url?: string | null, options?: UseWebSocketOptions): UseWebSocketResult;

export interface UseRoomResult {
  /** In offset order, each message once, across reconnects. */
  messages: readonly ChatMessage[];
  /** Sends waiting for their ack (queued while offline). */
  pending: readonly PendingMessage[];
  /** The members loaded so far (everyone in a small room), online first. */
  members: readonly Member[];
  /** How many members the room has (more than `members` in a big room). */
  memberCount: number;
  /** Whether `loadMoreMembers` has more to load. */
  moreMembers: boolean;
  /** Other users typing now. */
  typing: readonly UserRef[];
  /**
   * Each user's read position, latest readers first: known at once after a
   * (re)join, then moved by live `read` events, never back.
   */
  reads: readonly ReadReceipt[];
  joined: boolean;
  /** Incremented when recovery was impossible and the room was reloaded. */
  resets: number;
  /** Sends a message; `options.data` (an object, e.g. `{attachments: [...]}`) is kept with it. */
  send: (content: string, options?: SendOptions) => Promise<Ack>;
  /** Call with true on each keystroke (throttled) and false when done. */
  setTyping: (isTyping: boolean) => void;
  markRead: (id: string) => void;
  /** The ids of the users (the user's own included) who have read message `id` or a later one. */
  seenBy: (id: string) => string[];
  /** Edits a message; `options.data` replaces its data (`{}` removes it), left out keeps it. */
  edit: (id: string, content: string, options?: SendOptions) => Promise<Ack>;
  remove: (id: string) => Promise<Ack>;
  /** Loads messages older than the oldest shown; they join `messages`. */
  loadOlder: (limit?: number) => Promise<HistoryPage>;
  /** Loads the next page of members; they join `members`. */
  loadMoreMembers: (limit?: number) => Promise<MembersPage>;
  room: Room | null;
}

/** Joins `room` while mounted; re-renders only when this room changes. */
export function useRoom(client: Client | null | undefined, room: string | null | undefined): UseRoomResult;

/** Calls `listener` for `event` of `room` while mounted. */
export function useRoomEvent<K extends keyof RoomEventMap>(
  room: Room | null | undefined,
  event: K,
  listener: (event: RoomEventMap[K]) => void,
): void;

/** The user's notifications while mounted (the provider's client). */
export function useNotifications(
  options?: UseNotificationsOptions | ((notification: Notification) => void),
): UseNotificationsResult;
/** Calls `listener` for each notification of `client` while mounted. */
export function useNotifications(
  client: Client | null | undefined,
  listener: (notification: Notification) => void,
): UseNotificationsResult;

export interface AttachmentsProps {
  /** A message or a pending one; nothing is rendered without attachments. */
  message: { data?: unknown };
  /** The list's class (default `roomcast-attachments`). */
  className?: string;
}

/**
 * A message's attachments (`data.attachments`, read by `attachments()`):
 * images inline, other files as named links; URLs that are not http(s)
 * shown as text, never as an `href` or `src`.
 */
export function Attachments(props: AttachmentsProps): ReactNode;

/** Where a hook finds its client: the provider's unless `client` is given. */
export interface HookOptions {
  client?: Client | null;
}

export interface UseMessagesOptions extends HookOptions {
  /**
   * Called when recovery was impossible and the room was reloaded from its
   * history: messages may have been missed while away, so refetch what the
   * page derived from them.
   */
  onDiscontinuity?: (event: { room: string; resets: number }) => void;
}

export interface UseMessagesResult {
  /** In offset order, each message once, across reconnects. */
  messages: readonly ChatMessage[];
  /** Sends waiting for their ack (queued while offline). */
  pending: readonly PendingMessage[];
  joined: boolean;
  /** Whether `loadOlder` may find older messages (false once a page said so, or when the oldest shown is the room's first). */
  hasMore: boolean;
  send: (content: string, options?: SendOptions) => Promise<Ack>;
  edit: (id: string, content: string, options?: SendOptions) => Promise<Ack>;
  remove: (id: string) => Promise<Ack>;
  /** Loads messages older than the oldest shown; they join `messages`. */
  loadOlder: (limit?: number) => Promise<HistoryPage>;
  /** The room's handle (for `useRoomEvent`). */
  room: Room | null;
}
/** A room's messages; re-renders only when they (or the pending sends) change. */
export function useMessages(room: string | null | undefined, options?: UseMessagesOptions): UseMessagesResult;

export interface UsePresenceResult {
  /** The members loaded so far (everyone in a small room), online first. */
  members: readonly Member[];
  /** How many members the room has. */
  count: number;
  /** How many of `members` are `online` (away, busy and offline are not). */
  online: number;
  moreMembers: boolean;
  loadMore: (limit?: number) => Promise<MembersPage>;
  /** Sets the user's own status, seen in every room. */
  setStatus: (status: SetStatus, custom?: string | null) => void;
}
/** A room's members and statuses; re-renders only when they change. */
export function usePresence(room: string | null | undefined, options?: HookOptions): UsePresenceResult;

export interface UseTypingResult {
  /** Other users typing now. */
  typing: readonly UserRef[];
  /** Call with true on each keystroke (throttled) and false when done. */
  setTyping: (isTyping: boolean) => void;
}
/** Who else is typing in a room; re-renders only when that changes. */
export function useTyping(room: string | null | undefined, options?: HookOptions): UseTypingResult;

export interface UseReadReceiptsResult {
  /** Each user's read position, latest readers first. */
  reads: readonly ReadReceipt[];
  /** The ids of the users who have read message `id` or a later one. */
  seenBy: (id: string) => string[];
  markRead: (id: string) => void;
}
/** A room's read positions; re-renders only when they change. */
export function useReadReceipts(room: string | null | undefined, options?: HookOptions): UseReadReceiptsResult;

/** How many members a room has; re-renders only when the count changes. */
export function useOccupancy(room: string | null | undefined, options?: HookOptions): number;

export interface ConnectionSnapshot {
  state: ConnectionState;
  isConnected: boolean;
  isLoading: boolean;
  sessionId: string | null;
  reconnectAttempts: number;
  user: UserInfo | null;
  transport: Transport;
}
/** The connection's state; re-renders only when it changes. */
export function useConnectionState(options?: HookOptions): ConnectionSnapshot;

export interface UseNotificationsOptions extends HookOptions {
  /** Called for each notification. */
  onNotification?: (notification: Notification) => void;
  /** How many to keep (default 50): the oldest go first. */
  keep?: number;
}
export interface UseNotificationsResult {
  /** Received while mounted, oldest first. */
  notifications: readonly Notification[];
  dismiss: (id: string) => void;
}

export interface ChatProps {
  /** The room to show (joined while mounted). */
  room: string;
  /** What to show for a message; `rendered` is the default rendering. */
  renderMessage?: (message: ChatMessage, rendered: ReactNode) => ReactNode;
  /** Called with the text before sending: return `{content, data}` to send (to add data), or null to send nothing. */
  onSend?: (content: string) => { content?: string; data?: Record<string, unknown> } | null | undefined;
  /** Replaces the header; `false` shows none. */
  header?: ReactNode | false;
  /** The members panel with presence dots (default true). */
  showMembers?: boolean;
  /** Notifications as toasts above the conversation (default true). */
  notifications?: boolean;
  /** The message box's placeholder and label (default "Write a message"). */
  placeholder?: string;
  /** The locale for dates and times (default: the browser's). */
  locale?: string;
  className?: string;
}
/**
 * A whole chat for `room` on the provider's client: messages with day
 * separators and grouping, pending and failed sends, edit and delete of
 * one's own, typing, "seen by", the "New messages" divider, older messages
 * on scroll, members with presence, a connection banner and toasts. Import
 * `roomcast/react/chat.css` for its look.
 */
export function Chat(props: ChatProps): ReactNode;
