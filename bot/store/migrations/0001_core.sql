-- Members, consent, conversations, messages, feedback and curation.
-- Only members who opted in ever have message content stored (see bot/store/exchanges.py).
CREATE TABLE members (
    user_id      TEXT PRIMARY KEY,          -- Discord snowflake or 'cli:<name>'
    display_name TEXT,
    created_at   TEXT NOT NULL
);

-- Current consent decision per member; history is kept in consent_events.
CREATE TABLE consent (
    user_id        TEXT PRIMARY KEY REFERENCES members(user_id) ON DELETE CASCADE,
    status         TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    policy_version TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE consent_events (
    id             INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    status         TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    policy_version TEXT NOT NULL,
    at             TEXT NOT NULL
);

CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY,
    persona    TEXT NOT NULL,
    key        TEXT NOT NULL,               -- where it happens: 'discord:<channel or thread id>', 'cli:<session>'
    started_at TEXT NOT NULL,
    UNIQUE (persona, key)
);

-- One row per stored turn. Assistant turns carry the curation state of the reply.
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    author_id         TEXT,                 -- member for user turns; for assistant turns the member who was answered
    external_id       TEXT,                 -- Discord message id, when there is one
    content           TEXT NOT NULL,
    model             TEXT,                 -- backend model/adapter that produced an assistant turn
    reply_to          INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    created_at        TEXT NOT NULL,
    curation_status   TEXT NOT NULL DEFAULT 'pending'
                      CHECK (curation_status IN ('pending', 'approved', 'rejected', 'corrected')),
    corrected_content TEXT,                 -- admin's correction; `content` keeps the original for audit
    curated_by        TEXT,
    curated_at        TEXT
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE INDEX messages_author ON messages(author_id);
CREATE INDEX messages_external ON messages(external_id);
CREATE INDEX messages_curation ON messages(role, curation_status);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES members(user_id) ON DELETE CASCADE,
    value       INTEGER NOT NULL CHECK (value IN (-1, 1)),
    created_at  TEXT NOT NULL,
    UNIQUE (message_id, user_id)
);
