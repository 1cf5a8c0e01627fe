// The demo chat's DOM contract, as the end-to-end test uses it: one helper
// per landmark (by role and accessible name, the way assistive technology
// finds them), and the few actions every test repeats. A change to the UI's
// names or roles shows up here first.

import assert from "node:assert/strict";

/** How long a condition may take to hold; a reconnect gets longer. */
export const WAIT = 15_000;
export const RECONNECT = 30_000;

// Landmarks and controls.
export const connection = (page) => page.getByTestId("connection");
export const banner = (page) => page.getByRole("alert").filter({ hasText: /^\s*Connection lost/ });
export const rooms = (page) => page.getByRole("navigation", { name: "Rooms" });
export const roomButton = (page, prefix) => rooms(page).getByRole("button", { name: new RegExp(`^${escapeRegExp(prefix)}`) });
export const log = (page, name) => page.getByRole("log", { name, exact: true });
export const people = (page) => page.getByRole("complementary", { name: "People" });
export const person = (page, name) => people(page).getByRole("listitem").filter({ hasText: name });
export const toasts = (page) => page.getByRole("region", { name: "Notifications" });
export const composer = (page, label) => page.getByRole("textbox", { name: label, exact: true });
export const typing = (page) => page.getByTestId("typing");

/** Every message from `from` in the open room, or those containing `text`. */
export function messages(page, from, text) {
  const all = page.getByRole("log").getByRole("article", { name: `Message from ${from}`, exact: true });
  return text === undefined ? all : all.filter({ hasText: text });
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Waits until the connection badge says Connected. */
export async function connected(page, timeout = WAIT) {
  await connection(page).filter({ hasText: /^\s*Connected\s*$/ }).waitFor({ timeout });
}

/** Waits until the room button named `prefix…` is the open one and the log
 * named `logName` is shown. */
export async function opened(page, prefix, logName) {
  await roomButton(page, prefix).and(page.locator('[aria-current="page"]')).waitFor();
  await log(page, logName).waitFor();
}

/** Opens the public room `room` from the room list and waits until it shows. */
export async function openRoom(page, room) {
  await roomButton(page, `# ${room}`).click();
  await opened(page, `# ${room}`, `Messages in #${room}`);
}

/** Joins (or creates) `room` by name and waits until it is open. */
export async function joinRoom(page, room) {
  await page.getByRole("textbox", { name: "Join or create a room" }).fill(room);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await opened(page, `# ${room}`, `Messages in #${room}`);
}

/** Signs in at `app` as `name` and waits for #general, opened by default. */
export async function signIn(page, app, name) {
  await page.goto(app);
  await page.getByRole("textbox", { name: "Display name" }).fill(name);
  await page.getByRole("button", { name: "Sign in" }).click();
  await connected(page, RECONNECT);
  await opened(page, "# general", "Messages in #general");
}

/** Types `text` in the composer labelled `label` and presses Enter. */
export async function say(page, text, label = "Message #general") {
  const box = composer(page, label);
  await box.fill(text);
  await box.press("Enter");
}

/** Waits until exactly one message from `from` with `text` is on `page`. */
export async function seesOnce(page, from, text, timeout = WAIT) {
  await messages(page, from, text).first().waitFor({ timeout });
  assert.equal(await messages(page, from, text).count(), 1, `one "${text}" from ${from}`);
}
