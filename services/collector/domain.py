"""The collector's pure core: which posted decisions are still owed an outcome, and the events that settle them.

State is a projection of the log (``decision.posted``, ``outcome.recorded``, ``outcome.collection_failed``);
nothing here does I/O. A decision posted at ``t`` is owed an outcome at each horizon ``h`` of
``COLLECT_HORIZONS_HOURS`` once ``t + h`` has come. A horizon is settled by an ``outcome.recorded`` (event id
``outcome:<decision_id>:<h>``, so a retried run cannot record it twice), by a final
``outcome.collection_failed`` (the page was not ours, or ``COLLECT_MAX_ATTEMPTS`` reads failed), or is
*missed* when a larger horizon has already come before it was collected: counts read at +30 h are not the
+1 h counts, so we say so (a final failure with reason ``missed_window``) instead of labelling them +1 h.

**Accounts.** A posted decision keeps its ``decision.posted`` event's account, and the outcome events that settle
it carry that account (so their subjects are that account's). Decision ids are unique across accounts (the
planner and the replier mint them per account), so the state is keyed by decision id; ``due_outcomes`` takes an
``account`` to list one account's horizons only, and the collect job runs each account on its own.

**Horizons** are hours and may be fractions (``0.25,1,24``: a first read at +15 min). A whole number of hours
is an ``int`` everywhere (in the config, the state's keys, the events and their ids, as before fractions were
allowed), a fraction a ``float``; ``hours()`` makes the two spellings of one horizon (``1`` and ``1.0``) one.

**Engagement rate** (the one formula, ``shared.learning.metrics.engagement_rate``):
``er_calculated = (likes + retweets + replies + bookmarks + quotes) / impressions``; ``None`` when
impressions is 0 (a rate of nothing is unknown, not zero and not a division error).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from shared.events import (
    DEFAULT_ACCOUNT,
    TYPE_NAMES,
    DecisionPosted,
    OutcomeCollectionFailed,
    OutcomeRecorded,
)
from shared.learning.metrics import ENGAGEMENT_FIELDS, engagement_rate

MISSED_WINDOW = "missed_window"

#: a horizon in hours: ``int`` when whole, ``float`` for a fraction
Hours = int | float
_HORIZON_TEXT = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


def hours(value: float) -> Hours:
    """One spelling per horizon: whole hours as ``int`` (``1.0`` -> ``1``), fractions as ``float``."""
    f = float(value)
    if f.is_integer():
        return int(f)
    return f


def hours_text(h: float) -> str:
    """``1`` -> ``"1"``, ``0.25`` -> ``"0.25"`` (event ids, log lines)."""
    return str(hours(h))


class PostedInfo(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: str
    tweet_id: str
    posted_at: datetime
    decision_type: str
    bandit_arm: str
    timing_arm: str | None
    simulated: bool
    #: the account that posted it (its outcomes are that account's)
    account: str = DEFAULT_ACCOUNT

    @property
    def hour(self) -> int:
        """The UTC hour the post went out (the hour the audience saw it)."""
        return self.posted_at.hour


class FailureInfo(msgspec.Struct, frozen=True, kw_only=True):
    attempts: int
    final: bool
    reason: str


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """One horizon of one posted decision whose time has come and that is still unsettled."""

    posted: PostedInfo
    horizon_hours: Hours
    attempt: int  # the attempt this read will be (1-based)
    missed: bool = False  # a larger horizon has already come: record a final missed_window failure


@dataclass
class CollectorState:
    posted: dict[str, PostedInfo] = field(default_factory=dict)
    recorded: set[tuple[str, Hours]] = field(default_factory=set)
    failures: dict[tuple[str, Hours], FailureInfo] = field(default_factory=dict)
    events_applied: int = 0
    #: posted decision ids in the order first seen, so ``due_outcomes`` takes in only the posts new since its
    #: last call
    posted_order: list[str] = field(default_factory=list, compare=False, repr=False)
    #: per horizons asked for: how far into ``posted_order`` it has looked, and the posts not yet settled at
    #: every one of them (settling is for good, so a settled post is never looked at again)
    open_posts: dict[tuple[Hours, ...], tuple[int, dict[str, None]]] = field(
        default_factory=dict, compare=False, repr=False)

    def settled(self, decision_id: str, horizon: Hours) -> bool:
        if (decision_id, horizon) in self.recorded:
            return True
        f = self.failures.get((decision_id, horizon))
        return f is not None and f.final


def _posted(state: CollectorState, event: DecisionPosted) -> None:
    if event.decision_id not in state.posted:
        state.posted_order.append(event.decision_id)
    state.posted[event.decision_id] = PostedInfo(
        decision_id=event.decision_id,
        tweet_id=event.tweet_id,
        posted_at=event.posted_at,
        decision_type=event.decision_type,
        bandit_arm=event.bandit_arm,
        timing_arm=event.timing_arm,
        simulated=event.simulated,
        account=event.account,
    )


def _recorded(state: CollectorState, event: OutcomeRecorded) -> None:
    state.recorded.add((event.decision_id, hours(event.horizon_hours)))


def _collection_failed(state: CollectorState, event: OutcomeCollectionFailed) -> None:
    key = (event.decision_id, hours(event.horizon_hours))
    prev = state.failures.get(key)
    attempts = max(event.attempt, prev.attempts if prev else 0)
    final = event.final or (prev.final if prev else False)
    state.failures[key] = FailureInfo(attempts=attempts, final=final, reason=event.reason)


#: event type -> how it changes the state
_EVOLVE: dict[type, Callable[[CollectorState, Any], None]] = {
    DecisionPosted: _posted, OutcomeRecorded: _recorded, OutcomeCollectionFailed: _collection_failed,
}
#: the event types the projection decodes: those ``evolve`` folds (derived from its dispatch)
INTERESTED = frozenset(name for name, t in TYPE_NAMES.items() if t in _EVOLVE)


def evolve(state: CollectorState, event: object) -> CollectorState:
    """Apply one event (in log order). Idempotent: applying an event twice changes nothing the second time."""
    step = _EVOLVE.get(type(event))
    if step is None:
        return state
    step(state, event)
    state.events_applied += 1
    return state


def parse_horizons(text: str) -> tuple[Hours, ...]:
    """``"0.25,1,24"`` -> ``(0.25, 1, 24)``: positive hours (fractions allowed), sorted, unique (``1`` and ``1.0``
    are one horizon). Raises ValueError otherwise."""
    out: set[Hours] = set()
    for raw in text.split(","):
        tok = raw.strip()
        if not tok:
            continue
        if not _HORIZON_TEXT.fullmatch(tok) or not math.isfinite(float(tok)) or float(tok) <= 0:
            raise ValueError(f"horizon {tok!r} is not a positive number of hours (e.g. 0.25, 1, 24)")
        out.add(hours(float(tok)))
    if not out:
        raise ValueError("no horizons given")
    return tuple(sorted(out))


def due_outcomes(
    state: CollectorState,
    now: datetime,
    horizons: Sequence[Hours],
    *,
    simulated: bool,
    max_attempts: int,
    limit: int | None = None,
    account: str | None = None,
) -> list[Due]:
    """Every unsettled horizon whose time has come, of posts whose ``simulated`` flag matches, oldest first.

    Live mode passes ``simulated=False`` (a simulated post has no page on X), shadow mode ``simulated=True``
    (a real tweet is never given a made-up outcome). ``account``: that account's posts only (``limit`` then
    bounds that account's list, so one account's backlog never crowds out another's).
    """
    hs = sorted(horizons)
    key = tuple(hs)
    seen, open_ids = state.open_posts.get(key, (0, {}))
    order = state.posted_order
    for d in order[seen:]:
        open_ids[d] = None
    state.open_posts[key] = (len(order), open_ids)
    open_posts: list[PostedInfo] = []
    for d in list(open_ids):
        if all(state.settled(d, h) for h in hs):  # nothing is ever owed for it again
            del open_ids[d]
            continue
        open_posts.append(state.posted[d])
    out: list[Due] = []
    for p in sorted(open_posts, key=lambda p: (p.posted_at, p.decision_id)):
        if p.simulated != simulated or (account is not None and p.account != account):
            continue
        age = now - p.posted_at
        for i, h in enumerate(hs):
            if age < timedelta(hours=h) or state.settled(p.decision_id, h):
                continue
            f = state.failures.get((p.decision_id, h))
            attempt = (f.attempts if f else 0) + 1
            if attempt > max_attempts:
                continue
            missed = any(age >= timedelta(hours=later) for later in hs[i + 1 :])
            out.append(Due(posted=p, horizon_hours=h, attempt=attempt, missed=missed))
    if limit is not None:
        out = out[:limit]
    return out


def _account_part(account: str) -> str:
    """The account in an event id: none for the default account (the ids of a one-account stack), else
    ``<account>:`` (the stream's duplicate window spans every account)."""
    return "" if account == DEFAULT_ACCOUNT else f"{account}:"


def outcome_event_id(decision_id: str, horizon: float, account: str = DEFAULT_ACCOUNT) -> str:
    return f"outcome:{_account_part(account)}{decision_id}:{hours_text(horizon)}"


def failure_event_id(decision_id: str, horizon: float, attempt: int, account: str = DEFAULT_ACCOUNT) -> str:
    return f"outcome-failed:{_account_part(account)}{decision_id}:{hours_text(horizon)}:{attempt}"


def outcome_recorded(
    due: Due,
    metrics: Mapping[str, int],
    *,
    simulated: bool,
    now: datetime,
    correlation_id: str | None = None,
) -> OutcomeRecorded:
    """The ``outcome.recorded`` event of one horizon, with ``er_calculated`` from the one formula."""
    p = due.posted
    counts = {k: int(metrics.get(k, 0)) for k in ("impressions", *ENGAGEMENT_FIELDS)}
    return OutcomeRecorded(
        event_id=outcome_event_id(p.decision_id, due.horizon_hours, p.account),
        occurred_at=now,
        correlation_id=correlation_id,
        account=p.account,
        decision_id=p.decision_id,
        tweet_id=p.tweet_id,
        horizon_hours=due.horizon_hours,
        er_calculated=engagement_rate(counts),
        simulated=simulated,
        collected_at=now,
        bandit_arm=p.bandit_arm,
        timing_arm=p.timing_arm,
        decision_type=p.decision_type,
        impressions=counts["impressions"],
        likes=counts["likes"],
        retweets=counts["retweets"],
        replies=counts["replies"],
        bookmarks=counts["bookmarks"],
        quotes=counts["quotes"],
    )


def collection_failed(
    due: Due,
    reason: str,
    *,
    retryable: bool,
    max_attempts: int,
    now: datetime,
    correlation_id: str | None = None,
) -> OutcomeCollectionFailed:
    """A failed read: final when it cannot get better (not retryable) or the attempts are used up."""
    final = (not retryable) or due.attempt >= max_attempts
    return OutcomeCollectionFailed(
        event_id=failure_event_id(due.posted.decision_id, due.horizon_hours, due.attempt, due.posted.account),
        occurred_at=now,
        correlation_id=correlation_id,
        account=due.posted.account,
        decision_id=due.posted.decision_id,
        tweet_id=due.posted.tweet_id,
        horizon_hours=due.horizon_hours,
        reason=reason[:500],
        attempt=due.attempt,
        final=final,
    )


def missed_window(due: Due, now: datetime, correlation_id: str | None = None) -> OutcomeCollectionFailed:
    age_h = (now - due.posted.posted_at).total_seconds() / 3600.0
    return collection_failed(
        due,
        f"{MISSED_WINDOW}: +{hours_text(due.horizon_hours)}h not collected before a later horizon came "
        f"(now +{age_h:.1f}h)",
        retryable=False,
        max_attempts=due.attempt,
        now=now,
        correlation_id=correlation_id,
    )
