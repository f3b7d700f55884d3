-- Dataset versions built by `personabot dataset build`, and what data each contains.
-- `status` turns 'stale' when data in it must be forgotten; the next build leaves that data out.
CREATE TABLE dataset_versions (
    id            INTEGER PRIMARY KEY,
    persona       TEXT NOT NULL,
    version       INTEGER NOT NULL,            -- 1, 2, ... per persona; the folder is datasets/<persona>/v<version>
    path          TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,               -- sha256 of manifest.json
    created_at    TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'stale')),
    stale_reason  TEXT,
    UNIQUE (persona, version)
);

-- Sources whose messages are in a dataset version. No foreign key on source_id: the link must
-- survive the source's deletion, because that is exactly when we need to know.
CREATE TABLE dataset_sources (
    dataset_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    source_id  INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, source_id)
);

-- Discord members (messages.author_id of curated logs) whose data is in a dataset version.
CREATE TABLE dataset_members (
    dataset_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    member_id  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, member_id)
);
CREATE INDEX dataset_members_member ON dataset_members(member_id);
CREATE INDEX dataset_sources_source ON dataset_sources(source_id);
