"""Recent decisions: the state the planner and the replier (and anyone else who drafts) rebuild from the log.

``RecentDecisions`` is evolved, in log order, from decision, model and llm events; nothing here does I/O.
It holds:

* ``indexes`` -- per embedding model, a :class:`~shared.gates.UniquenessIndex` of EVERY queued and posted
  decision of the last ``uniqueness_window_days`` (embeddings + normalised content hashes); a decision that
  becomes skipped, finally failed or rejected leaves it. Vectors of different models are not comparable, so
  a draft is compared with the decisions embedded by its own model, and its exact content hash with all
  (``hash_twin``);
* ``rotation`` / ``reply_rotation`` -- :class:`~shared.gates.RotationWindow` s of the last 7 days: posts
  (single, thread) in one, replies in the other (a reply's topic is its target account and its angle its
  style, so replies rotate over accounts and styles without crowding the posts' topics); skipped drafts
  never count;
* ``model`` -- the latest ``model.updated`` (highest version) for the bandits and the predictor;
* ``targets`` -- target tweet id -> decision id of every reply drafted (queued, skipped or posted): a
  target is answered at most once, whatever restarts happen;
* ``pending`` -- scheduled times of the decisions still queued, and ``posted_times`` the recent posting
  times, for spacing new decisions ``MIN_POST_INTERVAL_MINUTES`` apart;
* ``spend`` -- LLM spend per UTC day (from ``llm.call_completed``), for health and reports.

Applying an event twice changes nothing the second time (promise 6). Times are the events' own: the
``occurred_at`` of a draft (written on the service clock) and the ``posted_at`` of a post.

Beside the state, what every drafting service shares: spacing (``earliest_free``, ``hour_window``), judging a
draft into ``decision.queued`` / ``decision.skipped`` (``judge_draft``, ``draft_features``, ``predicted_er``),
publishing a decision's first event at most once (``publish_draft``), and the writers (``LLMSettings``,
``LocalWriter`` for shadow mode, ``LiveWriters`` = ``GuardedLLM`` over OpenAI and the shared KV budget,
``llm_writers`` to wire both).
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from heapq import heappop, heappush
from heapq import merge as heap_merge
from typing import Any, Protocol

import msgspec
from pydantic import Field, field_validator

from shared.bus.core import WrongSequence
from shared.config import CommonSettings
from shared.errors import ConfigError
from shared.events import (
    DecisionPosted,
    DecisionPostFailed,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    LlmCallCompleted,
    ModelUpdated,
    new_event_id,
)
from shared.events.decision import FeatureValue
from shared.gates import (
    ChainOutcome,
    ClaimPolicy,
    GateConfig,
    GateResult,
    RotationWindow,
    UniquenessIndex,
    content_hash,
    flagged_claims,
    run_gate_chain,
)
from shared.gates.text import count_emoji, find_urls, weighted_length

#: the event types this state evolves from (a projection decodes only these)
INTERESTED: frozenset[str] = frozenset(
    {
        "decision.queued",
        "decision.skipped",
        "decision.posted",
        "decision.post_failed",
        "decision.rejected",
        "decision.rescheduled",
        "model.updated",
        "llm.call_completed",
    }
)

POST_TYPES = frozenset({"single", "thread"})
REPLY_WINDOW = timedelta(hours=24)
PRUNE_EVERY = 4096
PRUNE_MARGIN = timedelta(days=1)
ROTATION_WINDOW_DAYS = 7


class DecisionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the state keeps about one recent decision (the embedding lives in the index only)."""

    decision_id: str
    decision_type: str
    status: str  # queued | posted | skipped | failed | rejected
    at: datetime  # when it was drafted
    scheduled_at: datetime | None = None
    posted_at: datetime | None = None
    bandit_arm: str = ""
    topic_cluster: str = ""
    angle: str = ""
    target_tweet_id: str | None = None
    target_username: str | None = None
    generation_source: str = ""
    content_hash: str = ""

    @property
    def is_reply(self) -> bool:
        return self.decision_type == "reply"


def _latest(info: DecisionInfo) -> datetime:
    """When a decision last mattered: its posting time once posted, else when it was decided."""
    return max(info.at, info.posted_at or info.at)


