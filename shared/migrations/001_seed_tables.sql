-- The seed's five tables, with its columns, plus projection_offsets. These are read models: every row is a
-- projection of the event log and can be dropped and rebuilt (`xbot replay --rebuild`).

CREATE TABLE IF NOT EXISTS content_metadata (
    decision_id        UUID PRIMARY KEY,
    decision_type      TEXT NOT NULL CHECK (decision_type IN ('single', 'thread', 'reply')),
    content            TEXT NOT NULL,
    parts              JSONB NOT NULL DEFAULT '[]',
    bandit_arm         TEXT,
    timing_arm         TEXT,
    quality_score      NUMERIC,
    predicted_er       NUMERIC,
    generation_source  TEXT NOT NULL CHECK (generation_source IN ('real', 'synthetic')),
    status             TEXT NOT NULL CHECK (status IN ('queued', 'posted', 'skipped', 'failed')),
    scheduled_at       TIMESTAMPTZ,
    topic_cluster      TEXT,
    angle              TEXT,
    content_hash       TEXT,
    features           JSONB NOT NULL DEFAULT '{}',
    skip_reason        TEXT,
    error_message      TEXT,
    target_tweet_id    TEXT,
    target_username    TEXT,
    approval           TEXT,               -- NULL | approved | rejected
    last_post_skip     TEXT,               -- the latest decision.post_skipped reason
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    last_seq           BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS content_metadata_status_scheduled ON content_metadata (status, scheduled_at);
CREATE INDEX IF NOT EXISTS content_metadata_generation_source ON content_metadata (generation_source);
CREATE INDEX IF NOT EXISTS content_metadata_decision_type ON content_metadata (decision_type);

CREATE TABLE IF NOT EXISTS posted_decisions (
    decision_id   UUID PRIMARY KEY,
    tweet_id      TEXT NOT NULL,
    posted_at     TIMESTAMPTZ NOT NULL,
    bandit_arm    TEXT,
    timing_arm    TEXT,
    decision_type TEXT,
    url           TEXT,
    simulated     BOOLEAN NOT NULL DEFAULT FALSE,
    recovered     BOOLEAN NOT NULL DEFAULT FALSE,
    last_seq      BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS outcomes (
    decision_id    UUID NOT NULL,
    horizon_hours  INTEGER NOT NULL,
    tweet_id       TEXT NOT NULL,
    impressions    BIGINT NOT NULL,
    likes          BIGINT NOT NULL,
    retweets       BIGINT NOT NULL,
    replies        BIGINT NOT NULL,
    bookmarks      BIGINT NOT NULL,
    quotes         BIGINT NOT NULL,
    er_calculated  NUMERIC,
    simulated      BOOLEAN NOT NULL,
    collected_at   TIMESTAMPTZ NOT NULL,
    last_seq       BIGINT NOT NULL,
    PRIMARY KEY (decision_id, horizon_hours)
);

CREATE TABLE IF NOT EXISTS bandit_arms (
    scope          TEXT NOT NULL,
    arm_name       TEXT NOT NULL,
    successes      INTEGER NOT NULL,
    failures       INTEGER NOT NULL,
    alpha          NUMERIC NOT NULL,
    beta           NUMERIC NOT NULL,
    model_version  INTEGER NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, arm_name)
);

CREATE TABLE IF NOT EXISTS api_usage (
    request_id         TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    model              TEXT NOT NULL,
    tokens             INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd           NUMERIC NOT NULL,
    status             TEXT NOT NULL,
    failure_reason     TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    last_seq           BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_usage_created_at ON api_usage (created_at);

CREATE TABLE IF NOT EXISTS projection_offsets (
    projector   TEXT PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
