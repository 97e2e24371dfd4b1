"""The learner's pure core: which outcomes count, one honest model, versions from the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.learner.domain import (
    INSUFFICIENT_ANY,
    INSUFFICIENT_REAL,
    LearnerState,
    Skip,
    Trained,
    evolve,
    learn,
    learned_line,
    training_samples,
)
from shared.events import DecisionPosted, DecisionQueued, ModelUpdated, OutcomeRecorded, decode, encode

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def no_predictors(samples, **kw):
    return [], "test: predictors not fitted"


def queued(i: int, arm: str = "ai_tools:how_to", dtype: str = "single", hour: int = 9) -> DecisionQueued:
    topic, angle = arm.split(":") if ":" in arm else ("replies", arm)
    return DecisionQueued(
        event_id=f"q{i}", occurred_at=T0, decision_id=f"d{i}", decision_type=dtype, content=f"post {i}",
        parts=[], bandit_arm=arm, timing_arm=f"hour:{hour}", quality_score=0.8, generation_source="synthetic",
        scheduled_at=T0.replace(hour=hour), topic_cluster=topic, angle=angle, content_hash=f"h{i}",
        features={"length": 100 + i, "has_question": i % 2 == 0},
    )


def outcome(i: int, er: float | None, *, simulated: bool, horizon: int = 24, arm: str = "ai_tools:how_to",
            dtype: str = "single") -> OutcomeRecorded:
    impressions = 0 if er is None else 1000
    likes = 0 if er is None else round(er * 1000)
    return OutcomeRecorded(
        event_id=f"outcome:d{i}:{horizon}", occurred_at=T0, decision_id=f"d{i}", tweet_id=f"t{i}",
        horizon_hours=horizon, impressions=impressions, likes=likes, retweets=0, replies=0, bookmarks=0, quotes=0,
        er_calculated=None if er is None else likes / 1000, simulated=simulated, collected_at=T0, bandit_arm=arm,
        timing_arm="hour:9", decision_type=dtype,
    )


def build(events) -> LearnerState:
    st = LearnerState()
    for seq, e in enumerate(events, 1):
        evolve(st, e, seq)
    return st


def run(st: LearnerState, *, live: bool, force: bool = False) -> Skip | Trained:
    return learn(st, live=live, threshold=0.03, now=T0, fit_predictors=no_predictors, force=force)


def test_live_counts_only_real_outcomes_and_needs_five():
    events = [outcome(i, 0.05, simulated=True) for i in range(20)]
    events += [outcome(100 + i, 0.05, simulated=False) for i in range(4)]
    st = build(events)
    r = run(st, live=True)
    assert isinstance(r, Skip) and r.outcomes == 4
    assert r.message == "[LEARN_JOB] ⚠️ Training skipped: insufficient real outcomes (need 5)" == INSUFFICIENT_REAL
    evolve(st, outcome(104, 0.01, simulated=False), 99)
    r = run(st, live=True)
    assert isinstance(r, Trained)
    m = r.model
    assert m.outcomes_used == 5 and m.simulated_used is False
    (arm,) = m.arms
    assert (arm.successes, arm.failures, arm.alpha, arm.beta) == (4, 1, 5.0, 2.0)


def test_shadow_uses_every_outcome_and_says_so():
    st = build([outcome(i, 0.05 if i % 2 else 0.01, simulated=True) for i in range(6)])
    r = run(st, live=False)
    assert isinstance(r, Trained)
    assert r.model.simulated_used is True and r.model.outcomes_used == 6
    assert isinstance(run(build([outcome(1, 0.05, simulated=True)]), live=False), Skip)
    assert run(build([outcome(1, 0.05, simulated=True)]), live=False).message == INSUFFICIENT_ANY


def test_latest_horizon_per_decision_and_unknown_er_left_out():
    st = build([
        outcome(1, 0.01, simulated=False, horizon=1),
        outcome(1, 0.05, simulated=False, horizon=24),
        outcome(2, 0.05, simulated=False, horizon=1),
        outcome(3, None, simulated=False, horizon=24),
    ])
    samples = {s.decision_id: s for s in training_samples(st, live=True, threshold=0.03)}
    assert set(samples) == {"d1", "d2"}
    assert (samples["d1"].horizon_hours, samples["d1"].success) == (24, True)
    assert (samples["d2"].horizon_hours, samples["d2"].success) == (1, True)


def test_scopes_hours_and_features_come_from_the_decisions():
    events = [queued(1), queued(2, "add_insight", "reply", hour=14)]
    events.append(DecisionPosted(
        event_id="p1", occurred_at=T0, decision_id="d1", tweet_id="t1", posted_at=T0.replace(hour=10),
        decision_type="single", bandit_arm="ai_tools:how_to", simulated=True,
    ))
    events += [outcome(1, 0.05, simulated=True), outcome(2, 0.02, simulated=True, arm="add_insight", dtype="reply")]
    samples = {s.decision_id: s for s in training_samples(build(events), live=False, threshold=0.03)}
    assert samples["d1"].scope == "content" and samples["d1"].hour == 10  # the hour it went out
    assert samples["d2"].scope == "reply" and samples["d2"].hour == 9  # the outcome's timing arm
    assert samples["d1"].info is not None and samples["d1"].info.features["length"] == 101


def test_versions_continue_from_the_log_and_no_new_outcomes_skips():
    events = [outcome(i, 0.05, simulated=True) for i in range(6)]
    st = build(events)
    first = run(st, live=False)
    assert isinstance(first, Trained) and first.model.version == 1
    evolve(st, decode(encode(first.model)), 50)
    assert st.model_version == 1 and st.model_seq == 50
    again = run(st, live=False)
    assert isinstance(again, Skip) and again.reason == "no_new_outcomes"
    forced = run(st, live=False, force=True)
    assert isinstance(forced, Trained) and forced.model.version == 2
    evolve(st, outcome(7, 0.01, simulated=True), 51)
    nxt = run(st, live=False)
    assert isinstance(nxt, Trained) and nxt.model.version == 2 and nxt.model.outcomes_used == 7
    assert learned_line(nxt.model) == "[LEARN_JOB] ✅ arms_trained=1, coeffs_updated=v2"
    # a restart: the same log gives the same state, so the count goes on
    restarted = build([*events, first.model, outcome(7, 0.01, simulated=True)])
    assert restarted.model_version == 1
    again2 = run(restarted, live=False)
    assert isinstance(again2, Trained) and again2.model.version == 2
    assert again2.model.arms == nxt.model.arms and again2.model.slots == nxt.model.slots


def test_switching_to_live_does_not_reuse_a_simulated_model_as_up_to_date():
    events = [outcome(i, 0.05, simulated=True) for i in range(6)] + [
        outcome(100 + i, 0.05, simulated=False) for i in range(5)
    ]
    st = build(events)
    shadow = run(st, live=False)
    assert isinstance(shadow, Trained)
    evolve(st, shadow.model, 100)
    live = run(st, live=True)
    assert isinstance(live, Trained) and live.model.simulated_used is False and live.model.outcomes_used == 5


def test_a_failed_fit_publishes_no_predictor_and_says_why():
    st = build([outcome(i, 0.05, simulated=True) for i in range(6)])
    r = run(st, live=False)
    assert isinstance(r, Trained)
    assert r.model.predictors == [] and r.model.predictor_skipped_reason == "test: predictors not fitted"


def test_slots_cover_24_hours_from_content_decisions():
    events = [outcome(i, 0.05, simulated=True) for i in range(6)]
    events.append(outcome(50, 0.2, simulated=True, arm="add_insight", dtype="reply"))
    r = run(build(events), live=False)
    assert isinstance(r, Trained)
    slots = {s.hour: s for s in r.model.slots}
    assert len(slots) == 24 and slots[9].n == 6
    assert sum(s.n for s in slots.values()) == 6
    assert {(a.scope, a.arm) for a in r.model.arms} == {("content", "ai_tools:how_to"), ("reply", "add_insight")}


def test_model_versions_of_other_scopes_are_ignored_and_old_versions_do_not_go_back():
    st = LearnerState()
    m = ModelUpdated(event_id="m", occurred_at=T0 + timedelta(1), version=3, arms=[], slots=[], outcomes_used=5,
                     simulated_used=True, success_er_threshold=0.03)
    evolve(st, m, 10)
    evolve(st, ModelUpdated(event_id="o", occurred_at=T0, version=1, arms=[], slots=[], outcomes_used=5,
                            simulated_used=True, success_er_threshold=0.03), 11)
    evolve(st, ModelUpdated(event_id="x", occurred_at=T0, scope="other", version=9, arms=[], slots=[],
                            outcomes_used=5, simulated_used=True, success_er_threshold=0.03), 12)
    assert st.model_version == 3 and st.model_seq == 11