@dataclass
class RecentDecisions:
    """The recent-decisions state; see the module docstring. Build it with ``RecentDecisions.empty(...)``."""

    rotation: RotationWindow
    reply_rotation: RotationWindow
    uniqueness_window: timedelta
    indexes: dict[str, UniquenessIndex] = field(default_factory=dict)
    hashes: dict[str, set[str]] = field(default_factory=dict)
    decisions: dict[str, DecisionInfo] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    model: ModelUpdated | None = None
    spend: dict[date, float] = field(default_factory=dict)
    llm_calls: int = 0
    events_applied: int = 0
    #: the latest event time seen: replay prunes against it, so the state holds the windows, not the whole log
    watermark: datetime | None = None
    #: the busy time of every decision that holds one (see ``busy_times``) and whether it is a reply, and the
    #: same as (time, decision_id) in time order per kind, so ``busy_since`` reads only the times near now
    _busy: dict[str, tuple[datetime, bool]] = field(default_factory=dict, repr=False)
    _busy_order: dict[bool, list[tuple[datetime, str]]] = field(
        default_factory=lambda: {False: [], True: []}, repr=False
    )
    #: queued decisions (id -> is a reply), so ``queued`` reads the queue and not the whole window
    _queued: dict[str, bool] = field(default_factory=dict, repr=False)
    #: a min-heap of (latest time, id) of the decisions that left the queue, so ``prune`` pops what fell out of
    #: every window instead of scanning all decisions (an entry made stale by a later change is skipped)
    _expiry: list[tuple[datetime, str]] = field(default_factory=list, repr=False)

    @classmethod
    def empty(cls, *, uniqueness_window_days: float = 30.0, rotation_window_days: float = ROTATION_WINDOW_DAYS
              ) -> RecentDecisions:
        return cls(
            rotation=RotationWindow(window_days=rotation_window_days),
            reply_rotation=RotationWindow(window_days=rotation_window_days),
            uniqueness_window=timedelta(days=uniqueness_window_days),
        )

    # ------------------------------------------------------------------------------------------ queries

    def index_for(self, embedding_model: str) -> UniquenessIndex:
        """The uniqueness index of one embedding model (empty until a decision embedded by it is queued)."""
        index = self.indexes.get(embedding_model)
        if index is None:
            index = self.indexes[embedding_model] = UniquenessIndex(
                window_days=self.uniqueness_window.total_seconds() / 86400
            )
        return index

    def indexed(self) -> int:
        return sum(len(i) for i in self.indexes.values())

    def hash_twin(self, content_hash: str, now: datetime, *, exclude: Iterable[str] = ()) -> str | None:
        """A queued or posted decision of the uniqueness window with this exact normalised hash, any model."""
        cutoff = now - self.uniqueness_window
        skip = set(exclude)
        for d in sorted(self.hashes.get(content_hash, ())):
            info = self.decisions.get(d)
            if d not in skip and info is not None and info.at >= cutoff:
                return d
        return None

    def window_for(self, decision_type: str) -> RotationWindow:
        return self.reply_rotation if decision_type == "reply" else self.rotation

    def queued(self, *, replies: bool | None = None) -> list[DecisionInfo]:
        """Decisions still queued (``replies``: True only replies, False only posts, None all)."""
        decisions = self.decisions
        return [decisions[d] for d, is_reply in self._queued.items() if replies is None or is_reply == replies]

    def busy_times(self, *, replies: bool | None = None) -> list[datetime]:
        """Times already taken: the scheduled times of queued decisions and the posting times of posted ones."""
        out: list[datetime] = []
        for d in self.decisions.values():
            if replies is not None and d.is_reply != replies:
                continue
            if d.status == "queued":
                out.append(d.scheduled_at or d.at)
            elif d.status == "posted" and d.posted_at is not None:
                out.append(d.posted_at)
        return out

    def busy_since(self, after: datetime, *, replies: bool) -> list[datetime]:
        """The busy times (as ``busy_times``) later than ``after``, of replies or of posts, in time order."""
        order = self._busy_order[replies]
        return [t for t, _ in order[bisect_right(order, after, key=lambda e: e[0]):]]

    def _track(self, decision_id: str) -> None:
        """Keep the busy-time index in step with ``decisions[decision_id]`` (call after every change)."""
        info = self.decisions.get(decision_id)
        new: tuple[datetime, bool] | None = None
        if info is not None and info.status == "queued":
            self._queued[decision_id] = info.is_reply
        else:
            self._queued.pop(decision_id, None)
            if info is not None:
                heappush(self._expiry, (_latest(info), decision_id))
        if info is not None:
            if info.status == "queued":
                new = (info.scheduled_at or info.at, info.is_reply)
            elif info.status == "posted" and info.posted_at is not None:
                new = (info.posted_at, info.is_reply)
        old = self._busy.get(decision_id)
        if old == new:
            return
        if old is not None:
            order = self._busy_order[old[1]]
            del order[bisect_left(order, (old[0], decision_id))]
            del self._busy[decision_id]
        if new is not None:
            self._busy[decision_id] = new
            insort(self._busy_order[new[1]], (new[0], decision_id))

    def replies_in_last_day(self, now: datetime) -> int:
        """Replies queued or posted within the last 24 hours (queued ones by their scheduled time, or when
        drafted; posted ones by their posting time). Queued replies scheduled later count too."""
        cutoff = now - REPLY_WINDOW
        n = 0
        for d in self.decisions.values():
            if not d.is_reply:
                continue
            if d.status == "posted":
                at = d.posted_at or d.at
            elif d.status == "queued":
                at = max(d.scheduled_at or d.at, d.at)
            else:
                continue
            if at >= cutoff:
                n += 1
        return n

    def answered(self, target_tweet_id: str) -> bool:
        """A reply to this tweet was drafted already (queued, skipped, posted or failed): never again."""
        return target_tweet_id in self.targets

    def spent_on(self, day: date) -> float:
        return self.spend.get(day, 0.0)

    # ------------------------------------------------------------------------------------------ evolve

    def apply(self, event: Any) -> None:
        """Evolve from one event, in log order. Unknown events are ignored. Every ``PRUNE_EVERY`` events what
        is older than every window (less a day of margin for clocks) before the latest event time is forgotten,
        as the jobs' own prune would: a year of log keeps a month of state."""
        self.events_applied += 1
        at = getattr(event, "occurred_at", None)
        if at is not None and (self.watermark is None or at > self.watermark):
            self.watermark = at
        if self.events_applied % PRUNE_EVERY == 0 and self.watermark is not None:
            self.prune(self.watermark - PRUNE_MARGIN)
        if isinstance(event, DecisionQueued):
            self._on_draft(event, "queued")
        elif isinstance(event, DecisionSkipped):
            self._on_draft(event, "skipped")
        elif isinstance(event, DecisionPosted):
            self._on_posted(event)
        elif isinstance(event, DecisionPostFailed):
            if event.final:
                self._set_status(event.decision_id, "failed")
        elif isinstance(event, DecisionRejected):
            self._set_status(event.decision_id, "rejected")
        elif isinstance(event, DecisionRescheduled):
            info = self.decisions.get(event.decision_id)
            if info is not None and info.status == "queued":
                self.decisions[event.decision_id] = msgspec.structs.replace(info, scheduled_at=event.scheduled_at)
                self._track(event.decision_id)
        elif isinstance(event, ModelUpdated):
            if self.model is None or event.version >= self.model.version:
                self.model = event
        elif isinstance(event, LlmCallCompleted):
            day = event.occurred_at.date()
            self.spend[day] = self.spend.get(day, 0.0) + float(event.cost_usd)
            self.llm_calls += 1

    def _on_draft(self, ev: DecisionQueued | DecisionSkipped, status: str) -> None:
        known = self.decisions.get(ev.decision_id)
        if known is not None and known.status != "queued" and status == "queued":
            return  # a late or repeated queued never resurrects a decision that moved on
        if known is not None and known.status == "queued" and status == "queued":
            return  # the same queued seen twice
        at = ev.occurred_at
        info = DecisionInfo(
            decision_id=ev.decision_id,
            decision_type=ev.decision_type,
            status=status,
            at=at,
            scheduled_at=ev.scheduled_at,
            bandit_arm=ev.bandit_arm,
            topic_cluster=ev.topic_cluster,
            angle=ev.angle,
            target_tweet_id=ev.target_tweet_id,
            target_username=ev.target_username,
            generation_source=ev.generation_source,
            content_hash=ev.content_hash,
        )
        self.decisions[ev.decision_id] = info
        self._track(ev.decision_id)
        if ev.target_tweet_id:
            self.targets.setdefault(ev.target_tweet_id, ev.decision_id)
        window = self.window_for(ev.decision_type)
        if status == "queued":
            if ev.embedding:
                self.index_for(ev.embedding_model).add(ev.decision_id, ev.embedding, ev.content_hash, at)
            if ev.content_hash:
                self.hashes.setdefault(ev.content_hash, set()).add(ev.decision_id)
            window.add(ev.decision_id, ev.topic_cluster, ev.angle, at, "queued")
        else:
            self._unindex(ev.decision_id, ev.content_hash)
            window.remove(ev.decision_id)

    def _unindex(self, decision_id: str, chash: str | None) -> None:
        for index in self.indexes.values():
            index.remove(decision_id)
        if chash:
            ids = self.hashes.get(chash)
            if ids is not None:
                ids.discard(decision_id)
                if not ids:
                    del self.hashes[chash]

    def _on_posted(self, ev: DecisionPosted) -> None:
        info = self.decisions.get(ev.decision_id)
        if info is None:
            # posted but drafted before our window (or by an older system): keep its time for spacing
            info = DecisionInfo(
                decision_id=ev.decision_id, decision_type=ev.decision_type, status="posted", at=ev.posted_at,
                bandit_arm=ev.bandit_arm,
            )
        self.decisions[ev.decision_id] = msgspec.structs.replace(info, status="posted", posted_at=ev.posted_at)
        self._track(ev.decision_id)
        self.window_for(info.decision_type).set_status(ev.decision_id, "posted")

    def _set_status(self, decision_id: str, status: str) -> None:
        info = self.decisions.get(decision_id)
        if info is None or info.status == "posted":
            return
        self.decisions[decision_id] = msgspec.structs.replace(info, status=status)
        self._track(decision_id)
        self._unindex(decision_id, info.content_hash)
        self.window_for(info.decision_type).remove(decision_id)

    # ------------------------------------------------------------------------------------------ upkeep

    def prune(self, now: datetime) -> int:
        """Forget what is older than every window (keeps answered targets: they are never answered again)."""
        for index in self.indexes.values():
            index.prune(now)
        self.rotation.prune(now)
        self.reply_rotation.prune(now)
        horizon = max(self.uniqueness_window, self.rotation.window, REPLY_WINDOW)
        cutoff = now - horizon
        expiry, decisions = self._expiry, self.decisions
        old = 0
        while expiry and expiry[0][0] < cutoff:
            _, d = heappop(expiry)
            info = decisions.get(d)
            if info is None or info.status == "queued" or _latest(info) >= cutoff:
                continue  # gone already, back in the queue, or changed since: a later entry stands for it
            self._unindex(d, decisions.pop(d).content_hash)
            self._track(d)
            old += 1
        for day in [day for day in self.spend if day < (now - timedelta(days=7)).date()]:
            del self.spend[day]
        return old

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for d in self.decisions.values():
            counts[d.status] = counts.get(d.status, 0) + 1
        return {
            "decisions": counts,
            "indexed": self.indexed(),
            "targets_answered": len(self.targets),
            "model_version": self.model.version if self.model else None,
            "llm_calls": self.llm_calls,
            "events_applied": self.events_applied,
        }


