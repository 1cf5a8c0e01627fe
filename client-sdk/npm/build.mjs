// Builds the `roomcast` npm package into target/npm/roomcast and packs it
// as target/npm/roomcast.tgz:
//   1. wasm-pack (web target) with a release profile tuned for size;
//   2. wasm-opt -Oz from npm's binaryen (runs under node, no download);
//   3. our entry, package.json, README and the `roomcast/react` entry;
//   4. npm pack.
//
// The web target loads the wasm with `fetch(new URL("roomcast_bg.wasm",
// import.meta.url))`, which Vite, webpack (Next.js), Rollup and esbuild
// resolve as an asset by themselves and a browser follows as is: no bundler
// plugin for WebAssembly imports is needed, and a plain HTML page can import
// the package from its folder. Our `roomcast.js` awaits that at the top level,
// so `import { Client } from "roomcast"` is ready to use, as before.
// Needs wasm-pack and wasm-bindgen-cli 0.2.130 on PATH (`cargo xtask test`
// installs both). Run with `npm ci && npm run build` in this folder.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const crate = join(here, "..");
const target = process.env.CARGO_TARGET_DIR ?? join(crate, "..", "target");
const out = join(target, "npm", "roomcast");

function run(program, args, options = {}) {
  console.log(`$ ${program} ${args.join(" ")}`);
  try {
    execFileSync(program, args, { stdio: "inherit", ...options });
  } catch (error) {
    const hint = program === "wasm-pack"
      ? " (install it with `cargo install wasm-pack --locked`, and wasm-bindgen-cli 0.2.130)"
      : "";
    throw new Error(`${program} failed${hint}: ${error.message}`);
  }
}

// 1. The wasm and its bindings. `--mode no-install` keeps wasm-pack from
// downloading anything: it uses wasm-bindgen from PATH.
//
// Panic locations name their source files; dependencies' would name the
// builder's cargo home (`/home/<user>/.cargo/registry/...`), which is
// remapped to `cargo/`. Flags the builder set are kept.
const cargoHome = process.env.CARGO_HOME ?? join(homedir(), ".cargo");
const rustflags = process.env.CARGO_ENCODED_RUSTFLAGS?.split("\x1f")
  ?? process.env.RUSTFLAGS?.split(" ")
  ?? [];
rustflags.push(`--remap-path-prefix=${cargoHome}=cargo`);
// Size over speed for the browser build only; the server keeps its profile.
const sizeProfile = {
  CARGO_PROFILE_RELEASE_OPT_LEVEL: "z",
  CARGO_PROFILE_RELEASE_LTO: "fat",
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS: "1",
  CARGO_PROFILE_RELEASE_PANIC: "abort",
  CARGO_PROFILE_RELEASE_STRIP: "true",
};
// The standard library rebuilt for size with the rest (10.6 KiB gzip of
// the wasm's 94; "Size" in docs/sdk.md): cargo's `build-std` with std's
// `optimize_for_size`, panics that trap at once (no message, location or
// formatting machinery: the SDK never panics on purpose, and a trap is
// what `panic = "abort"` gave JavaScript already) and no `Debug` output
// (nothing the SDK shows uses it). These options are unstable; the stable
// compiler accepts them with RUSTC_BOOTSTRAP=1, as the Linux kernel's Rust
// build does. They need the standard library's source: `rustup component
// add rust-src` (`cargo xtask test` adds it).
const smallStd = {
  RUSTC_BOOTSTRAP: "1",
  CARGO_UNSTABLE_BUILD_STD: "std,panic_abort",
  CARGO_UNSTABLE_BUILD_STD_FEATURES: "optimize_for_size",
};
const smallStdFlags = [
  "-Zunstable-options", "-Cpanic=immediate-abort", "-Zlocation-detail=none", "-Zfmt-debug=none",
];
const wasmPack = (env, flags) => run("wasm-pack", [
  "build", crate, "--release", "--target", "web", "--mode", "no-install",
  "--out-dir", out, "--out-name", "roomcast",
], {
  env: {
    ...process.env,
    ...sizeProfile,
    ...env,
    CARGO_ENCODED_RUSTFLAGS: [...rustflags, ...flags].filter(Boolean).join("\x1f"),
  },
});
rmSync(out, { recursive: true, force: true });
try {
  wasmPack(smallStd, smallStdFlags);
} catch {
  // A toolchain without rust-src, or one that renamed an unstable option,
  // still builds a working package, about 10 KiB gzip larger (over the
  // budget `cargo xtask test` checks).
  console.warn("\nWARNING: the build with the standard library rebuilt for size failed (the"
    + " error is above); building with the prebuilt one. `rustup component add rust-src` and a"
    + " recent stable toolchain give the smaller build.\n");
  wasmPack({}, []);
}

// 2. wasm-opt. Stripping removed the target_features section, so the
// features rustc enables for wasm32 are named here.
const wasm = join(out, "roomcast_bg.wasm");
const wasmOpt = join(here, "node_modules", ".bin", "wasm-opt");
if (!existsSync(wasmOpt)) {
  throw new Error(`${wasmOpt} is missing: run \`npm ci\` in ${here} first`);
}
const rawBefore = statSync(wasm).size;
// `--converge` repeats -Oz while it still shrinks the module (a few
// hundred bytes more, seconds of build time).
run(wasmOpt, [
  "-Oz", "--converge", "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
  "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue",
  wasm, "-o", wasm,
]);

// 3. wasm-bindgen's glue becomes roomcast_bg.js behind our entry; our
// package.json (exports `.` and `./react`), README and React entry replace
// what wasm-pack generated.
renameSync(join(out, "roomcast.js"), join(out, "roomcast_bg.js"));
renameSync(join(out, "roomcast.d.ts"), join(out, "roomcast_bg.d.ts"));
const glue = join(out, "roomcast_bg.js");
writeFileSync(glue, readFileSync(glue, "utf8").replace('"./roomcast.d.ts"', '"./roomcast_bg.d.ts"'));
for (const generated of ["package.json", ".gitignore", "README.md"]) {
  rmSync(join(out, generated), { force: true });
}
const entries = ["roomcast.js", "roomcast.d.ts", "react.js", "react-chat.js", "react.d.ts", "chat.css"];
for (const file of ["package.json", "README.md", ...entries]) {
  copyFileSync(join(here, "package", file), join(out, file));
}

const raw = statSync(wasm).size;
const gzip = gzipSync(readFileSync(wasm), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`roomcast_bg.wasm: ${kb(raw)} raw, ${kb(gzip)} gzip (${kb(rawBefore)} before wasm-opt)`);

// 4. The tarball a project installs with `npm install path/to/roomcast.tgz`.
const version = JSON.parse(readFileSync(join(out, "package.json"), "utf8")).version;
run("npm", ["pack", "--pack-destination", join(target, "npm")], { cwd: out });
renameSync(join(target, "npm", `roomcast-${version}.tgz`), join(target, "npm", "roomcast.tgz"));
console.log(`packed ${join(target, "npm", "roomcast.tgz")}`);
