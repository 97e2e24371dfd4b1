"""The simulated audience: a deterministic hidden truth with realistic, monotone counts."""

from __future__ import annotations

import pytest

from shared.learning.arms import REPLY_ARMS, default_content_arms
from shared.learning.metrics import ENGAGEMENT_FIELDS, engagement_rate
from shared.sim.audience import Audience

pytestmark = pytest.mark.unit
KEYS = {"impressions", *ENGAGEMENT_FIELDS}


def test_metrics_are_deterministic_for_seed_decision_and_horizon():
    a, b = Audience(42), Audience(42)
    m1 = a.metrics("d-1", "ai_tools:how_to", 9, "single", 24)
    assert set(m1) == KEYS and all(isinstance(v, int) for v in m1.values())
    assert m1 == b.metrics("d-1", "ai_tools:how_to", 9, "single", 24)
    assert m1 == a.metrics("d-1", "ai_tools:how_to", 9, "single", 24)  # no hidden state consumed
    others = [a.metrics(f"d-{i}", "ai_tools:how_to", 9, "single", 24) for i in range(2, 8)]
    assert any(o != m1 for o in others)  # different posts differ
    assert Audience(43).metrics("d-1", "ai_tools:how_to", 9, "single", 24) != m1


def test_counts_never_decrease_with_the_horizon():
    env = Audience(1)
    for i in range(50):
        series = [env.metrics(f"p{i}", "startups:data", 14, "thread", h) for h in (0, 1, 2, 6, 24, 48)]
        assert all(v == 0 for v in series[0].values())
        for earlier, later in zip(series, series[1:], strict=False):
            assert all(later[k] >= earlier[k] for k in KEYS)
        assert series[4]["impressions"] > series[1]["impressions"]
    with pytest.raises(ValueError):
        env.metrics("p", "startups:data", 14, "single", -1)


def test_magnitudes_are_realistic():
    env = Audience(2)
    arms = default_content_arms()
    ms = [env.metrics(f"m{i}", arms[i % len(arms)], i % 24, "single", 24) for i in range(400)]
    imps = sorted(m["impressions"] for m in ms)
    assert 100 <= imps[len(imps) // 2] <= 3000  # median in the hundreds to low thousands
    assert imps[20] >= 100 and imps[-20] <= 20000
    ers = sorted(engagement_rate(m) for m in ms)
    assert 0.005 < ers[len(ers) // 2] < 0.08
    assert sum(m["likes"] for m in ms) > 3 * sum(m["retweets"] for m in ms)


def test_viral_outliers_are_rare():
    env = Audience(5)
    imps = [env.metrics(f"v{i}", "automation:story", 10, "single", 24)["impressions"] for i in range(2000)]
    median = sorted(imps)[len(imps) // 2]
    outliers = sum(1 for x in imps if x > 5 * median)
    assert 3 <= outliers <= 60  # ~1 % of posts


def test_the_hidden_truth_has_one_clearly_best_arm_and_a_couple_of_best_hours():
    env = Audience(3)
    arms = default_content_arms()
    best = env.best_arm()
    assert best in arms
    ranked = sorted(arms, key=lambda a: env.expected_er(a, 12), reverse=True)
    assert ranked[0] == best and env.expected_er(ranked[0], 12) >= 1.25 * env.expected_er(ranked[1], 12)
    hours = env.best_hours()
    assert len(hours) == 2
    top = max(env.expected_er(best, h) for h in range(24))
    assert all(env.expected_er(best, h) == pytest.approx(top) for h in hours)
    assert all(env.expected_er(best, h) < top / 1.15 for h in range(24) if h not in hours)
    assert env.expected_er(best, hours[0], "thread") > env.expected_er(best, hours[0], "single")
    assert env.best_arm("reply") in REPLY_ARMS
    # an arm outside the catalogue gets a stable effect, below the best
    assert env.expected_er("knitting:story", 5) == Audience(3).expected_er("knitting:story", 5)
    assert env.expected_er("knitting:story", 5) < env.expected_er(best, 5)


def test_observed_engagement_follows_the_expected_rate():
    env = Audience(4)
    best, worst = env.best_arm(), min(default_content_arms(), key=lambda a: env.expected_er(a, 3))
    hour = env.best_hours()[0]
    for arm in (best, worst):
        ms = [env.metrics(f"{arm}-{i}", arm, hour, "single", 10_000) for i in range(600)]
        mean_er = sum(engagement_rate(m) for m in ms) / len(ms)
        assert mean_er == pytest.approx(env.expected_er(arm, hour), rel=0.08)
