// Vite's React template config, unchanged: the roomcast package needs nothing more.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({ plugins: [react()] });
