-- The claims gate's flags and X's limit answers, both projections of the event log (rebuilt by
-- `xbot replay --rebuild`).
--
-- content_metadata.flagged_claims: the sentences of a draft that assert what the account's facts do not hold
-- (decision.queued / decision.skipped ``flagged_claims``): on a queued draft (REQUIRE_APPROVAL=true) what the
-- person approving it must check, on a skipped one why the claims gate blocked it. '[]' for every other draft.
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS flagged_claims JSONB NOT NULL DEFAULT '[]';
CREATE INDEX IF NOT EXISTS content_metadata_flagged_pending ON content_metadata (status)
    WHERE flagged_claims <> '[]'::jsonb AND approval IS NULL;

-- x_limit_answers: one row per decision.post_failed in which X answered with a limit: 226 ("looks automated":
-- the poster pauses for X_COOLDOWN_MINUTES) or 429 (rate limited: no post before paused_until, X's reset or a
-- growing backoff). /api/metrics derives the pauses from here, so they survive restarts as the poster's do.
CREATE TABLE IF NOT EXISTS x_limit_answers (
    last_seq      BIGINT PRIMARY KEY,
    decision_id   UUID NOT NULL,
    error_code    TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    paused_until  TIMESTAMPTZ,
    answered_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS x_limit_answers_code ON x_limit_answers (error_code, answered_at DESC);
