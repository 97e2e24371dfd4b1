"""The gateway's pure core: how events become rows of the read models (the seed's tables and ours).

No I/O. ``fold_batch(items, existing)`` turns a batch of log items into the rows to write. Decision rows are
evolved from their current state (``existing``, loaded by the projector inside the same transaction), so the
result is the same whatever the batch boundaries: a rebuild in batches of thousands writes exactly the rows
the live projector wrote a few events at a time.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from shared.bus import ReadItem
from shared.events import (
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
    FlagChanged,
    JobCompleted,
    LlmCallCompleted,
    LlmCallFailed,
    ModelUpdated,
    OutcomeRecorded,
)

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1

#: counters kept in ``gateway_counters`` (name, key)
POSTS_ATTEMPTED = "posts_attempted"
POST_SKIPPED = "post_skipped"
ARMS_UPDATED = "bandit_arms_updated"
#: LLM answers that came back and were rejected, by ``wasted_reason`` (llm.call_failed, invalid_response)
LLM_WASTED = "llm_wasted"
#: LLM answers accepted after a free repair, by repair (llm.call_completed ``repairs``)
LLM_REPAIRED = "llm_repaired"
#: real (LLM-written) drafts queued, by decision type: the denominator of LLM calls per queued post
REAL_QUEUED = "real_drafts_queued"
#: X's answers that pause the account's posting: 226 ("looks automated", X_COOLDOWN_MINUTES) and 429 (rate
#: limited, until ``paused_until``); each one is a row of ``x_limit_answers``
X_LIMIT_CODES = frozenset({"226", "429"})

_json = msgspec.json.Encoder()


class ApplyError(ValueError):
    """An event that decodes but cannot become a row (bad id, out-of-range number, NUL in text)."""


class DecisionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One ``content_metadata`` row. JSON columns are kept as JSON text; numbers as Decimal or float."""

    decision_id: str
    decision_type: str
    content: str
    parts: str
    bandit_arm: str | None
    timing_arm: str | None
    quality_score: Any
    predicted_er: Any
    generation_source: str
    status: str
    scheduled_at: datetime | None
    topic_cluster: str | None
    angle: str | None
    content_hash: str | None
    features: str
    skip_reason: str | None
    error_message: str | None
    target_tweet_id: str | None
    target_username: str | None
    approval: str | None
    last_post_skip: str | None
    created_at: datetime
    updated_at: datetime
    last_seq: int
    gate: str | None
    gate_score: Any
    attempts: int
    model_version: int | None
    #: set by ``decision.attention_needed`` (an attempt in doubt past the poster's limit: the operator must answer
    #: retry or abandon); cleared when the doubt ends (posted, resolved, closed by the poster)
    attention_reason: str | None = None
    attention_detail: str | None = None
    attention_since: datetime | None = None
    #: the sentences the claims gate flagged (JSON list): on a queued draft what the person approving it must
    #: check (REQUIRE_APPROVAL=true), on a skipped one why it was blocked; '[]' for every other draft
    flagged_claims: str = "[]"


#: a decision's attempt was sent and its answer lost: it may be on X. Not queued (it must not be claimed again
#: until the doubt is closed), not failed (it may have landed).
IN_DOUBT = "in_doubt"

DECISION_COLUMNS: tuple[str, ...] = tuple(DecisionRow.__struct_fields__)


# --- value checks ------------------------------------------------------------------------------------------
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid_str(value: str) -> str:
    """Decision ids are UUIDs (the seed's column type); the canonical text form keys the rows."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):  # already canonical: what str(UUID(v)) gives
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ApplyError(f"decision_id {value!r} is not a UUID") from None


def text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ApplyError("text contains a NUL character")
    return value


def i4(value: int | None, name: str) -> int | None:
    if value is not None and not -INT4_MAX - 1 <= value <= INT4_MAX:
        raise ApplyError(f"{name}={value} is out of range for an integer column")
    return value


def i8(value: int, name: str) -> int:
    if not -INT8_MAX - 1 <= value <= INT8_MAX:
        raise ApplyError(f"{name}={value} is out of range for a bigint column")
    return value


def num(value: Any) -> Decimal | None:
    """Floats go to NUMERIC as their shortest repr (0.0423, not 0.04230000000000000066...)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    f = float(value)
    if not math.isfinite(f):
        return None
    return Decimal(repr(f))


