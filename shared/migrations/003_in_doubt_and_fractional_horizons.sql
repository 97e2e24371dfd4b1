-- An attempt whose answer was lost is "in doubt": its own status, not queued. When it stays in doubt past the
-- poster's limit the poster asks the operator (decision.attention_needed): the row says why and since when,
-- until the doubt ends (posted, the operator's retry or abandon, or the poster closing it).
-- Collection horizons may be fractions of an hour (a first read at +0.25 h): outcomes.horizon_hours becomes
-- NUMERIC (whole hours keep their value: 1 stays 1).

ALTER TABLE content_metadata DROP CONSTRAINT IF EXISTS content_metadata_status_check;
ALTER TABLE content_metadata ADD CONSTRAINT content_metadata_status_check
    CHECK (status IN ('queued', 'posted', 'skipped', 'failed', 'in_doubt'));

ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS attention_reason TEXT;        -- why the operator is asked
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS attention_detail TEXT;        -- what the poster read
ALTER TABLE content_metadata ADD COLUMN IF NOT EXISTS attention_since TIMESTAMPTZ;  -- in doubt since
CREATE INDEX IF NOT EXISTS content_metadata_attention ON content_metadata (attention_since)
    WHERE attention_reason IS NOT NULL;

ALTER TABLE outcomes ALTER COLUMN horizon_hours TYPE NUMERIC;
