-- The gateway's extra read models (all projections of the event log, rebuilt by `xbot replay --rebuild`),
-- and the columns the seed's tables need so that every row carries the sequence of the event that last
-- changed it.

ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS gate TEXT;              -- the gate that blocked a draft
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS gate_score NUMERIC;      -- its score
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0;  -- post claims
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS model_version INTEGER;
CREATE INDEX IF NOT EXISTS content_metadata_created ON content_metadata (created_at DESC, decision_id DESC);

ALTER TABLE posted_decisions ADD COLUMN IF NOT EXISTS thread_tweet_ids JSONB NOT NULL DEFAULT '[]';
CREATE INDEX IF NOT EXISTS posted_decisions_posted_at ON posted_decisions (posted_at DESC);

ALTER TABLE bandit_arms ADD COLUMN IF NOT EXISTS last_seq BIGINT NOT NULL DEFAULT 0;

CREATE INDEX IF NOT EXISTS outcomes_collected_at ON outcomes (collected_at);

-- one row per model.updated: what the learner published
CREATE TABLE IF NOT EXISTS model_versions (
    scope                     TEXT NOT NULL,
    version                   INTEGER NOT NULL,
    outcomes_used             INTEGER NOT NULL,
    simulated_used            BOOLEAN NOT NULL,
    success_er_threshold      NUMERIC NOT NULL,
    predictor_skipped_reason  TEXT,
    predictors                JSONB NOT NULL DEFAULT '[]',
    arms_count                INTEGER NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL,
    last_seq                  BIGINT NOT NULL,
    PRIMARY KEY (scope, version)
);

-- the latest hourly timing slots of each model scope
CREATE TABLE IF NOT EXISTS timing_slots (
    scope          TEXT NOT NULL,
    hour           INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    mean_er        NUMERIC,
    model_version  INTEGER NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    last_seq       BIGINT NOT NULL,
    PRIMARY KEY (scope, hour)
);

-- job.completed, one row per run and service
CREATE TABLE IF NOT EXISTS job_runs (
    run_id        TEXT NOT NULL,
    service       TEXT NOT NULL,
    job           TEXT NOT NULL,
    status        TEXT NOT NULL,
    counts        JSONB NOT NULL DEFAULT '{}',
    detail        TEXT NOT NULL DEFAULT '',
    completed_at  TIMESTAMPTZ NOT NULL,
    last_seq      BIGINT NOT NULL,
    PRIMARY KEY (run_id, service)
);
CREATE INDEX IF NOT EXISTS job_runs_completed ON job_runs (completed_at DESC);

-- flag.changed: who changed which switch, when
CREATE TABLE IF NOT EXISTS flag_changes (
    last_seq    BIGINT PRIMARY KEY,
    event_id    TEXT NOT NULL,
    flag        TEXT NOT NULL,
    old_value   TEXT,
    new_value   TEXT,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);

-- counters for /api/metrics that no table row answers (claims, post skips by reason, arms updated)
CREATE TABLE IF NOT EXISTS gateway_counters (
    name      TEXT NOT NULL,
    key       TEXT NOT NULL DEFAULT '',
    value     BIGINT NOT NULL,
    last_seq  BIGINT NOT NULL,
    PRIMARY KEY (name, key)
);