def horizon(value: float) -> Decimal:
    """A collection horizon in hours for the NUMERIC column: whole hours exactly as before (``1`` is stored as
    1), fractions in their shortest form (``0.25``)."""
    if type(value) is int:
        if not 0 <= value <= INT4_MAX:
            raise ApplyError(f"horizon_hours={value} is out of range")
        return Decimal(value)
    f = float(value)
    if not math.isfinite(f) or not 0 <= f <= INT4_MAX:
        raise ApplyError(f"horizon_hours={value!r} is not a usable number of hours")
    return Decimal(int(f)) if f.is_integer() else Decimal(repr(f))


def ts(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_json(value: Any) -> str:
    out = _json.encode(value).decode()
    if "\\u0000" in out:
        raise ApplyError("JSON contains a NUL character")
    return out


# --- decisions ---------------------------------------------------------------------------------------------
#: statuses a decision can still leave by posting or failing (an attempt in doubt is still open)
_OPEN = frozenset({"queued", IN_DOUBT})
_NO_ATTENTION: dict[str, Any] = {"attention_reason": None, "attention_detail": None, "attention_since": None}


def _draft(ev: DecisionQueued | DecisionSkipped, seq: int) -> DecisionRow:
    skipped = isinstance(ev, DecisionSkipped)
    return DecisionRow(
        decision_id=uuid_str(ev.decision_id),
        decision_type=ev.decision_type,
        content=text(ev.content) or "",
        parts=as_json(ev.parts),
        bandit_arm=text(ev.bandit_arm),
        timing_arm=text(ev.timing_arm),
        quality_score=num(ev.quality_score),
        predicted_er=num(ev.predicted_er),
        generation_source=ev.generation_source,
        status="skipped" if skipped else "queued",
        scheduled_at=ts(ev.scheduled_at),
        topic_cluster=text(ev.topic_cluster),
        angle=text(ev.angle),
        content_hash=text(ev.content_hash),
        features=as_json(ev.features),
        skip_reason=text(ev.skip_reason) if skipped else None,  # type: ignore[union-attr]
        error_message=None,
        target_tweet_id=text(ev.target_tweet_id),
        target_username=text(ev.target_username),
        approval=None,
        last_post_skip=None,
        created_at=ts(ev.occurred_at),  # type: ignore[arg-type]
        updated_at=ts(ev.occurred_at),  # type: ignore[arg-type]
        last_seq=seq,
        gate=text(ev.gate) if skipped else None,  # type: ignore[union-attr]
        gate_score=num(ev.score) if skipped else None,  # type: ignore[union-attr]
        attempts=0,
        model_version=i4(ev.model_version, "model_version"),
        flagged_claims=as_json(ev.flagged_claims),
    )


def evolve_decision(row: DecisionRow | None, ev: Any, seq: int) -> DecisionRow | None:
    """The ``content_metadata`` row after one decision event.

    Status follows the seed: ``queued`` until posted, ``skipped`` when a gate blocked the draft (or an operator
    rejected it), ``failed`` after a final failed attempt; ``posted`` is never undone. ``decision.post_skipped``
    leaves the status queued and records the reason. An event for a decision with no draft changes nothing.

    ``in_doubt`` (ours, beside the seed's four): an attempt whose answer was lost (a non-final ``post_failed``
    with ``in_doubt``, or one known to have ``landed``) until the doubt ends: ``posted``; back to ``queued`` when
    the poster closes the doubt (a later non-final failure not in doubt, e.g. ``not_found_after_grace``) or the
    operator answers ``retry``; ``failed`` on a final failure or the operator's ``abandon``.
    ``decision.attention_needed`` keeps (or makes) it in doubt and records the reason and since when; attention
    is cleared whenever the doubt ends. A posted decision keeps no ``last_post_skip`` from before it was posted.
    """
    replace = msgspec.structs.replace
    if isinstance(ev, DecisionQueued | DecisionSkipped):
        if row is None:
            return _draft(ev, seq)
        if isinstance(ev, DecisionSkipped) and row.status == "queued":
            return replace(
                row, status="skipped", skip_reason=text(ev.skip_reason), gate=text(ev.gate),
                gate_score=num(ev.score), updated_at=ts(ev.occurred_at), last_seq=seq,
                flagged_claims=as_json(ev.flagged_claims) if ev.flagged_claims else row.flagged_claims,
            )
        # a second draft of the same decision: the first one stands
        return replace(row, updated_at=ts(ev.occurred_at), last_seq=seq)
    if row is None:
        return None
    row = replace(row, updated_at=ts(ev.occurred_at), last_seq=seq)
    if isinstance(ev, DecisionPostSkipped):
        return replace(row, last_post_skip=text(ev.reason))
    if isinstance(ev, DecisionPostStarted):
        return replace(row, attempts=max(row.attempts, i4(ev.attempt, "attempt") or 0))
    if isinstance(ev, DecisionPosted):
        return replace(row, status="posted", last_post_skip=None, **_NO_ATTENTION)
    if isinstance(ev, DecisionPostFailed):
        err = text(f"{ev.error_code}: {ev.error}" if ev.error_code else ev.error)
        if row.status not in _OPEN:  # posted, skipped or failed already: the error is recorded, nothing else
            return replace(row, error_message=err)
        if ev.final:
            return replace(row, error_message=err, status="failed", **_NO_ATTENTION)
        if ev.in_doubt or ev.landed:
            return replace(row, error_message=err, status=IN_DOUBT)
        return replace(row, error_message=err, status="queued", **_NO_ATTENTION)  # the doubt (if any) is closed
    if isinstance(ev, DecisionAttentionNeeded):
        if row.status not in _OPEN:
            return row
        return replace(
            row, status=IN_DOUBT, attention_reason=text(ev.reason) or "", attention_detail=text(ev.detail),
            attention_since=ts(ev.in_doubt_since) or ts(ev.occurred_at),
        )
    if isinstance(ev, DecisionDoubtResolved):
        if row.status != IN_DOUBT:
            return row
        if ev.action == "abandon":
            note = f"abandoned by {ev.actor}" + (f": {ev.note}" if ev.note else "")
            return replace(row, status="failed", error_message=text(note), **_NO_ATTENTION)
        return replace(row, status="queued", **_NO_ATTENTION)
    if isinstance(ev, DecisionApproved):
        return replace(row, approval="approved")
    if isinstance(ev, DecisionRejected):
        if row.status != "queued":
            return replace(row, approval="rejected")
        reason = "rejected" + (f": {ev.reason}" if ev.reason else "")
        return replace(row, approval="rejected", status="skipped", skip_reason=text(reason))
    if isinstance(ev, DecisionRescheduled):
        return replace(row, scheduled_at=ts(ev.scheduled_at))
    # DecisionPartPosted and anything else on the decision: only the row's sequence moves
    return row


def decision_status(events: Iterable[Any]) -> str | None:
    """The status a decision's history folds to (None when it has no draft): the admin endpoints' 409 check."""
    row: DecisionRow | None = None
    for i, ev in enumerate(events, 1):
        try:
            row = evolve_decision(row, ev, i)
        except ApplyError:
            continue
    return None if row is None else row.status


# --- the batch ---------------------------------------------------------------------------------------------
@dataclass
class BatchWrites:
    """Rows to upsert, keyed by primary key (the last event for a key wins), counters to add, dead letters."""

    decisions: dict[str, DecisionRow] = field(default_factory=dict)
    posted: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    outcomes: dict[tuple[str, Decimal], tuple[Any, ...]] = field(default_factory=dict)
    arms: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    models: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    slots: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)
    usage: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    jobs: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    flags: list[tuple[Any, ...]] = field(default_factory=list)
    limits: list[tuple[Any, ...]] = field(default_factory=list)  # X's 226 / 429 answers (x_limit_answers)
    counters: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (name, key) -> [delta, last_seq]
    dead: list[tuple[ReadItem, str]] = field(default_factory=list)
    events: int = 0
    last_seq: int = 0

    def count(self, name: str, key: str, delta: int, seq: int) -> None:
        c = self.counters.setdefault((name, key), [0, seq])
        c[0] += delta
        c[1] = seq

    @property
    def rows(self) -> int:
        return (len(self.decisions) + len(self.posted) + len(self.outcomes) + len(self.arms) + len(self.models)
                + len(self.slots) + len(self.usage) + len(self.jobs) + len(self.flags) + len(self.limits)
                + len(self.counters))


