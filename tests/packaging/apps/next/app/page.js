// A server component: the server URL, token and room come from the query
// string here, where an app would use its session.
import RoomChat from "./chat";

export default async function Page({ searchParams }) {
  const { ws, token, room } = await searchParams;
  return (
    <main>
      <RoomChat url={ws} token={token} room={room} />
    </main>
  );
}
