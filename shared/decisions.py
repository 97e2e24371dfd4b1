"""Recent decisions: the state the planner and the replier (and anyone else who drafts) rebuild from the log.

``RecentDecisions`` is evolved, in log order, from decision, model and llm events; nothing here does I/O.
It holds:

* ``index`` -- a :class:`~shared.gates.UniquenessIndex` of EVERY queued and posted decision of the last
  ``uniqueness_window_days`` (embeddings + normalised content hashes); a decision that becomes skipped,
  finally failed or rejected leaves it;
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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import msgspec

from shared.events import (
    DecisionPosted,
    DecisionPostFailed,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    LlmCallCompleted,
    ModelUpdated,
)
from shared.gates import RotationWindow, UniquenessIndex

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

    @property
    def is_reply(self) -> bool:
        return self.decision_type == "reply"


@dataclass
class RecentDecisions:
    """The recent-decisions state; see the module docstring. Build it with ``RecentDecisions.empty(...)``."""

    index: UniquenessIndex
    rotation: RotationWindow
    reply_rotation: RotationWindow
    uniqueness_window: timedelta
    decisions: dict[str, DecisionInfo] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    model: ModelUpdated | None = None
    spend: dict[date, float] = field(default_factory=dict)
    llm_calls: int = 0
    events_applied: int = 0

    @classmethod
    def empty(cls, *, uniqueness_window_days: float = 30.0, rotation_window_days: float = ROTATION_WINDOW_DAYS
              ) -> RecentDecisions:
        return cls(
            index=UniquenessIndex(window_days=uniqueness_window_days),
            rotation=RotationWindow(window_days=rotation_window_days),
            reply_rotation=RotationWindow(window_days=rotation_window_days),
            uniqueness_window=timedelta(days=uniqueness_window_days),
        )

    # ------------------------------------------------------------------------------------------ queries

    def window_for(self, decision_type: str) -> RotationWindow:
        return self.reply_rotation if decision_type == "reply" else self.rotation

    def queued(self, *, replies: bool | None = None) -> list[DecisionInfo]:
        """Decisions still queued (``replies``: True only replies, False only posts, None all)."""
        return [
            d
            for d in self.decisions.values()
            if d.status == "queued" and (replies is None or d.is_reply == replies)
        ]

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
        """Evolve from one event, in log order. Unknown events are ignored."""
        self.events_applied += 1
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
        )
        self.decisions[ev.decision_id] = info
        if ev.target_tweet_id:
            self.targets.setdefault(ev.target_tweet_id, ev.decision_id)
        window = self.window_for(ev.decision_type)
        if status == "queued":
            if ev.embedding:
                self.index.add(ev.decision_id, ev.embedding, ev.content_hash, at)
            window.add(ev.decision_id, ev.topic_cluster, ev.angle, at, "queued")
        else:
            self.index.remove(ev.decision_id)
            window.remove(ev.decision_id)

    def _on_posted(self, ev: DecisionPosted) -> None:
        info = self.decisions.get(ev.decision_id)
        if info is None:
            # posted but drafted before our window (or by an older system): keep its time for spacing
            info = DecisionInfo(
                decision_id=ev.decision_id, decision_type=ev.decision_type, status="posted", at=ev.posted_at,
                bandit_arm=ev.bandit_arm,
            )
        self.decisions[ev.decision_id] = msgspec.structs.replace(info, status="posted", posted_at=ev.posted_at)
        self.window_for(info.decision_type).set_status(ev.decision_id, "posted")

    def _set_status(self, decision_id: str, status: str) -> None:
        info = self.decisions.get(decision_id)
        if info is None or info.status == "posted":
            return
        self.decisions[decision_id] = msgspec.structs.replace(info, status=status)
        self.index.remove(decision_id)
        self.window_for(info.decision_type).remove(decision_id)

    # ------------------------------------------------------------------------------------------ upkeep

    def prune(self, now: datetime) -> int:
        """Forget what is older than every window (keeps answered targets: they are never answered again)."""
        self.index.prune(now)
        self.rotation.prune(now)
        self.reply_rotation.prune(now)
        horizon = max(self.uniqueness_window, self.rotation.window, REPLY_WINDOW)
        cutoff = now - horizon
        old = [
            d
            for d, info in self.decisions.items()
            if info.status != "queued" and max(info.at, info.posted_at or info.at) < cutoff
        ]
        for d in old:
            del self.decisions[d]
        for day in [day for day in self.spend if day < (now - timedelta(days=7)).date()]:
            del self.spend[day]
        return len(old)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for d in self.decisions.values():
            counts[d.status] = counts.get(d.status, 0) + 1
        return {
            "decisions": counts,
            "indexed": len(self.index),
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


def earliest_free(
    begin: datetime, end: datetime | None, busy: Iterable[datetime], gap: timedelta
) -> datetime | None:
    """The earliest time ``t`` in ``[begin, end)`` at least ``gap`` away from every busy time (None if none).

    ``end=None`` means unbounded. Bounded: ``t`` only moves forward, past one busy time per step.
    """
    times = sorted(busy)
    t = begin
    for _ in range(len(times) + 1):
        conflicts = [q for q in times if abs(q - t) < gap]
        if not conflicts:
            return t if end is None or t < end else None
        t = max(conflicts) + gap
        if end is not None and t >= end:
            return None
    return None  # pragma: no cover - unreachable: each step passes at least one busy time


def hour_window(hour: int, now: datetime, *, days_ahead: int = 0) -> tuple[datetime, datetime]:
    """``[begin, end)`` of the next occurrence of the UTC hour ``hour`` (``days_ahead`` days later):
    today's if it has not ended yet (starting no earlier than ``now``), else tomorrow's."""
    start = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if start + timedelta(hours=1) <= now:
        start += timedelta(days=1)
    start += timedelta(days=days_ahead)
    begin = max(start, now.replace(microsecond=0))
    return begin, start + timedelta(hours=1)
