-- Model registry: immutable versioned fine-tunes per persona, and their training metrics.
CREATE TABLE model_versions (
    id              INTEGER PRIMARY KEY,
    persona         TEXT NOT NULL,
    version         INTEGER NOT NULL,           -- 1, 2, 3 … per persona
    name            TEXT NOT NULL UNIQUE,       -- immutable served name: tim-v3
    backend         TEXT NOT NULL CHECK (backend IN ('local', 'vllm', 'openai')),
    base_model      TEXT NOT NULL,
    adapter_path    TEXT,                       -- LoRA folder (local and vLLM)
    remote_model    TEXT,                       -- fine-tuned model id (OpenAI)
    dataset_version TEXT,
    hyperparams     TEXT NOT NULL DEFAULT '{}', -- JSON
    metrics         TEXT NOT NULL DEFAULT '{}', -- JSON: train/val loss, eval report …
    status          TEXT NOT NULL DEFAULT 'training'
                    CHECK (status IN ('training', 'candidate', 'active', 'retired', 'failed')),
    status_reason   TEXT,
    tainted         INTEGER NOT NULL DEFAULT 0, -- trained on data a member has since asked to forget
    tainted_reason  TEXT,
    created_at      TEXT NOT NULL,
    promoted_at     TEXT,
    UNIQUE (persona, version)
);
CREATE INDEX model_versions_persona ON model_versions(persona, status);

CREATE TABLE training_metrics (
    id           INTEGER PRIMARY KEY,
    version_id   INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    epoch        REAL,
    loss         REAL,
    val_loss     REAL,
    tokens_per_s REAL,
    at           TEXT NOT NULL
);
CREATE INDEX training_metrics_version ON training_metrics(version_id, step);

-- Audit trail of promotions, rollbacks, taints.
CREATE TABLE registry_events (
    id       INTEGER PRIMARY KEY,
    persona  TEXT NOT NULL,
    version  TEXT,
    event    TEXT NOT NULL,
    detail   TEXT,
    at       TEXT NOT NULL
);
