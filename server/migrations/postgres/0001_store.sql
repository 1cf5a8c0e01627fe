-- Rooms, their streams, read positions and kept notifications. Times are
-- Unix milliseconds (`at` columns), for retention and ordering.

-- The store's identity, which is every room's epoch: a new database has
-- another, so that no client mistakes its offsets for the old ones.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('epoch', md5(random()::text || clock_timestamp()::text));

-- Each room's latest offset: offsets are never reused, whatever retention
-- removes.
CREATE TABLE rooms (
    room TEXT PRIMARY KEY,
    latest BIGINT NOT NULL DEFAULT 0
);

-- Every event of every room, as the JSON of its `RoomEvent`.
CREATE TABLE events (
    room TEXT NOT NULL,
    pos BIGINT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (room, pos)
);
CREATE INDEX events_by_age ON events (at);

-- Each message in its current state; the row stays after a delete so that
-- its idempotency key keeps answering a resend.
CREATE TABLE messages (
    room TEXT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    pos BIGINT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room, id),
    UNIQUE (room, sender, client_id)
);
CREATE INDEX messages_by_pos ON messages (room, pos);
CREATE INDEX messages_by_age ON messages (at);

-- How far each user has read each room: the message, its offset, and when.
CREATE TABLE read_positions (
    user_id TEXT NOT NULL,
    room TEXT NOT NULL,
    pos BIGINT NOT NULL,
    id TEXT NOT NULL,
    read_at TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);
CREATE INDEX read_positions_by_room ON read_positions (room, at);

-- Notifications kept for offline users; `bytes` is the body's length.
CREATE TABLE notifications (
    seq BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, seq);
CREATE INDEX notifications_by_age ON notifications (at);
