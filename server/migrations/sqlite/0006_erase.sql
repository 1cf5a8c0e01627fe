-- A deleted message leaves the room's log as well as its history: its
-- `message` event becomes its trace (no content, data or edit time;
-- `deleted: true`) and each of its edits a `message_deleted` at the edit's
-- offset. An edit's event names its message so that a delete finds it;
-- only edits are indexed, so a send costs nothing more.
ALTER TABLE events ADD COLUMN message_id TEXT;
UPDATE events SET message_id = json_extract(body, '$.id')
    WHERE json_extract(body, '$.type') = 'message_updated';
CREATE INDEX events_by_message ON events (room, message_id) WHERE message_id IS NOT NULL;

-- What earlier versions kept of messages deleted before this one: their
-- rows may still hold the content, and their events all of it.
UPDATE messages
    SET body = json_remove(json_set(body, '$.content', '', '$.deleted', json('true')),
                           '$.data', '$.edited_at')
    WHERE deleted;
UPDATE events
    SET body = json_object('type', 'message_deleted', 'room', room, 'id', message_id,
                           'offset', pos),
        message_id = NULL
    WHERE message_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM messages AS m
        WHERE m.room = events.room AND m.id = events.message_id AND m.deleted);
UPDATE events
    SET body = (SELECT json_set(m.body, '$.type', 'message') FROM messages AS m
                WHERE m.room = events.room AND m.pos = events.pos)
    WHERE EXISTS (
        SELECT 1 FROM messages AS m
        WHERE m.room = events.room AND m.pos = events.pos AND m.deleted);
