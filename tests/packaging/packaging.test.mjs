// The packed npm package (`npm pack` output) in the three setups its README
// shows, each made fresh from `apps/<setup>` in the test itself: the
// tarball is installed as a user would (`npm install roomcast.tgz`), the
// app is built by its own tool with no WebAssembly plugin, served, and two
// users in two browser contexts chat through it against the real server.
//
// `cargo xtask test` (or `cargo xtask test-packaging`) builds the package
// and the server and sets:
//   ROOMCAST_TARBALL     the packed package
//   ROOMCAST_SERVER_URL  the server (dev mode: it signs tokens for names)
//   ROOMCAST_API_KEY     its API key (a backend's messages)
//   ROOMCAST_ARTIFACTS   where the apps are made, and their logs
// CHROMIUM may name the browser (default: Debian's /usr/bin/chromium).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, createReadStream } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const tarball = required("ROOMCAST_TARBALL");
const server = required("ROOMCAST_SERVER_URL");
const apiKey = required("ROOMCAST_API_KEY");
const ws = `${server.replace(/^http/, "ws")}/ws`;
const artifacts = resolve(process.env.ROOMCAST_ARTIFACTS ?? "test-results", "packaging");
const WAIT = 30_000;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test with \`cargo xtask test\``);
  return value;
}

/** Runs `program` in `cwd` to its end; fails with its output when it fails. */
function run(program, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd, env: quietEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`\`${program} ${args.join(" ")}\` in ${cwd} failed (${code}):\n${output}`)),
    );
  });
}

const quietEnv = () => ({ ...process.env, NEXT_TELEMETRY_DISABLED: "1", NO_COLOR: "1" });

/** A fresh copy of `apps/<setup>` with the packed package installed in it. */
async function freshApp(setup) {
  const dir = join(artifacts, setup);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  cpSync(join(here, "apps", setup), dir, { recursive: true });
  if (existsSync(join(dir, "package-lock.json"))) {
    await run("npm", ["ci", "--no-audit", "--no-fund"], dir);
  }
  await run("npm", ["install", "--no-audit", "--no-fund", tarball], dir);
  return dir;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createNetServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

/** Starts a long-running `program` (an app server) and waits until `url` answers. */
async function serve(program, args, cwd, url) {
  const child = spawn(program, args, { cwd, env: quietEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  };
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`\`${program} ${args.join(" ")}\` exited:\n${output}`);
    try {
      if ((await fetch(url)).ok) return stop;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  stop();
  throw new Error(`${url} did not answer within ${WAIT} ms:\n${output}`);
}

// The plain page's server: any static file server does; this one names
// `.wasm` as `application/wasm` (for streaming compilation), as they do.
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json" };

function serveStatic(root, port) {
  const http = createServer((request, response) => {
    const path = normalize(join(root, decodeURIComponent(new URL(request.url, "http://x").pathname)));
    const file = path.endsWith(sep) ? join(path, "index.html") : path;
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve) => http.listen(port, "127.0.0.1", () => resolve(() => http.close())));
}

/** A dev token for `name`, from the server. */
async function token(name) {
  const response = await fetch(`${server}/api/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  assert.ok(response.ok, `dev token for ${name}: ${response.status}`);
  return (await response.json()).token;
}

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// How each kind of page is read and written: <Chat/> (React setups) or
// the plain page's list and form.
const component = {
  texts: (page) => page.getByTestId("rc-message").locator(".rc-text").allTextContents(),
  box: (page) => page.getByRole("textbox", { name: "Write a message" }),
};
const plain = {
  texts: async (page) => (await page.locator("#messages li").allTextContents()).map((t) => t.replace(/^[^:]*: /, "")),
  box: (page) => page.getByRole("textbox", { name: "Message" }),
};

async function expectTexts(ui, page, expected, what) {
  const deadline = Date.now() + WAIT;
  let seen;
  while (Date.now() < deadline) {
    seen = await ui.texts(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(seen, expected, what);
}

async function say(ui, page, text) {
  const box = ui.box(page);
  await box.fill(text);
  await box.press("Enter");
}

/**
 * Alice opens `aliceUrl`, Bob `bobUrl` (each given the server, a token and
 * the room in the query string); they exchange two messages, each seen
 * once, in order, by both; no page throws or logs an error other than a
 * favicon's 404.
 */
async function twoUsersChat(ui, aliceUrl, bobUrl, setup) {
  const browser = await launch();
  try {
    const room = `${setup}-${Date.now()}`;
    const errors = [];
    const open = async (base, name) => {
      const page = await (await browser.newContext()).newPage();
      page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error" && !m.text().includes("404")) errors.push(`${name}: ${m.text()}`);
      });
      const query = new URLSearchParams({ ws, token: await token(name), room });
      await page.goto(`${base}/?${query}`);
      return page;
    };
    const alice = await open(aliceUrl, "Alice");
    const bob = await open(bobUrl, "Bob");
    await ui.box(alice).waitFor({ timeout: WAIT });
    await say(ui, alice, `Hello from ${setup}`);
    await expectTexts(ui, bob, [`Hello from ${setup}`], "bob sees alice's message");
    await say(ui, bob, "Hello back");
    const both = [`Hello from ${setup}`, "Hello back"];
    await expectTexts(ui, alice, both, "alice sees both, once, in order");
    await expectTexts(ui, bob, both, "bob sees both, once, in order");
    assert.deepEqual(errors, [], "no page error");
  } finally {
    await browser.close();
  }
}

/**
 * Alice reads Bob's message and leaves; a backend writes more than the log
 * shows at once; when she comes back, <Chat/> opens at the "New messages"
 * divider (from the read position the server kept), not at the newest
 * message.
 */
async function reopensAtTheDivider(base) {
  const browser = await launch();
  try {
    const room = `backlog-${Date.now()}`;
    const open = async (context, name) => {
      const page = await context.newPage();
      const query = new URLSearchParams({ ws, token: await token(name), room });
      await page.goto(`${base}/?${query}`);
      return page;
    };
    const alice = await browser.newContext();
    const bob = await open(await browser.newContext(), "Bob");
    await open(alice, "Alice");
    await say(component, bob, "Read up to here");
    await bob.getByTestId("rc-seen").filter({ hasText: "Seen by Alice" }).waitFor({ timeout: WAIT });
    await alice.close();

    const backlog = 40;
    for (let i = 1; i <= backlog; i += 1) {
      const response = await fetch(`${server}/api/rooms/${room}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({ content: `Backlog ${i}`, sender: { id: "deploybot", name: "Deploy Bot" }, client_id: `backlog-${i}` }),
      });
      assert.ok(response.ok, `backend message ${i}: ${response.status}`);
    }

    const page = await open(await browser.newContext(), "Alice");
    await expectTexts(component, page, ["Read up to here", ...Array.from({ length: backlog }, (_, i) => `Backlog ${i + 1}`)], "alice loads the backlog");
    const divider = page.getByTestId("rc-new-messages");
    await divider.waitFor({ timeout: WAIT });
    assert.match(await divider.evaluate((el) => el.nextElementSibling?.textContent ?? ""), /Backlog 1\b/);
    const place = () =>
      divider.evaluate((el) => {
        const log = el.closest('[role="log"]');
        const list = log.getBoundingClientRect();
        const line = el.getBoundingClientRect();
        return { inside: line.top >= list.top && line.bottom <= list.bottom, overflows: log.scrollHeight > list.height * 1.5 };
      });
    let where = await place();
    for (const deadline = Date.now() + WAIT; !where.inside && Date.now() < deadline; where = await place()) {
      await page.waitForTimeout(100);
    }
    assert.ok(where.overflows, "the backlog is longer than the log");
    assert.ok(where.inside, "the divider is in view when the room opens");
  } finally {
    await browser.close();
  }
}

