"""The planner's pure core: Thompson arm choice, UCB slot, spaced schedule, predicted ER."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.planner.domain import (
    PendingPicks,
    PlanPolicy,
    choose,
    choose_arm,
    choose_slot,
    eligible_arms,
    pick,
    policy_from,
)
from shared.drafting import RecentDecisions, predicted_er
from shared.events import ArmState, ModelUpdated, PredictorState, SlotState
from shared.flags import Flags
from shared.gates import GateConfig, RotationWindow
from shared.learning.arms import default_content_arms

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)


def model(arms: list[ArmState] | None = None, slots: list[SlotState] | None = None,
          predictors: list[PredictorState] | None = None) -> ModelUpdated:
    return ModelUpdated(event_id="m", occurred_at=NOW, version=3, arms=arms or [], slots=slots or [],
                        predictors=predictors or [], outcomes_used=10, simulated_used=True, success_er_threshold=0.03)


def test_before_any_model_every_arm_is_equally_likely() -> None:
    state, policy = RecentDecisions.empty(), PlanPolicy(live=False)
    rng = np.random.default_rng(1)
    picks = Counter(choose_arm(state, policy, NOW, rng) for _ in range(4000))
    arms = default_content_arms()
    assert set(picks) == set(arms)  # all 40 drawn
    expected = 4000 / len(arms)
    assert max(picks.values()) < expected * 1.6 and min(picks.values()) > expected * 0.4


def test_thompson_follows_the_latest_posteriors() -> None:
    best = ArmState(arm="startups:story", scope="content", alpha=60, beta=5, successes=59, failures=4)
    weak = [ArmState(arm=a, scope="content", alpha=2, beta=30, successes=1, failures=29)
            for a in default_content_arms() if a != best.arm]
    reply_scope = ArmState(arm="startups:data", scope="reply", alpha=100, beta=1, successes=99, failures=0)
    state = RecentDecisions.empty()
    state.model = model(arms=[best, *weak, reply_scope])
    rng = np.random.default_rng(2)
    picks = Counter(choose_arm(state, PlanPolicy(live=True), NOW, rng) for _ in range(300))
    assert picks["startups:story"] >= 290  # the reply-scope posterior of another arm is ignored


def test_arms_the_rotation_gate_would_block_are_not_drafted() -> None:
    window = RotationWindow()
    for i in range(12):  # 'startups' holds 6 of 12 (50% > 35%), 'how_to' 6 of 12 (50% > 40%)
        topic = "startups" if i % 2 else f"t{i}"
        angle = "how_to" if i % 2 == 0 else f"a{i}"
        window.add(f"d{i}", topic, angle, NOW - timedelta(hours=i))
    arms = ["startups:story", "productivity:how_to", "productivity:story"]
    assert eligible_arms(arms, window, NOW, GateConfig()) == ["productivity:story"]
    assert eligible_arms(["startups:how_to"], window, NOW, GateConfig()) == ["startups:how_to"]  # none left: all


def test_untried_slots_first_then_the_best() -> None:
    rng = np.random.default_rng(3)
    tried = [SlotState(hour=h, n=20, mean_er=0.02) for h in range(24) if h != 14]
    hour, at = choose_slot(model(slots=tried), [], NOW, timedelta(minutes=60), rng)
    assert hour == 14 and at == datetime(2026, 3, 2, 14, tzinfo=UTC)
    slots = [SlotState(hour=h, n=50, mean_er=0.08 if h == 18 else 0.01) for h in range(24)]
    hour, at = choose_slot(model(slots=slots), [], NOW, timedelta(minutes=60), rng)
    assert hour == 18 and at == datetime(2026, 3, 2, 18, tzinfo=UTC)


def test_the_current_hour_is_scheduled_from_now_and_a_passed_hour_tomorrow() -> None:
    rng = np.random.default_rng(4)
    only = [SlotState(hour=h, n=50, mean_er=0.09 if h == 10 else 0.01) for h in range(24)]
    assert choose_slot(model(slots=only), [], NOW, timedelta(minutes=15), rng) == (10, NOW.replace(second=0))
    only = [SlotState(hour=h, n=50, mean_er=0.09 if h == 9 else 0.01) for h in range(24)]
    assert choose_slot(model(slots=only), [], NOW, timedelta(minutes=15), rng)[1] == datetime(
        2026, 3, 3, 9, tzinfo=UTC)


def test_a_full_hour_is_passed_over_and_the_gap_is_kept_from_everything_queued() -> None:
    rng = np.random.default_rng(5)
    slots = [SlotState(hour=h, n=50, mean_er=0.09 if h == 18 else (0.06 if h == 19 else 0.01)) for h in range(24)]
    busy = [datetime(2026, 3, 2, 18, 30, tzinfo=UTC)]  # 18:00-19:00 has no room with a 60-minute gap
    hour, at = choose_slot(model(slots=slots), busy, NOW, timedelta(minutes=60), rng)
    assert hour == 19 and at == datetime(2026, 3, 2, 19, 30, tzinfo=UTC)


def test_every_hour_booked_pushes_to_a_later_day_keeping_the_gap() -> None:
    rng = np.random.default_rng(6)
    busy = [NOW.replace(minute=30) + timedelta(hours=h) for h in range(0, 30)]
    hour, at = choose_slot(None, busy, NOW, timedelta(minutes=60), rng)
    assert all(abs(at - b) >= timedelta(minutes=60) for b in busy) and at.hour == hour


def test_choose_spaces_a_batch_and_records_the_model_version() -> None:
    state = RecentDecisions.empty()
    state.model = model()
    policy = policy_from(Flags(MIN_POST_INTERVAL_MINUTES=15, MAX_POSTS_PER_HOUR=2), thread_ratio=0.5)
    assert policy.gap == timedelta(minutes=30)
    rng = np.random.default_rng(7)
    choices = [choose(state, policy, NOW, rng, decision_id=f"d{i}") for i in range(40)]
    assert {c.decision_type for c in choices} == {"single", "thread"}
    assert all(c.model_version == 3 and c.timing_arm == f"hour:{c.hour}" for c in choices)
    assert all(c.bandit_arm == f"{c.topic}:{c.angle}" for c in choices)


def test_the_gap_is_the_longer_of_min_interval_and_the_hourly_cap() -> None:
    assert PlanPolicy(live=True, min_interval_minutes=15, max_posts_per_hour=1).gap == timedelta(minutes=60)
    assert PlanPolicy(live=True, min_interval_minutes=90, max_posts_per_hour=1).gap == timedelta(minutes=90)
    assert PlanPolicy(live=True, min_interval_minutes=15, max_posts_per_hour=0).gap == timedelta(minutes=15)


def test_predicted_er_is_null_unless_a_predictor_answers() -> None:
    ridge = PredictorState(kind="ridge_er", feature_names=["x"], coefficients=[1.0], intercept=0.0, means=[0.0],
                           stds=[1.0], metrics={"r2": 0.3}, n_train=40, n_holdout=10)
    assert predicted_er(None, {}, lambda m, f: 0.5) is None
    assert predicted_er(model(), {}, lambda m, f: 0.5) is None  # a model without predictors
    assert predicted_er(model(predictors=[ridge]), {}, None) is None
    assert predicted_er(model(predictors=[ridge]), {}, lambda m, f: 0.0412345678) == 0.041235
    assert predicted_er(model(predictors=[ridge]), {}, lambda m, f: float("nan")) is None

    def broken(m: ModelUpdated, f: dict[str, object]) -> float:
        raise KeyError("x")

    assert predicted_er(model(predictors=[ridge]), {}, broken) is None


def test_posts_keep_the_hourly_gap_from_posts_and_only_min_interval_from_replies() -> None:
    from shared.events import DecisionQueued

    def q(did: str, dtype: str, at: datetime) -> DecisionQueued:
        return DecisionQueued(event_id=did, occurred_at=NOW, decision_id=did, decision_type=dtype, content="x",
                              parts=["x"], bandit_arm="a", generation_source="synthetic", topic_cluster="t",
                              angle="a", content_hash=did, scheduled_at=at)

    state = RecentDecisions.empty()
    state.model = model(slots=[SlotState(hour=h, n=50, mean_er=0.09 if h == 18 else 0.01) for h in range(24)])
    state.apply(q("reply", "reply", datetime(2026, 3, 2, 18, 5, tzinfo=UTC)))
    policy = PlanPolicy(live=False, min_interval_minutes=15, max_posts_per_hour=1)
    first = choose(state, policy, NOW, np.random.default_rng(1), decision_id="p1")
    assert first.scheduled_at == datetime(2026, 3, 2, 18, 20, tzinfo=UTC)  # 15 min after the reply
    state.apply(q("post", "single", first.scheduled_at))
    second = choose(state, policy, NOW, np.random.default_rng(1), decision_id="p2")
    assert second.hour != 18  # 18:00-19:00 has no room left for a post an hour from 18:20


def test_a_run_picks_every_arm_first_counting_its_earlier_picks_as_queued() -> None:
    """A run picks all its arms before it writes: each pick must see the earlier ones, or a strong arm would be
    picked for the whole batch and the rotation gate would then block most of it."""
    best = ArmState(arm="startups:story", scope="content", alpha=90, beta=5, successes=89, failures=4)
    state = RecentDecisions.empty()
    for i in range(30):  # a window of 30 queued decisions, spread over four other topics and three angles
        state.rotation.add(f"w{i}", ["ai_tools", "productivity", "automation", "career_growth"][i % 4],
                           ["how_to", "data", "question"][i % 3], NOW - timedelta(hours=i))
    weak = [ArmState(arm=a, scope="content", alpha=2, beta=30, successes=1, failures=29)
            for a in default_content_arms() if a != best.arm]
    state.model = model(arms=[best, *weak])
    policy = PlanPolicy(live=False)
    rng = np.random.default_rng(4)
    pending = PendingPicks(state.rotation)
    picks = []
    for i in range(20):
        p = pick(state, policy, NOW, rng, decision_id=f"p{i}", pending=pending)
        pending.add(p.topic, p.angle)
        picks.append(p)
    startups = [i for i, p in enumerate(picks) if p.topic == "startups"]
    # the strong arm is picked while its share, earlier picks included, stays under the 35% cap, and no further
    assert len(startups) >= 10
    for k, i in enumerate(startups):
        assert (k + 1) / (30 + i + 1) <= 0.35
    # without counting the picks, every pick would take the strong arm
    blind = [pick(state, policy, NOW, np.random.default_rng(4), decision_id="q") for _ in range(20)]
    assert all(p.topic == "startups" for p in blind)
