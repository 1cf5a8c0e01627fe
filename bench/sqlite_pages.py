#!/usr/bin/env python3
"""Pages a SQLite commit writes to the WAL per message, for the store's
layout (server/migrations/sqlite) and variants of it, under the mesh
benchmark's pattern: each commit holds messages of many rooms, one each.

    python3 bench/sqlite_pages.py

Each message is what the committer writes for a `send`: the room's latest
offset, a `messages` row and an `events` row, bodies the JSON of a
100-byte message. A WAL holds whole pages, so the bytes a commit writes
(and the kernel copies and SQLite checksums) are its changed pages times
the page size. The first third of the commits fills the tables; the rest
are measured.

Pages are bytes written, not CPU: see docs/performance.md for what fewer
bytes cost the server's SQLite threads.
"""
import json
import os
import random
import sqlite3
import tempfile

LAYOUT = """
CREATE TABLE rooms (room TEXT PRIMARY KEY, latest BIGINT NOT NULL DEFAULT 0);
CREATE TABLE events (room TEXT NOT NULL, pos BIGINT NOT NULL, at BIGINT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (room, pos));
CREATE INDEX events_by_age ON events (at);
CREATE TABLE messages (room TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL,
    client_id TEXT NOT NULL, pos BIGINT NOT NULL, at BIGINT NOT NULL, body TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (room, id),
    UNIQUE (room, sender, client_id));
CREATE INDEX messages_by_pos ON messages (room, pos);
CREATE INDEX messages_by_age ON messages (at);
"""
# The tables keyed by their primary keys, rows (bodies too) in the key's
# B-tree: no separate rowid table.
WITHOUT_ROWID = (
    LAYOUT.replace("PRIMARY KEY (room, pos));", "PRIMARY KEY (room, pos)) WITHOUT ROWID;")
    .replace("UNIQUE (room, sender, client_id));", "UNIQUE (room, sender, client_id)) WITHOUT ROWID;")
)


def pages_per_message(layout, page, per_commit, commits=300, rooms=500):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "store.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute(f"PRAGMA page_size={page}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # the WAL only grows: its size counts pages
        db.execute("PRAGMA synchronous=OFF")
        db.executescript(layout)
        latest = {f"room-{i:04d}": 0 for i in range(rooms)}
        start = None
        for n in range(commits):
            if n == commits // 3:
                start = os.path.getsize(path + "-wal")
            db.execute("BEGIN IMMEDIATE")
            for room in random.sample(list(latest), per_commit):
                latest[room] += 1
                pos = latest[room]
                at = 1_700_000_000_000 + n
                mid = f"{at:016x}-{pos:06d}"
                body = json.dumps({
                    "type": "message", "room": room, "id": mid, "offset": pos,
                    "client_id": f"c{pos}", "sender": {"id": f"u{pos % 10}", "name": "User"},
                    "content": "x" * 100, "created_at": "2026-12-06T09:00:00Z",
                })
                db.execute("INSERT INTO rooms (room, latest) VALUES (?, ?) "
                           "ON CONFLICT (room) DO UPDATE SET latest = excluded.latest", (room, pos))
                db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                           (room, mid, f"u{pos % 10}", f"c{pos}", pos, at, body))
                db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (room, pos, at, body))
            db.execute("COMMIT")
        written = os.path.getsize(path + "-wal") - start
        db.close()
        frames = written / (page + 24)  # a WAL frame: a 24-byte header and the page
        return frames / ((commits - commits // 3) * per_commit)


for page in (4096, 1024):
    for name, layout in (("rowid tables", LAYOUT), ("WITHOUT ROWID", WITHOUT_ROWID)):
        for per_commit in (50, 300):
            pages = pages_per_message(layout, page, per_commit)
            print(f"page {page:4d} B, {name:13s}, {per_commit:3d} messages per commit: "
                  f"{pages:5.2f} pages = {pages * page / 1024:5.1f} KiB per message")
