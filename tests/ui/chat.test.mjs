// End-to-end test of the demo chat (ui/) against the real server: Alice and
// Bob sign in from two browser contexts and use every feature the other one
// must see: messages, read receipts, typing, presence, notifications from
// the HTTP API, edits and deletes, unread counts, history paging, direct
// messages, and a server restart. Carol joins from a phone-sized screen. Screenshots of the
// main states, in both themes, go to ROOMCAST_ARTIFACTS.
//
// The tests run in order and share the two users: each one starts where the
// previous one left off (both signed in, #general open).
//
// `cargo xtask test` (or `cargo xtask test-ui`, the UI's part alone) builds
// the app with trunk, serves it from the real server (with Redis, so history
// survives the restart) and sets:
//   ROOMCAST_APP_URL      the app (and server) URL
//   ROOMCAST_CONTROL_URL  the test fixture's API: POST /notify, /api/...,
//                         /stop, /start, /restart
//   ROOMCAST_ARTIFACTS    where screenshots go (default: target/ui-test)
// CHROMIUM may name the browser (default: Debian's /usr/bin/chromium).
//
// Every wait is on a condition of the page, never a fixed sleep. Text
// filters match an element's whole textContent, where neighbouring spans
// run together ("Bobonline"): hence substrings rather than word boundaries.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import {
  RECONNECT, WAIT, banner, composer, connected, connection, joinRoom, log, messages, openRoom, opened,
  people, person, roomButton, say, seesOnce, signIn, toasts, typing,
} from "./contract.mjs";

const app = required("ROOMCAST_APP_URL");
const control = required("ROOMCAST_CONTROL_URL");
const artifacts =
  process.env.ROOMCAST_ARTIFACTS ?? join(dirname(fileURLToPath(import.meta.url)), "../../target/ui-test");
mkdirSync(artifacts, { recursive: true });

/** Each test's limit. */
const LIMIT = { timeout: 90_000 };

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test with \`cargo xtask test\``);
  return value;
}

/** A call to the fixture's control API. */
async function fixture(path, body) {
  const response = await fetch(`${control}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `fixture ${path}: ${response.status} ${text}`);
  return text;
}

let browser;
/** The pages of Alice and Bob (desktop size). */
let alice;
let bob;
/** Uncaught errors in any page, and any alert() or confirm() shown. */
const errors = [];
const dialogs = [];

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

async function newPage(options = DESKTOP) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${e.message}`));
  // Nothing should open a browser dialog (delete asks inside the page);
  // should one appear, it is accepted so the test goes on, and reported at
  // the end.
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.accept();
  });
  return page;
}

/** Asserts that `target` is on screen and that neither `over` nor any toast
 * covers it: their boxes do not overlap, and the page's topmost element at
 * the target's centre is the target. */
async function notCovered(page, target, over) {
  const box = await target.boundingBox();
  assert.ok(box, "the target is shown");
  const viewport = page.viewportSize();
  assert.ok(box.y >= 0 && box.y + box.height <= viewport.height, "the target is within the screen");
  const covers = toasts(page).getByRole("status");
  const others = [...(await covers.all()), ...(over ? [over] : [])];
  for (const other of others) {
    const b = await other.boundingBox();
    if (!b) continue;
    const overlap = box.x < b.x + b.width && b.x < box.x + box.width && box.y < b.y + b.height && b.y < box.y + box.height;
    assert.ok(!overlap, `covered: ${JSON.stringify(box)} under ${JSON.stringify(b)}`);
  }
  const onTop = await target.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
    return el === hit || el.contains(hit);
  });
  assert.ok(onTop, "nothing lies over the target");
}

/** Asserts that every avatar's initial has at least 4.5:1 contrast with its
 * colour (WCAG's level AA for text), and that there are several colours. */
