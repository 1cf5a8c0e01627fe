// What the example's end-to-end tests share: the environment `cargo xtask
// test` gives them, the fixture's control API, screenshots, reading the
// message list, and Debian's Chromium with the flags this machine needs.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const app = required("ROOMCAST_APP_URL");
export const control = required("ROOMCAST_CONTROL_URL");
export const artifacts = process.env.ROOMCAST_ARTIFACTS ?? "test-results";
mkdirSync(artifacts, { recursive: true });

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test with \`cargo xtask test\``);
  return value;
}

/** Asks the fixture to act on the server (`/stop`, `/start`, `/restart`, `/kill`). */
export async function fixture(path) {
  const response = await fetch(`${control}${path}`, { method: "POST" });
  assert.ok(response.ok, `fixture ${path}: ${await response.text()}`);
}

export const shot = (page, name) =>
  page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

/** Records every WebSocket frame `page` sends and receives, with its
 * time; `save(name)` writes them to the artifacts (for a failure's
 * post-mortem). */
export function recordFrames(page) {
  const lines = [];
  const start = Date.now();
  page.on("websocket", (ws) => {
    const log = (dir) => (frame) => lines.push(`${Date.now() - start} ${dir} ${frame.payload}`);
    lines.push(`${Date.now() - start} open ${ws.url()}`);
    ws.on("framesent", log(">"));
    ws.on("framereceived", log("<"));
    ws.on("close", () => lines.push(`${Date.now() - start} close`));
  });
  return { save: (name) => writeFileSync(join(artifacts, `${name}.log`), lines.join("\n") + "\n") };
}

/** The texts of the messages a page shows, in order. */
export const messages = (page) => page.getByTestId("message").locator(".content").allTextContents();

/** Headless Chromium (CHROMIUM may name it; Debian's by default), with `extraArgs`. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...extraArgs,
    ],
  });
}
