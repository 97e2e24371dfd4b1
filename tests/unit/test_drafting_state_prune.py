"""Replay keeps the windows, not the whole log: RecentDecisions prunes against the latest event time as it goes,
and answers the gates' questions about the present exactly as a state that never pruned."""

from __future__ import annotations

from datetime import timedelta

import shared.drafting.state as decisions
from bench.core import account_history
from shared.drafting import RecentDecisions


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


def test_prune_and_queued_match_a_scan_of_every_decision() -> None:
    """``prune`` pops from an expiry heap and ``queued`` reads a queue index: both must answer exactly what a scan
    of every decision would, whatever order statuses changed in (a decision posted long after it was queued
    stays until its posting time leaves the window)."""
    import random
    from datetime import UTC, datetime

    from shared.events import (
        DecisionPosted,
        DecisionPostFailed,
        DecisionQueued,
        DecisionRejected,
        DecisionSkipped,
    )

    rng = random.Random(5)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    state = RecentDecisions.empty(uniqueness_window_days=30)
    for i in range(3000):
        at = t0 + timedelta(hours=i)
        kw = dict(event_id=f"q{i}", occurred_at=at, decision_id=f"d{i}", content="x", parts=["x"],
                  bandit_arm="howto:list", generation_source="synthetic", topic_cluster="howto", angle="list",
                  content_hash=f"h{i}", decision_type="reply" if i % 5 == 0 else "single")
        state.apply(DecisionSkipped(**kw, gate="quality", skip_reason="low") if i % 7 == 0 else DecisionQueued(**kw))
        j = rng.randrange(max(0, i - 800), i + 1)  # something happens to an earlier decision
        later = at + timedelta(minutes=1)
        kind = rng.random()
        if kind < 0.5:
            state.apply(DecisionPosted(event_id=f"p{i}", occurred_at=later, decision_id=f"d{j}", tweet_id=f"t{j}",
                                       posted_at=later, decision_type="single", bandit_arm="howto:list"))
        elif kind < 0.6:
            state.apply(DecisionPostFailed(event_id=f"f{i}", occurred_at=later, decision_id=f"d{j}", attempt=3,
                                           error="x", final=True))
        elif kind < 0.65:
            state.apply(DecisionRejected(event_id=f"r{i}", occurred_at=later, decision_id=f"d{j}", actor="ops"))
        if i % 97 == 0:
            now = at - timedelta(days=rng.randrange(0, 20))
            horizon = max(state.uniqueness_window, state.rotation.window, decisions.REPLY_WINDOW)
            expected = {d for d, info in state.decisions.items()
                        if info.status == "queued" or max(info.at, info.posted_at or info.at) >= now - horizon}
            state.prune(now)
            assert set(state.decisions) == expected
        for replies in (None, True, False):
            assert sorted(d.decision_id for d in state.queued(replies=replies)) == sorted(
                d.decision_id for d in state.decisions.values()
                if d.status == "queued" and (replies is None or d.is_reply == replies))
