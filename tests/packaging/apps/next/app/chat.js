"use client";
// The package README's Next.js example: a client component, which Next.js
// also renders on the server (roomcast/react renders the not-yet-connected
// chat there, and connects in the browser).
import { Chat, RoomcastProvider } from "roomcast/react";
import "roomcast/react/chat.css";

export default function RoomChat({ url, token, room }) {
  return (
    <RoomcastProvider url={url} options={{ token }}>
      <Chat room={room} />
    </RoomcastProvider>
  );
}
