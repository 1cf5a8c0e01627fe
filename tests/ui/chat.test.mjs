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
  // Nothing should ask (delete acts at once); should a dialog appear, it is
  // accepted so the test goes on, and reported at the end.
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.accept();
  });
  return page;
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
  for (const [option, word] of [["Away", "away"], ["Busy", "busy"], ["Invisible", "offline"], ["Online", "online"]]) {
    await status.selectOption({ label: option });
    await person(alice, "Bob").filter({ hasText: word }).waitFor();
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

  // Delete removes it at once, for both.
  await say(alice, "Wrong room, sorry");
  await seesOnce(bob, "Alice", "Wrong room, sorry");
  await messages(alice, "Alice", "Wrong room, sorry").getByRole("button", { name: "Delete" }).click();
  await messages(alice, "Alice", "Wrong room, sorry").waitFor({ state: "detached" });
  await messages(bob, "Alice", "Wrong room, sorry").waitFor({ state: "detached" });
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
  await toasts(alice).getByRole("status").filter({ hasText: "Coffee in five" }).waitFor();
  await shot(alice, "unread");
  await random.click();
  await opened(alice, "# random", "Messages in #random");
  await seesOnce(alice, "Bob", "Anyone here?");
  await seesOnce(alice, "Bob", "Coffee in five");
  await random.getByLabel(/unread$/).waitFor({ state: "hidden" });
  // Their toasts were news only while the room was closed.
  await toasts(alice).getByRole("status").filter({ hasText: "Coffee in five" }).waitFor({ state: "hidden" });

  for (const page of [alice, bob]) {
    await openRoom(page, "general");
  }
});

test("a room is joined or created by name", LIMIT, async () => {
  await joinRoom(alice, "standup");
  await say(alice, "Standup notes go here", "Message #standup");
  await messages(alice, "Alice", "Standup notes go here").waitFor();
  assert.equal(await roomButton(bob, "# standup").count(), 0, "Bob has not joined it");
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
  await toDark(alice).click();
  await shows(alice, "dark");
  await toLight(alice).waitFor();
  await shot(alice, "chat-dark");
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
