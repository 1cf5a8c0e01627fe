// The protocol's types, generated from roomcast-shared by
// client-sdk/tests/typescript.rs: do not edit. The frames the server
// sends carry a `ref` beside these fields when they answer a request
// (see `ServerFrame` in types.rs).

/**
 * A frame from the server to a client.
 */
export type BareServerFrame = { "type": "ready",
/**
 * This connection's id.
 */
session_id: string,
/**
 * Who the token says the user is.
 */
user: UserInfo,
/**
 * How often the server pings; clients may ping at the same rate.
 */
heartbeat_ms: number,
/**
 * The rate limits this connection works within, so that a client
 * can pace itself (older servers leave it out).
 */
limits?: Limits | null, } | { "type": "joined" } & Joined | { "type": "left",
/**
 * The room.
 */
room: RoomName, } | { "type": "message" } & ChatMessage | { "type": "ack" } & Ack | { "type": "message_updated" } & MessageUpdated | { "type": "message_deleted" } & MessageDeleted | { "type": "presence_diff" } & PresenceDiff | { "type": "occupancy",
/**
 * The room.
 */
room: RoomName,
/**
 * How many members it has.
 */
count: number, } | { "type": "typing",
/**
 * The room.
 */
room: RoomName,
/**
 * Who.
 */
user: UserRef,
/**
 * Whether they are typing now.
 */
is_typing: boolean, } | { "type": "read",
/**
 * The room.
 */
room: RoomName,
/**
 * Who.
 */
user_id: string,
/**
 * The last message they read.
 */
id: string,
/**
 * When.
 */
read_at: string, } | { "type": "notification" } & Notification | { "type": "event" } & AppEvent | { "type": "history",
/**
 * The room.
 */
room: RoomName,
/**
 * Messages in their current state, oldest first.
 */
messages: Array<ChatMessage>,
/**
 * Whether older messages remain.
 */
has_more: boolean, } | { "type": "members" } & MembersPage | { "type": "pong",
/**
 * The server's clock.
 */
time: string, } | { "type": "error" } & ErrorFrame;

/**
 * A frame from a client to the server.
 */
export type BareClientFrame = { "type": "auth",
/**
 * A JWT. Left out on a connection the connect hook signed in: the
 * backend is asked again who the connection's cookies belong to.
 */
token?: string, } | { "type": "join",
/**
 * The room.
 */
room: RoomName,
/**
 * Replay what was missed since this position.
 */
since?: Position | null,
/**
 * Include this many of the latest messages (at most 100).
 */
history?: number | null,
/**
 * In a big room (more members than the server's big-room size),
 * still receive each member's arrival, departure and status in
 * `presence_diff` frames rather than only `occupancy` counts.
 */
member_events?: boolean | null, } | { "type": "leave",
/**
 * The room.
 */
room: RoomName, } | { "type": "send",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * The text; may be empty when `data` is not.
 */
content: string,
/**
 * An idempotency key, unique per sender: resending with the same key
 * returns the original ack and broadcasts nothing.
 */
client_id: string,
/**
 * Application data kept with the message: a JSON object (by
 * convention `attachments`), bounded by the server; `{}` is none.
 */
data?: Record<string, unknown>, } | { "type": "edit",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * The message.
 */
id: string,
/**
 * The new text; may be empty when `data` is a non-empty object.
 */
content: string,
/**
 * The message's new data: absent (or `null`) keeps what it has,
 * an object replaces it, `{}` removes it.
 */
data?: Record<string, unknown>, } | { "type": "delete",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * The message.
 */
id: string, } | { "type": "typing",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * Whether the user is typing.
 */
is_typing: boolean, } | { "type": "read",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * The last message read.
 */
id: string, } | { "type": "presence",
/**
 * The new status.
 */
status: SetStatus,
/**
 * A custom status text.
 */
custom?: string | null, } | { "type": "history",
/**
 * The room (joinable).
 */
room: RoomName,
/**
 * Only messages with an offset below this one.
 */
before?: number | null,
/**
 * How many (at most 100; default 50).
 */
limit?: number | null, } | { "type": "members",
/**
 * The room (joined).
 */
room: RoomName,
/**
 * Where the previous page ended (its `cursor`); the first page
 * without one.
 */
cursor?: string | null,
/**
 * How many (at most [`MAX_MEMBERS_LIMIT`](crate::MAX_MEMBERS_LIMIT);
 * default [`DEFAULT_MEMBERS_LIMIT`](crate::DEFAULT_MEMBERS_LIMIT)).
 */
limit?: number | null, } | { "type": "ping" };

