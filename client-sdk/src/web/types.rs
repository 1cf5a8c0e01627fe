//! The TypeScript declarations of everything the package exports: options,
//! events and the protocol's message shapes, plus the typed handles the Rust
//! signatures use so that the generated `.d.ts` names them instead of `any`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** The connection's lifecycle. */
export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** A function that returns a fresh access token (a JWT). */
export type TokenProvider = () => Promise<string> | string;

/** Error codes: the protocol's own, and the client's. */
export type ErrorCode =
  | "bad_request" | "unauthorized" | "forbidden" | "not_found" | "rate_limited"
  | "too_large" | "conflict" | "unavailable" | "internal"
  | "queue_full" | "closed" | "disconnected" | "left" | "not_joined" | "token" | "gave_up";

/** What a rejected promise and `onError` carry. */
export interface RoomcastError extends Error {
  code: ErrorCode;
  /** With `rate_limited`: how long the server asks to wait, ms. */
  retryAfterMs?: number;
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
  onConnect?: (event: ConnectEvent) => void;
  onDisconnect?: (event: DisconnectEvent) => void;
  onError?: (error: RoomcastError) => void;
  onMessage?: (frame: ServerFrame) => void;
  onStateChange?: (state: ConnectionState) => void;
}

export interface UserInfo { id: string; name: string; role: string | null; avatar: string | null; }
export interface UserRef { id: string; name: string; }
export type Status = "online" | "away" | "busy" | "offline";
export type SetStatus = "online" | "away" | "busy" | "invisible";
export interface Presence { user_id: string; status: Status; custom: string | null; last_seen: string; }
export interface Member extends Presence { user: UserInfo; }

export interface ChatMessage {
  room: string; id: string; offset: number; client_id: string; sender: UserInfo;
  content: string; created_at: string; edited_at?: string;
}
export interface MessageUpdated { room: string; id: string; offset: number; content: string; edited_at: string; }
export interface MessageDeleted { room: string; id: string; offset: number; }
export interface Ack { id: string; offset: number; client_id?: string; }
export interface HistoryPage { room: string; messages: ChatMessage[]; has_more: boolean; }
export interface HistoryOptions { before?: number; limit?: number; }
export interface Notification { id: string; title: string; body: string; data: unknown; created_at: string; }
export interface AppEvent { room: string; name: string; data: unknown; created_at: string; }
export interface TypingEvent { room: string; user: UserRef; is_typing: boolean; }
export interface ReadEvent { room: string; user_id: string; id: string; read_at: string; }
export interface MemberEvent { room: string; user: UserInfo; }

/** A client's label for a request, echoed by the reply. */
export type Ref = string | number;
/** Where a client is in a room's stream. */
export interface Position { epoch: string; offset: number; }
/** One event of a room's stream, as `joined.messages` replays it. */
export type RoomEvent =
  | ({ type: "message" } & ChatMessage)
  | ({ type: "message_updated" } & MessageUpdated)
  | ({ type: "message_deleted" } & MessageDeleted);

/** A frame the server sends (see the protocol reference). */
export type ServerFrame =
  | { type: "ready"; ref?: Ref; session_id: string; user: UserInfo; heartbeat_ms: number }
  | { type: "joined"; ref?: Ref; room: string; epoch: string; offset: number; members: Member[]; messages: RoomEvent[]; recovered?: boolean }
  | { type: "left"; ref?: Ref; room: string }
  | ({ type: "message" } & ChatMessage)
  | ({ type: "ack"; ref?: Ref } & Ack)
  | ({ type: "message_updated" } & MessageUpdated)
  | ({ type: "message_deleted" } & MessageDeleted)
  | ({ type: "member_joined" } & MemberEvent)
  | ({ type: "member_left" } & MemberEvent)
  | ({ type: "typing" } & TypingEvent)
  | ({ type: "read" } & ReadEvent)
  | ({ type: "presence" } & Presence)
  | ({ type: "notification" } & Notification)
  | ({ type: "event" } & AppEvent)
  | { type: "history"; ref?: Ref; room: string; messages: ChatMessage[]; has_more: boolean }
  | { type: "pong"; ref?: Ref; time: string }
  | { type: "error"; ref?: Ref; code: ErrorCode; message: string };

/** A frame a client may send (see the protocol reference). */
export type ClientFrame =
  | { type: "auth"; ref?: Ref; token: string }
  | { type: "join"; ref?: Ref; room: string; since?: Position; history?: number }
  | { type: "leave"; ref?: Ref; room: string }
  | { type: "send"; ref?: Ref; room: string; content: string; client_id: string }
  | { type: "edit"; ref?: Ref; room: string; id: string; content: string }
  | { type: "delete"; ref?: Ref; room: string; id: string }
  | { type: "typing"; ref?: Ref; room: string; is_typing: boolean }
  | { type: "read"; ref?: Ref; room: string; id: string }
  | { type: "presence"; ref?: Ref; status: SetStatus; custom?: string }
  | { type: "history"; ref?: Ref; room: string; before?: number; limit?: number }
  | { type: "ping"; ref?: Ref };

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
}

/** A send waiting for its ack, shown as "sending". */
export interface PendingMessage { client_id: string; content: string; }

/** A room's state for `useSyncExternalStore`: the same object until something changes. */
export interface RoomSnapshot {
  readonly room: string;
  /** Joined on the current connection. */
  readonly joined: boolean;
  /** In offset order, each message once. */
  readonly messages: readonly ChatMessage[];
  readonly pending: readonly PendingMessage[];
  readonly members: readonly Member[];
  /** Other users typing now. */
  readonly typing: readonly UserRef[];
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
    /// `HistoryOptions` in TypeScript.
    #[wasm_bindgen(typescript_type = "HistoryOptions")]
    pub type HistoryOptionsArg;
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
