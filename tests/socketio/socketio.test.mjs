// The Socket.IO dialect (/socket.io/) driven by the real socket.io-client
// 4.x, over WebSocket and over long-polling, beside native clients (the
// `ws` package speaking the native protocol on /ws) in the same rooms.
//
// The server is the fixture `cargo xtask test` starts: its HTTP address in
// ROOMCAST_APP_URL, its control API (tokens, backend calls) in
// ROOMCAST_CONTROL_URL.

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";

const APP = process.env.ROOMCAST_APP_URL;
const CONTROL = process.env.ROOMCAST_CONTROL_URL;
if (!APP || !CONTROL) {
  throw new Error("ROOMCAST_APP_URL and ROOMCAST_CONTROL_URL must name a running server: run `cargo xtask test`");
}

/** How long anything the server should do may take. */
const WAIT = 10_000;
/** How long to listen to be sure something does not arrive. */
const QUIET = 500;

let names = 0;
/** A fresh user name for each test, so tests do not see each other. */
const fresh = (prefix) => `${prefix}${process.pid}x${++names}`;

async function control(path, body) {
  const response = await fetch(`${CONTROL}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A dev token and the user it signs in. */
const token = (name, role) => control("/token", role ? { name, role } : { name });

const sockets = [];
after(() => sockets.forEach((socket) => socket.close()));

/** A Socket.IO client, connected (or refused: then the error). */
function connect(auth, transports = ["websocket"]) {
  const socket = io(APP, { auth, transports, reconnection: false, timeout: WAIT });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/** The next `event` on `socket` that `matches`. */
function next(socket, event, matches = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT} ms`)), WAIT);
    const listener = (data) => {
      if (matches(data)) {
        clearTimeout(timer);
        socket.off(event, listener);
        resolve(data);
      }
    };
    socket.on(event, listener);
  });
}

/** Every `event` on `socket` during QUIET ms. */
async function during(socket, event) {
  const seen = [];
  const listener = (data) => seen.push(data);
  socket.on(event, listener);
  await new Promise((resolve) => setTimeout(resolve, QUIET));
  socket.off(event, listener);
  return seen;
}

