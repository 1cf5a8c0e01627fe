// Vite config of the example: React, and the wasm ES-module import that the
// roomcast package (wasm-pack's bundler target) needs. `npm run dev` proxies
// the API and the WebSocket to a server from `cargo xtask run`.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import wasm from "vite-plugin-wasm";

const server = process.env.ROOMCAST_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), wasm()],
  // The wasm module is awaited at the top level of the package.
  build: { target: "es2022" },
  server: {
    proxy: {
      "/api": server,
      "/ws": { target: server.replace(/^http/, "ws"), ws: true },
    },
  },
});
