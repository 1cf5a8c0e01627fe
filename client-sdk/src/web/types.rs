//! The TypeScript declarations of everything the package exports: options,
//! events and the protocol's message shapes, plus the typed handles the Rust
//! signatures use so that the generated `.d.ts` names them instead of `any`.
//!
//! The protocol's types (`protocol.d.ts`) are generated from
//! `roomcast-shared` and checked against it by `tests/typescript.rs`, so
//! that they cannot drift from the wire; this file writes by hand only what
//! the SDK adds around them.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const PROTOCOL: &'static str = include_str!("protocol.d.ts");

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The connection's lifecycle. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A function that returns a fresh access token (a JWT). */
export type TokenProvider = () => Promise<string> | string;

/** Error codes: the protocol's own, and the client's. */
export type ErrorCode =
  | ProtocolErrorCode
  | "queue_full" | "closed" | "disconnected" | "left" | "not_joined" | "token" | "gave_up";

/** What a rejected promise and `onError` carry. */
export interface RoomcastError extends Error {
  code: ErrorCode;
  /** With `rate_limited`: how long the server asks to wait, ms. */
  retryAfterMs?: number;
  /** With `rejected` (the backend's publish hook refused the message; `message` is its reason): the backend's code. */
  reasonCode?: string;
}

export interface ClientOptions {
  /** A token, or a function returning one (called on every connect and before `exp`). Omit when the URL carries `?token=`. */
  token?: string | TokenProvider;
  /** Connect at once (default true); otherwise call `connect()`. */
  autoConnect?: boolean;
  /** Ceiling of the first reconnect delay, ms (default 500). Delays are random up to the ceiling (full jitter). */
  minDelayMs?: number;
  /** Largest reconnect delay ceiling, ms (default 30000). */
  maxDelayMs?: number;
  /** Growth of the ceiling per failed attempt (default 2). */
  factor?: number;
  /** Consecutive failed attempts before giving up (default: never give up). */
  maxAttempts?: number;
  /** A connection up this long resets the attempts, ms (default 5000). */
  stableAfterMs?: number;
  /** Largest random delay before reconnecting after close 1012, ms (default 1000). */
  restartJitterMs?: number;
  /** Time to open and authenticate, ms (default 10000). */
  connectTimeoutMs?: number;
  /** Interval of application pings, ms (default: the server's heartbeat). */
  pingIntervalMs?: number;
  /** A connection silent this long after a ping is replaced, ms (default 5000). */
  pongTimeoutMs?: number;
  /** Most sends waiting for their ack, queued or in flight (default 100). */
  queueLimit?: number;
  /** Shortest interval between two `typing: true` frames per room, ms (default 500). */
  typingThrottleMs?: number;
  /** `typing: false` is sent after this long without `typing(true)`, ms (default 3000). */
  typingIdleMs?: number;
  /** Latest messages loaded when a room is joined or reset (default 50, at most 100). */
  history?: number;
  /** Most messages kept per room snapshot (default 1000). */
  maxMessages?: number;
  /** Ask the token provider this long before `exp`, ms (default 60000). */
  refreshBeforeMs?: number;
  /** Transports the client may use (default both: WebSocket, falling back to Server-Sent Events and POSTs where WebSockets fail; the URL must end in `/ws`). */
  transports?: Transport[];
  /** WebSocket attempts in a row that fail before `ready` after which the client uses the fallback (default 3). */
  sseAfterFailures?: number;
  /** On the fallback, first wait before checking whether a WebSocket gets through again, ms (default 10000); doubles after each failed check. */
  websocketCheckMs?: number;
  /** Longest wait between two such checks, ms (default 300000). */
  websocketCheckMaxMs?: number;
  onConnect?: (event: ConnectEvent) => void;
  onDisconnect?: (event: DisconnectEvent) => void;
  onError?: (error: RoomcastError) => void;
  onMessage?: (frame: ServerFrame) => void;
  onStateChange?: (state: ConnectionState) => void;
}