DECISION_EVENTS = (
    DecisionQueued, DecisionSkipped, DecisionPostSkipped, DecisionPostStarted, DecisionPartPosted, DecisionPosted,
    DecisionPostFailed, DecisionApproved, DecisionRejected, DecisionRescheduled, DecisionAttentionNeeded,
    DecisionDoubtResolved,
)


_DECISION, _OUTCOME, _MODEL, _LLM, _JOB, _FLAG = range(6)
_KIND_OF_BASE: tuple[tuple[Any, int], ...] = (
    (DECISION_EVENTS, _DECISION), (OutcomeRecorded, _OUTCOME), (ModelUpdated, _MODEL),
    ((LlmCallCompleted, LlmCallFailed), _LLM), (JobCompleted, _JOB), (FlagChanged, _FLAG),
)
#: event type -> which rows it makes (None: no row); one dict lookup per event instead of a chain of isinstance
_KINDS: dict[type, int | None] = {}


def _kind(t: type) -> int | None:
    try:
        return _KINDS[t]
    except KeyError:
        k = next((v for base, v in _KIND_OF_BASE if issubclass(t, base)), None)
        _KINDS[t] = k
        return k


def touched_decisions(items: Iterable[ReadItem]) -> set[str]:
    """The decision rows a batch may change (the projector loads them first)."""
    out: set[str] = set()
    for it in items:
        ev: Any = it.event
        if ev is not None and _kind(type(ev)) == _DECISION:
            try:
                out.add(uuid_str(ev.decision_id))
            except ApplyError:
                pass
    return out