def replay(events: Iterable[Any], **kw: Any) -> RecentDecisions:
    """A state built from ``events`` in order (tests and tools)."""
    state = RecentDecisions.empty(**kw)
    for ev in events:
        state.apply(ev)
    return state


# ---------------------------------------------------------------------------------------------- scheduling


class BusyTimes:
    """Busy times, each with the gap it needs, turned once into the sorted, disjoint intervals they block: a busy
    time ``q`` with gap ``g`` blocks the open interval ``(q - g, q + g)``, and overlapping intervals are merged
    (two that only touch stay apart: the point between them is free). ``earliest_free`` is then one bisection,
    so one plan can try all 24 hourly slots against the same times cheaply, however packed the queue is."""

    def __init__(self, busy: Iterable[datetime | tuple[datetime, timedelta]], gap: timedelta) -> None:
        blocked = sorted((q - g, q + g) for q, g in ((b, gap) if isinstance(b, datetime) else b for b in busy)
                         if g > timedelta(0))
        self._merge(blocked)

    @classmethod
    def of_sorted(cls, groups: Iterable[tuple[Sequence[datetime], timedelta]]) -> BusyTimes:
        """The same as ``BusyTimes(busy, gap)`` for busy times given in groups, each in time order with its own
        gap (the planner's queued posts and replies): no sort, the groups' intervals merged as they come."""
        runs = [(times, g) for times, g in groups if times and g > timedelta(0)]
        self = cls.__new__(cls)
        if len(runs) == 1:  # one gap: the intervals come in order of their start and of their end
            times, g = runs[0]
            starts: list[datetime] = []
            ends: list[datetime] = []
            for q in times:
                lo = q - g
                if ends and lo < ends[-1]:
                    ends[-1] = q + g
                else:
                    starts.append(lo)
                    ends.append(q + g)
            self.starts, self.ends, self._n = starts, ends, len(times)
        else:
            self._merge(list(heap_merge(*([(q - g, q + g) for q in times] for times, g in runs))))
        return self

    def _merge(self, blocked: list[tuple[datetime, datetime]]) -> None:
        """``blocked`` in order of start, merged where they overlap."""
        starts: list[datetime] = []
        ends: list[datetime] = []
        for lo, hi in blocked:
            if ends and lo < ends[-1]:  # overlaps the interval before (open intervals: touching is not overlapping)
                if hi > ends[-1]:
                    ends[-1] = hi
            else:
                starts.append(lo)
                ends.append(hi)
        self.starts, self.ends = starts, ends
        self._n = len(blocked)

    def __len__(self) -> int:
        return self._n

    def first_free(self, t: datetime) -> datetime:
        """The earliest moment at or after ``t`` that no busy time blocks."""
        i = bisect_left(self.starts, t) - 1  # the last interval starting before t (t is inside it or after it)
        if i >= 0 and t < self.ends[i]:
            return self.ends[i]  # the next interval starts at or after this end, so the end is free
        return t


