"""SQL the projector writes with: one upsert per table per batch, never a statement per row.

A small batch goes as column arrays (``INSERT ... SELECT FROM unnest(arrays)``: one round trip). A big one
(a rebuild, a projector catching up) is COPYed in binary into a temporary staging table of the connection and
upserted from there (``INSERT ... SELECT FROM stage_<table>``): asyncpg encodes COPY rows several times faster
than array elements. Either way each upsert only replaces a row with an event later in the log
(``WHERE <table>.last_seq < EXCLUDED.last_seq``), so applying a batch twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .domain import DECISION_COLUMNS

#: the read models ``xbot replay --rebuild`` truncates (projection_offsets is reset, not truncated)
READ_MODEL_TABLES: tuple[str, ...] = (
    "content_metadata", "posted_decisions", "outcomes", "bandit_arms", "api_usage", "model_versions",
    "timing_slots", "job_runs", "flag_changes", "gateway_counters", "x_limit_answers",
)


@dataclass(frozen=True)
class Upsert:
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, postgres type); jsonb travels as text and is cast
    key: tuple[str, ...]
    mode: str = "replace"  # replace | add (counters) | ignore

    @property
    def sql(self) -> str:
        """The upsert from column arrays ($1..$n, see ``args``)."""
        names = [c for c, _ in self.columns]
        arrays = ", ".join(f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(self.columns, 1))
        select = ", ".join(f"u.{c}::jsonb" if t == "jsonb" else f"u.{c}" for c, t in self.columns)
        return self._upsert(f"SELECT {select} FROM unnest({arrays}) AS u({', '.join(names)})")

    @property
    def stage(self) -> str:
        """The connection's temporary staging table for COPY (emptied at every commit)."""
        return f"stage_{self.table}"

    @property
    def create_stage(self) -> str:
        cols = ", ".join(f"{c} {t}" for c, t in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.stage} ({cols}) ON COMMIT DELETE ROWS"

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def from_stage(self) -> str:
        """The upsert from the staging table (one per table per transaction; the commit empties it)."""
        return self._upsert(f"SELECT {', '.join(self.names)} FROM {self.stage}")

    def _upsert(self, source: str) -> str:
        names = self.names
        head = f"INSERT INTO {self.table} ({', '.join(names)}) {source} ON CONFLICT ({', '.join(self.key)}) "
        if self.mode == "ignore":
            return head + "DO NOTHING"
        if self.mode == "add":
            return head + (f"DO UPDATE SET value = {self.table}.value + EXCLUDED.value, "
                           f"last_seq = GREATEST({self.table}.last_seq, EXCLUDED.last_seq)")
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in self.key)
        return head + f"DO UPDATE SET {sets} WHERE {self.table}.last_seq < EXCLUDED.last_seq"

    def args(self, rows: Sequence[Sequence[object]]) -> list[list[object]]:
        """Rows (tuples in column order) to column arrays."""
        n = len(self.columns)
        return [[r[i] for r in rows] for i in range(n)]


_DECISION_TYPES = {
    "decision_id": "uuid", "parts": "jsonb", "features": "jsonb", "quality_score": "numeric",
    "predicted_er": "numeric", "gate_score": "numeric", "scheduled_at": "timestamptz", "created_at": "timestamptz",
    "updated_at": "timestamptz", "last_seq": "int8", "attempts": "int4", "model_version": "int4",
    "attention_since": "timestamptz", "flagged_claims": "jsonb",
}

