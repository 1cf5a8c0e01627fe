-- Bans and mutes set through the HTTP API (`PUT /api/rooms/{room}/bans/{user}`,
-- `.../mutes/{user}`): a banned user cannot join the room, a muted one can
-- join and read but not send, edit or type. Kept here so that a ban holds
-- across restarts; each instance loads them when it starts and learns of
-- later ones from the instance that set them. `kind` is `ban` or `mute`;
-- `at` is when it was set (Unix milliseconds).
CREATE TABLE sanctions (
    room TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (room, user_id, kind)
);
