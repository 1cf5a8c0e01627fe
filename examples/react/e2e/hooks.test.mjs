// The hooks by concern (`?view=hooks`, src/Hooks.tsx): each shows its own
// part of a room or of the connection, and re-renders only when that part
// changes. Two users in two browser contexts against the real server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { app, control, launch, shot } from "./support.mjs";

const WAIT = 15_000;

/** Waits until `attribute` of the section `testId` satisfies `holds`. */
async function until(page, testId, attribute, holds, what) {
  const deadline = Date.now() + WAIT;
  let value;
  while (Date.now() < deadline) {
    value = await page.getByTestId(testId).getAttribute(attribute);
    if (value !== null && holds(value)) return value;
    await page.waitForTimeout(50);
  }
  assert.fail(`${what}: ${testId} ${attribute} is ${value}`);
}

const renders = async (page, testId) => Number(await page.getByTestId(testId).getAttribute("data-renders"));

test("every hook shows its own part, and re-renders only for it", async () => {
  const browser = await launch();
  try {
    const room = `hooks-${Date.now()}`;
    const alice = await (await browser.newContext()).newPage();
    const bob = await (await browser.newContext()).newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    await alice.goto(`${app}/?name=Alice&room=${room}&view=hooks`);
    await bob.goto(`${app}/?name=Bob&room=${room}&view=hooks`);
    for (const page of [alice, bob]) {
      await until(page, "hook-connection", "data-state", (s) => s === "open", "connected");
    }
    // Presence and occupancy: both are there and online.
    await until(alice, "hook-occupancy", "data-count", (n) => n === "2", "occupancy");
    await until(alice, "hook-presence", "data-online", (n) => n === "2", "both online");

    // Messages both ways.
    await alice.getByLabel("Message").fill("hello from hooks");
    await alice.getByLabel("Message").press("Enter");
    await until(bob, "hook-messages", "data-count", (n) => n === "1", "bob has the message");
    await bob.getByTestId("hook-message").filter({ hasText: "Alice: hello from hooks" }).waitFor();

    // Typing redraws the typing hook, not the messages or the occupancy.
    await until(alice, "hook-messages", "data-count", (n) => n === "1", "alice has her message");
    await alice.waitForTimeout(300);
    const messagesBefore = await renders(alice, "hook-messages");
    const occupancyBefore = await renders(alice, "hook-occupancy");
    const typingBefore = await renders(alice, "hook-typing");
    await bob.getByRole("button", { name: "Start typing" }).click();
    await until(alice, "hook-typing", "data-typing", (t) => t === "Bob", "alice sees bob typing");
    assert.ok((await renders(alice, "hook-typing")) > typingBefore, "the typing hook redraws");
    assert.equal(await renders(alice, "hook-messages"), messagesBefore, "typing does not redraw the messages");
    assert.equal(await renders(alice, "hook-occupancy"), occupancyBefore, "typing does not redraw the occupancy");

    // Read receipts.
    await bob.getByRole("button", { name: "Mark read" }).click();
    await until(alice, "hook-reads", "data-readers", (r) => r.split(",").includes("bob"), "alice sees bob's read");

    // Own status: away is not online, and the count of members stays.
    const occupancyStill = await renders(alice, "hook-occupancy");
    await bob.getByRole("button", { name: "Away" }).click();
    await until(alice, "hook-presence", "data-online", (n) => n === "1", "away is not online");
    assert.equal(await alice.getByTestId("hook-presence").getAttribute("data-count"), "2");
    assert.equal(await renders(alice, "hook-occupancy"), occupancyStill, "a status change does not redraw the occupancy");

    // Notifications.
    const response = await fetch(`${control}/notify`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user_ids: ["alice"], title: "Invoice paid" }),
    });
    assert.ok(response.ok, await response.text());
    await until(alice, "hook-notifications", "data-count", (n) => n === "1", "alice's notification");
    await alice.getByTestId("hook-notifications").getByRole("button", { name: "Invoice paid" }).click();
    await until(alice, "hook-notifications", "data-count", (n) => n === "0", "dismissed");

    // Paging back: the room's first message is shown, so nothing older.
    await until(alice, "hook-messages", "data-has-more", (v) => v === "false", "no older messages");
    await alice.getByRole("button", { name: "Load older" }).click();
    assert.equal(await alice.getByTestId("hook-messages").getAttribute("data-discontinuities"), "0");
    await shot(alice, "hooks-alice");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});