DECISIONS = Upsert(
    "content_metadata", tuple((c, _DECISION_TYPES.get(c, "text")) for c in DECISION_COLUMNS), ("decision_id",)
)
POSTED = Upsert("posted_decisions", (
    ("decision_id", "uuid"), ("tweet_id", "text"), ("posted_at", "timestamptz"), ("bandit_arm", "text"),
    ("timing_arm", "text"), ("decision_type", "text"), ("url", "text"), ("simulated", "bool"),
    ("recovered", "bool"), ("thread_tweet_ids", "jsonb"), ("last_seq", "int8"),
), ("decision_id",))
OUTCOMES = Upsert("outcomes", (
    ("decision_id", "uuid"), ("horizon_hours", "numeric"), ("tweet_id", "text"), ("impressions", "int8"),
    ("likes", "int8"), ("retweets", "int8"), ("replies", "int8"), ("bookmarks", "int8"), ("quotes", "int8"),
    ("er_calculated", "numeric"), ("simulated", "bool"), ("collected_at", "timestamptz"), ("last_seq", "int8"),
), ("decision_id", "horizon_hours"))
ARMS = Upsert("bandit_arms", (
    ("scope", "text"), ("arm_name", "text"), ("successes", "int4"), ("failures", "int4"), ("alpha", "numeric"),
    ("beta", "numeric"), ("model_version", "int4"), ("updated_at", "timestamptz"), ("last_seq", "int8"),
), ("scope", "arm_name"))
MODELS = Upsert("model_versions", (
    ("scope", "text"), ("version", "int4"), ("outcomes_used", "int4"), ("simulated_used", "bool"),
    ("success_er_threshold", "numeric"), ("predictor_skipped_reason", "text"), ("predictors", "jsonb"),
    ("arms_count", "int4"), ("created_at", "timestamptz"), ("last_seq", "int8"),
), ("scope", "version"))
SLOTS = Upsert("timing_slots", (
    ("scope", "text"), ("hour", "int4"), ("n", "int4"), ("mean_er", "numeric"), ("model_version", "int4"),
    ("updated_at", "timestamptz"), ("last_seq", "int8"),
), ("scope", "hour"))
USAGE = Upsert("api_usage", (
    ("request_id", "text"), ("kind", "text"), ("model", "text"), ("tokens", "int4"), ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"), ("cost_usd", "numeric"), ("status", "text"), ("failure_reason", "text"),
    ("created_at", "timestamptz"), ("last_seq", "int8"),
), ("request_id",))
JOBS = Upsert("job_runs", (
    ("run_id", "text"), ("service", "text"), ("job", "text"), ("status", "text"), ("counts", "jsonb"),
    ("detail", "text"), ("completed_at", "timestamptz"), ("last_seq", "int8"),
), ("run_id", "service"))
FLAGS = Upsert("flag_changes", (
    ("last_seq", "int8"), ("event_id", "text"), ("flag", "text"), ("old_value", "text"), ("new_value", "text"),
    ("actor", "text"), ("source", "text"), ("changed_at", "timestamptz"),
), ("last_seq",), mode="ignore")
LIMITS = Upsert("x_limit_answers", (
    ("last_seq", "int8"), ("decision_id", "uuid"), ("error_code", "text"), ("attempt", "int4"),
    ("paused_until", "timestamptz"), ("answered_at", "timestamptz"),
), ("last_seq",), mode="ignore")
COUNTERS = Upsert("gateway_counters", (
    ("name", "text"), ("key", "text"), ("value", "int8"), ("last_seq", "int8"),
), ("name", "key"), mode="add")

UPSERTS: tuple[Upsert, ...] = (
    DECISIONS, POSTED, OUTCOMES, ARMS, MODELS, SLOTS, USAGE, JOBS, FLAGS, LIMITS, COUNTERS,
)
#: run once per connection: the staging tables of the COPY path
CREATE_STAGES = "; ".join(u.create_stage for u in UPSERTS)
#: from this many rows of one table in one batch, COPY + upsert from staging beats column arrays
COPY_MIN_ROWS = 200

LOAD_DECISIONS = f"SELECT {', '.join(DECISION_COLUMNS)} FROM content_metadata WHERE decision_id = ANY($1::uuid[])"
LOCK_OFFSET = "SELECT last_seq FROM projection_offsets WHERE projector = $1 FOR UPDATE"
INIT_OFFSET = "INSERT INTO projection_offsets (projector, last_seq) VALUES ($1, 0) ON CONFLICT (projector) DO NOTHING"
SET_OFFSET = "UPDATE projection_offsets SET last_seq = $2, updated_at = now() WHERE projector = $1"
