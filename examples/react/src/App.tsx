// The example app: sign in with a display name (the server's dev tokens),
// then one shared connection for every component through RoomcastProvider.
// `?name=Alice&room=general` in the URL signs in at once; `&hooks=standalone`
// uses useWebSocket(url, options) without a provider instead; `&view=hooks`
// shows every hook by concern (Hooks.tsx), `&view=component` the
// ready-made <Chat/> (ComponentView.tsx).
import { type ReactNode, useEffect, useMemo, useState } from "react";
import type { ClientOptions } from "roomcast";
import { RoomcastProvider, useWebSocket } from "roomcast/react";
import { Chat } from "./Chat";
import { ComponentView } from "./ComponentView";
import { Hooks } from "./Hooks";

const params = new URLSearchParams(location.search);
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/** The client options among `keys` the URL names, as numbers. */
function numbers(keys: (keyof ClientOptions)[]): Partial<ClientOptions> {
  return Object.fromEntries(keys.filter((k) => params.has(k)).map((k) => [k, Number(params.get(k))]));
}

/** A fresh dev token for `name`; a real app asks its own backend. */
async function devToken(name: string): Promise<string> {
  const response = await fetch("/api/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`sign-in failed: ${response.status}`);
  const body: { token: string } = await response.json();
  return body.token;
}

export function App() {
  const [name, setName] = useState(params.get("name") ?? "");
  const [signedIn, setSignedIn] = useState(name !== "");
  const room = params.get("room") ?? "general";
  const [connects, setConnects] = useState(0);
  const [closes, setCloses] = useState<number[]>([]);
  // The token provider is called on every connect and before the token
  // expires; the callbacks while the provider (or hook) is mounted.
  const options = useMemo<ClientOptions>(
    () => ({
      token: () => devToken(name),
      // `?wsCheckMs=` shortens the wait before the client, on the
      // fallback transport, checks whether WebSockets get through again.
      websocketCheckMs: params.has("wsCheckMs") ? Number(params.get("wsCheckMs")) : undefined,
      websocketCheckMaxMs: params.has("wsCheckMs") ? Number(params.get("wsCheckMs")) * 4 : undefined,
      // `?queueLimit=`, `?maxDelayMs=` and `?maxMessages=` replace the
      // outbox size, the reconnect delay's ceiling and the messages kept.
      ...numbers(["queueLimit", "maxDelayMs", "maxMessages"]),
      onConnect: () => setConnects((n) => n + 1),
      onDisconnect: (event) => setCloses((codes) => [...codes, event.code]),
    }),
    [name],
  );
  const log = <ConnectionLog connects={connects} closes={closes} />;

  if (!signedIn) {
    return (
      <form
        className="signin"
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) setSignedIn(true);
        }}
      >
        <h1>Roomcast chat</h1>
        <input autoFocus placeholder="Your name" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit">Join #{room}</button>
      </form>
    );
  }
  if (params.get("hooks") === "standalone") return <Standalone room={room} options={options} log={log} />;
  if (params.get("view") === "component") {
    return (
      <RoomcastProvider url={wsUrl} options={options}>
        <ComponentView room={room} />
        {log}
      </RoomcastProvider>
    );
  }
  if (params.get("view") === "hooks") {
    return (
      <RoomcastProvider url={wsUrl} options={options}>
        <Hooks room={room} />
      </RoomcastProvider>
    );
  }
  return (
    <RoomcastProvider url={wsUrl} options={options}>
      <main>
        <StatusBar />
        <Chat room={room} />
        {log}
      </main>
    </RoomcastProvider>
  );
}

/** How often the connection opened, and the close codes it saw. */
function ConnectionLog({ connects, closes }: { connects: number; closes: number[] }) {
  return (
    <footer className="connection-log" data-testid="connection-log" data-connects={connects} data-closes={closes.join(",")}>
      connected {connects} {connects === 1 ? "time" : "times"}
      {closes.length > 0 && <span> · closes: {closes.join(", ")}</span>}
    </footer>
  );
}

/** The same chat on useWebSocket(url, options) alone: the hook shares one
 * client per URL between the components that ask for it. */
function Standalone({ room, options, log }: { room: string; options: ClientOptions; log: ReactNode }) {
  const { client } = useWebSocket(wsUrl, options);
  return (
    <main>
      <StatusBar url={wsUrl} />
      <Chat room={room} client={client} />
      {log}
    </main>
  );
}

/** Re-renders on connection changes only, never per frame. */
function StatusBar({ url }: { url?: string }) {
  const { state, isConnected, reconnectAttempts, user, transport, client } = useWebSocket(url);
  const [notice, setNotice] = useState("");
  useEffect(() => {
    // A typed frame: narrowing on `type` gives the frame's own fields.
    return client?.on("message", (frame) => {
      if (frame.type === "error" && frame.code === "forbidden") setNotice(frame.message);
    });
  }, [client]);
  return (
    <header className={`status ${state}`}>
      <span data-testid="status">{state}</span>
      {transport === "sse" && <span data-testid="fallback"> · via Server-Sent Events</span>}
      <span data-testid="transport" data-transport={transport} hidden />
      {!isConnected && reconnectAttempts > 0 && <span> · attempt {reconnectAttempts}</span>}
      {user && <span className="me"> · signed in as {user.name}</span>}
      {notice && <span> · {notice}</span>}
    </header>
  );
}
