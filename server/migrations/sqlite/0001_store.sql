-- Rooms, their streams, read positions and kept notifications.
CREATE TABLE rooms (
    room TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    latest BIGINT NOT NULL DEFAULT 0
);

-- Every event of every room, as the JSON of its `RoomEvent`.
CREATE TABLE events (
    room TEXT NOT NULL,
    pos BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (room, pos)
);

-- Each message in its current state; the row stays after a delete so that
-- its idempotency key keeps answering a resend.
CREATE TABLE messages (
    room TEXT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    pos BIGINT NOT NULL,
    body TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (room, id),
    UNIQUE (room, sender, client_id)
);
CREATE INDEX messages_by_pos ON messages (room, pos);

CREATE TABLE read_positions (
    user_id TEXT NOT NULL,
    room TEXT NOT NULL,
    pos BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);

CREATE TABLE notifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, seq);
