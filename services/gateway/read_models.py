"""The gateway's read models, each registered once: its table, how a batch writes it, and the events it folds.

A ``ReadModel`` is one PostgreSQL table of the gateway: its ``Upsert`` (columns with their types, primary key,
conflict mode) and ``folds``, the event types it folds with the pure function that turns each into rows. Every
other part of the gateway iterates ``READ_MODELS`` instead of naming tables:

- the projector folds a batch through ``steps_for(type)`` (the folds of every table for one event type, in the
  registry's order) and writes each table's rows with its upsert, COPYing big batches through staging tables;
- ``xbot replay --rebuild`` truncates ``READ_MODEL_TABLES`` and COPYs with the same columns;
- the projection decodes only ``DECODED``, the event types some table folds (other events cost nothing);
- ``touched_decisions`` loads the decision rows the batch changes, for the event types ``content_metadata``
  folds.

Adding a table is one ``ReadModel`` here plus a migration (``shared/migrations/``): see
``docs/decisions/0011-read-model-registry.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from shared.bus import ReadItem
from shared.events import (
    AccountConfigured,
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    Event,
    FlagChanged,
    JobCompleted,
    LlmCallCompleted,
    LlmCallFailed,
    ModelUpdated,
    OutcomeRecorded,
)

from .domain import (
    ARMS_UPDATED,
    DECISION_COLUMNS,
    LLM_REPAIRED,
    LLM_WASTED,
    POST_SKIPPED,
    POSTS_ATTEMPTED,
    REAL_QUEUED,
    X_LIMIT_CODES,
    ApplyError,
    BatchWrites,
    DecisionRow,
    Fold,
    Steps,
    as_json,
    evolve_decision,
    horizon,
    i4,
    i8,
    num,
    text,
    ts,
    uuid_str,
)


# --- how a table is written ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upsert:
    """One upsert per table per batch, never a statement per row.

    A small batch goes as column arrays (``INSERT ... SELECT FROM unnest(arrays)``: one round trip). A big one is
    COPYed in binary into a temporary staging table of the connection and upserted from there. Either way a row
    is only replaced by an event later in the log (``WHERE <table>.last_seq < EXCLUDED.last_seq``), so applying a
    batch twice changes nothing; ``add`` adds (counters), ``ignore`` keeps the first (rows keyed by sequence)."""

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


def _table_rows(rows: dict[Any, Any], w: BatchWrites) -> list[tuple[Any, ...]]:
    return list(rows.values())


@dataclass(frozen=True)
class ReadModel:
    """One gateway table: how it is written (``upsert``) and which events make its rows (``folds``: event type ->
    fold, called in log order with this table's rows of the batch). ``records`` turns the batch's rows into
    tuples in ``upsert.columns`` order (by default the rows are those tuples)."""

    upsert: Upsert
    folds: Mapping[type, Fold] = field(default_factory=dict)
    records: Callable[[dict[Any, Any], BatchWrites], list[tuple[Any, ...]]] = _table_rows

    @property
    def table(self) -> str:
        return self.upsert.table

    def rows(self, w: BatchWrites) -> list[tuple[Any, ...]]:
        """The batch's rows of this table, ready for its upsert or a COPY."""
        return self.records(w.tables.get(self.table, {}), w)


def _all(types: Iterable[type], fold: Fold) -> dict[type, Fold]:
    return dict.fromkeys(types, fold)


# --- content_metadata: the decisions (the seed's table, evolved from the row the database holds) -------------
def _fold_decision(rows: dict[Any, Any], w: BatchWrites, ev: Any, seq: int) -> None:
    did = uuid_str(ev.decision_id)
    before = rows.get(did) or w.existing.get(did)
    row = evolve_decision(before, ev, seq)
    if row is not None:
        rows[did] = row
    if isinstance(ev, DecisionQueued):
        if before is None and ev.generation_source == "real":  # a decision's first draft, written by the LLM
            w.count(REAL_QUEUED, text(ev.decision_type) or "", 1, seq, ev.account)
    elif isinstance(ev, DecisionPostStarted):
        w.count(POSTS_ATTEMPTED, "", 1, seq, ev.account)
    elif isinstance(ev, DecisionPostSkipped):
        w.count(POST_SKIPPED, text(ev.reason) or "", 1, seq, ev.account)


def _decision_records(rows: dict[Any, Any], w: BatchWrites) -> list[tuple[Any, ...]]:
    return [msgspec.structs.astuple(r) for r in rows.values()]  # fields in DECISION_COLUMNS order


_DECISION_TYPES = {
    "decision_id": "uuid", "parts": "jsonb", "features": "jsonb", "quality_score": "numeric",
    "predicted_er": "numeric", "gate_score": "numeric", "scheduled_at": "timestamptz", "created_at": "timestamptz",
    "updated_at": "timestamptz", "last_seq": "int8", "attempts": "int4", "model_version": "int4",
    "attention_since": "timestamptz", "flagged_claims": "jsonb",
}

DECISIONS = ReadModel(
    Upsert("content_metadata", tuple((c, _DECISION_TYPES.get(c, "text")) for c in DECISION_COLUMNS),
           ("decision_id",)),
    folds=_all((DecisionQueued, DecisionSkipped, DecisionPostSkipped, DecisionPostStarted, DecisionPartPosted,
                DecisionPosted, DecisionPostFailed, DecisionApproved, DecisionRejected, DecisionRescheduled,
                DecisionAttentionNeeded, DecisionDoubtResolved), _fold_decision),
    records=_decision_records,
)


# --- posted_decisions, outcomes ------------------------------------------------------------------------------
def _fold_posted(rows: dict[Any, Any], w: BatchWrites, ev: DecisionPosted, seq: int) -> None:
    did = uuid_str(ev.decision_id)
    rows[did] = (
        did, text(ev.tweet_id), ts(ev.posted_at), text(ev.bandit_arm), text(ev.timing_arm), ev.decision_type,
        text(ev.url), ev.simulated, ev.recovered, as_json(ev.thread_tweet_ids), seq, ev.account,
    )


POSTED = ReadModel(Upsert("posted_decisions", (
    ("decision_id", "uuid"), ("tweet_id", "text"), ("posted_at", "timestamptz"), ("bandit_arm", "text"),
    ("timing_arm", "text"), ("decision_type", "text"), ("url", "text"), ("simulated", "bool"),
    ("recovered", "bool"), ("thread_tweet_ids", "jsonb"), ("last_seq", "int8"), ("account", "text"),
), ("decision_id",)), folds={DecisionPosted: _fold_posted})


def _fold_outcome(rows: dict[Any, Any], w: BatchWrites, ev: OutcomeRecorded, seq: int) -> None:
    did = uuid_str(ev.decision_id)
    h = horizon(ev.horizon_hours)
    rows[(did, h)] = (
        did, h, text(ev.tweet_id), i8(ev.impressions, "impressions"), i8(ev.likes, "likes"),
        i8(ev.retweets, "retweets"), i8(ev.replies, "replies"), i8(ev.bookmarks, "bookmarks"),
        i8(ev.quotes, "quotes"), num(ev.er_calculated), ev.simulated, ts(ev.collected_at), seq, ev.account,
    )


OUTCOMES = ReadModel(Upsert("outcomes", (
    ("decision_id", "uuid"), ("horizon_hours", "numeric"), ("tweet_id", "text"), ("impressions", "int8"),
    ("likes", "int8"), ("retweets", "int8"), ("replies", "int8"), ("bookmarks", "int8"), ("quotes", "int8"),
    ("er_calculated", "numeric"), ("simulated", "bool"), ("collected_at", "timestamptz"), ("last_seq", "int8"),
    ("account", "text"),
), ("decision_id", "horizon_hours")), folds={OutcomeRecorded: _fold_outcome})


# --- the learner's model: arms, timing slots, versions -------------------------------------------------------
def _fold_arms(rows: dict[Any, Any], w: BatchWrites, ev: ModelUpdated, seq: int) -> None:
    version = i4(ev.version, "version") or 0
    for a in ev.arms:
        rows[(ev.account, text(a.scope) or "", text(a.arm) or "")] = (
            a.scope, a.arm, i4(a.successes, "successes"), i4(a.failures, "failures"), num(a.alpha),
            num(a.beta), version, ts(ev.occurred_at), seq, ev.account,
        )


ARMS = ReadModel(Upsert("bandit_arms", (
    ("scope", "text"), ("arm_name", "text"), ("successes", "int4"), ("failures", "int4"), ("alpha", "numeric"),
    ("beta", "numeric"), ("model_version", "int4"), ("updated_at", "timestamptz"), ("last_seq", "int8"),
    ("account", "text"),
), ("account", "scope", "arm_name")), folds={ModelUpdated: _fold_arms})


def _fold_slots(rows: dict[Any, Any], w: BatchWrites, ev: ModelUpdated, seq: int) -> None:
    version = i4(ev.version, "version") or 0
    for s in ev.slots:
        rows[(ev.account, text(ev.scope) or "", i4(s.hour, "hour") or 0)] = (
            ev.scope, s.hour, i4(s.n, "n"), num(s.mean_er), version, ts(ev.occurred_at), seq, ev.account,
        )


SLOTS = ReadModel(Upsert("timing_slots", (
    ("scope", "text"), ("hour", "int4"), ("n", "int4"), ("mean_er", "numeric"), ("model_version", "int4"),
    ("updated_at", "timestamptz"), ("last_seq", "int8"), ("account", "text"),
), ("account", "scope", "hour")), folds={ModelUpdated: _fold_slots})


def _fold_model(rows: dict[Any, Any], w: BatchWrites, ev: ModelUpdated, seq: int) -> None:
    version = i4(ev.version, "version") or 0
    rows[(ev.account, text(ev.scope) or "", version)] = (
        ev.scope, version, i4(ev.outcomes_used, "outcomes_used"), ev.simulated_used, num(ev.success_er_threshold),
        text(ev.predictor_skipped_reason), as_json(ev.predictors), len(ev.arms), ts(ev.occurred_at), seq,
        ev.account,
    )
    if ev.arms:
        w.count(ARMS_UPDATED, "", len(ev.arms), seq, ev.account)


MODELS = ReadModel(Upsert("model_versions", (
    ("scope", "text"), ("version", "int4"), ("outcomes_used", "int4"), ("simulated_used", "bool"),
    ("success_er_threshold", "numeric"), ("predictor_skipped_reason", "text"), ("predictors", "jsonb"),
    ("arms_count", "int4"), ("created_at", "timestamptz"), ("last_seq", "int8"), ("account", "text"),
), ("account", "scope", "version")), folds={ModelUpdated: _fold_model})


# --- LLM calls, job runs, flag changes, X's limit answers ----------------------------------------------------
def _fold_usage(rows: dict[Any, Any], w: BatchWrites, ev: LlmCallCompleted | LlmCallFailed, seq: int) -> None:
    failed = isinstance(ev, LlmCallFailed)
    rows[text(ev.request_id) or ""] = (
        ev.request_id, text(ev.kind), text(ev.model), i4(ev.total_tokens, "total_tokens"),
        i4(ev.prompt_tokens, "prompt_tokens"), i4(ev.completion_tokens, "completion_tokens"), num(ev.cost_usd) or 0,
        text(ev.status), text(ev.failure_reason) if failed else None, ts(ev.occurred_at), seq,  # type: ignore[union-attr]
        ev.account,
    )
    if isinstance(ev, LlmCallFailed):
        if ev.failure_reason == "invalid_response":
            w.count(LLM_WASTED, text(ev.wasted_reason) or "invalid_response", 1, seq, ev.account)
    else:
        for repair in ev.repairs:
            w.count(LLM_REPAIRED, text(repair) or "", 1, seq, ev.account)


USAGE = ReadModel(Upsert("api_usage", (
    ("request_id", "text"), ("kind", "text"), ("model", "text"), ("tokens", "int4"), ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"), ("cost_usd", "numeric"), ("status", "text"), ("failure_reason", "text"),
    ("created_at", "timestamptz"), ("last_seq", "int8"), ("account", "text"),
), ("request_id",)), folds=_all((LlmCallCompleted, LlmCallFailed), _fold_usage))


def _fold_job(rows: dict[Any, Any], w: BatchWrites, ev: JobCompleted, seq: int) -> None:
    rows[(ev.account, text(ev.run_id) or "", text(ev.service) or "")] = (
        ev.run_id, ev.service, text(ev.job), text(ev.status), as_json(ev.counts), text(ev.detail) or "",
        ts(ev.occurred_at), seq, ev.account,
    )


JOBS = ReadModel(Upsert("job_runs", (
    ("run_id", "text"), ("service", "text"), ("job", "text"), ("status", "text"), ("counts", "jsonb"),
    ("detail", "text"), ("completed_at", "timestamptz"), ("last_seq", "int8"), ("account", "text"),
), ("account", "run_id", "service")), folds={JobCompleted: _fold_job})


def _fold_flag(rows: dict[Any, Any], w: BatchWrites, ev: FlagChanged, seq: int) -> None:
    rows[seq] = (
        seq, ev.event_id, text(ev.flag), text(ev.old_value), text(ev.new_value), text(ev.actor) or "",
        text(ev.source) or "", ts(ev.occurred_at), ev.account,
    )


FLAGS = ReadModel(Upsert("flag_changes", (
    ("last_seq", "int8"), ("event_id", "text"), ("flag", "text"), ("old_value", "text"), ("new_value", "text"),
    ("actor", "text"), ("source", "text"), ("changed_at", "timestamptz"), ("account", "text"),
), ("last_seq",), mode="ignore"), folds={FlagChanged: _fold_flag})


def _fold_limit(rows: dict[Any, Any], w: BatchWrites, ev: DecisionPostFailed, seq: int) -> None:
    if ev.error_code in X_LIMIT_CODES and (ev.final or not ev.in_doubt):  # as the poster counts them
        rows[seq] = (seq, uuid_str(ev.decision_id), ev.error_code, i4(ev.attempt, "attempt"), ts(ev.paused_until),
                     ts(ev.occurred_at), ev.account)


LIMITS = ReadModel(Upsert("x_limit_answers", (
    ("last_seq", "int8"), ("decision_id", "uuid"), ("error_code", "text"), ("attempt", "int4"),
    ("paused_until", "timestamptz"), ("answered_at", "timestamptz"), ("account", "text"),
), ("last_seq",), mode="ignore"), folds={DecisionPostFailed: _fold_limit})


# --- gateway_counters: counted by the folds above (``BatchWrites.count``), added up by the upsert --------------
def _counter_records(rows: dict[Any, Any], w: BatchWrites) -> list[tuple[Any, ...]]:
    return [(n, k, d, s, a) for a, counters in w.account_counters.items() for (n, k), (d, s) in counters.items()]


COUNTERS = ReadModel(Upsert("gateway_counters", (
    ("name", "text"), ("key", "text"), ("value", "int8"), ("last_seq", "int8"), ("account", "text"),
), ("account", "name", "key"), mode="add"), records=_counter_records)


# --- accounts: the profile in force for each account (its latest account.configured) ------------------------
def _fold_account(rows: dict[Any, Any], w: BatchWrites, ev: AccountConfigured, seq: int) -> None:
    p = ev.profile
    rows[ev.account] = (
        ev.account, text(p.username) or "", text(p.publisher) or "", text(ev.digest) or "", text(ev.source) or "",
        text(ev.actor) or "", ts(ev.occurred_at), as_json(p), seq,
    )


ACCOUNTS = ReadModel(Upsert("accounts", (
    ("account", "text"), ("username", "text"), ("publisher", "text"), ("digest", "text"), ("source", "text"),
    ("actor", "text"), ("configured_at", "timestamptz"), ("profile", "jsonb"), ("last_seq", "int8"),
), ("account",)), folds={AccountConfigured: _fold_account})


#: every read model, in the order an event's folds run (for ModelUpdated: arms, slots, then the version)
READ_MODELS: tuple[ReadModel, ...] = (DECISIONS, POSTED, OUTCOMES, ARMS, SLOTS, MODELS, USAGE, JOBS, FLAGS, LIMITS,
                                      ACCOUNTS, COUNTERS)


# --- derived from the registry -------------------------------------------------------------------------------
def dispatch(models: Iterable[ReadModel]) -> dict[type, Steps]:
    """Event type -> its folds, (table, fold) in registry order."""
    out: dict[type, list[tuple[str, Fold]]] = {}
    for m in models:
        for t, fold in m.folds.items():
            out.setdefault(t, []).append((m.table, fold))
    return {t: tuple(steps) for t, steps in out.items()}


DISPATCH: dict[type, Steps] = dispatch(READ_MODELS)
#: the event types the projection decodes ("decision.queued", ...): those some table folds
DECODED: frozenset[str] = frozenset(f"{t.aggregate}.{t.name}" for t in DISPATCH if issubclass(t, Event))
#: the event types that change a ``content_metadata`` row (the projector loads those rows first)
DECISION_EVENTS: frozenset[type] = frozenset(DECISIONS.folds)
_STEPS: dict[type, Steps] = dict(DISPATCH)


def steps_for(t: type) -> Steps:
    """The folds of an event type (a subclass folds as its registered base; anything else: none)."""
    try:
        return _STEPS[t]
    except KeyError:
        steps = next((s for base, s in DISPATCH.items() if issubclass(t, base)), ())
        _STEPS[t] = steps
        return steps


def touched_decisions(items: Iterable[ReadItem]) -> set[str]:
    """The decision rows a batch may change (the projector loads them first)."""
    out: set[str] = set()
    for it in items:
        ev: Any = it.event
        if ev is not None and type(ev) in DECISION_EVENTS:
            try:
                out.add(uuid_str(ev.decision_id))
            except ApplyError:
                pass
    return out


def decision_row(record: Mapping[str, Any]) -> DecisionRow:
    """A ``content_metadata`` row as the database returns it (``LOAD_DECISIONS``), as the fold's state."""
    d = dict(record)
    d["decision_id"] = str(d["decision_id"])
    return DecisionRow(**d)
