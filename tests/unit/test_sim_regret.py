"""The learning test: over 2,000 simulated decisions our bandits find the best arm and hours, cheaply."""

from __future__ import annotations

import pytest

from shared.sim.audience import Audience
from shared.sim.regret import POLICIES, run_policy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", [0, 1])
def test_ours_finds_the_best_arm_and_hours_with_far_less_regret_than_random(seed):
    env = Audience(seed)
    ours = run_policy(env, "ours", n_decisions=2000, seed=seed)
    rand = run_policy(env, "random", n_decisions=2000, seed=seed)
    assert ours.best_arm_found == env.best_arm()
    assert set(ours.best_hours_found) == set(env.best_hours())
    assert ours.cumulative_regret <= 0.3 * rand.cumulative_regret
    # learning shows in the curve: the last quarter costs much less per decision than the first
    q = len(ours.curve) // 4
    first, last = ours.curve[q - 1], ours.curve[-1] - ours.curve[-q - 1]
    assert last < 0.5 * first
    assert len(ours.curve) == 2000 and ours.curve[-1] == pytest.approx(ours.cumulative_regret)


def test_runs_are_reproducible_and_references_run():
    env = Audience(2)
    a = run_policy(env, "ours", n_decisions=300, seed=5)
    assert a == run_policy(env, "ours", n_decisions=300, seed=5)
    results = {p: run_policy(env, p, n_decisions=600, seed=5) for p in POLICIES}
    assert all(r.cumulative_regret >= 0 for r in results.values())
    assert all(r.curve == tuple(sorted(r.curve)) for r in results.values())  # regret only accumulates
    assert results["thompson_ref"].cumulative_regret < results["random"].cumulative_regret
    with pytest.raises(ValueError):
        run_policy(env, "greedy")
