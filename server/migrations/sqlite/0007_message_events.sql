-- A message's `message` event lives in its row of `messages` instead of a
-- second row in `events`: one index entry and one copy of the text less
-- per message sent. `events` keeps edits and deletes, and the `message`
-- events written before this version (or of a message edited in the commit
-- that sent it); where `events` holds a message's offset, its row wins.
-- `sent` is the message as it was sent, once an edit changed `body`; it is
-- emptied when the message is deleted (the replay shows its trace).
ALTER TABLE messages ADD COLUMN sent TEXT;
