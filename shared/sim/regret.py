"""Regret of the learner's bandits against the simulated audience, beside textbook references.

``run_policy(env, "ours")`` plays the loop the services play: the learner recomputes Beta posteriors and
slot statistics from every outcome so far with ``shared.learning.bandits`` every ``batch`` outcomes, and
between two updates the planner chooses each decision's content arm (Thompson) and hour (UCB1) from the
last published model. The references are written here independently of ``bandits.py`` and update after
every outcome: ``thompson_ref`` (Beta(1,1)-Bernoulli Thompson for arms and hours, success = ER above the
threshold), ``ucb1_ref`` (UCB1 with c = sqrt(2) for arms and hours, reward = min(ER / 0.1, 1)), and
``random``.

Regret of one decision is ``expected_er(best arm, best hour, type) - expected_er(chosen arm, hour, type)``
under the audience's hidden truth; the decision type is drawn from a stream shared by all policies.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from shared.learning import bandits
from shared.learning.arms import CONTENT_SCOPE
from shared.learning.metrics import SUCCESS_ER_THRESHOLD, engagement_rate

from .audience import Audience

POLICIES: tuple[str, ...] = ("ours", "thompson_ref", "ucb1_ref", "random")
HORIZON_HOURS = 24


class RegretResult(msgspec.Struct, frozen=True, kw_only=True):
    policy: str
    n_decisions: int
    cumulative_regret: float
    best_arm_found: str
    best_hours_found: tuple[int, ...]
    #: cumulative regret after each decision
    curve: tuple[float, ...]


class _Agent:
    """Chooses (arm, hour), observes ER, and says which arm and hours it rates best at the end."""

    def __init__(self, arms: tuple[str, ...], rng: np.random.Generator, threshold: float) -> None:
        self.arms, self.rng, self.threshold = arms, rng, threshold
        self.index = {a: i for i, a in enumerate(arms)}

    def choose(self) -> tuple[str, int]:
        raise NotImplementedError

    def observe(self, arm: str, hour: int, er: float) -> None:
        raise NotImplementedError

    def found(self, k: int) -> tuple[str, tuple[int, ...]]:
        raise NotImplementedError


def _top(values: np.ndarray, counts: np.ndarray, k: int, min_n: int = 10) -> tuple[int, ...]:
    ok = np.flatnonzero(counts >= min_n)
    order = ok[np.argsort(-values[ok], kind="stable")]
    return tuple(sorted(int(i) for i in order[:k]))


class _Random(_Agent):
    """Uniform choices; at the end rates arms and hours by their raw mean ER."""

    def __init__(self, arms: tuple[str, ...], rng: np.random.Generator, threshold: float) -> None:
        super().__init__(arms, rng, threshold)
        self.n, self.s = np.zeros(len(arms)), np.zeros(len(arms))
        self.hn, self.hs = np.zeros(24), np.zeros(24)

    def choose(self) -> tuple[str, int]:
        return self.arms[int(self.rng.integers(len(self.arms)))], int(self.rng.integers(24))

    def observe(self, arm: str, hour: int, er: float) -> None:
        i = self.index[arm]
        self.n[i] += 1
        self.s[i] += er
        self.hn[hour] += 1
        self.hs[hour] += er

    def found(self, k: int) -> tuple[str, tuple[int, ...]]:
        with np.errstate(invalid="ignore", divide="ignore"):
            arm_mean = np.where(self.n > 0, self.s / self.n, -np.inf)
            hour_mean = np.where(self.hn > 0, self.hs / self.hn, -np.inf)
        return self.arms[int(np.argmax(arm_mean))], _top(hour_mean, self.hn, k)


class _Ours(_Agent):
    """The services' loop: choose from the last model; the learner retrains every ``batch`` outcomes."""

    def __init__(self, arms: tuple[str, ...], rng: np.random.Generator, threshold: float, batch: int) -> None:
        super().__init__(arms, rng, threshold)
        self.batch = batch
        self.arm_obs: list[tuple[str, str, bool]] = []
        self.slot_obs: list[tuple[str, int, float]] = []
        self.posteriors = bandits.beta_posteriors([])
        self.slots = bandits.slot_stats([])
        self.pending = 0
        self.pending_hours: dict[int, int] = {}

    def _learn(self) -> None:
        self.posteriors = bandits.beta_posteriors(self.arm_obs)
        self.slots = bandits.slot_stats(bandits.arm_adjusted_slot_observations(self.slot_obs))
        self.pending = 0
        self.pending_hours = {}

    def choose(self) -> tuple[str, int]:
        arm = bandits.thompson_choose(self.posteriors, self.arms, self.rng, scope=CONTENT_SCOPE)
        hour = bandits.ucb1_choose(self.slots, self.rng, pending=self.pending_hours)
        self.pending_hours[hour] = self.pending_hours.get(hour, 0) + 1
        return arm, hour

    def observe(self, arm: str, hour: int, er: float) -> None:
        self.arm_obs.append((arm, CONTENT_SCOPE, bandits.success_of(er, self.threshold)))
        self.slot_obs.append((arm, hour, er))
        self.pending += 1
        if self.pending >= self.batch:
            self._learn()

    def found(self, k: int) -> tuple[str, tuple[int, ...]]:
        self._learn()
        # Thompson spends its pulls on what it believes: the most-pulled arm is its pick.
        best = max(self.posteriors.values(), key=lambda p: (p.n, p.mean))
        return best.arm, bandits.top_slots(self.slots, k)


