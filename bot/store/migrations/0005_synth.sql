-- Synthetic generation: one row per planned conversation of `personabot synth`, for resume and
-- provenance. A row is written as soon as the writer's transcript arrives ('generated'), then
-- marked 'kept' (with the source holding the cleaned conversation) or 'dropped' (with the reason),
-- so an interrupted run never pays twice for the same transcript. Synthetic data holds no member
-- content, so it needs no privacy exporter.
CREATE TABLE synth_items (
    id                INTEGER PRIMARY KEY,
    persona           TEXT NOT NULL,
    item_key          TEXT NOT NULL,            -- sha256 of the prompt identity (index, seed, template hash, topic, profile)
    run_seed          INTEGER NOT NULL,         -- --seed of the run that planned it
    item_index        INTEGER NOT NULL,         -- position in that run's plan
    status            TEXT NOT NULL CHECK (status IN ('generated', 'kept', 'dropped')),
    drop_reason       TEXT,                     -- one of trainer.synth.clean.DROP_REASONS when dropped
    drop_detail       TEXT,
    source_id         INTEGER REFERENCES sources(id) ON DELETE SET NULL,
    template          TEXT NOT NULL,            -- template file stem
    template_hash     TEXT NOT NULL,
    topic             TEXT NOT NULL,
    topic_tag         TEXT NOT NULL,
    profile           TEXT NOT NULL,            -- profile id
    backend           TEXT NOT NULL,
    model             TEXT NOT NULL,
    sampling          TEXT NOT NULL,            -- JSON: temperature, top_p, max_tokens, seed, ...
    item_seed         INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 1,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    tokens_estimated  INTEGER NOT NULL DEFAULT 0,  -- 1 when the backend could not count tokens
    raw               TEXT NOT NULL,            -- the writer's transcript as received (audit of drops)
    created_at        TEXT NOT NULL,
    finished_at       TEXT,
    UNIQUE (persona, item_key)
);
CREATE INDEX synth_items_run ON synth_items(persona, run_seed, item_index);
