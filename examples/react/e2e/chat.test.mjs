// End-to-end test of the example: two users in two browser contexts chat,
// one sees the other typing, the server is restarted mid-conversation, and
// afterwards both see every message exactly once, in order.
//
// `cargo xtask test` builds the app (a development build, so StrictMode
// double-mounts) against the packed package, serves it
// from a real server (with Redis, so history survives the restart) and sets:
//   ROOMCAST_APP_URL      the app (and server) URL
//   ROOMCAST_CONTROL_URL  the test fixture's API: POST /stop, /start
//   ROOMCAST_ARTIFACTS    where screenshots go
// CHROMIUM may name the browser (default: Debian's /usr/bin/chromium).

import assert from "node:assert/strict";
import { test } from "node:test";

import { app, control, fixture, launch, messages, shot } from "./support.mjs";

/** Open WebSocket connections, from the server's /health. */
async function connections() {
  const health = await (await fetch(`${app}/health`)).json();
  return health.connections;
}


/** The texts of the page's delivered messages, in order. */

async function expectMessages(page, expected, what) {
  const deadline = Date.now() + 15_000;
  let seen;
  while (Date.now() < deadline) {
    seen = await messages(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(seen, expected, what);
}

async function say(page, text) {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
}

test("two users chat through a server restart without losing or duplicating a message", async () => {
  const browser = await launch();
  try {
    const room = `e2e-${Date.now()}`;
    const alice = await (await browser.newContext()).newPage();
    const bob = await (await browser.newContext()).newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    await alice.goto(`${app}/?name=Alice&room=${room}`);
    // Bob's page uses useWebSocket(url) without a provider: both ways of
    // getting a client are exercised.
    await bob.goto(`${app}/?name=Bob&room=${room}&hooks=standalone`);
    for (const page of [alice, bob]) {
      await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout: 15_000 });
    }
    await bob.getByTestId("members").getByText("Alice").waitFor();
    // The app runs in StrictMode (a development build), which mounts every
    // component twice: still one connection per user.
    await alice.waitForTimeout(500);
    assert.equal(await connections(), 2, "one connection per browser context");

    // They chat.
    await say(alice, "Hi Bob!");
    await expectMessages(bob, ["Hi Bob!"], "bob receives alice's message");
    await say(bob, "Hi Alice, how are you?");
    await expectMessages(alice, ["Hi Bob!", "Hi Alice, how are you?"], "alice receives bob's answer");

    // Bob sees Alice typing, and it ends when she sends.
    await alice.getByTestId("composer").pressSequentially("Fine, th", { delay: 40 });
    await bob.getByTestId("typing").filter({ hasText: "Alice is typing" }).waitFor({ timeout: 5_000 });
    await shot(bob, "1-bob-sees-alice-typing");
    await alice.getByTestId("composer").press("End");
    await alice.getByTestId("composer").pressSequentially("anks!", { delay: 20 });
    await alice.getByTestId("composer").press("Enter");
    const before = ["Hi Bob!", "Hi Alice, how are you?", "Fine, thanks!"];
    await expectMessages(bob, before, "bob receives the typed message");
    await bob.getByTestId("typing").filter({ hasText: /^\s*$/ }).waitFor({ timeout: 5_000 });

    // The server goes down mid-conversation; both keep writing.
    await fixture("/stop");
    for (const page of [alice, bob]) {
      await page.getByTestId("status").filter({ hasNotText: "open" }).waitFor({ timeout: 10_000 });
    }
    await say(alice, "Did the server just restart?");
    await say(bob, "Looks like it, my message is queued");
    await alice.getByTestId("pending").waitFor();
    await shot(alice, "2-alice-offline-with-a-queued-message");

    // It comes back: queued messages go out once, nothing is lost.
    await fixture("/start");
    for (const page of [alice, bob]) {
      await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout: 20_000 });
    }
    await say(alice, "Back online.");
    const after = [...before, "Did the server just restart?", "Looks like it, my message is queued", "Back online."];
    const sameSet = (list) => [...list].sort();
    for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
      // Both queued messages were sent while offline, so their order
      // between the two users depends on who reconnected first.
      const deadline = Date.now() + 15_000;
      let seen = await messages(page);
      while (Date.now() < deadline && JSON.stringify(sameSet(seen)) !== JSON.stringify(sameSet(after))) {
        await page.waitForTimeout(100);
        seen = await messages(page);
      }
      assert.deepEqual(sameSet(seen), sameSet(after), `${who} sees every message exactly once`);
      assert.deepEqual(seen.slice(0, before.length), before, `${who} keeps the messages from before the restart`);
      assert.equal(seen.at(-1), "Back online.");
      assert.equal(await page.getByTestId("pending").count(), 0, `${who} has nothing left to send`);
    }
    assert.deepEqual(await messages(alice), await messages(bob), "both see the same order");
    assert.equal(await connections(), 2, "one connection per user after the restart too");
    await shot(alice, "3-alice-after-the-restart");
    await shot(bob, "3-bob-after-the-restart");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});

test("attachments show under their message, and only http(s) URLs are followed", async () => {
  const browser = await launch();
  try {
    const room = `files-${Date.now()}`;
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${app}/?name=Carol&room=${room}`);
    await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout: 15_000 });
    // The backend publishes a message with files, one URL of them hostile.
    const files = [
      { url: "https://files.example.com/cat.png", name: "cat.png", type: "image/png" },
      { url: "https://files.example.com/report.pdf", name: "report.pdf", type: "application/pdf" },
      { url: "javascript:alert(document.cookie)", name: "click me" },
    ];
    const published = await fetch(`${control}/api/rooms/${room}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: "the files", data: { attachments: files } }),
    });
    assert.ok(published.ok, `publish: ${await published.text()}`);
    const message = page.getByTestId("message").filter({ hasText: "the files" });
    await message.waitFor({ timeout: 15_000 });
    const image = message.locator("img");
    assert.equal(await image.getAttribute("src"), files[0].url);
    assert.equal(await image.getAttribute("alt"), "cat.png");
    const link = message.getByRole("link", { name: "report.pdf" });
    assert.equal(await link.getAttribute("href"), files[1].url);
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    // The hostile one is text: no element of the page links to it.
    await message.getByText("click me").waitFor();
    assert.equal(await page.locator('[href^="javascript:"], [src^="javascript:"]').count(), 0);
    assert.equal(await message.locator("a").count(), 2, "the image's link and the file's");
    await shot(page, "4-attachments");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});
