-- The webhook outbox: one row per event and endpoint, written in the
-- transaction that stores the event (or, for live events, as they
-- happen), deleted once delivered. A row that failed too often is kept,
-- `dead`, for replay. `at` is when the event happened (Unix milliseconds).
CREATE TABLE webhook_outbox (
    seq BIGSERIAL PRIMARY KEY,
    endpoint TEXT NOT NULL,
    room TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    dead BOOLEAN NOT NULL DEFAULT FALSE,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_by_endpoint ON webhook_outbox (endpoint, dead, seq);

-- Which instance delivers (one at a time, so that each room's events go
-- out in order) and until when (Unix milliseconds).
CREATE TABLE webhook_lease (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until BIGINT NOT NULL
);
