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

/** Calls `listener` for each notification while mounted. */
export function useNotifications(
  client: Client | null | undefined,
  listener: (notification: Notification) => void,
): void;

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
