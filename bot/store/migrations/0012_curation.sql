-- Curation review queue: where a conversation happened, a reply's backend error, and the history of
-- every curation decision (who, when, what). `messages.curation_status`/`corrected_content`/
-- `curated_by`/`curated_at` (0001) stay the current state; this table is the audit trail.
ALTER TABLE conversations ADD COLUMN guild_id TEXT;        -- Discord guild; NULL for DMs and the terminal
ALTER TABLE messages ADD COLUMN error TEXT;                -- backend error type of an assistant turn, if any
CREATE INDEX conversations_guild ON conversations(guild_id, persona);
-- Conversations logged before this migration: their guild, where a channel binding (or the
-- binding of a /chat thread's parent channel) tells it; the rest stay without a guild.
UPDATE conversations SET guild_id = (
    SELECT b.guild_id FROM channel_bindings b
    WHERE 'discord:' || b.channel_id = conversations.key
       OR b.channel_id = (SELECT t.parent_channel_id FROM chat_threads t WHERE 'discord:' || t.thread_id = conversations.key)
    LIMIT 1)
WHERE guild_id IS NULL AND key LIKE 'discord:%';

CREATE TABLE curation_decisions (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'corrected')),
    correction  TEXT,                                      -- the corrected reply, for 'corrected'
    curator     TEXT,                                      -- Discord user id or 'cli:<name>'; NULL once forgotten
    via         TEXT NOT NULL,                             -- discord, terminal, import, auto
    at          TEXT NOT NULL
);
CREATE INDEX curation_decisions_message ON curation_decisions(message_id, id);
CREATE INDEX curation_decisions_curator ON curation_decisions(curator);
