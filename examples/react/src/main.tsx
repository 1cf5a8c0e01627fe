// Mounts the example in StrictMode, which mounts every component twice in
// development: the hooks must not open a second connection or leak one.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
