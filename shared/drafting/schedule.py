"""Spacing: the earliest moment that keeps its gap from every busy time (``earliest_free`` over ``BusyTimes``),
and the next occurrence of an hour (``hour_window``). Pure: no state, no I/O."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from heapq import merge as heap_merge


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
