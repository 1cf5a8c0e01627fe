-- Envelopes ingested from a message queue whose effect is not a stored
-- message (notifications, room events): their ids, so that a redelivered
-- envelope is not applied twice. Kept for a bounded time (`at`, Unix
-- milliseconds); a message's own idempotency key is in `messages`.
CREATE TABLE ingested (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE INDEX ingested_by_age ON ingested (at);
