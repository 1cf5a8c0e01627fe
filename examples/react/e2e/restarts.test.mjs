// End-to-end test of delivery promises across crashes and restarts: two
// users in two browser contexts each send numbered messages at 10 per
// second (the server's default message rate), at least 100 and until the
// faults are over, while the Redis-backed server is SIGKILLed twice and
// SIGTERMed once. Afterwards both pages show every message, each once,
// each sender's in the order sent, and no send failed.
//
// The server runs with its default rate limits: the SDK must resend what
// queued during each outage within them (paced by the limits `ready`
// announces), not be refused and closed with 4008.
//
// Run by `cargo xtask test` with the same environment as chat.test.mjs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { app, fixture, launch, messages, recordFrames, shot } from "./support.mjs";

/** Messages each sender sends at least. */
const PER_SENDER = 100;
const INTERVAL_MS = 100;
/** What happens to the server during the sends: each fault comes once
 * both pages are connected again and have sent for a while. */
const FAULTS = ["/kill", "/stop", "/kill"];
/** How long the server stays down, and up before the next fault. */
const DOWN_MS = 600;
const UP_MS = 700;
/** How long a page may take to reconnect: the faults come faster than a
 * connection counts as stable (5 s), so the SDK's backoff grows from one
 * outage to the next, here up to MAX_DELAY_MS (full jitter), and the
 * server may be slow to start on a loaded machine. */
const REOPEN_MS = 20_000;
/** The ceiling of the pages' reconnect delay (the SDK's default is 30 s,
 * which three quick faults reach): it keeps the test's length, and the
 * number of messages typed, bounded. */
const MAX_DELAY_MS = 5_000;
/** The outbox each page holds (the SDK's default is 100). Typing goes on
 * at the very rate the server lets a connection send (10 a second), so a
 * backlog never shrinks while the senders type: it grows by 10 for each
 * second of an outage, up to 3 x 21 s x 10 = 630 when every reconnect
 * takes as long as REOPEN_MS allows. The default would refuse sends with
 * `queue_full`, as it should. */
const QUEUE_LIMIT = 1_000;
/** Messages a page keeps: more than both senders type when every
 * reconnect takes as long as REOPEN_MS allows (2 x 3 x 21 s x 10). */
const MAX_MESSAGES = 5_000;
/** After the faults, how long the pages may show no progress (nothing
 * newly shown, nothing less pending) before the test checks them. */
const STALL_MS = 15_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Types `prefix-0`, `prefix-1`, ... into the composer, one every 100 ms,
 * at least PER_SENDER and until `faulted()`; returns how many. */
async function sendAll(page, prefix, start, faulted) {
  const composer = page.getByTestId("composer");
  let i = 0;
  for (; i < PER_SENDER || !faulted(); i++) {
    await sleep(Math.max(0, start + i * INTERVAL_MS - Date.now()));
    await composer.fill(`${prefix}-${i}`);
    await composer.press("Enter");
  }
  return i;
}

async function faults(start, pages) {
  await sleep(Math.max(0, start + UP_MS - Date.now()));
  const times = [];
  for (const fault of FAULTS) {
    times.push(Date.now() - start);
    await fixture(fault);
    await sleep(DOWN_MS);
    await fixture("/start");
    for (const page of pages) {
      await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout: REOPEN_MS });
    }
    await sleep(UP_MS);
  }
  return times;
}

/** Checks one page: every message sent (`sent[prefix]` of each) once,
 * each sender's in order. */
function check(seen, sent, who) {
  const expected = (prefix) => Array.from({ length: sent[prefix] }, (_, i) => `${prefix}-${i}`);
  const duplicated = seen.filter((text, i) => seen.indexOf(text) !== i);
  assert.deepEqual(duplicated, [], `${who}: nothing duplicated`);
  for (const prefix of ["A", "B"]) {
    const mine = seen.filter((text) => text.startsWith(`${prefix}-`));
    const lost = expected(prefix).filter((text) => !mine.includes(text));
    assert.deepEqual(lost, [], `${who}: nothing of ${prefix} lost`);
    assert.deepEqual(mine, expected(prefix), `${who}: ${prefix}'s messages in the order sent`);
  }
}