def earliest_free(
    begin: datetime,
    end: datetime | None,
    busy: BusyTimes | Iterable[datetime | tuple[datetime, timedelta]],
    gap: timedelta,
) -> datetime | None:
    """The earliest time ``t`` in ``[begin, end)`` at least ``gap`` away from every busy time (None if none).

    A busy entry may carry its own gap: ``(time, gap)``. ``end=None`` means unbounded. ``busy`` may be a
    ``BusyTimes`` built once for many calls (its gaps were given when it was built; ``gap`` is then not used).
    """
    times = busy if isinstance(busy, BusyTimes) else BusyTimes(busy, gap)
    t = times.first_free(begin)
    return t if end is None or t < end else None


def hour_window(hour: int, now: datetime, *, days_ahead: int = 0) -> tuple[datetime, datetime]:
    """``[begin, end)`` of the next occurrence of the UTC hour ``hour`` (``days_ahead`` days later):
    today's if it has not ended yet (starting no earlier than ``now``), else tomorrow's."""
    start = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if start + timedelta(hours=1) <= now:
        start += timedelta(days=1)
    start += timedelta(days=days_ahead)
    begin = max(start, now.replace(microsecond=0))
    return begin, start + timedelta(hours=1)


# ---------------------------------------------------------------------------------------------- judging


