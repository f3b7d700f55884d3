-- Scheduled (and forced) training runs: what each run saw, did and decided.
-- The scheduler's own timing state (next fire times) lives in APScheduler's job store; this table
-- is the pipeline's memory: the data cut-off of the last run that trained (so "new approved
-- examples since the last run" can be counted), and an audit trail shown by `personabot trainer`.
CREATE TABLE training_runs (
    id              INTEGER PRIMARY KEY,
    persona         TEXT NOT NULL,
    trigger         TEXT NOT NULL,              -- schedule, force, taint
    status          TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'skipped', 'promoted', 'awaiting', 'rejected', 'failed', 'interrupted')),
    reason          TEXT,                       -- one line: why it skipped, failed, or what it promoted
    data_cutoff     TEXT NOT NULL,              -- approved examples curated up to this time were available
    new_examples    INTEGER,
    dataset_version TEXT,
    model_version   TEXT,
    pid             INTEGER,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    report          TEXT,                       -- JSON: gate report, step timings
    notice          TEXT,                       -- the message for the persona's admin channel
    notified_at     TEXT                        -- when it was posted (NULL: not yet)
);
CREATE INDEX training_runs_persona ON training_runs(persona, id);
