// The package README's Vite example; the server URL, token and room come
// from the page's query string here, where an app would use its own.
import { createRoot } from "react-dom/client";
import { Chat, RoomcastProvider } from "roomcast/react";
import "roomcast/react/chat.css";

const params = new URLSearchParams(location.search);

createRoot(document.getElementById("root")).render(
  <RoomcastProvider url={params.get("ws")} options={{ token: params.get("token") }}>
    <Chat room={params.get("room")} />
  </RoomcastProvider>,
);
