-- Accounts (issue 17): every read-model row belongs to the X account its event names (``Event.account``), and
-- the accounts themselves are a read model (``account.configured``). Rows projected before accounts belong to
-- the account called 'default', as the events they came from (schema 1 events are the default account's).
-- All of these are projections of the event log, rebuilt by `xbot replay --rebuild`.

ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE posted_decisions ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE bandit_arms ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE timing_slots ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE model_versions ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_usage ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE job_runs ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE flag_changes ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE gateway_counters ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE x_limit_answers ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT 'default';

-- Rows keyed by names every account uses (a model scope and its arms and hours, a job run's id, a counter) are
-- keyed by account too: one account's learner never overwrites another's arms (promise 8).
ALTER TABLE bandit_arms DROP CONSTRAINT IF EXISTS bandit_arms_pkey;
ALTER TABLE bandit_arms ADD PRIMARY KEY (account, scope, arm_name);
ALTER TABLE timing_slots DROP CONSTRAINT IF EXISTS timing_slots_pkey;
ALTER TABLE timing_slots ADD PRIMARY KEY (account, scope, hour);
ALTER TABLE model_versions DROP CONSTRAINT IF EXISTS model_versions_pkey;
ALTER TABLE model_versions ADD PRIMARY KEY (account, scope, version);
ALTER TABLE job_runs DROP CONSTRAINT IF EXISTS job_runs_pkey;
ALTER TABLE job_runs ADD PRIMARY KEY (account, run_id, service);
ALTER TABLE gateway_counters DROP CONSTRAINT IF EXISTS gateway_counters_pkey;
ALTER TABLE gateway_counters ADD PRIMARY KEY (account, name, key);

-- what /api/metrics, /api/decisions and the dashboard ask of one account
CREATE INDEX IF NOT EXISTS content_metadata_account_status ON content_metadata (account, status, scheduled_at);
CREATE INDEX IF NOT EXISTS content_metadata_account_created
    ON content_metadata (account, created_at DESC, decision_id DESC);
CREATE INDEX IF NOT EXISTS posted_decisions_account ON posted_decisions (account, posted_at DESC);
CREATE INDEX IF NOT EXISTS outcomes_account ON outcomes (account, simulated);
CREATE INDEX IF NOT EXISTS api_usage_account_created ON api_usage (account, created_at);
CREATE INDEX IF NOT EXISTS job_runs_account_job ON job_runs (account, job, completed_at DESC);
CREATE INDEX IF NOT EXISTS x_limit_answers_account_code ON x_limit_answers (account, error_code, answered_at DESC);

-- account.configured: the profile in force for each account (the latest configuration in the log)
CREATE TABLE IF NOT EXISTS accounts (
    account        TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    publisher      TEXT NOT NULL,
    digest         TEXT NOT NULL,
    source         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    configured_at  TIMESTAMPTZ NOT NULL,
    profile        JSONB NOT NULL,
    last_seq       BIGINT NOT NULL
);
