// The ready-made <Chat/> of roomcast/react (`?view=component`): two users
// chat through it across a server restart with nothing lost or doubled,
// and what a user sees of it: groups, links, deletes with a trace,
// refused sends, toasts that leave the conversation in view, phone widths.

import assert from "node:assert/strict";
import { test } from "node:test";

import { app, control, fixture, launch, shot } from "./support.mjs";

const WAIT = 20_000;

/** The texts of the delivered messages <Chat/> shows, in order. */
const texts = (page) => page.getByTestId("rc-message").locator(".rc-text").allTextContents();

async function expectTexts(page, expected, what) {
  const deadline = Date.now() + WAIT;
  let seen;
  while (Date.now() < deadline) {
    seen = (await texts(page)).map((t) => t.replace(" (edited)", ""));
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(seen, expected, what);
}

async function say(page, text) {
  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.fill(text);
  await box.press("Enter");
}

test("two users chat through <Chat/> across a restart, and it behaves as a chat should", async () => {
  const browser = await launch();
  try {
    const room = `component-${Date.now()}`;
    const alice = await (await browser.newContext()).newPage();
    const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };
    const bob = await (await browser.newContext(phone)).newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(e.message));
    await alice.goto(`${app}/?name=Alice&room=${room}&view=component`);
    await bob.goto(`${app}/?name=Bob&room=${room}&view=component`);
    for (const page of [alice, bob]) {
      await page.getByRole("alert").waitFor({ state: "detached", timeout: WAIT });
      await page.getByRole("complementary", { name: "Members" }).getByText("Alice").waitFor({ timeout: WAIT });
    }

    // Two messages in a row from Alice are one group: one sender line.
    await say(alice, "Hi Bob!");
    await say(alice, "See https://example.com/docs and javascript:alert(1)");
    await expectTexts(bob, ["Hi Bob!", "See https://example.com/docs and javascript:alert(1)"], "bob gets both");
    assert.equal(await bob.locator(".rc-message:not(.rc-grouped) .rc-name").count(), 1, "one header for the group");
    // The grouped message keeps its time, in its corner; Bob's phone has no
    // hover to wait for, so it shows at once.
    const grouped = bob.locator(".rc-grouped").filter({ hasText: "See https://example.com/docs" });
    const time = grouped.locator("time");
    assert.equal(await time.evaluate((el) => getComputedStyle(el).opacity), "1", "a grouped message's time shows without hover");
    const [shown, bubble] = [await time.boundingBox(), await grouped.boundingBox()];
    assert.ok(shown.width > 0 && shown.x + shown.width <= bubble.x + bubble.width + 1, `the time is inside its message: ${JSON.stringify([shown, bubble])}`);
    assert.match(await time.getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
    // With a mouse it waits for the pointer, as the Leptos chat's does.
    const mine = alice.locator(".rc-grouped").filter({ hasText: "See https://example.com/docs" });
    const opacity = () => mine.locator("time").evaluate((el) => getComputedStyle(el).opacity);
    assert.equal(await opacity(), "0", "hidden until hovered");
    await mine.hover();
    assert.equal(await opacity(), "1", "shown on hover");
    const link = bob.getByRole("link", { name: "https://example.com/docs" });
    assert.equal(await link.getAttribute("href"), "https://example.com/docs");
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    assert.equal(await bob.locator('a[href^="javascript"]').count(), 0, "no javascript: link");
    // A new room's first message is the oldest there is: nothing to load.
    assert.equal(await bob.getByRole("button", { name: "Load older messages" }).count(), 0);
    // The time's tooltip is a human date, not a timestamp.
    const title = await bob.locator(".rc-from time").first().getAttribute("title");
    assert.doesNotMatch(title, /T\d\d:|\.\d{3,}|Z$/, title);

    // Bob answers; Alice sees "Seen by Bob" once he has read hers.
    await say(bob, "Hello Alice");
    await expectTexts(alice, ["Hi Bob!", "See https://example.com/docs and javascript:alert(1)", "Hello Alice"], "alice gets bob's answer");
    await alice.getByTestId("rc-seen").filter({ hasText: "Seen by Bob" }).waitFor({ timeout: WAIT });

    // Typing.
    await bob.getByRole("textbox", { name: "Write a message" }).pressSequentially("typ", { delay: 30 });
    await alice.getByTestId("rc-typing").filter({ hasText: "Bob is typing" }).waitFor({ timeout: WAIT });
    await bob.getByRole("textbox", { name: "Write a message" }).fill("");

    // A refused send is shown with retry and discard.
    await say(alice, "x".repeat(5000));
    const failed = alice.getByTestId("rc-failed");
    await failed.waitFor({ timeout: WAIT });
    await failed.getByRole("button", { name: "Discard" }).click();
    assert.equal(await alice.getByTestId("rc-failed").count(), 0);

    // Delete asks first, and leaves a trace for both.
    const first = alice.getByTestId("rc-message").filter({ hasText: "Hi Bob!" });
    await first.hover();
    await first.getByRole("button", { name: "Delete message" }).click();
    await first.getByRole("button", { name: "Delete", exact: true }).click();
    for (const page of [alice, bob]) {
      await page.getByTestId("rc-deleted").filter({ hasText: "Message deleted" }).waitFor({ timeout: WAIT });
    }

    // The server restarts; both keep writing; nothing is lost or doubled.
    await fixture("/stop");
    await alice.getByRole("alert").waitFor({ timeout: WAIT });
    await say(alice, "while it was down");
    await alice.getByTestId("rc-pending").waitFor();
    await fixture("/start");
    const after = ["See https://example.com/docs and javascript:alert(1)", "Hello Alice", "while it was down"];
    await expectTexts(alice, after, "alice after the restart");
    await expectTexts(bob, after, "bob after the restart");

    // The server keeps what a delete leaves: a reloaded page shows it too.
    await bob.reload();
    await expectTexts(bob, after, "bob after a reload");
    const trace = bob.getByTestId("rc-deleted");
    await trace.filter({ hasText: "Message deleted" }).waitFor({ timeout: WAIT });
    assert.equal(await trace.count(), 1, "one trace, where the message was");
    assert.equal(await bob.getByText("Hi Bob!").count(), 0, "its text is gone");

    // Toasts: two notifications push the conversation down, never over it.
    for (const title of ["Invoice paid", "Order shipped"]) {
      const reply = await fetch(`${control}/notify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ user_ids: ["bob"], title }),
      });
      assert.ok(reply.ok, await reply.text());
    }
    await bob.getByTestId("rc-toast").nth(1).waitFor({ timeout: WAIT });
    const newest = await bob.getByTestId("rc-message").last().boundingBox();
    const log = await bob.getByRole("log").boundingBox();
    assert.ok(newest.y >= log.y && newest.y + newest.height <= log.y + log.height + 1, "the newest message is in view");
    for (const toast of await bob.getByTestId("rc-toast").all()) {
      const box = await toast.boundingBox();
      assert.ok(box.y + box.height <= log.y + 1, "toasts are above the conversation");
    }

    // Phone width: the message box is in view, and the own name shows.
    const composer = await bob.getByRole("textbox", { name: "Write a message" }).boundingBox();
    assert.ok(composer.y + composer.height <= 844, `the message box is in view: ${JSON.stringify(composer)}`);
    await bob.locator(".rc-me").filter({ hasText: "Bob" }).waitFor();
    // A touch screen has no hover: Edit and Delete of his own message show
    // at once, and cover nothing of the message above.
    const own = bob.getByTestId("rc-message").filter({ hasText: "Hello Alice" });
    const above = await own.locator("xpath=preceding-sibling::*[1]").boundingBox();
    for (const name of ["Edit message", "Delete message"]) {
      const action = own.getByRole("button", { name });
      const opacity = await action.evaluate((el) => getComputedStyle(el.parentElement).opacity);
      assert.equal(opacity, "1", `${name} shows without hover`);
      const box = await action.boundingBox();
      assert.ok(box.y >= above.y + above.height, `${name} is below the message above: ${JSON.stringify([box, above])}`);
    }
    await shot(bob, "component-bob-phone");
    await shot(alice, "component-alice");
    assert.deepEqual(errors, [], "no page errors");
  } finally {
    await browser.close();
  }
});
