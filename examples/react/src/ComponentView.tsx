// `?view=component`: the ready-made chat, in one line (and its CSS).
import { Chat } from "roomcast/react";
import "roomcast/react/chat.css";

export function ComponentView({ room }: { room: string }) {
  return (
    <div className="component-view">
      <Chat room={room} locale="en-GB" />
    </div>
  );
}