async function readableAvatars(page) {
  const found = await page.getByRole("log").locator(".avatar:not(.spacer-avatar)").evaluateAll((all) => {
    const rgb = (text) => text.match(/[\d.]+/g).slice(0, 3).map(Number);
    const luminance = (c) => {
      const [r, g, b] = c.map((v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    return all.map((el) => {
      const style = getComputedStyle(el);
      const [a, b] = [luminance(rgb(style.color)), luminance(rgb(style.backgroundColor))];
      return { colour: style.backgroundColor, contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
    });
  });
  assert.ok(found.length > 0, "avatars shown");
  for (const { colour, contrast } of found) {
    assert.ok(contrast >= 4.5, `initial on ${colour}: contrast ${contrast.toFixed(2)}`);
  }
  assert.ok(new Set(found.map((f) => f.colour)).size > 1, "users have different colours");
}

/** A screenshot, with transitions finished so toasts show fully. */
const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`), animations: "disabled" });

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  alice = await newPage();
  bob = await newPage();
});

after(async () => {
  await browser?.close();
});

test("users sign in with a display name and stay signed in after a reload", LIMIT, async () => {
  await alice.goto(app);
  await alice.getByRole("button", { name: "Sign in" }).waitFor();
  await shot(alice, "sign-in");
  await signIn(alice, app, "Alice");
  await roomButton(alice, "# random").waitFor();
  await alice.getByRole("button", { name: "Sign out" }).waitFor();

  await alice.reload();
  await connected(alice, RECONNECT);
  await opened(alice, "# general", "Messages in #general");
  assert.equal(await alice.getByRole("textbox", { name: "Display name" }).count(), 0, "no sign-in form after a reload");

  await signIn(bob, app, "Bob");
});

test("each sees the other in the member list, online", LIMIT, async () => {
  await person(alice, "Bob").filter({ hasText: "online" }).waitFor();
  await person(bob, "Alice").filter({ hasText: "online" }).waitFor();
  await people(alice).getByRole("button", { name: "Message Bob" }).waitFor();
  assert.equal(
    await people(alice).getByRole("button", { name: "Message Alice" }).count(), 0,
    "no button to message yourself",
  );
});

test("two users chat: the message arrives, the sender sees it sent, then seen", LIMIT, async () => {
  await say(alice, "Hi Bob!");
  await seesOnce(bob, "Alice", "Hi Bob!");
  const mine = messages(alice, "Alice", "Hi Bob!");
  await mine.filter({ hasText: /Sent|Seen by Bob/ }).waitFor();
  // Bob has #general open, so he reads it.
  await mine.filter({ hasText: "Seen by Bob" }).waitFor();

  await say(bob, "Hi Alice, how are you?");
  await seesOnce(alice, "Bob", "Hi Alice, how are you?");
  // Only your own messages can be edited or deleted.
  const theirs = messages(alice, "Bob", "Hi Alice, how are you?");
  assert.equal(await theirs.getByRole("button", { name: "Edit" }).count(), 0, "no Edit on another's message");
  assert.equal(await theirs.getByRole("button", { name: "Delete" }).count(), 0, "no Delete on another's message");
  await mine.getByRole("button", { name: "Edit" }).waitFor();
  await mine.getByRole("button", { name: "Delete" }).waitFor();
});

test("a sender's consecutive messages are grouped, avatars have a colour per user, times read as dates", LIMIT, async () => {
  // Bob spoke last, so Alice's first message starts a group and her second joins it.
  await say(alice, "Group one");
  await seesOnce(bob, "Alice", "Group one");
  await say(alice, "Group two");
  await seesOnce(bob, "Alice", "Group two");
  for (const page of [alice, bob]) {
    const first = messages(page, "Alice", "Group one");
    const second = messages(page, "Alice", "Group two");
    assert.equal(await first.getByText("Alice", { exact: true }).count(), 1, "the group's first message names Alice");
    assert.equal(await second.getByText("Alice", { exact: true }).count(), 0, "the next one does not repeat her name");
    assert.equal(await first.locator(".avatar").innerText(), "A", "the first shows her avatar");
    assert.equal(await second.locator(".avatar").innerText(), "", "the next one does not");
    assert.equal(await second.locator(".avatar").isVisible(), false);
  }

  // One colour per user, the same on every page; different users differ.
  const colour = (page, from, text) =>
    messages(page, from, text).locator(".avatar").evaluate((el) => getComputedStyle(el).backgroundColor);
  const aliceOnBob = await colour(bob, "Alice", "Group one");
  assert.equal(aliceOnBob, await colour(alice, "Alice", "Group one"), "Alice's colour is the same for both");
  assert.notEqual(aliceOnBob, await colour(bob, "Bob", "Hi Alice, how are you?"), "Alice and Bob differ");

  // The tooltip is a date and time for people: no RFC 3339, no nanoseconds.
  const time = messages(bob, "Alice", "Group one").locator("time");
  const title = await time.getAttribute("title");
  assert.match(title, /\b20\d\d\b/, `a year in "${title}"`);
  assert.match(title, /\b\d{1,2}:\d{2}\b/, `a time in "${title}"`);
  assert.match(title, /[A-Za-z]{3,}/, `a month or weekday in words in "${title}"`);
  assert.doesNotMatch(title, /\d{4}-\d{2}-\d{2}|T\d{2}:|\.\d{3,}|Z$|:\d{2}:\d{2}/, `"${title}" is not a raw timestamp`);
  assert.match(await time.getAttribute("datetime"), /^\d{4}-\d{2}-\d{2}T/, "machines still get RFC 3339");
});

test("links in messages open in a new tab; other schemes stay text", LIMIT, async () => {
  const text = "Docs: https://example.com/docs?a=1&b=2. Also javascript:alert(1) "
    + "JaVaScRiPt:alert(2)//https://evil.example data:text/html,<b>x</b> <https://example.org/wiki/(x)>";
  await say(bob, text);
  await messages(alice, "Bob", "Docs:").waitFor();
  for (const page of [alice, bob]) {
    const message = messages(page, "Bob", "Docs:");
    const links = message.locator(".content a");
    const hrefs = await links.evaluateAll((all) => all.map((a) => [a.getAttribute("href"), a.target, a.rel]));
    assert.deepEqual(hrefs, [
      ["https://example.com/docs?a=1&b=2", "_blank", "noopener noreferrer"],
      ["https://example.org/wiki/(x)", "_blank", "noopener noreferrer"],
    ]);
    await message.getByText("javascript:alert(1)", { exact: false }).waitFor();
    const hostile = '[href^="javascript:" i], [href^="data:" i], [href*="evil.example"]';
    assert.equal(await page.getByRole("log").locator(hostile).count(), 0, "no hostile link");
    assert.match(await message.locator(".content").innerText(), /data:text\/html,<b>x<\/b>/, "markup stays text");
  }
});

test("Shift+Enter writes a new line, Enter sends", LIMIT, async () => {
  const box = composer(bob, "Message #general");
  await box.pressSequentially("First line");
  await box.press("Shift+Enter");
  await box.pressSequentially("second line");
  assert.equal(await messages(bob, "Bob", "second line").count(), 0, "Shift+Enter did not send");
  await box.press("Enter");
  await seesOnce(alice, "Bob", "second line");
  const text = await messages(alice, "Bob", "second line").innerText();
  assert.match(text, /First line\s*\n\s*second line/, "the line break is shown");
  assert.equal(await box.inputValue(), "", "the composer is empty after sending");
});

test("the other user sees who is typing, until they send", LIMIT, async () => {
  await composer(alice, "Message #general").pressSequentially("Fine, th", { delay: 40 });
  await typing(bob).filter({ hasText: "Alice is typing" }).waitFor();
  await shot(bob, "typing");
  await composer(alice, "Message #general").pressSequentially("anks!", { delay: 20 });
  await composer(alice, "Message #general").press("Enter");
  await seesOnce(bob, "Alice", "Fine, thanks!");
  await typing(bob).filter({ hasText: "typing" }).waitFor({ state: "hidden" });
  // Your own typing is not shown to you.
  assert.equal(await typing(alice).filter({ hasText: "Alice is typing" }).count(), 0);
});

test("a status picked by one user shows for the other", LIMIT, async () => {
  const status = bob.getByRole("combobox", { name: "Status" });
  // The header counts as online only those the member list shows online.
  const onlineIs = (n) => alice.waitForFunction(
    (n) => document.querySelector(".member-count")?.textContent === `${n} online`
      && document.querySelectorAll("#people li.status-online").length === n,
    n,
  );
  await onlineIs(2);
  for (const [option, word, online] of [["Away", "away", 1], ["Busy", "busy", 1], ["Invisible", "offline", 1], ["Online", "online", 2]]) {
    await status.selectOption({ label: option });
    await person(alice, "Bob").filter({ hasText: word }).waitFor();
    await onlineIs(online);
    if (word === "away") await shot(alice, "presence-away");
  }
});

test("a notification sent with the HTTP API appears as a toast", LIMIT, async () => {
  await fixture("/notify", { user_ids: ["bob"], title: "Deploy finished", body: "Version 2.4 is live." });
  const toast = toasts(bob).getByRole("status").filter({ hasText: "Deploy finished" });
  await toast.filter({ hasText: "Version 2.4 is live." }).waitFor();
  await shot(bob, "notification-toast");
  assert.equal(
    await toasts(alice).getByRole("status").filter({ hasText: "Deploy finished" }).count(), 0,
    "only Bob was notified",
  );
  await toast.getByRole("button", { name: "Dismiss" }).click();
  await toast.waitFor({ state: "hidden" });
});

test("edits and deletes reach the other user", LIMIT, async () => {
  await say(alice, "Lunch at noon?");
  await seesOnce(bob, "Alice", "Lunch at noon?");
  const mine = messages(alice, "Alice", "Lunch at noon?");

  // Escape cancels an edit.
  await mine.getByRole("button", { name: "Edit" }).click();
  const editor = alice.getByRole("textbox", { name: "Edit message" });
  await editor.fill("never mind");
  await editor.press("Escape");
  await editor.waitFor({ state: "hidden" });
  await messages(alice, "Alice", "Lunch at noon?").waitFor();

  // Enter saves it.
  await mine.getByRole("button", { name: "Edit" }).click();
  assert.equal(await editor.inputValue(), "Lunch at noon?", "the editor starts with the message");
  await editor.fill("Lunch at one?");
  await editor.press("Enter");
  await editor.waitFor({ state: "hidden" });
  await messages(bob, "Alice", "Lunch at one?").filter({ hasText: "edited" }).waitFor();
  await messages(alice, "Alice", "Lunch at one?").filter({ hasText: "edited" }).waitFor();
  assert.equal(await messages(bob, "Alice", "Lunch at noon?").count(), 0, "the old text is gone");
  assert.equal(await messages(bob, "Alice", "never mind").count(), 0, "the cancelled edit was not sent");
  await shot(bob, "edited");

  // The Save button works as well as Enter.
  await messages(alice, "Alice", "Lunch at one?").getByRole("button", { name: "Edit" }).click();
  await editor.fill("Lunch at one? At the usual place.");
  await alice.getByRole("button", { name: "Save", exact: true }).click();
  await messages(bob, "Alice", "At the usual place.").waitFor();

  // Delete asks first (Cancel has the focus, and keeps the message)...
  await say(alice, "Wrong room, sorry");
  await seesOnce(bob, "Alice", "Wrong room, sorry");
  const wrong = messages(alice, "Alice", "Wrong room, sorry");
  const confirm = alice.getByRole("alertdialog", { name: "Delete this message?" });
  await wrong.getByRole("button", { name: "Delete" }).click();
  await confirm.waitFor();
  assert.ok(await confirm.getByRole("button", { name: "Cancel" }).evaluate((el) => el === document.activeElement));
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await confirm.waitFor({ state: "hidden" });
  await wrong.getByRole("button", { name: "Delete" }).click();
  await confirm.press("Escape");
  await confirm.waitFor({ state: "hidden" });
  assert.equal(await messages(bob, "Alice", "Wrong room, sorry").count(), 1, "cancelled: not deleted");
  // ... then deletes it for both, leaving a placeholder where it was.
  await wrong.getByRole("button", { name: "Delete" }).click();
  await confirm.getByRole("button", { name: "Delete" }).click();
  // One placeholder where the message was, without its text.
  const leavesTrace = async (page, when) => {
    const trace = page.getByRole("log").getByRole("article", { name: "Deleted message from Alice" });
    await trace.filter({ hasText: "Message deleted" }).waitFor();
    assert.equal(await trace.count(), 1, `one placeholder ${when}`);
    assert.equal(await page.getByRole("log").getByText("Wrong room, sorry").count(), 0, `its text is gone ${when}`);
    const before = await trace.evaluate((el) => el.previousElementSibling?.textContent ?? "");
    assert.match(before, /At the usual place/, `the placeholder is where the message was ${when}`);
  };
  for (const page of [alice, bob]) {
    await messages(page, "Alice", "Wrong room, sorry").waitFor({ state: "detached" });
    await leavesTrace(page, "at once");
  }
  // The server keeps the trace: a reloaded page shows it in its place too.
  await bob.reload();
  await connected(bob, RECONNECT);
  await opened(bob, "# general", "Messages in #general");
  await leavesTrace(bob, "after a reload");
});

test("attachments show under a message: images inline, files as links, other URLs as text", LIMIT, async () => {
  const image = new URL("/files/plan.png", app).href;
  const file = new URL("/files/report.pdf", app).href;
  await fixture("/api/rooms/general/messages", {
    content: "",
    sender: { id: "deploybot", name: "Deploy Bot" },
    client_id: "attachments-1",
    data: {
      attachments: [
        { url: image, name: "plan.png", type: "image/png" },
        { url: file, name: "report.pdf", type: "application/pdf", size: 48213 },
        { url: "javascript:alert(document.cookie)", name: "click me", type: "image/png" },
        { url: "data:image/svg+xml,<svg onload=alert(1)>", name: "pixel", type: "image/png" },
        { name: "no url at all" },
      ],
    },
  });
  for (const page of [alice, bob]) {
    const message = messages(page, "Deploy Bot", "report.pdf");
    await message.waitFor();
    assert.equal(await message.getByRole("img", { name: "plan.png" }).getAttribute("src"), image);
    assert.equal(await message.getByRole("link", { name: "report.pdf" }).getAttribute("href"), file);
    await message.getByText("48.2 KB").waitFor();
    // Hostile URLs are shown, inert: no link, no image, nothing to click.
    await message.getByText("click me").waitFor();
    await message.getByText("pixel").waitFor();
    assert.equal(await message.getByRole("link", { name: "click me" }).count(), 0);
    const hostile = '[href^="javascript:" i], [src^="javascript:" i], [href^="data:" i], [src^="data:" i]';
    assert.equal(await page.getByRole("log").locator(hostile).count(), 0, "no javascript: or data: URL in the chat");
    assert.equal(await message.getByText("no url at all").count(), 0, "an entry without a url is skipped");
  }
  await shot(bob, "attachments");
});

test("a room that is not open counts its unread messages", LIMIT, async () => {
  await openRoom(bob, "random");
  await say(bob, "Anyone here?", "Message #random");
  await say(bob, "Coffee in five", "Message #random");
  await messages(bob, "Bob", "Coffee in five").waitFor();

  // Alice still has #general open: a badge, and a toast per message.
  const random = roomButton(alice, "# random");
  await random.getByLabel("2 unread", { exact: true }).waitFor();
  await toasts(alice).getByRole("status").filter({ hasText: "Anyone here?" }).waitFor();
  await toasts(alice).getByRole("status").filter({ hasText: "Coffee in five" }).waitFor();
  // Two toasts, and the open conversation's newest message is not under them.
  // (Bob has #random open: a backend writes to #general.)
  await fixture("/api/rooms/general/messages", {
    content: "Newest in general", sender: { id: "deploybot", name: "Deploy Bot" }, client_id: "newest-general",
  });
  await seesOnce(alice, "Deploy Bot", "Newest in general");
  await notCovered(alice, messages(alice, "Deploy Bot", "Newest in general"));
  await shot(alice, "unread");
  await random.click();
  await opened(alice, "# random", "Messages in #random");
  await seesOnce(alice, "Bob", "Anyone here?");
  await seesOnce(alice, "Bob", "Coffee in five");
  // The unread messages start under a "New messages" divider.
  const divider = log(alice, "Messages in #random").getByRole("separator", { name: "New messages" });
  await divider.waitFor();
  assert.equal(await divider.count(), 1);
  assert.match(await divider.evaluate((el) => el.nextElementSibling?.textContent ?? ""), /Anyone here\?/);
  // Switching rooms puts the focus in the message box.
  assert.ok(
    await composer(alice, "Message #random").evaluate((el) => el === document.activeElement),
    "the composer has the focus after a room switch",
  );
  await random.getByLabel(/unread$/).waitFor({ state: "hidden" });
  // Their toasts were news only while the room was closed.
  await toasts(alice).getByRole("status").filter({ hasText: "Coffee in five" }).waitFor({ state: "hidden" });

  for (const page of [alice, bob]) {
    await openRoom(page, "general");
  }
});

test("after a reload, the divider comes from the read position the server keeps", LIMIT, async () => {
  // Alice has read #general; she looks at #random while Bob writes there.
  await say(alice, "Reading up to here");
  await seesOnce(bob, "Alice", "Reading up to here");
  await messages(alice, "Alice", "Reading up to here").filter({ hasText: "Seen by Bob" }).waitFor();
  await openRoom(alice, "random");
  await say(bob, "First after you left");
  await say(bob, "Second after you left");
  await roomButton(alice, "# general").getByLabel("2 unread", { exact: true }).waitFor();
  // A reload forgets the unread count: only `joined.reads` says where she was.
  await alice.reload();
  await connected(alice, RECONNECT);
  await opened(alice, "# general", "Messages in #general");
  await seesOnce(alice, "Bob", "Second after you left");
  const divider = log(alice, "Messages in #general").getByRole("separator", { name: "New messages" });
  await divider.waitFor();
  assert.match(await divider.evaluate((el) => el.nextElementSibling?.textContent ?? ""), /First after you left/);
  assert.equal(await divider.count(), 1);
  // Once read, opening the room again shows no divider.
  await openRoom(alice, "random");
  await openRoom(alice, "general");
  await divider.waitFor({ state: "detached" });
});

test("opening a room with more unread messages than fit shows where they begin", LIMIT, async () => {
  // Alice has read #random (the last tests) and looks at #general while a
  // backend writes more to #random than its log shows at once.
  const backlog = 40;
  const post = (content, id) =>
    fixture("/api/rooms/random/messages", { content, sender: { id: "deploybot", name: "Deploy Bot" }, client_id: id });
  for (let i = 1; i <= backlog; i += 1) await post(`Backlog ${i}`, `backlog-${i}`);
  await roomButton(alice, "# random").getByLabel(`${backlog} unread`, { exact: true }).waitFor();
  await openRoom(alice, "random");
  await seesOnce(alice, "Deploy Bot", `Backlog ${backlog}`);
  const divider = log(alice, "Messages in #random").getByRole("separator", { name: "New messages" });
  await divider.waitFor();
  assert.match(await divider.evaluate((el) => el.nextElementSibling?.textContent ?? ""), /Backlog 1\b/);
  const place = () =>
    divider.evaluate((el) => {
      const log = el.closest('[role="log"]');
      const list = log.getBoundingClientRect();
      const line = el.getBoundingClientRect();
      return { above: line.top < list.top, inside: line.top >= list.top && line.bottom <= list.bottom, overflows: log.scrollHeight > list.height * 1.5 };
    });
  const opened = await place();
  assert.ok(opened.overflows, "the backlog is longer than the log");
  assert.ok(opened.inside, "the divider is in view when the room opens");
  await shot(alice, "divider-in-view");
  // A new message then keeps the reading position: the divider stays.
  await post("One more", "backlog-more");
  await seesOnce(alice, "Deploy Bot", "One more");
  assert.equal((await place()).above, false, "a new message does not scroll the divider away");
  await openRoom(alice, "general");
});

test("a room is joined or created by name", LIMIT, async () => {
  await joinRoom(alice, "standup");
  await say(alice, "Standup notes go here", "Message #standup");
  await messages(alice, "Alice", "Standup notes go here").waitFor();
  assert.equal(await roomButton(bob, "# standup").count(), 0, "Bob has not joined it");
  // A new room's few messages sit at the top of the log, her own on the
  // right: two toasts must not land on them.
  for (const title of ["Standup in 5", "Room booked"]) {
    await fixture("/notify", { user_ids: ["alice"], title, body: `${title}, see the calendar.` });
    await toasts(alice).getByRole("status").filter({ hasText: title }).waitFor();
  }
  await notCovered(alice, messages(alice, "Alice", "Standup notes go here"));
  await shot(alice, "toasts");
  await openRoom(alice, "general");
});

test("a message the server refuses shows Failed, with Retry and Discard", LIMIT, async () => {
  // 3,000 characters fit the composer, but as UTF-8 they are 6,000 bytes,
  // over the server's 4 KiB limit.
  const big = "é".repeat(3000);
  await openRoom(alice, "standup");
  await say(alice, big, "Message #standup");
  const failed = messages(alice, "Alice", big).filter({ hasText: "Failed" });
  await failed.waitFor();
  await shot(alice, "failed");
  // Retrying sends it again (a new attempt, so a new element), and the
  // server refuses it again.
  await failed.evaluate((el) => { el.dataset.firstAttempt = "yes"; });
  await failed.getByRole("button", { name: "Retry" }).click();
  await failed.and(alice.locator(":not([data-first-attempt])")).getByRole("button", { name: "Retry" }).waitFor();
  assert.equal(await messages(alice, "Alice", big).count(), 1, "a retry does not add a copy");
  // The demo also offers to discard it.
  await failed.getByRole("button", { name: "Discard" }).click();
  await messages(alice, "Alice", big).waitFor({ state: "detached" });
  await openRoom(alice, "general");
});

test("older messages load on scrolling up or with the button, each once", LIMIT, async () => {
  // A backend fills a room with more than a join loads (50).
  const total = 120;
  const entry = (i) => `Entry ${String(i).padStart(3, "0")}`;
  for (let i = 1; i <= total; i++) {
    await fixture("/api/rooms/archive/messages", {
      content: entry(i), sender: { id: "archivist", name: "Archivist" }, client_id: `archive-${i}`,
    });
  }
  const articles = (n) => alice.waitForFunction(
    (n) => document.querySelectorAll('[role="log"] article').length === n, n, { timeout: WAIT },
  );
  await joinRoom(alice, "archive");
  await seesOnce(alice, "Archivist", entry(total));
  await articles(50);
  assert.equal(await messages(alice, "Archivist", entry(total - 50)).count(), 0, "only the newest 50 at first");

  // Scrolling to the top loads the page before, and keeps the reader's place.
  const history = log(alice, "Messages in #archive");
  await history.evaluate((el) => { el.scrollTop = 0; });
  await seesOnce(alice, "Archivist", entry(total - 50));
  await articles(100);
  assert.ok(await history.evaluate((el) => el.scrollTop > 0), "the view stays where it was, not at the new top");

  // The button loads the rest; then there is nothing older to load.
  await history.getByRole("button", { name: "Load older messages" }).click();
  await seesOnce(alice, "Archivist", entry(1));
  await articles(total);
  await history.getByRole("button", { name: "Load older messages" }).waitFor({ state: "hidden" });
  const texts = (await messages(alice, "Archivist").allInnerTexts()).map((t) => t.match(/Entry \d{3}/)?.[0]);
  assert.deepEqual(texts, Array.from({ length: total }, (_, i) => entry(i + 1)), "every entry once, in order");

  await openRoom(alice, "general");
});

test("a direct message from the member list", LIMIT, async () => {
  await people(alice).getByRole("button", { name: "Message Bob" }).click();
  await opened(alice, "@ Bob", "Messages with Bob");
  await say(alice, "Got a minute?", "Message Bob");
  await messages(alice, "Alice", "Got a minute?").waitFor();

  // Bob has #general open: the DM shows in his room list, unread.
  const dm = roomButton(bob, "@ Alice");
  await dm.getByLabel("1 unread", { exact: true }).waitFor();
  await dm.click();
  await opened(bob, "@ Alice", "Messages with Alice");
  await seesOnce(bob, "Alice", "Got a minute?");
  await say(bob, "Sure, what's up?", "Message Alice");
  await seesOnce(alice, "Bob", "Sure, what's up?");
  await shot(alice, "direct-message");

  for (const page of [alice, bob]) {
    await openRoom(page, "general");
  }
});

test("the server restarts: a banner shows, then goes, and nothing is lost or doubled", LIMIT, async () => {
  // The banner may be up for a moment only, so the page records it.
  for (const page of [alice, bob]) {
    await page.evaluate(() => {
      window.__sawConnectionLost = false;
      const check = () => {
        for (const alert of document.querySelectorAll('[role="alert"]')) {
          if (alert.textContent.trim().startsWith("Connection lost")) window.__sawConnectionLost = true;
        }
      };
      new MutationObserver(check).observe(document.body, { childList: true, subtree: true, characterData: true });
    });
  }
  await fixture("/restart");
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => window.__sawConnectionLost, null, { timeout: WAIT });
    await connected(page, RECONNECT);
    await banner(page).waitFor({ state: "hidden" });
  }
  await say(bob, "Back after the restart");
  await seesOnce(alice, "Bob", "Back after the restart");
  // History from before the restart is still there, once.
  for (const page of [alice, bob]) {
    await seesOnce(page, "Alice", "Hi Bob!");
    await seesOnce(page, "Bob", "Hi Alice, how are you?");
    await seesOnce(page, "Alice", "Fine, thanks!");
  }
});

test("while the server is down a message waits; it arrives once the UI reconnects", LIMIT, async () => {
  await fixture("/stop");
  for (const page of [alice, bob]) {
    await banner(page).waitFor();
    await connection(page).filter({ hasText: /Reconnecting|Connecting|Offline/ }).waitFor();
  }
  await say(bob, "Written while the server was down");
  const pending = messages(bob, "Bob", "Written while the server was down");
  await pending.filter({ hasText: "Sending…" }).waitFor();
  await shot(bob, "reconnecting");
  assert.equal(await messages(alice, "Bob", "Written while the server was down").count(), 0);

  await fixture("/start");
  for (const page of [alice, bob]) {
    await connected(page, RECONNECT);
    await banner(page).waitFor({ state: "hidden" });
  }
  await seesOnce(alice, "Bob", "Written while the server was down", RECONNECT);
  await pending.filter({ hasText: "Sending…" }).waitFor({ state: "hidden" });
  assert.equal(await pending.filter({ hasText: "Failed" }).count(), 0, "the queued message went out");
  await seesOnce(bob, "Bob", "Written while the server was down");
});

test("dark and light themes, a phone-sized screen, and signing out", LIMIT, async () => {
  const theme = (page) => page.evaluate(() => document.documentElement.dataset.theme);
  const toDark = (page) => page.getByRole("button", { name: "Switch to dark theme" });
  const toLight = (page) => page.getByRole("button", { name: "Switch to light theme" });
  const shows = (page, name) =>
    page.waitForFunction((name) => document.documentElement.dataset.theme === name, name);

  // The desktop screenshots for the docs: a conversation, with Bob typing,
  // and no toasts left over from earlier tests.
  const dismiss = toasts(alice).getByRole("button", { name: "Dismiss" });
  while ((await dismiss.count()) > 0) {
    const before = await dismiss.count();
    await dismiss.first().click();
    await alice.waitForFunction(
      (n) => document.querySelectorAll('[aria-label="Notifications"] [role="status"]').length < n, before,
    );
  }
  if ((await theme(alice)) === "dark") await toLight(alice).click();
  await shows(alice, "light");
  await composer(bob, "Message #general").pressSequentially("See you", { delay: 30 });
  await typing(alice).filter({ hasText: "Bob is typing" }).waitFor();
  await shot(alice, "chat-light");
  await readableAvatars(alice);
  await toDark(alice).click();
  await shows(alice, "dark");
  await toLight(alice).waitFor();
  await shot(alice, "chat-dark");
  await readableAvatars(alice);
  await toLight(alice).click();
  await shows(alice, "light");
  await composer(bob, "Message #general").press("Enter");
  await seesOnce(alice, "Bob", "See you");

  // Carol on a phone: signs in, reads the history, and chats.
  const carol = await newPage(PHONE);
  try {
    await signIn(carol, app, "Carol");
    await seesOnce(carol, "Alice", "Hi Bob!");
    await say(carol, "Hello from my phone");
    await seesOnce(alice, "Carol", "Hello from my phone");
    const overflow = await carol.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page fits a phone's width (${overflow}px too wide)`);
    // The header shows who is signed in.
    assert.ok(await carol.locator("header.top").getByText("Carol", { exact: true }).isVisible(), "own name shown");
    // The people sheet leaves the message box in view and usable.
    await carol.getByRole("button", { name: "People" }).click();
    await person(carol, "Alice").waitFor();
    const box = composer(carol, "Message #general");
    await notCovered(carol, box, people(carol));
    await box.fill("Typed with people open");
    await box.press("Enter");
    await seesOnce(alice, "Carol", "Typed with people open");
    // A touch screen has no hover: Edit and Delete of her own message show
    // at once, and cover nothing of the message above.
    const latest = messages(carol, "Carol", "Typed with people open");
    const above = messages(carol, "Carol", "Hello from my phone");
    for (const name of ["Edit", "Delete"]) {
      const action = latest.getByRole("button", { name });
      const opacity = await action.evaluate((el) => getComputedStyle(el.parentElement).opacity);
      assert.equal(opacity, "1", `${name} shows without hover`);
      await notCovered(carol, above, action);
    }
    // Nor does the time of a message that continues her group wait for one.
    assert.ok(await latest.evaluate((el) => el.classList.contains("continued")), "grouped under the one above");
    const time = latest.locator("header time");
    const shown = await time.evaluate((el) => getComputedStyle(el.parentElement).opacity);
    assert.equal(shown, "1", "a continued message's time shows without hover");
    await notCovered(carol, time);
    await shot(carol, "phone-people");
    await carol.getByRole("button", { name: "People" }).click();
    // Two toasts leave the newest message in view.
    for (const title of ["Build green", "Review requested"]) {
      await fixture("/notify", { user_ids: ["carol"], title, body: `${title}: details follow.` });
      await toasts(carol).getByRole("status").filter({ hasText: title }).waitFor();
    }
    await say(alice, "Newest for Carol");
    await seesOnce(carol, "Alice", "Newest for Carol");
    await notCovered(carol, messages(carol, "Alice", "Newest for Carol"));
    const wider = await carol.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wider <= 0, `toasts do not widen the page (${wider}px too wide)`);
    for (const toast of await toasts(carol).getByRole("status").all()) {
      const box = await toast.getByRole("button", { name: "Dismiss" }).boundingBox();
      assert.ok(box && box.x + box.width <= PHONE.viewport.width, "a toast fits the screen, Dismiss included");
    }
    // The header's controls and the room list stay usable while toasts show.
    await carol.getByRole("button", { name: "Sign out" }).click({ trial: true, timeout: 1000 });
    await notCovered(carol, roomButton(carol, "# general"));
    await roomButton(carol, "# random").click({ trial: true, timeout: 1000 });
    await shot(carol, "phone-toasts");
    if ((await theme(carol)) === "dark") await toLight(carol).click();
    await shows(carol, "light");
    await shot(carol, "phone-light");
    await toDark(carol).click();
    await shows(carol, "dark");
    await shot(carol, "phone-dark");

    // Signing out forgets the name, also across a reload.
    await carol.getByRole("button", { name: "Sign out" }).click();
    await carol.getByRole("textbox", { name: "Display name" }).waitFor();
    await carol.reload();
    await carol.getByRole("textbox", { name: "Display name" }).waitFor();
  } finally {
    await carol.context().close();
  }
});

test("every control has an accessible name, and new messages are announced", LIMIT, async () => {
  // An unnamed control shows in the accessibility tree as `- button` with no
  // quoted name after it.
  const tree = await alice.locator("body").ariaSnapshot();
  const unnamed = tree
    .split("\n")
    .filter((line) => /^\s*- (button|textbox|combobox|checkbox|link)(\s*$|:|\s*\[)/.test(line));
  assert.deepEqual(unnamed, [], "controls without a name");
  // role="log" is a polite live region by definition; an explicit aria-live
  // must not turn it off.
  const live = await alice.getByRole("log").getAttribute("aria-live");
  assert.notEqual(live, "off", "the message log is announced");
});

test("no page threw an uncaught error or opened a dialog", () => {
  assert.deepEqual(errors, [], "uncaught errors");
  assert.deepEqual(dialogs, [], "dialogs");
});
