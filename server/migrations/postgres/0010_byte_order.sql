-- Names and ids compare byte by byte (collation "C"), as SQLite compares
-- them, whatever the database's own collation. Under a linguistic one
-- (`en_US.UTF-8`, an ICU locale: what most clusters are made with), the
-- two stores ordered ties differently (the `reads` of a room, by time then
-- user), and every key comparison went through the locale's rules, slower
-- than comparing bytes, for text that is not words. Bodies are never
-- compared and keep the default. Indexes on these columns are rebuilt; the
-- rows are not rewritten.
ALTER TABLE meta ALTER COLUMN key TYPE TEXT COLLATE "C";
ALTER TABLE rooms ALTER COLUMN room TYPE TEXT COLLATE "C";
ALTER TABLE events
    ALTER COLUMN room TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE messages
    ALTER COLUMN room TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN sender TYPE TEXT COLLATE "C",
    ALTER COLUMN client_id TYPE TEXT COLLATE "C";
ALTER TABLE read_positions
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN room TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE notifications ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE webhook_outbox
    ALTER COLUMN endpoint TYPE TEXT COLLATE "C",
    ALTER COLUMN room TYPE TEXT COLLATE "C",
    ALTER COLUMN event_id TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE webhook_lease ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE ingested ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE sanctions
    ALTER COLUMN room TYPE TEXT COLLATE "C",
    ALTER COLUMN user_id TYPE TEXT COLLATE "C",
    ALTER COLUMN kind TYPE TEXT COLLATE "C";