def draft_features(parts: Sequence[str], *, decision_type: str, topic: str, angle: str, hour: int | None
                   ) -> dict[str, FeatureValue]:
    """What a decision looked like when it was queued: the seed's ``features`` column, the predictors' inputs."""
    text = " ".join(parts)
    return {
        "decision_type": decision_type,
        "topic": topic,
        "angle": angle,
        "hour": hour,
        "n_parts": len(parts),
        "weighted_length": sum(weighted_length(p) for p in parts),
        "has_question": "?" in text,
        "has_number": any(ch.isdigit() for ch in text),
        "n_hashtags": text.count("#"),
        "n_emoji": count_emoji(text),
        "n_urls": len(find_urls(text)),
    }


def judge_draft(
    *,
    decision_id: str,
    decision_type: str,
    parts: Sequence[str],
    bandit_arm: str,
    topic: str,
    angle: str,
    embedding: bytes,
    embedding_model: str,
    generation_source: str,
    state: RecentDecisions,
    now: datetime,
    live: bool,
    gate: GateConfig,
    scheduled_at: datetime | None,
    timing_arm: str | None,
    features: dict[str, FeatureValue] | None = None,
    predict: Callable[[dict[str, FeatureValue]], float | None] | None = None,
    model_version: int | None = None,
    target_tweet_id: str | None = None,
    target_username: str | None = None,
    correlation_id: str | None = None,
    event_id: str | None = None,
    schedule: Callable[[], tuple[datetime, str, dict[str, FeatureValue]]] | None = None,
    claims: ClaimPolicy | None = None,
    flag_claims: bool = False,
) -> tuple[DecisionQueued | DecisionSkipped, ChainOutcome]:
    """Run the gate chain on one draft and write the event that records it: ``decision.queued`` when every
    gate passed, else ``decision.skipped`` with the blocking gate, its reason and score (no schedule).

    ``features`` gets the quality score added; ``predict(features)`` gives ``predicted_er`` (None without it).
    ``schedule``, when given, is called only for a draft that passed (no gate depends on the slot, and a skipped
    draft is never slotted): it returns the ``scheduled_at``, ``timing_arm`` and ``features`` to record, in place
    of the arguments of those names (a skipped draft keeps ``features`` and has no timing arm).

    The claims gate (``claims``: the account's facts and languages; no facts when None) runs on every draft of
    the real LLM (``generation_source='real'``) and on no synthetic one: a template's "results" are never
    posted to X, and checking them would only thin out the shadow loop. With ``flag_claims``
    (REQUIRE_APPROVAL=true) an unsupported claim does not skip the draft: it is queued, for a person to
    approve, with the sentences in ``flagged_claims``; a skipped draft lists them there too.
    """
    part_list = list(parts)
    policy = (claims or ClaimPolicy()) if generation_source == "real" else None
    chash = content_hash(part_list)
    outcome = run_gate_chain(
        parts=part_list,
        decision_type=decision_type,
        embedding=embedding,
        topic=topic,
        angle=angle,
        index=state.index_for(embedding_model),
        window=state.window_for(decision_type),
        now=now,
        live=live,
        content_hash=chash,
        config=gate,
        exclude=(decision_id,),
        claims=policy,
        flag_claims=flag_claims,
    )
    twin = state.hash_twin(chash, now, exclude=(decision_id,))
    if outcome.passed and twin is not None:  # the same text queued under another embedding model
        blocked_by = GateResult("uniqueness", False, "duplicate_hash", 1.0, {"duplicate_of": twin})
        results = [r for r in outcome.results if r.gate in ("quality", "claims")] + [blocked_by]
        outcome = ChainOutcome(False, results, blocked_by)
    if schedule is not None:
        if outcome.passed:
            scheduled_at, timing_arm, features = schedule()
        else:
            scheduled_at, timing_arm = None, None
    quality = outcome.result("quality")
    quality_score = None if quality is None or quality.score is None else round(float(quality.score), 6)
    feats: dict[str, FeatureValue] = {**(features or {}), "quality_score": quality_score}
    common: dict[str, Any] = dict(
        event_id=event_id or new_event_id(),
        occurred_at=now,
        correlation_id=correlation_id,
        decision_id=decision_id,
        decision_type=decision_type,
        content="\n\n".join(part_list),
        parts=part_list,
        bandit_arm=bandit_arm,
        timing_arm=timing_arm,
        quality_score=quality_score,
        predicted_er=predict(feats) if predict is not None else None,
        generation_source=generation_source,
        topic_cluster=topic,
        angle=angle,
        content_hash=chash,
        features=feats,
        embedding=embedding,
        embedding_model=embedding_model,
        target_tweet_id=target_tweet_id,
        target_username=target_username,
        model_version=model_version,
        flagged_claims=flagged_claims(outcome.result("claims")),
    )
    if outcome.passed:
        return DecisionQueued(scheduled_at=scheduled_at, **common), outcome
    blocked = outcome.blocked_by
    assert blocked is not None
    return (
        DecisionSkipped(
            scheduled_at=None,
            gate=blocked.gate,
            skip_reason=blocked.reason,
            score=None if blocked.score is None else float(blocked.score),
            **common,
        ),
        outcome,
    )


