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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from shared.bus import ReadItem
from shared.events import (
    DEFAULT_ACCOUNT,
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
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
    #: the X account the decision belongs to (its draft's ``Event.account``; never changes afterwards)
    account: str = DEFAULT_ACCOUNT


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
        account=ev.account,
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
    """What a batch writes: each read model's rows by primary key (``tables[table][key]``; the last event for a
    key wins), counters to add (per account), dead letters. ``existing`` holds the decision rows as the database had them
    before the batch (loaded by the projector in the same transaction)."""

    existing: dict[str, DecisionRow] = field(default_factory=dict)
    tables: dict[str, dict[Any, Any]] = field(default_factory=dict)
    #: account -> (name, key) -> [delta, last_seq]
    account_counters: dict[str, dict[tuple[str, str], list[int]]] = field(default_factory=dict)
    dead: list[tuple[ReadItem, str]] = field(default_factory=list)
    events: int = 0
    last_seq: int = 0

    def rows_of(self, table: str) -> dict[Any, Any]:
        """The batch's rows of one table, by key (created empty on first use)."""
        rows = self.tables.get(table)
        if rows is None:
            rows = self.tables[table] = {}
        return rows

    @property
    def counters(self) -> dict[tuple[str, str], list[int]]:
        """The default account's counters, (name, key) -> [delta, last_seq] (every account's:
        ``account_counters``)."""
        return self.account_counters.get(DEFAULT_ACCOUNT, {})

    def count(self, name: str, key: str, delta: int, seq: int, account: str = DEFAULT_ACCOUNT) -> None:
        counters = self.account_counters.get(account)
        if counters is None:
            counters = self.account_counters[account] = {}
        c = counters.setdefault((name, key), [0, seq])
        c[0] += delta
        c[1] = seq

    @property
    def rows(self) -> int:
        return sum(len(t) for t in self.tables.values()) + sum(len(c) for c in self.account_counters.values())


#: one table's fold: (that table's rows of the batch, the batch, the event, its sequence) -> None. Pure: it adds or
#: replaces rows (and counts counters); raising ApplyError (or ValueError, TypeError, OverflowError) dead-letters
#: the event.
Fold = Callable[[dict[Any, Any], BatchWrites, Any, int], None]
#: an event type's folds, in the registry's order: (table, fold)
Steps = tuple[tuple[str, Fold], ...]


def fold_batch(items: Iterable[ReadItem], existing: dict[str, DecisionRow],
               steps_for: Callable[[type], Steps] | None = None) -> BatchWrites:
    """Every item of the batch, in order, through the folds registered for its type (``read_models``: each table
    once, with the event types it folds). A malformed or unusable event becomes a dead letter, never a stop."""
    if steps_for is None:  # the registry (built on this module) is found at call time
        from .read_models import steps_for as registered

        steps_for = registered
    w = BatchWrites(existing=existing)
    rows_of = w.rows_of
    dead = w.dead
    for it in items:
        w.events += 1
        if it.seq > w.last_seq:
            w.last_seq = it.seq
        if it.error is not None:
            dead.append((it, it.error))
            continue
        ev = it.event
        if ev is None:
            continue
        try:
            for table, fold in steps_for(type(ev)):
                fold(rows_of(table), w, ev, it.seq)
        except (ApplyError, ValueError, TypeError, OverflowError) as exc:
            dead.append((it, f"apply: {exc}"))
    return w
