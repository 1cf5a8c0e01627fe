/* @ts-self-types="./roomcast.d.ts" */
// The package's entry: wasm-bindgen's glue (roomcast_bg.js), with the
// WebAssembly instantiated before anything is imported from here, so that
// `new Client(...)` works as soon as `import { Client } from "roomcast"`
// has. `new URL(..., import.meta.url)` is the form bundlers (Vite, webpack,
// Rollup, esbuild) recognize as an asset; a page without a bundler fetches
// the file next to this one.
//
// Only browsers and workers load the wasm: a server-side render (Next.js,
// Remix) may import this module, but must not create a client.
import init from "./roomcast_bg.js";

export * from "./roomcast_bg.js";

if (typeof window !== "undefined" || typeof WorkerGlobalScope !== "undefined") {
  await init({ module_or_path: new URL("./roomcast_bg.wasm", import.meta.url) });
}