test("a fresh Vite app installs the tarball, builds without a wasm plugin, chats (built and dev server), and reopens at the divider", async () => {
  const dir = await freshApp("vite");
  const output = await run("npm", ["run", "build"], dir);
  const assets = readdirSync(join(dir, "dist", "assets"));
  assert.ok(assets.some((f) => f.endsWith(".wasm")), `Vite emitted the wasm as an asset:\n${output}`);
  const vite = join(dir, "node_modules", ".bin", "vite");
  const [built, dev] = [await freePort(), await freePort()];
  const stops = [];
  try {
    stops.push(await serve(vite, ["preview", "--port", `${built}`, "--strictPort", "--host", "127.0.0.1"], dir, `http://127.0.0.1:${built}/`));
    stops.push(await serve(vite, ["--port", `${dev}`, "--strictPort", "--host", "127.0.0.1"], dir, `http://127.0.0.1:${dev}/`));
    // Alice on the production build, Bob on the dev server.
    await twoUsersChat(component, `http://127.0.0.1:${built}`, `http://127.0.0.1:${dev}`, "vite");
    await reopensAtTheDivider(`http://127.0.0.1:${built}`);
  } finally {
    stops.forEach((stop) => stop());
  }
});

test("a fresh Next.js app renders <Chat/> from a client component on the server, then chats in the browser", async () => {
  const dir = await freshApp("next");
  await run("npm", ["run", "build"], dir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const stop = await serve(join(dir, "node_modules", ".bin", "next"), ["start", "-p", `${port}`, "-H", "127.0.0.1"], dir, `${url}/`);
  try {
    // The server renders the chat before any client exists: the import
    // and the provider are safe without a browser.
    const query = new URLSearchParams({ ws, token: "unused", room: "ssr" });
    const html = await (await fetch(`${url}/?${query}`)).text();
    assert.match(html, /class="roomcast-chat"/, "the server rendered <Chat/>");
    assert.match(html, /aria-label="Write a message"/, "with its message box");
    // Hydration mismatches are console errors, which twoUsersChat refuses.
    await twoUsersChat(component, url, url, "next");
  } finally {
    stop();
  }
});

test("a plain HTML page imports the installed package with no bundler and chats", async () => {
  const dir = await freshApp("html");
  const port = await freePort();
  const stop = await serveStatic(dir, port);
  try {
    await twoUsersChat(plain, `http://127.0.0.1:${port}`, `http://127.0.0.1:${port}`, "html");
  } finally {
    stop();
  }
});
