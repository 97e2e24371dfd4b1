"""Spacing (``shared.drafting.schedule``): the earliest free moment keeps every busy time's gap, and the next
occurrence of an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.drafting import BusyTimes, earliest_free, hour_window

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)


def test_earliest_free_keeps_the_gap_from_every_busy_time() -> None:
    gap = timedelta(minutes=15)
    start = T0.replace(minute=0)
    busy = [start + timedelta(minutes=5), start + timedelta(minutes=18)]
    assert earliest_free(start, start + timedelta(hours=1), busy, gap) == start + timedelta(minutes=33)
    assert earliest_free(start, start + timedelta(minutes=30), busy, gap) is None
    assert earliest_free(start, None, [], gap) == start


def _earliest_free_by_steps(begin: datetime, end: datetime | None,
                            busy: list[tuple[datetime, timedelta]]) -> datetime | None:
    """The plain definition: move past every busy time closer than its gap until none is."""
    t = begin
    for _ in range(len(busy) + 1):
        conflicts = [q + g for q, g in busy if abs(q - t) < g]
        if not conflicts:
            return t if end is None or t < end else None
        t = max(conflicts)
    raise AssertionError("no progress")


def test_earliest_free_matches_the_plain_definition_on_packed_and_mixed_gaps() -> None:
    """The merged blocked intervals give the same slot as stepping past each conflict: touching intervals leave
    their meeting point free, overlapping ones merge, per-entry gaps (replies) and zero gaps are honoured."""
    rng = np.random.default_rng(3)
    start = T0.replace(minute=0)
    for trial in range(300):
        k = int(rng.integers(0, 40))
        minutes = rng.integers(0, 240, size=k) if trial % 2 else rng.integers(0, 48, size=k) * 5  # even 5 min ticks
        gaps = rng.choice([0, 5, 10, 15, 30], size=k)
        busy = [(start + timedelta(minutes=int(m)), timedelta(minutes=int(g))) for m, g in zip(minutes, gaps, strict=True)]
        for _ in range(5):
            begin = start + timedelta(minutes=int(rng.integers(-30, 260)))
            end = None if rng.random() < 0.3 else begin + timedelta(minutes=int(rng.integers(1, 90)))
            assert earliest_free(begin, end, busy, timedelta(0)) == _earliest_free_by_steps(begin, end, busy), (
                trial, begin, end, busy)


def test_busy_times_of_sorted_groups_are_the_busy_times_of_their_union() -> None:
    rng = np.random.default_rng(5)
    start = T0.replace(minute=0)
    for trial in range(300):
        groups = []
        for _ in range(1 + trial % 3):  # one group (the fast path), two (posts and replies), three
            k = int(rng.integers(0, 30))
            minutes = sorted(rng.integers(0, 240, size=k) if trial % 2 else rng.integers(0, 48, size=k) * 5)
            gap = timedelta(minutes=int(rng.choice([0, 5, 10, 15, 30])))
            groups.append(([start + timedelta(minutes=int(m)) for m in minutes], gap))
        fast = BusyTimes.of_sorted(groups)
        plain = BusyTimes([(q, g) for times, g in groups for q in times], timedelta(0))
        assert (fast.starts, fast.ends, len(fast)) == (plain.starts, plain.ends, len(plain)), (trial, groups)


def test_hour_window_is_the_next_occurrence_of_the_hour() -> None:
    assert hour_window(10, T0) == (T0.replace(second=0), T0.replace(hour=11, minute=0))  # inside it: from now
    begin, end = hour_window(9, T0)  # passed today: tomorrow
    assert begin == datetime(2026, 3, 3, 9, tzinfo=UTC) and end - begin == timedelta(hours=1)
    assert hour_window(23, T0, days_ahead=2)[0] == datetime(2026, 3, 4, 23, tzinfo=UTC)


def test_a_busy_time_may_carry_its_own_gap() -> None:
    start = T0.replace(minute=0)
    busy = [(start + timedelta(minutes=10), timedelta(minutes=60)), (start + timedelta(minutes=75), timedelta(0))]
    free = earliest_free(start, None, [*busy, start + timedelta(minutes=80)], timedelta(minutes=15))
    assert free == start + timedelta(minutes=95)  # 70 clears the hour-long gap, 95 clears the 80 post
