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

from collections import Counter
from datetime import datetime, timedelta

import msgspec

from .result import GateResult

GATE = "rotation"
COUNTED_STATUSES = frozenset({"queued", "posted"})
DEFAULT_WINDOW_DAYS = 7
DEFAULT_MIN_SAMPLE = 10


def _key(label: str) -> str:
    return " ".join(label.casefold().split())


class RotationEntry(msgspec.Struct, frozen=True):
    decision_id: str
    topic: str
    angle: str
    at: datetime
    status: str


class RotationWindow:
    """(decision_id, topic, angle, at, status) of the queued and posted decisions of the last ``window_days``."""

    def __init__(self, *, window_days: float = DEFAULT_WINDOW_DAYS) -> None:
        self.window = timedelta(days=window_days)
        self._entries: dict[str, RotationEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._entries

    def get(self, decision_id: str) -> RotationEntry | None:
        return self._entries.get(decision_id)

    def add(self, decision_id: str, topic: str, angle: str, at: datetime, status: str = "queued") -> None:
        """Record a decision; a status other than queued/posted removes it instead (skipped never counts)."""
        if status not in COUNTED_STATUSES:
            self._entries.pop(decision_id, None)
            return
        self._entries[decision_id] = RotationEntry(decision_id, topic, angle, at, status)

    def set_status(self, decision_id: str, status: str) -> None:
        """Follow a decision's status: queued -> posted keeps it, -> skipped/failed/rejected removes it."""
        entry = self._entries.get(decision_id)
        if entry is None:
            return
        if status in COUNTED_STATUSES:
            self._entries[decision_id] = msgspec.structs.replace(entry, status=status)
        else:
            del self._entries[decision_id]

    def remove(self, decision_id: str) -> bool:
        return self._entries.pop(decision_id, None) is not None

    def prune(self, now: datetime) -> int:
        cutoff = now - self.window
        old = [d for d, e in self._entries.items() if e.at < cutoff]
        for d in old:
            del self._entries[d]
        return len(old)

    def counts(self, now: datetime) -> tuple[int, Counter[str], Counter[str]]:
        """(n, per-topic counts, per-angle counts) over the in-window queued/posted decisions (keys casefolded)."""
        cutoff = now - self.window
        topics: Counter[str] = Counter()
        angles: Counter[str] = Counter()
        n = 0
        for e in self._entries.values():
            if e.at >= cutoff and e.status in COUNTED_STATUSES:
                n += 1
                topics[_key(e.topic)] += 1
                angles[_key(e.angle)] += 1
        return n, topics, angles


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
    n, topics, angles = window.counts(now)
    topic_count = topics[_key(topic)]
    angle_count = angles[_key(angle)]
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
