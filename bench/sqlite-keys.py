#!/usr/bin/env python3
"""WAL pages and CPU per message of the SQLite store's inserts, with
`client_id`s random (as the browser SDK makes them) or beginning with the
time, into a database already holding STORED messages. Message ids are
UUIDv7s, as the server makes them.

    python3 bench/sqlite-keys.py random 500000
    python3 bench/sqlite-keys.py time 500000

It applies the server's migrations (server/migrations/sqlite) and its
pragmas (store/sqlite.rs), then writes commits of 70 messages over 500 rooms
of 10 senders, as the mesh benchmark's group commits do: each message is
one row of `messages`, which is also its `message` event. With
EVENT_ROWS=1, each message also gets a row of `events`, as before migration
0007. Checkpoints are off while measuring, so the WAL's size is every page
the commits wrote. The database goes in a temporary directory."""
import glob, os, random, sqlite3, sys, tempfile, time, uuid

ROOMS, SENDERS, BATCH, COMMITS = 500, 10, 70, 2000
EVENT_ROWS = os.environ.get("EVENT_ROWS") == "1"


def main(kind, stored):
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "roomcast.db")
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ["journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=0",
                   "cache_size=-16384", "mmap_size=1073741824", "temp_store=MEMORY"]:
        db.execute(f"PRAGMA {pragma}")
    for migration in sorted(glob.glob("server/migrations/sqlite/*.sql")):
        db.executescript(open(migration).read())
    clock = [1_765_000_000_000]

    def client_id():
        if kind == "random":
            return "c-%032x" % random.getrandbits(128)
        clock[0] += 1
        return "c-%012x%020x" % (clock[0], random.getrandbits(80))

    def message_id():
        # A UUIDv7's text: the time in milliseconds, then random bits.
        bits = "%012x7%03x%016x" % (clock[0], random.getrandbits(12),
                                     (2 << 62) | random.getrandbits(62))
        return str(uuid.UUID(bits))

    latest = {}
    body = '{"type":"message","content":"' + "x" * 100 + '"}'

    def commit(n):
        db.execute("BEGIN IMMEDIATE")
        for _ in range(n):
            room = "room-%d" % random.randrange(ROOMS)
            pos = latest[room] = latest.get(room, 0) + 1
            sender = "user-%d" % random.randrange(SENDERS)
            db.execute("INSERT INTO messages (room, id, sender, client_id, pos, at, body, deleted) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                       (room, message_id(), sender, client_id(), pos, clock[0], body))
            if EVENT_ROWS:
                db.execute("INSERT INTO events (room, pos, at, body) VALUES (?, ?, ?, ?)",
                           (room, pos, clock[0], body))
        db.execute("COMMIT")

    for _ in range(stored // 1000):
        commit(1000)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.process_time()
    for _ in range(COMMITS):
        commit(BATCH)
    cpu = time.process_time() - start
    messages = COMMITS * BATCH
    pages = os.path.getsize(path + "-wal") // 4096
    print(f"{kind}: {stored} stored, {messages} written: {pages / messages:.2f} WAL pages "
          f"and {cpu * 1e6 / messages:.0f} µs of CPU per message")
    db.close()
    for f in glob.glob(path + "*"):
        os.remove(f)
    os.rmdir(directory)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
