// Vite config of the example: React, nothing for roomcast (its package
// loads its WebAssembly by itself). `npm run dev` proxies the API and the
// WebSocket to a server from `cargo xtask run`.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const server = process.env.ROOMCAST_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/api": server,
      "/ws": { target: server.replace(/^http/, "ws"), ws: true },
    },
  },
});
