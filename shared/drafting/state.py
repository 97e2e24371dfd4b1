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
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from heapq import heappop, heappush
from typing import Any

import msgspec

from shared.events import (
    DEFAULT_ACCOUNT,
    TYPE_NAMES,
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
from shared.snapshots import restore_per_account

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
        on = _EVOLVE.get(type(event))
        if on is not None:
            on(self, event)

    def _on_queued(self, ev: DecisionQueued) -> None:
        self._on_draft(ev, "queued")

    def _on_skipped(self, ev: DecisionSkipped) -> None:
        self._on_draft(ev, "skipped")

    def _on_post_failed(self, ev: DecisionPostFailed) -> None:
        if ev.final:
            self._set_status(ev.decision_id, "failed")

    def _on_rejected(self, ev: DecisionRejected) -> None:
        self._set_status(ev.decision_id, "rejected")

    def _on_rescheduled(self, ev: DecisionRescheduled) -> None:
        info = self.decisions.get(ev.decision_id)
        if info is not None and info.status == "queued":
            self.decisions[ev.decision_id] = msgspec.structs.replace(info, scheduled_at=ev.scheduled_at)
            self._track(ev.decision_id)

    def _on_model(self, ev: ModelUpdated) -> None:
        if self.model is None or ev.version >= self.model.version:
            self.model = ev

    def _on_llm_call(self, ev: LlmCallCompleted) -> None:
        day = ev.occurred_at.date()
        self.spend[day] = self.spend.get(day, 0.0) + float(ev.cost_usd)
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


class AccountDrafts:
    """One ``RecentDecisions`` per account, each evolved only from its own account's events: one account's drafts
    are never judged against another's (uniqueness, rotation, targets answered, its own model, its own spend).
    A plain object of plain attributes, so the runtime snapshots it like any state."""

    def __init__(self, *, uniqueness_window_days: float = 30.0) -> None:
        self.uniqueness_window_days = uniqueness_window_days
        self.accounts: dict[str, RecentDecisions] = {}

    def of(self, account: str) -> RecentDecisions:
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = RecentDecisions.empty(
                uniqueness_window_days=self.uniqueness_window_days)
        return state

    def restore_attributes(self, loaded: dict[str, Any]) -> None:
        """A snapshot's attributes, restored in place (``shared.snapshots.restore_per_account``)."""
        self.uniqueness_window_days = loaded["uniqueness_window_days"]
        restore_per_account(self.accounts, loaded["accounts"], lambda: RecentDecisions.empty(uniqueness_window_days=self.uniqueness_window_days))

    def apply(self, event: Any) -> None:
        account = getattr(event, "account", None)
        if account is not None and type(event) in _EVOLVE:
            self.of(account).apply(event)

    def summary(self, account: str = DEFAULT_ACCOUNT) -> dict[str, Any]:
        """The default account's summary (the keys a single-account stack always had), and the account count."""
        return {**self.of(account).summary(), "accounts": len(self.accounts)}


def replay(events: Iterable[Any], **kw: Any) -> RecentDecisions:
    """A state built from ``events`` in order (tests and tools)."""
    state = RecentDecisions.empty(**kw)
    for ev in events:
        state.apply(ev)
    return state


#: how each event type evolves the state (the others are ignored)
_EVOLVE: dict[type, Callable[[RecentDecisions, Any], None]] = {
    DecisionQueued: RecentDecisions._on_queued,
    DecisionSkipped: RecentDecisions._on_skipped,
    DecisionPosted: RecentDecisions._on_posted,
    DecisionPostFailed: RecentDecisions._on_post_failed,
    DecisionRejected: RecentDecisions._on_rejected,
    DecisionRescheduled: RecentDecisions._on_rescheduled,
    ModelUpdated: RecentDecisions._on_model,
    LlmCallCompleted: RecentDecisions._on_llm_call,
}

#: the event types this state evolves from (a projection decodes only these), derived from ``_EVOLVE``
INTERESTED: frozenset[str] = frozenset(name for name, t in TYPE_NAMES.items() if t in _EVOLVE)