/** A native client on /ws: frames in, frames out. */
async function native(tokenText) {
  const ws = new WebSocket(`${APP.replace(/^http/, "ws")}/ws?token=${encodeURIComponent(tokenText)}`);
  sockets.push(ws);
  const frames = [];
  const waiters = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString());
    frames.push(frame);
    for (const waiter of [...waiters]) waiter();
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let ref = 0;
  const client = {
    frames,
    send(frame) {
      const sent = { ref: ++ref, ...frame };
      ws.send(JSON.stringify(sent));
      return sent.ref;
    },
    /** The first frame from here on, or already received, that `matches`. */
    until(matches) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching frame within ${WAIT} ms: ${JSON.stringify(frames.slice(-5))}`)), WAIT);
        const check = () => {
          const index = frames.findIndex(matches);
          if (index >= 0) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve(frames.splice(index, 1)[0]);
          }
        };
        waiters.push(check);
        check();
      });
    },
  };
  await client.until((f) => f.type === "ready");
  return client;
}

async function nativeIn(room, name) {
  const { token: text, user } = await token(name);
  const client = await native(text);
  const ref = client.send({ type: "join", room, history: 0 });
  await client.until((f) => f.type === "joined" && f.ref === ref);
  return { client, user };
}

for (const transport of ["websocket", "polling"]) {
  describe(`over ${transport}`, () => {
    const transports = [transport];

    test("a message from socket.io-client reaches a native client, acked with its id", async () => {
      const conversation = Math.floor(Math.random() * 1e9);
      const room = `conversation:${conversation}`;
      const { client } = await nativeIn(room, fresh("nat"));
      const { token: text, user } = await token(fresh("sio"));
      const socket = await connect({ token: text }, transports);
      assert.deepEqual(await socket.emitWithAck("join_conversation", conversation), { ok: true });
      const ack = await socket.emitWithAck("send_message", { conversationId: conversation, content: "merhaba" });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.match(ack.id, /\S/);
      const message = await client.until((f) => f.type === "message" && f.room === room);
      assert.equal(message.content, "merhaba");
      assert.equal(message.id, ack.id);
      assert.equal(message.sender.id, user.id);
    });

    test("a native client's message arrives as new_message in the original's fields", async () => {
      const conversation = `c${Math.floor(Math.random() * 1e9)}`;
      const room = `conversation:${conversation}`;
      const { token: text } = await token(fresh("sio"));
      const socket = await connect({ token: text }, transports);
      await socket.emitWithAck("join_conversation", conversation);
      const { client, user } = await nativeIn(room, fresh("nat"));
      const arrived = next(socket, "new_message");
      client.send({ type: "send", room, content: "hello from /ws", client_id: `c-${Date.now()}` });
      const message = await arrived;
      assert.equal(message.conversationId, conversation);
      assert.equal(message.messageContent, "hello from /ws");
      assert.equal(message.senderId, user.id);
      assert.equal(message.senderName, user.name);
      assert.equal(message.isRead, false);
      assert.ok(!Number.isNaN(Date.parse(message.timestamp)), message.timestamp);
      assert.match(message.id, /\S/);
    });

    test("typing and mark_read reach native clients; theirs come back as user_typing and message_read", async () => {
      const conversation = Math.floor(Math.random() * 1e9);
      const room = `conversation:${conversation}`;
      const { token: text, user: me } = await token(fresh("sio"));
      const socket = await connect({ token: text }, transports);
      await socket.emitWithAck("join_conversation", conversation);
      const { client, user: other } = await nativeIn(room, fresh("nat"));

      socket.emit("typing", { conversationId: conversation, isTyping: true });
      const typing = await client.until((f) => f.type === "typing" && f.room === room);
      assert.equal(typing.user.id, me.id);
      assert.equal(typing.is_typing, true);

      const typed = next(socket, "user_typing");
      client.send({ type: "typing", room, is_typing: true });
      assert.deepEqual(await typed, { userId: other.id, conversationId: conversation, isTyping: true });

      // mark_read names a message, not its room: one the socket was shown.
      const shown = next(socket, "new_message");
      client.send({ type: "send", room, content: "read me", client_id: `c-${Date.now()}` });
      const message = await shown;
      socket.emit("mark_read", { messageId: message.id });
      const read = await client.until((f) => f.type === "read" && f.user_id === me.id);
      assert.equal(read.id, message.id);
      assert.equal(read.room, room);

      const receipt = next(socket, "message_read", (r) => r.readBy === other.id);
      client.send({ type: "read", room, id: message.id });
      const seen = await receipt;
      assert.equal(seen.messageId, message.id);
      assert.ok(!Number.isNaN(Date.parse(seen.readAt)), seen.readAt);
    });

    test("leave_conversation stops the conversation's events", async () => {
      const conversation = Math.floor(Math.random() * 1e9);
      const room = `conversation:${conversation}`;
      const { token: text } = await token(fresh("sio"));
      const socket = await connect({ token: text }, transports);
      await socket.emitWithAck("join_conversation", conversation);
      const { client } = await nativeIn(room, fresh("nat"));
      assert.deepEqual(await socket.emitWithAck("leave_conversation", conversation), { ok: true });
      const heard = during(socket, "new_message");
      client.send({ type: "send", room, content: "not for you", client_id: `c-${Date.now()}` });
      assert.deepEqual(await heard, []);
    });
  });
}

describe("sign-in", () => {
  test("a bad, empty or missing token is a connect_error", async () => {
    for (const auth of [{ token: "not-a-jwt" }, { token: "" }, {}, { token: 42 }]) {
      const error = await connect(auth).then(
        () => assert.fail(`connected with ${JSON.stringify(auth)}`),
        (err) => err,
      );
      assert.match(error.message, /token|credentials/i, JSON.stringify(auth));
    }
  });

  test("a forged token (another secret) is a connect_error", async () => {
    const header = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString("base64url");
    const body = Buffer.from(JSON.stringify({ sub: "mallory", role: "admin" })).toString("base64url");
    const error = await connect({ token: `${header}.${body}.c2lnbmF0dXJl` }).then(
      () => assert.fail("connected with a forged token"),
      (err) => err,
    );
    assert.match(error.message, /token/i);
  });
});

describe("rooms of the original", () => {
  test("emitNewMessage: a backend's event into user:<id> reaches that user's sockets only", async () => {
    const { token: text, user } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    const { token: otherText } = await token(fresh("sio"));
    const other = await connect({ token: otherText });
    const arrived = next(socket, "new_message");
    const elsewhere = during(other, "new_message");
    const payload = { id: "msg_123", customerName: "Ahmet", messageContent: "Merhaba", isRead: false };
    await control(`/api/rooms/${encodeURIComponent(`user:${user.id}`)}/events`, { name: "new_message", data: payload });
    assert.deepEqual(await arrived, payload);
    assert.deepEqual(await elsewhere, []);
  });

  test("emitToAdmins: admin sockets are in room admin, others are not", async () => {
    const { token: adminText } = await token(fresh("adm"), "admin");
    const admin = await connect({ token: adminText });
    const { token: text } = await token(fresh("sio"));
    const member = await connect({ token: text });
    // The admin's join is handed to its session on connect; an event sent
    // before it is in the room would not reach it, so send until it does.
    const arrived = next(admin, "admin_alert");
    const missed = during(member, "admin_alert");
    const timer = setInterval(() => control("/api/rooms/admin/events", { name: "admin_alert", data: { n: 1 } }), 100);
    try {
      assert.deepEqual(await arrived, { n: 1 });
    } finally {
      clearInterval(timer);
    }
    assert.deepEqual(await missed, []);
  });

  test("emitToConversation: a backend's event reaches the conversation's sockets", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: text } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    await socket.emitWithAck("join_conversation", conversation);
    const arrived = next(socket, "conversation_closed");
    await control(`/api/rooms/conversation:${conversation}/events`, { name: "conversation_closed", data: { by: "agent" } });
    assert.deepEqual(await arrived, { by: "agent" });
  });

  test("a notification arrives as notification", async () => {
    const { token: text, user } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    const arrived = next(socket, "notification");
    await control("/notify", { user_ids: [user.id], title: "Yeni mesaj", body: "Ahmet yazdı", data: { id: 7 } });
    const notification = await arrived;
    assert.equal(notification.title, "Yeni mesaj");
    assert.equal(notification.body, "Ahmet yazdı");
    assert.deepEqual(notification.data, { id: 7 });
  });

  test("a backend event named like a client-reserved event is not emitted", async () => {
    const { token: text, user } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    const disconnected = during(socket, "disconnect");
    await control(`/api/rooms/user:${user.id}/events`, { name: "disconnect", data: "io server disconnect" });
    assert.deepEqual(await disconnected, []);
    assert.equal(socket.connected, true);
  });
});

describe("bad input gets the dialect's error form", () => {
  test("with a callback, the callback gets {ok: false, error}", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: text } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    await socket.emitWithAck("join_conversation", conversation);
    const cases = [
      ["send_message", { content: "no conversation" }, "bad_request"],
      ["send_message", { conversationId: conversation, content: "  " }, "bad_request"],
      ["send_message", { conversationId: conversation, content: "x", data: [1] }, "bad_request"],
      ["send_message", { conversationId: 99999999, content: "not joined" }, "forbidden"],
      ["join_conversation", "", "bad_request"],
      ["join_conversation", { id: 1 }, "bad_request"],
      ["join_conversation", "a".repeat(300), "bad_request"],
      ["no_such_event", 1, "bad_request"],
    ];
    for (const [event, data, code] of cases) {
      const answer = await socket.emitWithAck(event, data);
      assert.equal(answer.ok, false, `${event} ${JSON.stringify(data).slice(0, 40)}: ${JSON.stringify(answer)}`);
      assert.equal(answer.error.code, code, `${event} ${JSON.stringify(data).slice(0, 40)}: ${JSON.stringify(answer)}`);
      assert.match(answer.error.message, /\S/);
    }
    assert.equal(socket.connected, true);
  });

  test("without a callback, an error event", async () => {
    const { token: text } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    const refused = next(socket, "error");
    socket.emit("mark_read", { messageId: "never-seen" });
    const error = await refused;
    assert.equal(error.code, "not_found");
    const unknown = next(socket, "error");
    socket.emit("typing", "not an object");
    assert.equal((await unknown).code, "bad_request");
  });

  test("content over the limit is too_large; a burst over the rate is rate_limited, and the socket stays", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: text } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    await socket.emitWithAck("join_conversation", conversation);
    const big = await socket.emitWithAck("send_message", { conversationId: conversation, content: "x".repeat(5_000) });
    assert.equal(big.error?.code, "too_large", JSON.stringify(big));
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => socket.emitWithAck("send_message", { conversationId: conversation, content: `m${i}` })),
    );
    const codes = answers.map((a) => (a.ok ? "ok" : a.error.code));
    assert.ok(codes.includes("ok"), JSON.stringify(codes));
    const limited = answers.find((a) => !a.ok);
    assert.equal(limited?.error.code, "rate_limited", JSON.stringify(codes));
    assert.ok(limited.error.retryAfterMs > 0, JSON.stringify(limited));
    assert.equal(socket.connected, true);
  });

  test("a client that keeps flooding is disconnected, as a native one is closed", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: text } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    await socket.emitWithAck("join_conversation", conversation);
    const gone = next(socket, "disconnect");
    for (let i = 0; i < 200 && socket.connected; i++) {
      socket.emit("send_message", { conversationId: conversation, content: `flood ${i}` });
    }
    assert.equal(await gone, "io server disconnect");
  });

  test("a client that floods without ever pausing is still disconnected, and others are served", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: other } = await token(fresh("sio"));
    const bystander = await connect({ token: other });
    await bystander.emitWithAck("join_conversation", conversation);
    // socket.io-client sends in bursts, with pauses between them; this one
    // speaks Engine.IO over a plain WebSocket and keeps its send buffer full,
    // so the server, which waits for a pause before its `disconnect`, never
    // gets one and must end the socket after --drain-timeout-ms.
    const { token: text } = await token(fresh("sio"));
    const ws = new WebSocket(`${APP.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
    const packets = [];
    ws.on("message", (data) => {
      const packet = data.toString();
      packets.push(packet);
      if (packet.startsWith("0")) ws.send(`40${JSON.stringify({ token: text })}`);
      else if (packet === "2") ws.send("3");
      else if (packet.startsWith("40")) ws.send(`420${JSON.stringify(["join_conversation", conversation])}`);
    });
    const closed = new Promise((resolve) => ws.once("close", resolve));
    const joined = () => packets.some((packet) => packet.startsWith("430"));
    const deadline = Date.now() + WAIT;
    while (!joined() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(joined(), `joined: ${JSON.stringify(packets)}`);
    let sent = 0;
    const open = () => ws.readyState === WebSocket.OPEN && Date.now() < deadline;
    const flood = (async () => {
      while (open()) {
        for (let i = 0; i < 1000 && open() && ws.bufferedAmount < 1 << 20; i++) {
          ws.send(`42${JSON.stringify(["send_message", { conversationId: conversation, content: `flood ${sent++}` }])}`);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const timer = new Promise((resolve) => setTimeout(resolve, WAIT, "still open"));
    assert.notEqual(await Promise.race([closed, timer]), "still open", `never disconnected after ${sent} events`);
    await flood;
    const ack = await bystander.emitWithAck("send_message", { conversationId: conversation, content: "still here" });
    assert.equal(ack.ok, true, JSON.stringify(ack));
  });
});

describe("the connection's life", () => {
  test("the default transports start polling and upgrade to WebSocket", async () => {
    const { token: text } = await token(fresh("sio"));
    const socket = io(APP, { auth: { token: text }, reconnection: false });
    sockets.push(socket);
    const transports = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no upgrade")), WAIT);
      socket.io.once("open", () => {
        const first = socket.io.engine.transport.name;
        socket.io.engine.once("upgrade", (transport) => {
          clearTimeout(timer);
          resolve([first, transport.name]);
        });
      });
    });
    assert.deepEqual(transports, ["polling", "websocket"]);
    const conversation = Math.floor(Math.random() * 1e9);
    assert.deepEqual(await socket.emitWithAck("join_conversation", conversation), { ok: true });
  });

  test("a socket that goes is a member who leaves, for native clients", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const room = `conversation:${conversation}`;
    const { client } = await nativeIn(room, fresh("nat"));
    const { token: text, user } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    await socket.emitWithAck("join_conversation", conversation);
    await client.until((f) => f.type === "presence_diff" && f.joins?.some((m) => m.user_id === user.id));
    socket.close();
    await client.until((f) => f.type === "presence_diff" && f.leaves?.some((u) => u.id === user.id));
  });

  test("a user the backend disconnects is disconnected by the server", async () => {
    const { token: text, user } = await token(fresh("sio"));
    const socket = await connect({ token: text });
    const gone = next(socket, "disconnect");
    await control(`/api/users/${user.id}/disconnect`, {});
    assert.equal(await gone, "io server disconnect");
  });

  test("a client that falls a full buffer behind is disconnected, after what was buffered", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const { token: text } = await token(fresh("sio"));
    // Engine.IO by hand: open a polling session, connect the namespace,
    // join, then stop polling while a backend floods the conversation.
    const base = `${APP}/socket.io/?EIO=4&transport=polling`;
    const { sid } = JSON.parse((await (await fetch(base)).text()).slice(1));
    const poll = async () => (await (await fetch(`${base}&sid=${sid}`)).text()).split("\x1e");
    const post = (body) => fetch(`${base}&sid=${sid}`, { method: "POST", body });
    assert.equal((await post(`40${JSON.stringify({ token: text })}`)).status, 200);
    // Packets of a poll are separated by U+001E; a ping ("2") may come
    // first, alone or with them.
    let connected = [];
    for (let i = 0; i < 3 && !connected.some((packet) => packet.startsWith("40")); i++) connected = await poll();
    assert.ok(connected.some((packet) => packet.startsWith("40")), `not connected: ${connected}`);
    assert.equal((await post(`421${JSON.stringify(["join_conversation", conversation])}`)).status, 200);
    assert.deepEqual(await poll(), ['431[{"ok":true}]']);
    const room = encodeURIComponent(`conversation:${conversation}`);
    const flood = 600;
    for (let i = 0; i < flood; i++) {
      await control(`/api/rooms/${room}/events`, { name: "bulk", data: { i } });
    }
    // Reading again: the buffered events, then the server's disconnect.
    let bulk = 0;
    let disconnected = false;
    for (let polls = 0; polls < 50 && !disconnected; polls++) {
      for (const packet of await poll()) {
        if (packet.startsWith('42["bulk"')) bulk++;
        if (packet === "41") disconnected = true;
      }
    }
    assert.ok(disconnected, `no disconnect after ${bulk} events`);
    assert.ok(bulk > 0 && bulk < flood, `${bulk} of ${flood} events before the disconnect`);
    const { token: again } = await token(fresh("sio"));
    const socket = await connect({ token: again });
    assert.equal(socket.connected, true);
  });
});

// Last: it restarts the server under every other socket.
describe("a server restart", () => {
  test("socket.io-client reconnects by itself, and a rejoin hears the conversation again", async () => {
    const conversation = Math.floor(Math.random() * 1e9);
    const room = `conversation:${conversation}`;
    const { token: text } = await token(fresh("sio"));
    const socket = io(APP, { auth: { token: text }, transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 500 });
    sockets.push(socket);
    // As the original's clients did: (re)join on every connect.
    socket.on("connect", () => socket.emit("join_conversation", conversation));
    await next(socket, "connect");
    const dropped = next(socket, "disconnect");
    const back = new Promise((resolve) => socket.io.once("reconnect", resolve));
    await control("/restart", {});
    assert.equal(await dropped, "transport close");
    await back;
    const { client } = await nativeIn(room, fresh("nat"));
    const arrived = next(socket, "new_message");
    client.send({ type: "send", room, content: "after the restart", client_id: `c-${Date.now()}` });
    assert.equal((await arrived).messageContent, "after the restart");
  });
});
