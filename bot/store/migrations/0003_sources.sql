-- Training sources: imported chat exports, transcripts and synthetic conversations.
-- A source is identified per persona by the hash of its content, so re-importing is a no-op.
CREATE TABLE sources (
    id           INTEGER PRIMARY KEY,
    persona      TEXT NOT NULL,
    kind         TEXT NOT NULL,             -- whatsapp, telegram, discord-package, ..., transcripts, synthetic
    label        TEXT NOT NULL,             -- file/folder imported, or a description
    content_hash TEXT NOT NULL,
    owner_ids    TEXT NOT NULL DEFAULT '[]',-- JSON list: senders whose turns become the persona's
    counts       TEXT NOT NULL DEFAULT '{}',-- JSON: imported, skipped by reason, merged
    provenance   TEXT,                      -- JSON: e.g. template hash, topic, profile, model, sampling, seed
    imported_at  TEXT NOT NULL,
    UNIQUE (persona, content_hash)
);

CREATE TABLE source_messages (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    conversation TEXT NOT NULL,             -- chat/thread key within the source
    seq         INTEGER NOT NULL,           -- order within the conversation
    ts          TEXT,                       -- ISO-8601, NULL when the format has no time
    sender_id   TEXT NOT NULL,
    sender_name TEXT,
    is_owner    INTEGER NOT NULL DEFAULT 0,
    kind        TEXT NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'media', 'link', 'system', 'silence')),
    content     TEXT NOT NULL,
    reply_to    TEXT,
    external_id TEXT
);
CREATE INDEX source_messages_order ON source_messages(source_id, conversation, seq);
CREATE INDEX source_messages_sender ON source_messages(sender_id);