/** What `history()` resolves to. */
export interface HistoryPage { room: string; messages: ChatMessage[]; has_more: boolean; }
export interface HistoryOptions { before?: number; limit?: number; }
/** The payload of a room's `typing` event: the frame without its `type`. */
export type TypingEvent = Omit<Extract<BareServerFrame, { type: "typing" }>, "type">;
/** The payload of a room's `read` event: the frame without its `type`. */
export type ReadEvent = Omit<Extract<BareServerFrame, { type: "read" }>, "type">;
/** The payload of a room's `member_joined` and `member_left` events (each
 * arrival and departure a `presence_diff` announces). */
export interface MemberEvent { room: string; user: UserInfo; }
/** The payload of a room's `occupancy` event: a big room's member count. */
export interface OccupancyEvent { room: string; count: number; }
/** Options of `members()`. */
export interface MembersOptions { limit?: number; }

/** A frame the server sends, as `onMessage` receives it: direct replies echo the request's `ref`. */
export type ServerFrame = BareServerFrame & { ref?: Ref };

/** A frame a client may send, with an optional `ref` the reply echoes. */
export type ClientFrame = BareClientFrame & { ref?: Ref };

export interface ConnectEvent { sessionId: string; user: UserInfo; }
export interface DisconnectEvent { code: number; reason: string; willReconnect: boolean; }

/** The client's state for `useSyncExternalStore`: the same object until something changes. */
export interface ClientSnapshot {
  readonly state: ConnectionState;
  readonly isConnected: boolean;
  readonly isLoading: boolean;
  readonly sessionId: string | null;
  readonly reconnectAttempts: number;
  readonly user: UserInfo | null;
  /** The transport of the current (or latest) connection. */
  readonly transport: Transport;
}

/** `"websocket"`, or `"sse"`: Server-Sent Events for server frames and POSTs for client frames. */
export type Transport = "websocket" | "sse";

/** A send waiting for its ack, shown as "sending". */
export interface PendingMessage { client_id: string; content: string; data?: Record<string, unknown>; }

/** Options of `send` and `edit`. */
export interface SendOptions {
  /**
   * A JSON object kept with the message (by convention `attachments`); on
   * `edit` it replaces the message's data, `{}` removes it, and leaving it
   * out keeps it. Bounded by the server (8 KiB of JSON by default).
   */
  data?: Record<string, unknown>;
}

/** One of a message's `data.attachments`, as `attachments(message)` reads it. */
export interface Attachment {
  url: string;
  name?: string;
  type?: string;
  size?: number;
  /** An `http:` or `https:` URL: the only ones to use as a link or an image. Show others as text. */
  linkable: boolean;
  /** Linkable and `image/*`: show inline. */
  image: boolean;
}

/** A room's state for `useSyncExternalStore`: the same object until something changes. */
export interface RoomSnapshot {
  readonly room: string;
  /** Joined on the current connection. */
  readonly joined: boolean;
  /** In offset order, each message once. */
  readonly messages: readonly ChatMessage[];
  readonly pending: readonly PendingMessage[];
  /** The members loaded so far, online first, then by name: everyone in
   * a small room; in a big one, the first page and those `members()` loaded. */
  readonly members: readonly Member[];
  /** How many members the room has. */
  readonly member_count: number;
  /** Whether `members()` has more members to load. */
  readonly more_members: boolean;
  /** Other users typing now. */
  readonly typing: readonly UserRef[];
  /**
   * Each user's read position, latest readers first (the user's own
   * included): from `joined` (the positions the server kept, so they show
   * at once after a reload) and live `read` events; never moved back.
   */
  readonly reads: readonly ReadReceipt[];
  /** How many times recovery was impossible and the room was reloaded. */
  readonly resets: number;
}

export interface ClientEventMap {
  connect: ConnectEvent;
  disconnect: DisconnectEvent;
  error: RoomcastError;
  message: ServerFrame;
  statechange: ConnectionState;
  notification: Notification;
  presence: Presence;
}