/**
 * A client's label for a request, echoed in the server's direct reply.
 */
export type Ref = number | string;

/**
 * The reply to `join`.
 */
export type Joined = {
/**
 * The room.
 */
room: RoomName,
/**
 * The room's history generation.
 */
epoch: string,
/**
 * The latest offset in the room (0 when it has no events yet).
 */
offset: number,
/**
 * How many members the room has.
 */
count: number,
/**
 * The first page of members with their presence (online first, then
 * by name); the rest with `members` from `cursor`.
 */
members: Array<Member>,
/**
 * Where to continue with `members`; absent when `members` is everyone.
 */
cursor?: string | null,
/**
 * Recovered events (with `since`) or the latest messages (with `history`),
 * oldest first.
 */
messages: Array<RoomEvent>,
/**
 * With `since`: whether every missed event is in `messages`. When false,
 * the client should reload the room.
 */
recovered?: boolean | null,
/**
 * The latest read position of each member who has one, latest readers
 * first, at most [`MAX_JOINED_READS`].
 */
reads?: Array<ReadReceipt>, };

/**
 * A page of a room's members: the reply to `members`, and the room
 * presence API's body.
 */
export type MembersPage = {
/**
 * The room.
 */
room: RoomName,
/**
 * How many members the room has.
 */
count: number,
/**
 * Members with their presence, online first, then by name.
 */
members: Array<Member>,
/**
 * Where the next page starts; absent on the last page.
 */
cursor?: string | null, };

/**
 * A room's membership and presence changes over a short window, sent once
 * per window (`presence_diff`), the latest state of each user who changed:
 * applying `leaves`, then `joins`, then `updates` to the member list gives
 * the room as it is now.
 */
export type PresenceDiff = {
/**
 * The room.
 */
room: RoomName,
/**
 * How many members the room has now.
 */
count: number,
/**
 * Users who are members now and arrived in the window (or whose earlier
 * departure this replaces), with their presence.
 */
joins?: Array<Member>,
/**
 * Users who are no longer members.
 */
leaves?: Array<UserInfo>,
/**
 * Members whose status changed.
 */
updates?: Array<Presence>, };

/**
 * One event of a room's stream: what `joined.messages` replays.
 */
export type RoomEvent = { "type": "message" } & ChatMessage | { "type": "message_updated" } & MessageUpdated | { "type": "message_deleted" } & MessageDeleted;

/**
 * The reply to `send`, `edit` and `delete`.
 */
export type Ack = {
/**
 * The message.
 */
id: string,
/**
 * The offset of the event the request created (for a duplicate `send`,
 * the original one).
 */
offset: number,
/**
 * The `send`'s idempotency key.
 */
client_id?: string | null, };

/**
 * An error reply, or an error about the connection.
 */
export type ErrorFrame = {
/**
 * What went wrong.
 */
code: ProtocolErrorCode,
/**
 * For humans.
 */
message: string,
/**
 * With `rate_limited`: how long to wait before trying again.
 */
retry_after_ms?: number | null,
/**
 * With `rejected`: the code the application's backend gave its
 * refusal (`"spam"`, say), for a client to act on; `message` is the
 * backend's reason, for the user.
 */
reason_code?: string | null, };

/**
 * What went wrong, in an `error` frame or an HTTP error body.
 */
export type ProtocolErrorCode = "bad_request" | "unauthorized" | "forbidden" | "not_found" | "rate_limited" | "too_large" | "conflict" | "rejected" | "unavailable" | "internal";

/**
 * The rate limits a connection works within, announced in `ready`.
 *
 * A request over a limit is refused with `rate_limited` and a
 * `retry_after_ms`; a client that paces itself by these numbers is not
 * refused by its connection's own limits.
 */
export type Limits = {
/**
 * `send`, `edit` and `delete` on this connection.
 */
messages: RateLimit,
/**
 * `send`, `edit` and `delete` of this user over all their connections
 * to one server instance.
 */
user_messages: RateLimit,
/**
 * Frames of any type on this connection.
 */
frames: RateLimit,
/**
 * `join` on this connection.
 */
joins: RateLimit, };

/**
 * A token bucket: `burst` requests at once after a quiet spell, refilled
 * at `per_sec` per second.
 */
export type RateLimit = {
/**
 * Requests per second, sustained.
 */
per_sec: number,
/**
 * Requests allowed at once (the bucket's size).
 */
burst: number, };

/**
 * A valid room name: 1 to 128 bytes of letters and digits of any script (NFC) and `_ . : @ , -`.
 */
export type RoomName = string;

/**
 * A place in a room's stream: where a client is, to recover from there.
 */
