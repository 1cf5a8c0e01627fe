// Every hook of roomcast/react, each in a component of its own that counts
// its renders: `?view=hooks` shows it. A component re-renders only for its
// own data (typing does not redraw the messages), which the end-to-end
// test reads from `data-renders`.
import { useRef, useState } from "react";
import {
  useConnectionState,
  useMessages,
  useNotifications,
  useOccupancy,
  usePresence,
  useReadReceipts,
  useTyping,
} from "roomcast/react";

/** Counts the renders of the component that calls it. */
function useRenders(): number {
  const renders = useRef(0);
  renders.current += 1;
  return renders.current;
}

export function Hooks({ room }: { room: string }) {
  return (
    <main className="hooks">
      <Connection />
      <Messages room={room} />
      <Presence room={room} />
      <Typing room={room} />
      <Reads room={room} />
      <Occupancy room={room} />
      <Notifications />
    </main>
  );
}

function Connection() {
  const { state, transport, user } = useConnectionState();
  return (
    <section data-testid="hook-connection" data-renders={useRenders()} data-state={state}>
      {state} via {transport} {user ? `as ${user.name}` : ""}
    </section>
  );
}

function Messages({ room }: { room: string }) {
  const [discontinuities, setDiscontinuities] = useState(0);
  const { messages, pending, send, loadOlder, hasMore } = useMessages(room, {
    onDiscontinuity: () => setDiscontinuities((n) => n + 1),
  });
  const [draft, setDraft] = useState("");
  return (
    <section
      data-testid="hook-messages"
      data-renders={useRenders()}
      data-count={messages.length}
      data-pending={pending.length}
      data-has-more={hasMore}
      data-discontinuities={discontinuities}
    >
      <button type="button" onClick={() => void loadOlder(5)}>
        Load older
      </button>
      <ol>
        {messages.map((m) => (
          <li key={m.id} data-testid="hook-message">
            {m.sender.name}: {m.content}
          </li>
        ))}
      </ol>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (draft.trim()) void send(draft);
          setDraft("");
        }}
      >
        <input aria-label="Message" value={draft} onChange={(e) => setDraft(e.target.value)} />
      </form>
    </section>
  );
}

function Presence({ room }: { room: string }) {
  const { members, count, online, setStatus } = usePresence(room);
  return (
    <section data-testid="hook-presence" data-renders={useRenders()} data-count={count} data-online={online}>
      <button type="button" onClick={() => setStatus("away")}>
        Away
      </button>
      <ul>
        {members.map((m) => (
          <li key={m.user_id}>
            {m.user.name} ({m.status})
          </li>
        ))}
      </ul>
    </section>
  );
}

function Typing({ room }: { room: string }) {
  const { typing, setTyping } = useTyping(room);
  return (
    <section data-testid="hook-typing" data-renders={useRenders()} data-typing={typing.map((u) => u.name).join(",")}>
      <button type="button" onClick={() => setTyping(true)}>
        Start typing
      </button>
    </section>
  );
}

function Reads({ room }: { room: string }) {
  const { reads, markRead } = useReadReceipts(room);
  const { messages } = useMessages(room);
  const last = messages[messages.length - 1];
  return (
    <section data-testid="hook-reads" data-readers={reads.map((r) => r.user_id).join(",")}>
      <button type="button" disabled={!last} onClick={() => last && markRead(last.id)}>
        Mark read
      </button>
    </section>
  );
}

function Occupancy({ room }: { room: string }) {
  const count = useOccupancy(room);
  return (
    <section data-testid="hook-occupancy" data-renders={useRenders()} data-count={count}>
      {count} here
    </section>
  );
}

function Notifications() {
  const { notifications, dismiss } = useNotifications();
  return (
    <section data-testid="hook-notifications" data-count={notifications.length}>
      {notifications.map((n) => (
        <button key={n.id} type="button" onClick={() => dismiss(n.id)}>
          {n.title}
        </button>
      ))}
    </section>
  );
}
