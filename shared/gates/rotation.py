"""Rotation gate: no topic above 35% and no angle above 40% of the last 7 days' decisions.

Only decisions that are queued or posted count. The earlier system counted skipped drafts too, so a topic whose
drafts kept being blocked crowded itself (and everything else) out; here a skipped draft never enters the window,
and a decision that moves from queued to skipped, failed or rejected leaves it.

Shares are computed as if the draft were added: ``share = (count + 1) / (n + 1)`` where ``n`` is the number of
queued/posted decisions in the window and ``count`` those with the draft's topic (or angle); the draft is blocked
when that share exceeds ``topic_max`` (``angle_max``). Topics and angles are compared casefolded and stripped.

**Small windows.** Shares are enforced only once the window already holds at least ``min_sample`` decisions
(default 10); below that every draft passes (reason ``below_min_sample``), so a fresh account can always post its
first decisions. Past that point a planner that picks a least-used topic and angle is never stalled, provided it
rotates over at least 4 topics and 3 angles: with ``k`` options the least-used one has at most ``n / k`` decisions,
so its share once added is at most ``(n / k + 1) / (n + 1)``, which is <= 35% for ``k = 4`` when ``n >= 7`` and
<= 40% for ``k = 3`` when ``n >= 9`` -- both already true at ``n >= 10``. (With a smaller ``min_sample``, e.g. 5,
three angles used evenly would block every draft at ``n = 6``.) With fewer options than that the caps cannot be
met and the gate blocks until old decisions leave the window -- a configuration error, not a gate error.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache

import msgspec

from .result import GateResult

GATE = "rotation"
COUNTED_STATUSES = frozenset({"queued", "posted"})
DEFAULT_WINDOW_DAYS = 7
DEFAULT_MIN_SAMPLE = 10


@lru_cache(maxsize=4096)
def _key(label: str) -> str:
    return " ".join(label.casefold().split())


#: how topics and angles are compared (casefolded, whitespace collapsed)
rotation_key = _key


class RotationEntry(msgspec.Struct, frozen=True):
    decision_id: str
    topic: str
    angle: str
    at: datetime
    status: str


class RotationWindow:
    """(decision_id, topic, angle, at, status) of the queued and posted decisions of the last ``window_days``.

    The per-topic and per-angle counts are kept up to date as decisions come and go, with the entries in time
    order, so ``counts(now)`` costs the entries that have left the window since the last ``prune`` (usually
    none), not a pass over the whole window: a planner asks once per arm for every draft.
    """

    def __init__(self, *, window_days: float = DEFAULT_WINDOW_DAYS) -> None:
        self.window = timedelta(days=window_days)
        self._entries: dict[str, RotationEntry] = {}
        #: (at, decision_id) of every entry, sorted
        self._order: list[tuple[datetime, str]] = []
        #: counts over every entry (in the window or not yet pruned), keys casefolded
        self._topics: Counter[str] = Counter()
        self._angles: Counter[str] = Counter()
        #: bumped on every change of the entries; ``counts`` keeps its last answer for (version, now)
        self._version = 0
        self._last_counts: tuple[int, datetime, tuple[int, Counter[str], Counter[str]]] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._entries

    def get(self, decision_id: str) -> RotationEntry | None:
        return self._entries.get(decision_id)

    def _insert(self, entry: RotationEntry) -> None:
        self._version += 1
        self._entries[entry.decision_id] = entry
        insort(self._order, (entry.at, entry.decision_id))
        self._topics[_key(entry.topic)] += 1
        self._angles[_key(entry.angle)] += 1

    def _drop(self, decision_id: str) -> RotationEntry | None:
        entry = self._entries.pop(decision_id, None)
        if entry is None:
            return None
        self._version += 1
        i = bisect_left(self._order, (entry.at, decision_id))
        del self._order[i]
        _decrement(self._topics, _key(entry.topic))
        _decrement(self._angles, _key(entry.angle))
        return entry

    def add(self, decision_id: str, topic: str, angle: str, at: datetime, status: str = "queued") -> None:
        """Record a decision; a status other than queued/posted removes it instead (skipped never counts)."""
        self._drop(decision_id)
        if status not in COUNTED_STATUSES:
            return
        self._insert(RotationEntry(decision_id, topic, angle, at, status))

    def set_status(self, decision_id: str, status: str) -> None:
        """Follow a decision's status: queued -> posted keeps it, -> skipped/failed/rejected removes it."""
        entry = self._entries.get(decision_id)
        if entry is None:
            return
        if status in COUNTED_STATUSES:
            self._entries[decision_id] = msgspec.structs.replace(entry, status=status)
        else:
            self._drop(decision_id)

    def remove(self, decision_id: str) -> bool:
        return self._drop(decision_id) is not None

    def _older_than(self, cutoff: datetime) -> list[tuple[datetime, str]]:
        return self._order[: bisect_left(self._order, (cutoff,))]

    def prune(self, now: datetime) -> int:
        old = self._older_than(now - self.window)
        for _, d in old:
            self._drop(d)
        return len(old)

    def counts(self, now: datetime, *, copy: bool = True) -> tuple[int, Counter[str], Counter[str]]:
        """(n, per-topic counts, per-angle counts) over the in-window queued/posted decisions (keys casefolded).
        With ``copy=False`` the counters are this window's own: read them, never change them."""
        last = self._last_counts
        if last is None or last[0] != self._version or last[1] != now:
            old = self._older_than(now - self.window)
            topics, angles = self._topics.copy(), self._angles.copy()
            for _, d in old:
                e = self._entries[d]
                _decrement(topics, _key(e.topic))
                _decrement(angles, _key(e.angle))
            last = self._last_counts = (self._version, now, (len(self._entries) - len(old), topics, angles))
        n, topics, angles = last[2]
        if not copy:
            return n, topics, angles
        return n, topics.copy(), angles.copy()  # copies: the caller may change them


