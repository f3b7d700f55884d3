-- Digital twins (issue 14): member-created personas trained on the owner's own exports.
-- `twins` says who controls a twin; the persona folder lives under <data_dir>/personas/<persona>.
CREATE TABLE twins (
    persona          TEXT PRIMARY KEY,
    owner_name       TEXT NOT NULL,             -- the person the twin writes like (shown as "NAME (AI twin)")
    owner_ids        TEXT NOT NULL DEFAULT '[]',-- JSON: the owner's sender ids / exact names in exports
    discord_owner_id TEXT,                      -- the member who may import, build, share and delete; NULL: terminal-made
    created_at       TEXT NOT NULL
);
CREATE INDEX twins_owner ON twins(discord_owner_id);

-- Channels a twin was shared into by its owner (only where admins allowed twins).
CREATE TABLE twin_shares (
    persona    TEXT NOT NULL REFERENCES twins(persona) ON DELETE CASCADE,
    channel_id TEXT NOT NULL,
    guild_id   TEXT,
    shared_at  TEXT NOT NULL,
    PRIMARY KEY (persona, channel_id)
);

-- Admins allow twins per channel (`/persona set ... twins_allowed:True`).
ALTER TABLE channel_bindings ADD COLUMN twins_allowed INTEGER NOT NULL DEFAULT 0;
