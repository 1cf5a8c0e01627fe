-- A deleted message leaves the room's log as well as its history: its
-- `message` event becomes its trace (no content, data or edit time;
-- `deleted: true`) and each of its edits a `message_deleted` at the edit's
-- offset. An edit's event names its message so that a delete finds it;
-- only edits are indexed, so a send costs nothing more.
--
-- Bodies are read as `json`, not `jsonb`: a text may hold an escaped NUL,
-- which `jsonb` refuses.
ALTER TABLE events ADD COLUMN message_id TEXT;
UPDATE events SET message_id = body::json ->> 'id'
    WHERE body::json ->> 'type' = 'message_updated';
CREATE INDEX events_by_message ON events (room, message_id) WHERE message_id IS NOT NULL;

-- What earlier versions kept of messages deleted before this one: their
-- rows may still hold the content, and their events all of it.
UPDATE messages
    SET body = json_build_object(
        'room', body::json -> 'room', 'id', body::json -> 'id',
        'offset', body::json -> 'offset', 'client_id', body::json -> 'client_id',
        'sender', body::json -> 'sender', 'content', '',
        'created_at', body::json -> 'created_at', 'deleted', true)::text
    WHERE deleted;
UPDATE events AS e
    SET body = json_build_object('type', 'message_deleted', 'room', e.room,
                                 'id', e.message_id, 'offset', e.pos)::text,
        message_id = NULL
    FROM messages AS m
    WHERE e.message_id IS NOT NULL AND m.room = e.room AND m.id = e.message_id AND m.deleted;
-- The rows hold the traces now: each deleted message's event becomes one.
UPDATE events AS e
    SET body = '{"type":"message",' || substr(m.body, 2)
    FROM messages AS m
    WHERE m.room = e.room AND m.pos = e.pos AND m.deleted;
