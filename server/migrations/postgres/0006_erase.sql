-- A deleted message leaves the room's log as well as its history: its
-- `message` event becomes its trace (no content, data or edit time;
-- `deleted: true`) and each of its edits a `message_deleted` at the edit's
-- offset. An edit's event names its message so that a delete finds it;
-- only edits are indexed, so a send costs nothing more.
ALTER TABLE events ADD COLUMN message_id TEXT;
CREATE INDEX events_by_message ON events (room, message_id) WHERE message_id IS NOT NULL;

-- The server finishes this migration when it starts (`store/sql.rs`,
-- `finish_erase_upgrade`): it names the message of each existing edit and
-- erases what earlier versions kept of messages deleted before this one
-- (their rows could still hold the content, their events all of it), then
-- removes this mark. In Rust, not here: PostgreSQL's JSON functions refuse
-- the escaped NUL a text may hold.
INSERT INTO meta (key, value) VALUES ('erase', 'pending');
