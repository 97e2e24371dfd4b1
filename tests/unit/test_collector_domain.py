"""The collector's pure core: what is owed, when, and the events that settle it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.collector.domain import (
    MISSED_WINDOW,
    CollectorState,
    Due,
    collection_failed,
    due_outcomes,
    evolve,
    missed_window,
    outcome_recorded,
    parse_horizons,
)
from shared.events import DecisionPosted, OutcomeCollectionFailed, OutcomeRecorded, decode, encode

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def posted(decision_id: str, at: datetime = T0, *, simulated: bool = False, tweet_id: str | None = None):
    return DecisionPosted(
        event_id=f"p-{decision_id}",
        occurred_at=at,
        decision_id=decision_id,
        tweet_id=tweet_id or "1800000000000000001",
        posted_at=at,
        decision_type="single",
        bandit_arm="ai_tools:how_to",
        timing_arm="hour:9",
        simulated=simulated,
    )


def state_with(*events) -> CollectorState:
    st = CollectorState()
    for e in events:
        evolve(st, e)
    return st


def test_parse_horizons():
    assert parse_horizons("1,24") == (1, 24)
    assert parse_horizons(" 24 , 1,1 ") == (1, 24)
    for bad in ("", "0", "-1", "1,x", "0.0", "1e3", "nan", "inf", "0.25h", "1,,-0.5"):
        with pytest.raises(ValueError):
            parse_horizons(bad)


def test_parse_horizons_takes_fractions_of_an_hour():
    hs = parse_horizons("24,0.25,1,.5,1.0")
    assert hs == (0.25, 0.5, 1, 24)
    # whole hours stay ints (so their event ids and state keys are those of every event before fractions)
    assert [type(h) for h in hs] == [float, float, int, int]
    assert parse_horizons("1.5") == (1.5,)


def test_a_quarter_hour_horizon_is_owed_at_15_minutes_and_settled_by_its_event():
    st = state_with(posted("d1"))
    hs = parse_horizons("0.25,1,24")
    assert due_outcomes(st, T0 + timedelta(minutes=14, seconds=59), hs, simulated=False, max_attempts=3) == []
    (due,) = due_outcomes(st, T0 + timedelta(minutes=15), hs, simulated=False, max_attempts=3)
    assert (due.horizon_hours, due.attempt, due.missed) == (0.25, 1, False)
    ev = outcome_recorded(due, {"impressions": 40, "likes": 2}, simulated=False, now=T0 + timedelta(minutes=15))
    assert ev.event_id == "outcome:d1:0.25" and ev.horizon_hours == 0.25
    back = decode(encode(ev))
    assert back == ev and back.horizon_hours == 0.25
    evolve(st, back)
    evolve(st, ev)  # seen twice: nothing changes
    assert st.recorded == {("d1", 0.25)}
    # +1 h comes next; the quarter hour is not owed again
    (due1,) = due_outcomes(st, T0 + timedelta(hours=1), hs, simulated=False, max_attempts=3)
    assert due1.horizon_hours == 1 and type(due1.horizon_hours) is int
    # +0.25 h read late (after +1 h came) is missed, and says so in hours
    st2 = state_with(posted("d2"))
    first = due_outcomes(st2, T0 + timedelta(hours=2), hs, simulated=False, max_attempts=3)
    assert [(d.horizon_hours, d.missed) for d in first] == [(0.25, True), (1, False)]
    miss = missed_window(first[0], T0 + timedelta(hours=2))
    assert miss.event_id == "outcome-failed:d2:0.25:1" and "+0.25h not collected" in miss.reason


def test_old_whole_hour_events_decode_and_replay_as_before():
    raw = encode(OutcomeRecorded(
        event_id="outcome:d1:1", occurred_at=T0, decision_id="d1", tweet_id="1", horizon_hours=1, impressions=1,
        likes=0, retweets=0, replies=0, bookmarks=0, quotes=0, er_calculated=0.0, simulated=False, collected_at=T0))
    assert b'"horizon_hours":1,' in raw  # the wire form of every event written before fractions
    back = decode(raw)
    assert back.horizon_hours == 1 and type(back.horizon_hours) is int
    st = state_with(posted("d1"), back)
    assert st.settled("d1", 1) and st.settled("d1", 1.0)


def test_nothing_owed_before_the_first_horizon():
    st = state_with(posted("d1"))
    assert due_outcomes(st, T0 + timedelta(minutes=59), (1, 24), simulated=False, max_attempts=3) == []
    due = due_outcomes(st, T0 + timedelta(hours=1), (1, 24), simulated=False, max_attempts=3)
    assert [(d.posted.decision_id, d.horizon_hours, d.attempt, d.missed) for d in due] == [("d1", 1, 1, False)]


def test_both_horizons_owed_and_the_early_one_is_missed_when_late():
    st = state_with(posted("d1"))
    due = due_outcomes(st, T0 + timedelta(hours=30), (1, 24), simulated=False, max_attempts=3)
    assert [(d.horizon_hours, d.missed) for d in due] == [(1, True), (24, False)]
    ev = missed_window(due[0], T0 + timedelta(hours=30))
    assert ev.final and ev.reason.startswith(MISSED_WINDOW)
    evolve(st, ev)
    assert [d.horizon_hours for d in due_outcomes(st, T0 + timedelta(hours=30), (1, 24), simulated=False,
                                                   max_attempts=3)] == [24]


def test_recorded_horizon_is_settled_and_replay_is_idempotent():
    st = state_with(posted("d1"))
    now = T0 + timedelta(hours=2)
    (due,) = due_outcomes(st, now, (1, 24), simulated=False, max_attempts=3)
    ev = outcome_recorded(due, {"impressions": 1000, "likes": 20, "retweets": 5, "replies": 3, "bookmarks": 1,
                                "quotes": 1}, simulated=False, now=now)
    assert ev.event_id == "outcome:d1:1"
    assert ev.er_calculated == pytest.approx(30 / 1000)
    assert ev.simulated is False and ev.tweet_id == "1800000000000000001" and ev.bandit_arm == "ai_tools:how_to"
    evolve(st, ev)
    evolve(st, decode(encode(ev)))  # the same event seen twice changes nothing
    assert due_outcomes(st, now, (1, 24), simulated=False, max_attempts=3) == []
    assert st.recorded == {("d1", 1)}


def test_zero_impressions_gives_a_null_rate():
    st = state_with(posted("d1"))
    (due,) = due_outcomes(st, T0 + timedelta(hours=1), (1,), simulated=False, max_attempts=3)
    ev = outcome_recorded(due, {"impressions": 0, "likes": 0}, simulated=False, now=T0)
    assert ev.er_calculated is None


def test_simulated_and_real_posts_are_kept_apart():
    st = state_with(posted("real"), posted("sim", simulated=True))
    now = T0 + timedelta(hours=1)
    assert [d.posted.decision_id for d in due_outcomes(st, now, (1,), simulated=False, max_attempts=3)] == ["real"]
    assert [d.posted.decision_id for d in due_outcomes(st, now, (1,), simulated=True, max_attempts=3)] == ["sim"]


def test_failures_are_retried_up_to_the_limit_then_final():
    st = state_with(posted("d1"))
    now = T0 + timedelta(hours=1)
    for attempt in (1, 2, 3):
        (due,) = due_outcomes(st, now, (1,), simulated=False, max_attempts=3)
        assert due.attempt == attempt
        ev = collection_failed(due, "unavailable: no page", retryable=True, max_attempts=3, now=now)
        assert ev.event_id == f"outcome-failed:d1:1:{attempt}"
        assert ev.final is (attempt == 3)
        evolve(st, ev)
        evolve(st, ev)  # a duplicate does not count twice
    assert due_outcomes(st, now, (1,), simulated=False, max_attempts=3) == []
    assert st.failures[("d1", 1)].attempts == 3


def test_a_non_retryable_failure_is_final_at_once():
    st = state_with(posted("d1"))
    (due,) = due_outcomes(st, T0 + timedelta(hours=1), (1,), simulated=False, max_attempts=5)
    ev = collection_failed(due, "page_mismatch: by @bob", retryable=False, max_attempts=5, now=T0)
    assert ev.final and ev.attempt == 1
    evolve(st, ev)
    assert st.settled("d1", 1)


def test_limit_and_order_oldest_first():
    st = state_with(*(posted(f"d{i}", T0 + timedelta(minutes=i)) for i in range(5)))
    due = due_outcomes(st, T0 + timedelta(hours=3), (1,), simulated=False, max_attempts=3, limit=2)
    assert [d.posted.decision_id for d in due] == ["d0", "d1"]


def test_events_round_trip():
    st = state_with(posted("d1"))
    (due,) = due_outcomes(st, T0 + timedelta(hours=1), (1,), simulated=False, max_attempts=3)
    assert isinstance(due, Due)
    for ev in (
        outcome_recorded(due, {"impressions": 5, "likes": 1}, simulated=True, now=T0),
        collection_failed(due, "x", retryable=True, max_attempts=3, now=T0),
    ):
        back = decode(encode(ev))
        assert back == ev and isinstance(back, OutcomeRecorded | OutcomeCollectionFailed)