export interface RoomEventMap {
  joined: { room: string };
  message: ChatMessage;
  updated: MessageUpdated;
  deleted: MessageDeleted;
  typing: TypingEvent;
  read: ReadEvent;
  member_joined: MemberEvent;
  member_left: MemberEvent;
  /** The room's membership and status changes of the last window. */
  presence_diff: PresenceDiff;
  /** A big room's member count changed. */
  occupancy: OccupancyEvent;
  event: AppEvent;
  /** Recovery was impossible (new epoch, gap too old): the snapshot was reloaded; redraw. */
  reset: { room: string };
  /** The join was refused. */
  error: { code: ErrorCode; message: string };
}

export interface Client {
  /** Listens to a client event; returns a function that stops listening. */
  on<K extends keyof ClientEventMap>(event: K, listener: (event: ClientEventMap[K]) => void): () => void;
}

export interface Room {
  /** Listens to a room event; returns a function that stops listening. */
  on<K extends keyof RoomEventMap>(event: K, listener: (event: RoomEventMap[K]) => void): () => void;
}

/** Options of `showNotification`. */
export interface ShowNotificationOptions { body?: string; tag?: string; icon?: string; data?: unknown; }
"#;

#[wasm_bindgen]
extern "C" {
    /// `ClientOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "ClientOptions")]
    pub type ClientOptionsArg;
    /// `ConnectionState` in TypeScript.
    #[wasm_bindgen(typescript_type = "ConnectionState")]
    pub type StateValue;
    /// `string | null` in TypeScript.
    #[wasm_bindgen(typescript_type = "string | null")]
    pub type SessionIdValue;
    /// `UserInfo | null` in TypeScript.
    #[wasm_bindgen(typescript_type = "UserInfo | null")]
    pub type UserValue;
    /// `ClientSnapshot` in TypeScript.
    #[wasm_bindgen(typescript_type = "ClientSnapshot")]
    pub type ClientSnapshotValue;
    /// `RoomSnapshot` in TypeScript.
    #[wasm_bindgen(typescript_type = "RoomSnapshot")]
    pub type RoomSnapshotValue;
    /// `() => void` in TypeScript: a listener or an unsubscribe function.
    #[wasm_bindgen(typescript_type = "() => void")]
    pub type Callback;
    /// `Promise<Ack>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<Ack>")]
    pub type AckPromise;
    /// `Promise<HistoryPage>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<HistoryPage>")]
    pub type HistoryPromise;
    /// `Promise<MembersPage>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<MembersPage>")]
    pub type MembersPromise;
    /// `MembersOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "MembersOptions")]
    pub type MembersOptionsArg;
    /// `HistoryOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "HistoryOptions")]
    pub type HistoryOptionsArg;
    /// `SendOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "SendOptions")]
    pub type SendOptionsArg;
    /// `{ data?: unknown }` in TypeScript: a message, or a pending one.
    #[wasm_bindgen(typescript_type = "{ data?: unknown }")]
    pub type MessageLikeArg;
    /// `string[]` in TypeScript (a JavaScript array built in place: smaller
    /// in the wasm than wasm-bindgen's conversion of a `Vec<String>`).
    #[wasm_bindgen(typescript_type = "string[]")]
    pub type StringsValue;
    /// `Attachment[]` in TypeScript.
    #[wasm_bindgen(typescript_type = "Attachment[]")]
    pub type AttachmentsValue;
    /// `SetStatus` in TypeScript.
    #[wasm_bindgen(typescript_type = "SetStatus")]
    pub type SetStatusArg;
    /// `ClientFrame | string` in TypeScript.
    #[wasm_bindgen(typescript_type = "ClientFrame | string")]
    pub type ClientFrameArg;
    /// `(notification: Notification) => void` in TypeScript.
    #[wasm_bindgen(typescript_type = "(notification: Notification) => void")]
    pub type NotificationListener;
    /// `ShowNotificationOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "ShowNotificationOptions")]
    pub type NotificationOptionsArg;
    /// `NotificationPermission | "unsupported"` in TypeScript.
    #[wasm_bindgen(typescript_type = "NotificationPermission | \"unsupported\"")]
    pub type PermissionValue;
    /// `Promise<NotificationPermission>` in TypeScript.
    #[wasm_bindgen(typescript_type = "Promise<NotificationPermission>")]
    pub type PermissionPromise;
}
