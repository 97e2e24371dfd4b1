"""Thompson posteriors and UCB1 slots: arithmetic, priors, exploration order, the arm adjustment."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import numpy as np
import pytest

from shared.learning import bandits
from shared.learning.arms import (
    DEFAULT_ANGLES,
    DEFAULT_TOPICS,
    REPLY_ARMS,
    ArmPosterior,
    SlotStats,
    content_arm,
    default_content_arms,
    hour_of_timing_arm,
    split_arm,
    timing_arm,
)

pytestmark = pytest.mark.unit


def test_catalogue_is_topic_by_angle_and_arm_names_round_trip():
    arms = default_content_arms()
    assert len(arms) == len(DEFAULT_TOPICS) * len(DEFAULT_ANGLES) == len(set(arms))
    assert 6 <= len(DEFAULT_TOPICS) <= 10 and 4 <= len(DEFAULT_ANGLES) <= 6 and len(REPLY_ARMS) >= 3
    for arm in arms:
        assert content_arm(*split_arm(arm)) == arm
    assert split_arm("ai_tools:how_to") == ("ai_tools", "how_to")
    for bad in ("ai_tools", ":how_to", "ai_tools:", "a:b:c"):
        with pytest.raises(ValueError):
            split_arm(bad)
    assert [hour_of_timing_arm(timing_arm(h)) for h in range(24)] == list(range(24))
    for bad in ("hour:24", "hour:-1", "slot:3", "hour:"):
        with pytest.raises(ValueError):
            hour_of_timing_arm(bad)


def test_posteriors_count_successes_and_failures_per_scope_and_arm():
    obs = [
        ("a", "content", True),
        ("a", "content", True),
        ("a", "content", False),
        ("b", "content", False),
        ("a", "reply", True),
    ]
    post = bandits.beta_posteriors(obs)
    assert set(post) == {("content", "a"), ("content", "b"), ("reply", "a")}
    assert post[("content", "a")] == ArmPosterior(
        arm="a", scope="content", alpha=3.0, beta=2.0, successes=2, failures=1
    )
    assert post[("content", "b")] == ArmPosterior(
        arm="b", scope="content", alpha=1.0, beta=2.0, successes=0, failures=1
    )
    assert post[("reply", "a")].alpha == 2.0 and post[("reply", "a")].beta == 1.0
    custom = bandits.beta_posteriors(obs, prior=(2.0, 5.0))[("content", "a")]
    assert (custom.alpha, custom.beta) == (4.0, 6.0)
    assert custom.mean == pytest.approx(0.4) and custom.n == 3
    with pytest.raises(ValueError):
        bandits.beta_posteriors(obs, prior=(0.0, 1.0))
    with pytest.raises(AttributeError):
        custom.alpha = 9.0  # type: ignore[misc]  # frozen


def test_success_rule_is_strictly_above_threshold_and_refuses_unknown_er():
    assert bandits.SUCCESS_ER_THRESHOLD == 0.03
    assert bandits.success_of(0.031) and not bandits.success_of(0.03) and not bandits.success_of(0.0)
    assert bandits.success_of(0.05, threshold=0.04) and not bandits.success_of(0.035, threshold=0.04)
    for unknown in (None, math.nan, math.inf):
        with pytest.raises(ValueError):
            bandits.success_of(unknown)


def test_thompson_is_uniform_before_any_model():
    arms = ["a", "b", "c", "d"]
    rng = np.random.default_rng(1)
    counts = Counter(bandits.thompson_choose({}, arms, rng) for _ in range(4000))
    assert set(counts) == set(arms)
    for arm in arms:  # each ~1000; 5 sigma is ~140
        assert abs(counts[arm] - 1000) < 150


def test_thompson_follows_the_posteriors_and_unseen_arms_use_the_prior():
    post = bandits.beta_posteriors([("good", "content", True)] * 60 + [("bad", "content", False)] * 60)
    rng = np.random.default_rng(2)
    counts = Counter(bandits.thompson_choose(post, ["good", "bad", "new"], rng) for _ in range(2000))
    assert counts["bad"] == 0  # Beta(1, 61) essentially never beats the others
    assert counts["good"] > 1900  # Beta(61, 1) beats the Beta(1, 1) prior ~98% of the time
    assert counts["new"] > 0  # the unseen arm still draws from the prior
    # a scope's posterior does not leak into another scope
    counts_reply = Counter(
        bandits.thompson_choose(post, ["good", "bad"], rng, scope="reply") for _ in range(2000)
    )
    assert 800 < counts_reply["good"] < 1200
    # posteriors keyed by arm name alone (as a model event's arms may be) work too
    by_name = {arm: p for (_, arm), p in post.items()}
    assert bandits.thompson_choose(by_name, ["bad", "good"], rng) == "good"
    # seeded: same rng state, same choice sequence
    seq = [bandits.thompson_choose(post, ["good", "new"], np.random.default_rng(7)) for _ in range(5)]
    assert len(set(seq)) == 1
    with pytest.raises(ValueError):
        bandits.thompson_choose(post, [], rng)


def test_slot_stats_covers_24_hours_with_means():
    stats = bandits.slot_stats([(9, 0.02), (9, 0.04), (23, 0.01)])
    assert [s.hour for s in stats] == list(range(24))
    assert stats[9] == SlotStats(hour=9, n=2, mean_er=pytest.approx(0.03), sum_er=pytest.approx(0.06))
    assert stats[23].n == 1 and stats[23].mean_er == pytest.approx(0.01)
    assert stats[0] == SlotStats(hour=0, n=0, mean_er=None, sum_er=0.0)
    for bad in ([(24, 0.1)], [(-1, 0.1)], [(3, math.nan)]):
        with pytest.raises(ValueError):
            bandits.slot_stats(bad)


def test_ucb1_tries_every_slot_once_before_repeating_one():
    rng = np.random.default_rng(3)
    obs: list[tuple[int, float]] = []
    chosen = []
    for _ in range(24):
        hour = bandits.ucb1_choose(bandits.slot_stats(obs), rng)
        chosen.append(hour)
        obs.append((hour, 0.5 if hour == 5 else 0.01))  # hour 5 looks great as soon as it is tried
    assert sorted(chosen) == list(range(24))
    # before any data the choice is uniform over 24 hours (ties broken by rng)
    first = Counter(bandits.ucb1_choose(bandits.slot_stats([]), rng) for _ in range(2400))
    assert set(first) == set(range(24)) and max(first.values()) < 160
    # after every slot is tried, the best-looking slot wins
    assert bandits.ucb1_choose(bandits.slot_stats(obs), rng) == 5


def test_ucb1_index_arithmetic_and_exploration_bonus():
    slots = bandits.slot_stats([(1, 0.05)] * 9 + [(2, 0.04)])
    scores = bandits.ucb1_scores(slots, c=0.2)
    n_total = 10
    assert scores[1] == pytest.approx(0.5 + 0.2 * math.sqrt(math.log(n_total) / 9))
    assert scores[2] == pytest.approx(0.4 + 0.2 * math.sqrt(math.log(n_total) / 1))
    assert scores[0] == math.inf
    # ER is scaled by the documented bound and clipped to [0, 1]
    assert bandits.slot_reward(0.05) == pytest.approx(0.5)
    assert bandits.slot_reward(0.5) == 1.0 and bandits.slot_reward(-0.1) == 0.0
    # a big c explores the rarely tried slot, a small c exploits the better mean
    tried = [s for s in slots if s.n > 0]
    rng = np.random.default_rng(0)
    assert bandits.ucb1_choose(tried, rng, hours=(1, 2), c=math.sqrt(2)) == 2
    assert bandits.ucb1_choose(tried, rng, hours=(1, 2), c=0.01) == 1

    # SlotState-like records without sum_er are accepted
    class Slot(msgspec.Struct, frozen=True):
        hour: int
        n: int
        mean_er: float | None

    assert bandits.ucb1_choose([Slot(1, 9, 0.05), Slot(2, 9, 0.01)], rng, hours=(1, 2)) == 1


def test_ucb1_pending_choices_spread_a_batch():
    rng = np.random.default_rng(4)
    # untried slots: a batch chosen from one model goes to distinct hours first
    pending: dict[int, int] = {}
    for _ in range(24):
        h = bandits.ucb1_choose(bandits.slot_stats([]), rng, pending=pending)
        pending[h] = pending.get(h, 0) + 1
    assert sorted(pending) == list(range(24)) and set(pending.values()) == {1}
    # tried slots: pending pulls shrink the bonus of the slot they went to
    slots = bandits.slot_stats([(1, 0.05)] * 5 + [(2, 0.049)] * 5)
    assert bandits.ucb1_choose(slots, rng, hours=(1, 2), c=0.2) == 1
    assert bandits.ucb1_choose(slots, rng, hours=(1, 2), c=0.2, pending={1: 20}) == 2


def test_arm_adjusted_slots_remove_the_arm_mix():
    # hour 3 was only tried with a poor arm, hour 4 only with a good one; both hours are equally good.
    rng = np.random.default_rng(5)
    obs = []
    for _ in range(200):
        obs.append(("poor", 3, 0.01 + rng.normal(0, 0.001)))
        obs.append(("good", 4, 0.05 + rng.normal(0, 0.001)))
        # the arms were also seen at a shared hour, which identifies the arm effect
        obs.append(("poor", 7, 0.02 + rng.normal(0, 0.001)))
        obs.append(("good", 7, 0.06 + rng.normal(0, 0.001)))
    raw = bandits.slot_stats((h, e) for _, h, e in obs)
    adj = bandits.slot_stats(bandits.arm_adjusted_slot_observations(obs))
    assert raw[4].mean_er - raw[3].mean_er == pytest.approx(0.04, abs=0.002)
    assert abs(adj[4].mean_er - adj[3].mean_er) < 0.003
    assert adj[7].mean_er - adj[3].mean_er == pytest.approx(0.01, abs=0.003)
    assert [s.n for s in adj] == [s.n for s in raw]
    assert bandits.arm_adjusted_slot_observations([]) == []
    assert bandits.top_slots(adj, 1) == (7,)
    assert bandits.top_slots(bandits.slot_stats([(2, 0.9)] * 3 + [(5, 0.1)] * 10), 2) == (5,)
