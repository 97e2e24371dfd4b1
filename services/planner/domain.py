"""The planner's pure core: what to write next, when to post it, and whether it may be queued.

For the drafts of a ``plan`` run (no I/O here; the handler does the LLM calls and the publishing):

1. **Arm** (``pick``) -- a content arm ``<topic>:<angle>`` by Thompson sampling from the latest ``model.updated``
   posteriors of scope ``content`` (uniform Beta(1, 1) for an arm without one, so before any model every arm
   is equally likely). Arms whose topic or angle the rotation gate would block right now are left out first
   (when at least one arm remains), so no LLM money is spent on a draft that cannot be queued. A run picks
   every draft's arm before it writes any, each pick counting the run's earlier picks as queued.
2. **Type** -- ``thread`` with probability ``thread_ratio``, else ``single``.
3. **Slot** (``slot``, once the draft has passed every gate: no gate depends on it, and a skipped draft is
   never slotted, so its ``decision.skipped`` has no timing arm and ``hour`` null in its features) -- an hour by UCB1
   over the 24 hourly slots of the model (every hour untried before any model), among the hours whose next
   occurrence still has room; ``scheduled_at`` is the earliest moment of that occurrence that keeps ``gap``
   (``MIN_POST_INTERVAL_MINUTES``, or 60 / ``MAX_POSTS_PER_HOUR`` minutes when that is longer, so the poster can
   honour both) from every queued and recent post, and ``MIN_POST_INTERVAL_MINUTES`` from every queued and
   recent reply (replies are not under the hourly cap).
4. **Judge** (before the slot: the handler slots a draft that passed) -- the gate chain (quality, claims,
   uniqueness over every queued and posted decision of the window, rotation over the last 7 days), then
   ``decision.queued`` or ``decision.skipped`` (see ``shared.drafting.judge``), one draft after another, each
   against the state with the run's earlier drafts applied.

``predicted_er`` comes from the latest model's ER predictor, ``None`` when there is none (never made up).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np

from shared.drafting import BusyTimes, RecentDecisions, earliest_free, hour_window
from shared.events import ArmState, ModelUpdated
from shared.flags import Flags
from shared.gates import GateConfig, RotationWindow
from shared.gates.rotation import rotation_allows, rotation_key
from shared.learning.arms import CONTENT_SCOPE, HOURS, default_content_arms, split_arm, timing_arm
from shared.learning.bandits import thompson_choose, ucb1_choose

#: how many days ahead a fully booked hour is searched for room before giving up on spacing
MAX_DAYS_AHEAD = 60


class PlanPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs of one run, from the flags and the settings."""

    live: bool
    gate: GateConfig = GateConfig()
    min_interval_minutes: int = 15
    max_posts_per_hour: int = 1
    thread_ratio: float = 0.25
    arms: tuple[str, ...] = ()
    #: the UTC hours a post may be slotted in (the account's active hours)
    hours: tuple[int, ...] = HOURS

    @property
    def gap(self) -> timedelta:
        minutes = float(self.min_interval_minutes)
        if self.max_posts_per_hour > 0:
            minutes = max(minutes, 60.0 / self.max_posts_per_hour)
        return timedelta(minutes=minutes)

    def content_arms(self) -> tuple[str, ...]:
        return self.arms or default_content_arms()


def gate_config(flags: Flags, banned_phrases: Sequence[str] = ()) -> GateConfig:
    return GateConfig(min_quality_score=flags.MIN_QUALITY_SCORE, dup_cosine_threshold=flags.DUP_COSINE_THRESHOLD,
                      banned_phrases=tuple(banned_phrases))


def policy_from(flags: Flags, *, thread_ratio: float = 0.25, arms: Sequence[str] = (),
                banned_phrases: Sequence[str] = (), hours: Sequence[int] = HOURS) -> PlanPolicy:
    return PlanPolicy(
        live=flags.live,
        gate=gate_config(flags, banned_phrases),
        min_interval_minutes=flags.MIN_POST_INTERVAL_MINUTES,
        max_posts_per_hour=flags.MAX_POSTS_PER_HOUR,
        thread_ratio=thread_ratio,
        arms=tuple(arms),
        hours=tuple(hours) or HOURS,
    )


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    """What one draft will be: its arm, type and slot, before a word is written."""

    decision_id: str
    bandit_arm: str
    topic: str
    angle: str
    decision_type: str
    hour: int
    timing_arm: str
    scheduled_at: datetime
    model_version: int | None
    seed: int


def posteriors(model: ModelUpdated | None, scope: str) -> dict[tuple[str, str], ArmState]:
    """The model's Beta posteriors of one scope, keyed ``(scope, arm)`` as ``thompson_choose`` wants them."""
    if model is None:
        return {}
    return {(a.scope, a.arm): a for a in model.arms if a.scope == scope}