class _ThompsonRef(_Agent):
    """Textbook Beta(1,1)-Bernoulli Thompson sampling, arms and hours independently, updated every outcome."""

    def __init__(self, arms: tuple[str, ...], rng: np.random.Generator, threshold: float) -> None:
        super().__init__(arms, rng, threshold)
        self.a, self.b = np.ones(len(arms)), np.ones(len(arms))
        self.ha, self.hb = np.ones(24), np.ones(24)

    def choose(self) -> tuple[str, int]:
        i = int(np.argmax(self.rng.beta(self.a, self.b)))
        return self.arms[i], int(np.argmax(self.rng.beta(self.ha, self.hb)))

    def observe(self, arm: str, hour: int, er: float) -> None:
        win = er > self.threshold
        i = self.index[arm]
        self.a[i] += win
        self.b[i] += not win
        self.ha[hour] += win
        self.hb[hour] += not win

    def found(self, k: int) -> tuple[str, tuple[int, ...]]:
        pulls = self.a + self.b - 2
        return self.arms[int(np.argmax(pulls))], _top(self.ha / (self.ha + self.hb), self.ha + self.hb - 2, k)


class _Ucb1Ref(_Agent):
    """Textbook UCB1 (c = sqrt(2), reward = min(ER / 0.1, 1)), arms and hours independently."""

    def __init__(self, arms: tuple[str, ...], rng: np.random.Generator, threshold: float) -> None:
        super().__init__(arms, rng, threshold)
        self.n, self.s = np.zeros(len(arms)), np.zeros(len(arms))
        self.hn, self.hs = np.zeros(24), np.zeros(24)

    def _pick(self, n: np.ndarray, s: np.ndarray) -> int:
        untried = np.flatnonzero(n == 0)
        if untried.size:
            return int(self.rng.choice(untried))
        return int(np.argmax(s / n + np.sqrt(2.0 * math.log(n.sum()) / n)))

    def choose(self) -> tuple[str, int]:
        return self.arms[self._pick(self.n, self.s)], self._pick(self.hn, self.hs)

    def observe(self, arm: str, hour: int, er: float) -> None:
        r = min(max(er / 0.1, 0.0), 1.0)
        i = self.index[arm]
        self.n[i] += 1
        self.s[i] += r
        self.hn[hour] += 1
        self.hs[hour] += r

    def found(self, k: int) -> tuple[str, tuple[int, ...]]:
        with np.errstate(invalid="ignore", divide="ignore"):
            hour_mean = np.where(self.hn > 0, self.hs / self.hn, -np.inf)
        return self.arms[int(np.argmax(self.n))], _top(hour_mean, self.hn, k)


def run_policy(
    env: Audience,
    policy: str,
    n_decisions: int = 2000,
    seed: int = 0,
    *,
    batch: int = 10,
    threshold: float = SUCCESS_ER_THRESHOLD,
    thread_share: float = 0.2,
) -> RegretResult:
    """Play ``n_decisions`` content decisions against ``env`` with ``policy`` and measure the regret."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {POLICIES}")
    if n_decisions <= 0 or batch <= 0:
        raise ValueError("n_decisions and batch must be positive")
    arms = env.content_arms
    rng = np.random.default_rng([seed, 1])
    types_rng = np.random.default_rng([seed, 2])
    agent: _Agent
    if policy == "ours":
        agent = _Ours(arms, rng, threshold, batch)
    elif policy == "thompson_ref":
        agent = _ThompsonRef(arms, rng, threshold)
    elif policy == "ucb1_ref":
        agent = _Ucb1Ref(arms, rng, threshold)
    else:
        agent = _Random(arms, rng, threshold)

    best_arm, best_hour = env.best_arm(CONTENT_SCOPE), env.best_hours()[0]
    total = 0.0
    curve: list[float] = []
    for t in range(n_decisions):
        dtype = "thread" if types_rng.random() < thread_share else "single"
        arm, hour = agent.choose()
        total += env.expected_er(best_arm, best_hour, dtype) - env.expected_er(arm, hour, dtype)
        curve.append(total)
        er = engagement_rate(env.metrics(f"sim-{seed}-{t}", arm, hour, dtype, HORIZON_HOURS))
        if er is not None:
            agent.observe(arm, hour, er)

    found_arm, found_hours = agent.found(len(env.best_hours()))
    return RegretResult(
        policy=policy,
        n_decisions=n_decisions,
        cumulative_regret=total,
        best_arm_found=found_arm,
        best_hours_found=found_hours,
        curve=tuple(curve),
    )


__all__ = ["POLICIES", "RegretResult", "run_policy"]