test("two senders through two crashes and a restart, default limits: nothing lost, duplicated or reordered", { timeout: 420_000 }, async () => {
  // Both pages keep their timers running at full speed.
  const browser = await launch(["--disable-background-timer-throttling", "--disable-renderer-backgrounding"]);
  try {
    const room = `restarts-${Date.now()}`;
    const alice = await (await browser.newContext()).newPage();
    const bob = await (await browser.newContext()).newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    const frames = [recordFrames(alice), recordFrames(bob)];
    const options = `queueLimit=${QUEUE_LIMIT}&maxDelayMs=${MAX_DELAY_MS}&maxMessages=${MAX_MESSAGES}`;
    await alice.goto(`${app}/?name=Alice&room=${room}&${options}`);
    await bob.goto(`${app}/?name=Bob&room=${room}&${options}`);
    for (const page of [alice, bob]) {
      await page.getByTestId("status").filter({ hasText: "open" }).waitFor({ timeout: 15_000 });
    }
    await bob.getByTestId("members").getByText("Alice").waitFor();

    const start = Date.now() + 200;
    let faulted = false;
    const [a, b, times] = await Promise.all([
      sendAll(alice, "A", start, () => faulted),
      sendAll(bob, "B", start, () => faulted),
      faults(start, [alice, bob]).finally(() => { faulted = true; }),
    ]);
    const sent = { A: a, B: b };
    const sending = (Math.min(a, b) - 1) * INTERVAL_MS;
    assert.ok(times.every((t) => t < sending), `every fault came during the sends (at ${times} ms)`);

    // Everything queued goes out, at most 10 a second; both pages converge.
    // The wait lasts as long as the pages make progress.
    let seen = [[], []];
    let progress = "";
    let movedAt = Date.now();
    while (Date.now() - movedAt < STALL_MS) {
      seen = await Promise.all([messages(alice), messages(bob)]);
      const pending = (await alice.getByTestId("pending").count()) + (await bob.getByTestId("pending").count());
      if (pending === 0 && seen.every((list) => list.length >= a + b)) break;
      const now = `${seen[0].length} ${seen[1].length} ${pending}`;
      if (now !== progress) [progress, movedAt] = [now, Date.now()];
      await sleep(200);
    }
    await shot(alice, "restarts-alice");
    await shot(bob, "restarts-bob");
    frames[0].save("restarts-alice-frames");
    frames[1].save("restarts-bob-frames");
    // A refused send first, so that a failure names its cause.
    for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
      const notices = await page.getByTestId("notice").allTextContents();
      assert.deepEqual(notices.filter((n) => n.startsWith("Not sent")), [], `${who}: no send failed`);
      assert.equal(await page.getByTestId("pending").count(), 0, `${who} has nothing left to send`);
    }
    check(seen[0], sent, "alice");
    check(seen[1], sent, "bob");
    assert.deepEqual(seen[0], seen[1], "both pages show the same order");
    // RoomcastProvider's onConnect and onDisconnect fired for every drop
    // (two crashes, one restart), and no resend was closed for rate (4008).
    for (const [page, who] of [[alice, "alice"], [bob, "bob"]]) {
      const log = page.getByTestId("connection-log");
      const connects = Number(await log.getAttribute("data-connects"));
      const closes = (await log.getAttribute("data-closes")).split(",").filter(Boolean).map(Number);
      assert.ok(connects >= 1 + FAULTS.length, `${who}: onConnect for the first connection and each reconnect (${connects})`);
      assert.ok(closes.length >= FAULTS.length, `${who}: onDisconnect for each drop (${closes})`);
      assert.ok(!closes.includes(4008), `${who}: never closed for rate (${closes})`);
    }
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});