class _Sum:
    """Two counters read as one (``get`` only, which is all ``rotation_gate`` reads)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Mapping[str, int], b: Mapping[str, int]):
        self.a, self.b = a, b

    def get(self, key: str, default: int = 0) -> int:
        return self.a.get(key, 0) + self.b.get(key, 0) or default


class PendingPicks:
    """A rotation window as it will be once the run's picks so far are queued: a run picks every arm before it
    writes, so each pick counts the earlier ones. Read-only for ``rotation_gate``; ``add`` costs O(1)."""

    def __init__(self, window: RotationWindow):
        self.window = window
        self.n = 0
        self.topics: Counter[str] = Counter()
        self.angles: Counter[str] = Counter()

    def add(self, topic: str, angle: str) -> None:
        self.n += 1
        self.topics[rotation_key(topic)] += 1
        self.angles[rotation_key(angle)] += 1

    def counts(self, now: datetime, *, copy: bool = True) -> tuple[int, Any, Any]:
        n, topics, angles = self.window.counts(now, copy=False)
        return n + self.n, _Sum(topics, self.topics), _Sum(angles, self.angles)


def eligible_arms(arms: Sequence[str], window: RotationWindow | PendingPicks, now: datetime, gate: GateConfig
                  ) -> list[str]:
    """The arms whose topic and angle the rotation gate would let through now (all of them when none would)."""
    n, topics, angles = window.counts(now, copy=False)
    ok: list[str] = []
    verdicts: dict[tuple[str, str], bool] = {}
    for arm in arms:
        key = split_arm(arm)
        verdict = verdicts.get(key)
        if verdict is None:
            topic, angle = key
            verdict = verdicts[key] = rotation_allows(
                topics.get(rotation_key(topic), 0), angles.get(rotation_key(angle), 0), n,
                topic_max=gate.topic_max, angle_max=gate.angle_max, min_sample=gate.min_sample,
            )
        if verdict:
            ok.append(arm)
    return ok or list(arms)


def choose_arm(state: RecentDecisions, policy: PlanPolicy, now: datetime, rng: np.random.Generator,
               pending: PendingPicks | None = None) -> str:
    arms = eligible_arms(policy.content_arms(), state.rotation if pending is None else pending, now, policy.gate)
    return thompson_choose(posteriors(state.model, CONTENT_SCOPE), arms, rng, scope=CONTENT_SCOPE)


def choose_slot(
    model: ModelUpdated | None,
    busy: BusyTimes | Sequence[datetime | tuple[datetime, timedelta]],
    now: datetime,
    gap: timedelta,
    rng: np.random.Generator,
    hours: Sequence[int] = HOURS,
) -> tuple[int, datetime]:
    """UCB1 over the ``hours`` (the account's active ones, in UTC) that still have room in their next occurrence;
    the earliest free moment in it."""
    times = busy if isinstance(busy, BusyTimes) else BusyTimes(busy, gap)  # merged once for every hour tried
    free = {h: earliest_free(*hour_window(h, now), times, gap) for h in hours}
    open_hours = [h for h in hours if free[h] is not None]
    slots = [s for s in model.slots if s.hour in free] if model is not None else []
    hour = ucb1_choose(slots, rng, hours=open_hours or list(hours))
    at = free.get(hour)
    days = 1
    while at is None and days <= MAX_DAYS_AHEAD:
        at = earliest_free(*hour_window(hour, now, days_ahead=days), times, gap)
        days += 1
    if at is None:  # booked solid for two months: keep the spacing, leave the hour
        at = earliest_free(hour_window(hour, now)[0], None, times, gap)
        assert at is not None
    return hour, at


class Pick(msgspec.Struct, frozen=True, kw_only=True):
    """What one draft will be about, before a word is written (its slot is chosen once it has passed the gates)."""

    decision_id: str
    bandit_arm: str
    topic: str
    angle: str
    decision_type: str
    model_version: int | None
    seed: int


def pick(
    state: RecentDecisions,
    policy: PlanPolicy,
    now: datetime,
    rng: np.random.Generator,
    *,
    decision_id: str,
    pending: PendingPicks | None = None,
) -> Pick:
    """Arm and type of the next draft (steps 1 and 2 of the module docstring), the run's ``pending`` picks
    counted as queued (``PendingPicks`` over ``state.rotation``)."""
    arm = choose_arm(state, policy, now, rng, pending)
    topic, angle = split_arm(arm)
    decision_type = "thread" if rng.random() < policy.thread_ratio else "single"
    return Pick(
        decision_id=decision_id, bandit_arm=arm, topic=topic, angle=angle, decision_type=decision_type,
        model_version=state.model.version if state.model is not None else None,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def slot(state: RecentDecisions, policy: PlanPolicy, now: datetime, rng: np.random.Generator) -> tuple[int, datetime]:
    """Hour and ``scheduled_at`` for a draft queued now (step 3 of the module docstring)."""
    reply_gap = timedelta(minutes=policy.min_interval_minutes)
    # Every slot tried starts at now (to the second) or later and only moves forward, so a busy time more than its
    # gap before that can never conflict: only the recent and future ones are read (the same slot results).
    since = now - max(policy.gap, reply_gap) - timedelta(seconds=1)
    busy = BusyTimes.of_sorted([(state.busy_since(since, replies=False), policy.gap),
                                (state.busy_since(since, replies=True), reply_gap)])
    return choose_slot(state.model, busy, now, policy.gap, rng, policy.hours)


def choose(
    state: RecentDecisions,
    policy: PlanPolicy,
    now: datetime,
    rng: np.random.Generator,
    *,
    decision_id: str,
) -> Choice:
    """Arm, type and slot of one draft at once (see the module docstring)."""
    p = pick(state, policy, now, rng, decision_id=decision_id)
    hour, at = slot(state, policy, now, rng)
    return Choice(
        decision_id=decision_id,
        bandit_arm=p.bandit_arm,
        topic=p.topic,
        angle=p.angle,
        decision_type=p.decision_type,
        hour=hour,
        timing_arm=timing_arm(hour),
        scheduled_at=at,
        model_version=p.model_version,
        seed=p.seed,
    )
