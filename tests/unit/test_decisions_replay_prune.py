"""Replay keeps the windows, not the whole log: RecentDecisions prunes against the latest event time as it goes,
and answers the gates' questions about the present exactly as a state that never pruned."""

from __future__ import annotations

from datetime import timedelta

import shared.decisions as decisions
from bench.core import account_history
from shared.decisions import RecentDecisions


def test_a_year_of_log_keeps_about_a_month_and_the_same_answers(monkeypatch) -> None:
    events = list(account_history(30_000, dim=16, days=365))
    monkeypatch.setattr(decisions, "PRUNE_EVERY", 512)  # about 6 days of this log between prunes
    pruned = RecentDecisions.empty(uniqueness_window_days=30)
    for ev in events:
        pruned.apply(ev)
    monkeypatch.setattr(decisions, "PRUNE_EVERY", 10**9)  # the same replay, never pruned
    full = RecentDecisions.empty(uniqueness_window_days=30)
    for ev in events:
        full.apply(ev)

    now = max(ev.occurred_at for ev in events)
    n_decisions = sum(1 for ev in events if type(ev).__name__ == "DecisionQueued")
    assert len(full.decisions) == n_decisions
    # a 30-day window (+ a day of margin, + up to 6 days since the last prune) of a 365-day log
    assert len(pruned.decisions) < n_decisions * 40 / 365
    assert sum(len(i) for i in pruned.indexes.values()) < n_decisions * 40 / 365
    # what the gates ask about the present is unchanged
    recent = [ev for ev in events if type(ev).__name__ == "DecisionQueued" and now - ev.occurred_at < timedelta(days=29)]
    assert recent
    for ev in recent[-50:] + recent[:50]:
        assert pruned.hash_twin(ev.content_hash, now) == full.hash_twin(ev.content_hash, now)
    old = next(ev for ev in events if type(ev).__name__ == "DecisionQueued")
    assert pruned.hash_twin(old.content_hash, now) is None and full.hash_twin(old.content_hash, now) is None
    for replies in (False, True, None):
        assert sorted(t for t in pruned.busy_times(replies=replies) if t > now - timedelta(days=7)) == sorted(
            t for t in full.busy_times(replies=replies) if t > now - timedelta(days=7))
    assert pruned.replies_in_last_day(now) == full.replies_in_last_day(now)
    assert pruned.spent_on(now.date()) == full.spent_on(now.date())