def _decrement(counter: Counter[str], key: str) -> None:
    """One less of ``key``; a count reaching zero leaves the counter (as if never counted)."""
    if counter[key] <= 1:
        counter.pop(key, None)
    else:
        counter[key] -= 1


def rotation_allows(topic_count: int, angle_count: int, n: int, *, topic_max: float, angle_max: float,
                    min_sample: int) -> bool:
    """``rotation_gate``'s verdict alone, from the window's counts (a planner asks it for every arm of a pick)."""
    if n < min_sample:
        return True
    return (topic_count + 1) / (n + 1) <= topic_max and (angle_count + 1) / (n + 1) <= angle_max


def rotation_gate(
    topic: str,
    angle: str,
    window: RotationWindow,
    *,
    now: datetime,
    topic_max: float = 0.35,
    angle_max: float = 0.40,
    min_sample: int = DEFAULT_MIN_SAMPLE,
) -> GateResult:
    """Block a draft whose topic (angle) share would exceed ``topic_max`` (``angle_max``) once added."""
    n, topics, angles = window.counts(now, copy=False)  # read only
    topic_count = topics.get(_key(topic), 0)
    angle_count = angles.get(_key(angle), 0)
    topic_share = (topic_count + 1) / (n + 1)
    angle_share = (angle_count + 1) / (n + 1)
    enforced = n >= min_sample
    details = {
        "window_size": n,
        "min_sample": min_sample,
        "enforced": enforced,
        "topic": topic,
        "topic_count": topic_count,
        "topic_share": round(topic_share, 6),
        "topic_max": topic_max,
        "angle": angle,
        "angle_count": angle_count,
        "angle_share": round(angle_share, 6),
        "angle_max": angle_max,
    }
    if not enforced:
        return GateResult(GATE, True, "below_min_sample", max(topic_share, angle_share), details)
    if topic_share > topic_max:
        return GateResult(GATE, False, "topic_share_exceeded", topic_share, details)
    if angle_share > angle_max:
        return GateResult(GATE, False, "angle_share_exceeded", angle_share, details)
    return GateResult(GATE, True, "ok", max(topic_share, angle_share), details)