def fold_batch(items: Iterable[ReadItem], existing: dict[str, DecisionRow]) -> BatchWrites:
    """Every item of the batch, in order. A malformed or unusable event becomes a dead letter, never a stop."""
    w = BatchWrites()
    for it in items:
        w.events += 1
        if it.seq > w.last_seq:
            w.last_seq = it.seq
        if it.error is not None:
            w.dead.append((it, it.error))
            continue
        if it.event is None:
            continue
        try:
            _fold_one(w, existing, it.event, it.seq)
        except (ApplyError, ValueError, TypeError, OverflowError) as exc:
            w.dead.append((it, f"apply: {exc}"))
    return w


def _fold_one(w: BatchWrites, existing: dict[str, DecisionRow], ev: Any, seq: int) -> None:
    kind = _kind(type(ev))
    if kind is None:
        return
    if kind == _DECISION:
        did = uuid_str(ev.decision_id)
        before = w.decisions.get(did) or existing.get(did)
        row = evolve_decision(before, ev, seq)
        if row is not None:
            w.decisions[did] = row
        if isinstance(ev, DecisionQueued):
            if before is None and ev.generation_source == "real":  # a decision's first draft, written by the LLM
                w.count(REAL_QUEUED, text(ev.decision_type) or "", 1, seq)
        elif isinstance(ev, DecisionPostStarted):
            w.count(POSTS_ATTEMPTED, "", 1, seq)
        elif isinstance(ev, DecisionPostSkipped):
            w.count(POST_SKIPPED, text(ev.reason) or "", 1, seq)
        elif isinstance(ev, DecisionPostFailed):
            if ev.error_code in X_LIMIT_CODES and (ev.final or not ev.in_doubt):  # as the poster counts them
                w.limits.append((seq, did, ev.error_code, i4(ev.attempt, "attempt"), ts(ev.paused_until),
                                 ts(ev.occurred_at)))
        elif isinstance(ev, DecisionPosted):
            w.posted[did] = (
                did, text(ev.tweet_id), ts(ev.posted_at), text(ev.bandit_arm), text(ev.timing_arm),
                ev.decision_type, text(ev.url), ev.simulated, ev.recovered, as_json(ev.thread_tweet_ids), seq,
            )
    elif kind == _OUTCOME:
        did = uuid_str(ev.decision_id)
        h = horizon(ev.horizon_hours)
        w.outcomes[(did, h)] = (
            did, h, text(ev.tweet_id), i8(ev.impressions, "impressions"), i8(ev.likes, "likes"),
            i8(ev.retweets, "retweets"), i8(ev.replies, "replies"), i8(ev.bookmarks, "bookmarks"),
            i8(ev.quotes, "quotes"), num(ev.er_calculated), ev.simulated, ts(ev.collected_at), seq,
        )
    elif kind == _MODEL:
        version = i4(ev.version, "version") or 0
        for a in ev.arms:
            w.arms[(text(a.scope) or "", text(a.arm) or "")] = (
                a.scope, a.arm, i4(a.successes, "successes"), i4(a.failures, "failures"), num(a.alpha),
                num(a.beta), version, ts(ev.occurred_at), seq,
            )
        for s in ev.slots:
            w.slots[(text(ev.scope) or "", i4(s.hour, "hour") or 0)] = (
                ev.scope, s.hour, i4(s.n, "n"), num(s.mean_er), version, ts(ev.occurred_at), seq,
            )
        w.models[(text(ev.scope) or "", version)] = (
            ev.scope, version, i4(ev.outcomes_used, "outcomes_used"), ev.simulated_used, num(ev.success_er_threshold),
            text(ev.predictor_skipped_reason), as_json(ev.predictors), len(ev.arms), ts(ev.occurred_at), seq,
        )
        if ev.arms:
            w.count(ARMS_UPDATED, "", len(ev.arms), seq)
    elif kind == _LLM:
        failed = isinstance(ev, LlmCallFailed)
        w.usage[text(ev.request_id) or ""] = (
            ev.request_id, text(ev.kind), text(ev.model), i4(ev.total_tokens, "total_tokens"),
            i4(ev.prompt_tokens, "prompt_tokens"), i4(ev.completion_tokens, "completion_tokens"), num(ev.cost_usd) or 0,
            text(ev.status), text(ev.failure_reason) if failed else None, ts(ev.occurred_at), seq,  # type: ignore[union-attr]
        )
        if failed and ev.failure_reason == "invalid_response":  # type: ignore[union-attr]
            w.count(LLM_WASTED, text(ev.wasted_reason) or "invalid_response", 1, seq)  # type: ignore[union-attr]
        elif not failed:
            for repair in ev.repairs:  # type: ignore[union-attr]
                w.count(LLM_REPAIRED, text(repair) or "", 1, seq)
    elif kind == _JOB:
        w.jobs[(text(ev.run_id) or "", text(ev.service) or "")] = (
            ev.run_id, ev.service, text(ev.job), text(ev.status), as_json(ev.counts), text(ev.detail) or "",
            ts(ev.occurred_at), seq,
        )
    elif kind == _FLAG:
        w.flags.append((
            seq, ev.event_id, text(ev.flag), text(ev.old_value), text(ev.new_value), text(ev.actor) or "",
            text(ev.source) or "", ts(ev.occurred_at),
        ))
    # OutcomeCollectionFailed and others: in the log and in the timelines, no table row
