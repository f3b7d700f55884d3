-- Persona bindings for channels and the threads opened with /chat.
CREATE TABLE channel_bindings (
    channel_id TEXT PRIMARY KEY,
    guild_id   TEXT,
    persona    TEXT NOT NULL,
    mode       TEXT NOT NULL DEFAULT 'mention' CHECK (mode IN ('mention', 'all')),
    set_by     TEXT,
    set_at     TEXT NOT NULL
);

CREATE TABLE chat_threads (
    thread_id         TEXT PRIMARY KEY,
    parent_channel_id TEXT,
    persona           TEXT NOT NULL,
    opened_by         TEXT,
    opened_at         TEXT NOT NULL
);
