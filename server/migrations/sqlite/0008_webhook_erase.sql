-- A delete erases its message from the webhook outbox too: the rows still
-- waiting or dead-lettered whose event carries the message's text (its
-- `message`, its `message_updated`s) are erased in the delete's
-- transaction (`erase_message!` in `store/sql.rs`). Such a row names its
-- message; only those rows are indexed.
ALTER TABLE webhook_outbox ADD COLUMN message_id TEXT;
CREATE INDEX webhook_outbox_by_message ON webhook_outbox (room, message_id)
    WHERE message_id IS NOT NULL;

-- The server finishes this migration when it starts, as it does 0006's
-- (`finish_erase_upgrade`): it names the message of each row written
-- before this version, then erases the rows of messages deleted before it.
INSERT INTO meta (key, value) VALUES ('erase', 'pending') ON CONFLICT (key) DO NOTHING;