async def publish_draft(publish: Callable[..., Awaitable[int]], event: DecisionQueued | DecisionSkipped, prefix: str) -> bool:
    """Publish a decision's first event; False when the decision already has one (another run got there)."""
    try:
        await publish(event, **first_event_guard(event.decision_id, prefix))
    except WrongSequence:
        return False
    return True


def first_event_guard(decision_id: str, prefix: str) -> dict[str, Any]:
    """The publish arguments that make the server refuse an event unless it is the decision's first."""
    return {"expected_last_subject_seq": 0, "expected_subject": f"{prefix}.decision.{decision_id}.*"}


Predictor = Callable[[ModelUpdated, dict[str, Any]], float | None]


def predicted_er(model: ModelUpdated | None, features: dict[str, Any], predict: Predictor | None) -> float | None:
    """The latest model's ER prediction for a draft, or ``None`` when there is no model, no predictor or no
    prediction (never a made-up number)."""
    if model is None or not model.predictors or predict is None:
        return None
    try:
        value = predict(model, features)
    except Exception:
        return None
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


# ---------------------------------------------------------------------------------------------- drafting


class LLMSettings(CommonSettings):
    """Settings of a service that drafts with the LLM (the planner, the replier). OPENAI_MODEL, EMBED_MODEL,
    the budget and the circuit are flags (runtime-changeable); these are the rest."""

    #: required when MODE=live: the service stops at start with one line without it
    OPENAI_API_KEY: str = ""
    #: an OpenAI-compatible endpoint (empty = OpenAI's own)
    OPENAI_BASE_URL: str = ""
    #: per-model prices overriding the built-in table, e.g. {"gpt-4o-mini": [0.15, 0.6]}
    LLM_PRICES_JSON: str = ""
    #: seconds before one LLM call counts as failed (reason timeout)
    LLM_TIMEOUT_SECONDS: float = Field(30.0, gt=0, le=600)
    #: completion tokens a draft may use (what the budget reserves per call)
    LLM_MAX_OUTPUT_TOKENS: int = Field(700, ge=50, le=16000)
    #: json_schema (structured outputs) or json_object (plain JSON mode, for servers without the former)
    LLM_JSON_MODE: str = Field("json_schema", pattern=r"^(json_schema|json_object)$")
    #: how many more calls a draft may make when an answer comes back unusable even after the free repairs
    LLM_DRAFT_RETRIES: int = Field(1, ge=0, le=3)
    #: keep this many days of queued/posted decisions in the uniqueness check
    UNIQUENESS_WINDOW_DAYS: float = Field(30.0, gt=0, le=3650)
    #: dimensions of the local hashing embedder of shadow mode
    LOCAL_EMBED_DIM: int = Field(256, ge=16, le=8192)
    #: what the account may say about itself, a JSON list of strings (unset = nothing): a live draft's
    #: first-person results, statistics, money, named employers or customers must be held by one of them
    #: (the claims gate); the live prompt passes them as the only facts the model may state. An account
    #: profile will supply the same list.
    ACCOUNT_FACTS: str = ""
    #: languages the account writes in (comma-separated: en, es, de, fr); the claims gate reads their
    #: first-person markers, the prompt asks for them
    ACCOUNT_LANGUAGES: str = "en"

    @field_validator("LLM_PRICES_JSON")
    @classmethod
    def _prices(cls, v: str) -> str:
        from shared.llm.pricing import PriceTable

        try:
            PriceTable.from_json(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("ACCOUNT_FACTS")
    @classmethod
    def _facts(cls, v: str) -> str:
        from shared.gates.claims import parse_facts

        parse_facts(v)  # ValueError -> "ACCOUNT_FACTS is invalid: ..."
        return v

    @field_validator("ACCOUNT_LANGUAGES")
    @classmethod
    def _languages(cls, v: str) -> str:
        from shared.gates.claims import parse_languages

        parse_languages(v)
        return v

    def claim_policy(self) -> ClaimPolicy:
        """The account's facts and languages, as the claims gate and the prompt take them."""
        return ClaimPolicy.from_settings(self.ACCOUNT_FACTS, self.ACCOUNT_LANGUAGES)

    def check_live(self, flags: Any) -> None:
        """MODE=live needs OPENAI_API_KEY: raise the one-line ConfigError the runtime prints at start."""
        if getattr(flags, "MODE", "shadow") == "live" and not self.OPENAI_API_KEY.strip():
            raise ConfigError("OPENAI_API_KEY is missing (MODE=live needs it)")


class Writer(Protocol):
    """Drafts and embeds: ``GuardedLLM`` in live mode, ``LocalWriter`` in shadow mode."""

    async def draft(self, request: Any, *, correlation_id: str | None = None) -> Any: ...

    async def embed(self, texts: Sequence[str], *, correlation_id: str | None = None) -> Any: ...


class LocalWriter:
    """Shadow mode's writer: the synthetic writer and the local hashing embedder (no network, no cost, no
    ``llm.*`` events: nothing is called)."""

    def __init__(self, *, embed_dim: int = 256) -> None:
        from shared.llm.synthetic import HashingEmbedder, SyntheticWriter

        self.llm = SyntheticWriter()
        self.embedder = HashingEmbedder(embed_dim)

    async def draft(self, request: Any, *, correlation_id: str | None = None) -> Any:
        return await self.llm.draft(request)

    async def embed(self, texts: Sequence[str], *, correlation_id: str | None = None) -> Any:
        return await self.embedder.embed(texts)


class LiveWriters:
    """Live mode's writer: ``GuardedLLM`` over the OpenAI adapters, the shared KV budget and ``emit``.

    Built lazily per (OPENAI_MODEL, EMBED_MODEL) flag values, so a runtime model change applies on the next
    call; ``None`` when OPENAI_API_KEY is not set.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        budget_store: Any,
        flags: Callable[[], Any],
        clock: Callable[[], datetime],
        emit: Callable[[Any], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.budget_store = budget_store
        self.flags = flags
        self.clock = clock
        self.emit = emit
        self._built: dict[tuple[str, str], Any] = {}

    def current(self) -> Any | None:
        s = self.settings
        if not s.OPENAI_API_KEY.strip():
            return None
        f = self.flags()
        key = (f.OPENAI_MODEL, f.EMBED_MODEL)
        guarded = self._built.get(key)
        if guarded is None:
            from shared.llm import GuardedLLM, PriceTable, openai_adapters

            llm, embedder = openai_adapters(
                s.OPENAI_API_KEY,
                base_url=s.OPENAI_BASE_URL or None,
                model=f.OPENAI_MODEL,
                embed_model=f.EMBED_MODEL,
                timeout=s.LLM_TIMEOUT_SECONDS,
                max_output_tokens=s.LLM_MAX_OUTPUT_TOKENS,
                json_mode=s.LLM_JSON_MODE,
            )
            guarded = GuardedLLM(
                llm, embedder, self.budget_store, self.flags, self.clock, self.emit,
                prices=PriceTable.from_json(s.LLM_PRICES_JSON), draft_retries=s.LLM_DRAFT_RETRIES,
            )
            self._built[key] = guarded
        return guarded

    async def close(self) -> None:
        for guarded in self._built.values():
            client = getattr(guarded.llm, "client", None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        self._built.clear()


async def llm_writers(ctx: Any, settings: LLMSettings) -> tuple[LocalWriter, LiveWriters]:
    """Wire a drafting service (``ctx`` is its ``ServiceContext``): the shadow writer, and the live writer
    factory over the shared KV budget that reports every call as an ``llm.*`` event on the bus."""
    from shared.llm import KVBudgetStore, record_to_event

    bus = ctx.bus

    async def emit(record: Any) -> None:
        await bus.publish(record_to_event(record, service=ctx.name))

    budget = KVBudgetStore(await bus.kv("budget"))
    live = LiveWriters(settings, budget_store=budget, flags=ctx.flags.current, clock=ctx.clock.now, emit=emit)
    return LocalWriter(embed_dim=settings.LOCAL_EMBED_DIM), live
