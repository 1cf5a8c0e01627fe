// One room: messages in order (each once, across reconnects), sends still
// waiting for their ack, who is typing, who is here, and the composer.
import { useEffect, useRef, useState } from "react";
import type { Client } from "roomcast";
import { Attachments, useRoom, useRoomEvent, useRoomcast } from "roomcast/react";

/** `client` defaults to the provider's. */
export function Chat({ room, client: given }: { room: string; client?: Client | null }) {
  const provided = useRoomcast();
  const client = given ?? provided;
  const { messages, pending, members, typing, send, setTyping, resets, room: handle } = useRoom(client, room);
  const [draft, setDraft] = useState("");
  const [notice, setNotice] = useState("");
  const end = useRef<HTMLDivElement>(null);

  useRoomEvent(handle, "reset", () => setNotice("The server could not replay what you missed: the room was reloaded."));
  useEffect(() => {
    // Braces: newer browsers return a promise from scrollIntoView, and an
    // effect may only return a cleanup function.
    end.current?.scrollIntoView({ block: "end" });
  }, [messages.length, pending.length]);

  const submit = () => {
    const text = draft.trim();
    if (!text) return;
    setDraft("");
    setTyping(false);
    // Queued while offline; the promise settles with the server's ack.
    send(text).catch((e: Error) => setNotice(`Not sent: ${e.message}`));
  };

  return (
    <section className="chat">
      <aside className="members" data-testid="members">
        <h2>#{room}</h2>
        {members.map((m) => (
          <div key={m.user.id} className={`member ${m.status}`}>
            {m.user.name}
          </div>
        ))}
      </aside>
      <div className="log">
        {notice && <p className="notice" data-testid="notice">{notice} ({resets})</p>}
        {messages.map((m) => (
          <div key={m.id} className="message" data-testid="message">
            <b>{m.sender.name}</b> <span className="content">{m.content}</span>
            <Attachments message={m} />
          </div>
        ))}
        {pending.map((p) => (
          <p key={p.client_id} className="message pending" data-testid="pending">
            <b>you</b> <span className="content">{p.content}</span> <small>sending…</small>
          </p>
        ))}
        <div ref={end} />
      </div>
      <footer>
        <p className="typing" data-testid="typing">
          {typing.length > 0 ? `${typing.map((u) => u.name).join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : " "}
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            submit();
          }}
        >
          <input
            data-testid="composer"
            placeholder={`Message #${room}`}
            value={draft}
            onChange={(e) => {
              setDraft(e.target.value);
              setTyping(e.target.value !== "");
            }}
          />
          <button type="submit">Send</button>
        </form>
      </footer>
    </section>
  );
}
