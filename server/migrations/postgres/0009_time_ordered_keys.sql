-- A message's two keys lead with what grows in time, not with its room.
-- Its id is a UUIDv7, made by the server in time order; the SDK's
-- `client_id` starts with the time it was made (any client may do the
-- same; one that does not costs what every client cost before). New keys
-- then go at each index's end, so a commit of messages to many rooms
-- changes a few index pages for them all instead of one per room and per
-- sender: the same keys, so the same uniqueness, the same lookups.
ALTER TABLE messages
    DROP CONSTRAINT messages_pkey,
    DROP CONSTRAINT messages_room_sender_client_id_key,
    ADD PRIMARY KEY (id, room),
    ADD CONSTRAINT messages_key UNIQUE (client_id, room, sender);
