// End-to-end test of the fallback transport: where every WebSocket is
// refused (as behind a proxy that blocks them), the SDK falls back by
// itself to Server-Sent Events and POSTs, two users chat with nothing lost
// or doubled, a server restart is recovered over the fallback, and once
// WebSockets get through again the client goes back to them, still losing
// and doubling nothing.
//
// WebSockets are blocked in the browser with Playwright's routeWebSocket:
// every `/ws` socket of a blocked context is closed before it reaches the
// server (the server knows nothing of the test).

import assert from "node:assert/strict";
import { test } from "node:test";

import { app, control, fixture, launch, messages, shot } from "./support.mjs";

/** A browser context whose WebSockets to `/ws` are refused until `unblock()`. */
async function blockedContext(browser) {
  const context = await browser.newContext();
  const gate = { blocked: true, refused: 0 };
  await context.routeWebSocket(/\/ws(\?|$)/, (ws) => {
    if (gate.blocked) {
      gate.refused += 1;
      ws.close();
    } else {
      ws.connectToServer();
    }
  });
  return { context, gate };
}

const transport = (page) =>
  page.getByTestId("transport").getAttribute("data-transport");

async function waitForTransport(page, expected, timeout = 20_000) {
  await page.locator(`[data-testid="transport"][data-transport="${expected}"]`)
    .waitFor({ state: "attached", timeout });
  await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout });
}

async function expectMessages(page, expected, what) {
  const deadline = Date.now() + 20_000;
  let seen;
  while (Date.now() < deadline) {
    seen = await messages(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) break;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(seen, expected, what);
  assert.equal(await page.getByTestId("pending").count(), 0, `${what}: nothing left to send`);
}

async function say(page, text) {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
}

async function publish(room, content) {
  const response = await fetch(`${control}/api/rooms/${room}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content }),
  });
  assert.ok(response.ok, `publish: ${await response.text()}`);
}

async function connections() {
  return (await (await fetch(`${app}/health`)).json()).connections;
}

test("with WebSockets blocked two users chat over Server-Sent Events, then go back to WebSocket", async () => {
  const browser = await launch();
  try {
    const room = `fallback-${Date.now()}`;
    const a = await blockedContext(browser);
    const b = await blockedContext(browser);
    const alice = await a.context.newPage();
    const bob = await b.context.newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    // Checks for WebSockets every 500 ms to 2 s rather than 10 s to 5 min.
    await alice.goto(`${app}/?name=Alice&room=${room}&wsCheckMs=500`);
    await bob.goto(`${app}/?name=Bob&room=${room}&hooks=standalone&wsCheckMs=500`);
    for (const page of [alice, bob]) await waitForTransport(page, "sse");
    assert.ok(a.gate.refused >= 3 && b.gate.refused >= 3, "each tried WebSockets first");
    await bob.getByTestId("members").getByText("Alice").waitFor();
    assert.equal(await connections(), 2, "one fallback connection per user");
    await shot(alice, "fallback-1-alice-on-sse");

    // They chat; a burst of sends keeps its order over the POSTs.
    await say(alice, "Hi Bob, WebSockets are blocked here");
    await expectMessages(bob, ["Hi Bob, WebSockets are blocked here"], "bob receives over SSE");
    await say(bob, "Same here, and yet");
    const burst = ["one", "two", "three", "four", "five"];
    for (const text of burst) await say(alice, text);
    const onSse = ["Hi Bob, WebSockets are blocked here", "Same here, and yet", ...burst];
    await expectMessages(bob, onSse, "bob sees every message once, in order");
    await expectMessages(alice, onSse, "alice sees every message once, in order");
    // Typing goes over POSTs too.
    await bob.getByTestId("composer").pressSequentially("typing…", { delay: 30 });
    await alice.getByTestId("typing").filter({ hasText: "Bob is typing" }).waitFor({ timeout: 5_000 });
    await bob.getByTestId("composer").fill("");
    // The checks keep failing while blocked: still on the fallback.
    await alice.waitForTimeout(1_500);
    assert.equal(await transport(alice), "sse");

    // WebSockets get through again: each client switches back by itself
    // while the other keeps writing.
    a.gate.blocked = false;
    b.gate.blocked = false;
    const during = ["while switching 1", "while switching 2", "while switching 3"];
    for (const text of during) {
      await say(bob, text);
      await bob.waitForTimeout(150);
    }
    for (const page of [alice, bob]) await waitForTransport(page, "websocket");
    await say(alice, "Back on WebSocket");
    const all = [...onSse, ...during, "Back on WebSocket"];
    await expectMessages(alice, all, "alice: nothing lost or doubled across the switch");
    await expectMessages(bob, all, "bob: nothing lost or doubled across the switch");
    assert.equal(await connections(), 2, "the fallback connections are gone");
    await shot(alice, "fallback-2-alice-back-on-websocket");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});

test("over Server-Sent Events a server restart recovers exactly the missed messages", async () => {
  const browser = await launch();
  try {
    const room = `fallback-restart-${Date.now()}`;
    const alice = await (await blockedContext(browser)).context.newPage();
    const bob = await (await blockedContext(browser)).context.newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    await alice.goto(`${app}/?name=Alice&room=${room}`);
    await bob.goto(`${app}/?name=Bob&room=${room}`);
    for (const page of [alice, bob]) await waitForTransport(page, "sse");
    await say(alice, "before the restart");
    const before = ["before the restart"];
    await expectMessages(bob, before, "bob receives over SSE");

    // The server goes down; Alice queues a message meanwhile.
    await fixture("/stop");
    for (const page of [alice, bob]) {
      await page.getByTestId("status").filter({ hasNotText: "open" }).waitFor({ timeout: 10_000 });
    }
    await say(alice, "queued while down");
    await alice.getByTestId("pending").waitFor();
    // It comes back, and the backend publishes before the clients are back:
    // these they can only get by recovery.
    await fixture("/start");
    const missed = ["missed 1", "missed 2", "missed 3"];
    for (const text of missed) await publish(room, text);
    for (const page of [alice, bob]) await waitForTransport(page, "sse", 30_000);
    await say(bob, "after the restart");
    for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
      const deadline = Date.now() + 20_000;
      let seen = await messages(page);
      while (Date.now() < deadline && seen.length < 6) {
        await page.waitForTimeout(100);
        seen = await messages(page);
      }
      // The queued message and the published ones race to the server;
      // everything else has its place.
      assert.deepEqual([...seen].sort(), [...before, "queued while down", ...missed, "after the restart"].sort(),
        `${who} sees every message exactly once`);
      assert.deepEqual(seen.filter((m) => m.startsWith("missed")), missed, `${who}: the missed messages in order`);
      assert.equal(seen[0], before[0]);
      assert.equal(seen.at(-1), "after the restart");
    }
    assert.deepEqual(await messages(alice), await messages(bob), "both see the same order");
    assert.equal(await transport(alice), "sse", "still on the fallback: WebSockets are still blocked");
    assert.equal(await connections(), 2, "one connection per user after the restart");
    await shot(bob, "fallback-3-bob-after-the-restart");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});