export type Position = {
/**
 * The room's history generation; changes when its history is reset.
 */
epoch: string,
/**
 * The offset of the last event seen.
 */
offset: number, };

/**
 * A user as others see them.
 */
export type UserInfo = {
/**
 * The user id (a token's `sub`).
 */
id: string,
/**
 * The display name.
 */
name: string,
/**
 * The role, when the token has one.
 */
role: string | null,
/**
 * An avatar URL, when the token has one.
 */
avatar: string | null, };

/**
 * The short form of a user in `typing` frames.
 */
export type UserRef = {
/**
 * The user id.
 */
id: string,
/**
 * The display name.
 */
name: string, };

/**
 * A chat message, as the `message` frame and history carry it.
 */
export type ChatMessage = {
/**
 * The room it was sent to.
 */
room: RoomName,
/**
 * The message id, unique across rooms.
 */
id: string,
/**
 * Its place in the room's stream.
 */
offset: number,
/**
 * The sender's idempotency key.
 */
client_id: string,
/**
 * Who sent it.
 */
sender: UserInfo,
/**
 * The text (edited text, in history, when it was edited; empty when
 * deleted).
 */
content: string,
/**
 * When the server accepted it.
 */
created_at: string,
/**
 * When it was last edited; only in history of edited messages.
 */
edited_at?: string | null,
/**
 * Application data kept with the message: the sender's object (by
 * convention `attachments`: see the protocol), or what the
 * application's backend made of it when it accepted the message (its
 * publish hook: mentions, link previews, moderation labels), which may
 * be any JSON value; absent when there is none. Boxed: most
 * messages have none, and every kept message would carry a whole
 * `Value`'s room otherwise.
 */
data?: unknown,
/**
 * `true` for what a deleted message leaves in history: its place, id,
 * sender and time, with no content, data or edit time. Absent
 * otherwise.
 */
deleted?: boolean, };

/**
 * A message's new text and data, as the `message_updated` frame carries it.
 */
export type MessageUpdated = {
/**
 * The room.
 */
room: RoomName,
/**
 * The edited message.
 */
id: string,
/**
 * The edit's own place in the room's stream.
 */
offset: number,
/**
 * The new text.
 */
content: string,
/**
 * When it was edited.
 */
edited_at: string,
/**
 * The message's data after the edit (kept, replaced or removed):
 * absent when it has none now.
 */
data?: unknown, };

/**
 * A deleted message, as the `message_deleted` frame carries it.
 */
export type MessageDeleted = {
/**
 * The room.
 */
room: RoomName,
/**
 * The deleted message.
 */
id: string,
/**
 * The deletion's own place in the room's stream.
 */
offset: number, };

/**
 * The status a client may set for its user.
 */
export type SetStatus = "online" | "away" | "busy" | "invisible";

/**
 * A user's status as others see it.
 */
export type Status = "online" | "away" | "busy" | "offline";

/**
 * A user's presence, as the `presence` frame carries it.
 */
export type Presence = {
/**
 * The user.
 */
user_id: string,
/**
 * The status others see.
 */
status: Status,
/**
 * A custom status text.
 */
custom: string | null,
/**
 * When the user was last connected (now, while online).
 */
last_seen: string, };

/**
 * A room member in `joined.members` and the room presence API: a presence
 * object with the user's profile beside it.
 */
export type Member = {
/**
 * The member.
 */
user: UserInfo,
/**
 * The user.
 */
user_id: string,
/**
 * The status others see.
 */
status: Status,
/**
 * A custom status text.
 */
custom: string | null,
/**
 * When the user was last connected (now, while online).
 */
last_seen: string, };

/**
 * How far a member has read a room: the latest `read` they sent, kept so
 * that a page loaded later shows "seen by" at once (`joined.reads`).
 */
export type ReadReceipt = {
/**
 * The reader.
 */
user_id: string,
/**
 * The last message they read.
 */
id: string,
/**
 * When they read it.
 */
read_at: string, };

/**
 * A notification for one user.
 */
export type Notification = {
/**
 * The notification id.
 */
id: string,
/**
 * The headline.
 */
title: string,
/**
 * The text.
 */
body: string,
/**
 * Anything the application wants to attach.
 */
data: unknown,
/**
 * When the backend posted it.
 */
created_at: string, };

/**
 * An application event a backend published into a room.
 */
export type AppEvent = {
/**
 * The room.
 */
room: RoomName,
/**
 * The event's name, such as `order.shipped`.
 */
name: string,
/**
 * Its payload.
 */
data: unknown,
/**
 * When it was published.
 */
created_at: string, };
