-- A message's two keys lead with what grows in time, not with its room.
-- Its id is a UUIDv7, made by the server in time order; the SDK's
-- `client_id` starts with the time it was made (any client may do the
-- same; one that does not costs what every client cost before). New keys
-- then go at each index's end, so a commit of messages to many rooms
-- changes a few index pages for them all instead of one per room and per
-- sender: the same keys, so the same uniqueness, the same lookups.
-- SQLite cannot change a table's keys in place: the table is rebuilt.
CREATE TABLE messages_rebuilt (
    room TEXT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    client_id TEXT NOT NULL,
    pos BIGINT NOT NULL,
    at BIGINT NOT NULL,
    body TEXT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    sent TEXT,
    PRIMARY KEY (id, room),
    UNIQUE (client_id, room, sender)
);
INSERT INTO messages_rebuilt (room, id, sender, client_id, pos, at, body, deleted, sent)
    SELECT room, id, sender, client_id, pos, at, body, deleted, sent FROM messages
    ORDER BY rowid;
DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;
CREATE INDEX messages_by_pos ON messages (room, pos);
CREATE INDEX messages_by_age ON messages (at);
