"""The bandits, as pure functions: Beta-Bernoulli Thompson sampling for content and reply arms, UCB1 over
the 24 hourly slots.

The learner turns outcomes into posteriors (:func:`beta_posteriors`) and slot statistics
(:func:`slot_stats`) and publishes them in ``model.updated``; the planner and the replier choose with
:func:`thompson_choose` and :func:`ucb1_choose` from the latest model. Randomness comes only from the
``numpy.random.Generator`` passed in, so a seeded run is reproducible.

**Success rule.** An outcome is a success when its engagement rate is strictly above
``SUCCESS_ER_THRESHOLD`` (0.03, the seed's default; configurable). ER of an account's posts on X sits mostly
in 1–5 %, so 3 % splits ordinary posts from good ones and gives the Beta posteriors an informative signal.

**UCB1 reward.** UCB1 needs rewards in [0, 1]. A slot's reward is its mean ER divided by
``ER_REWARD_BOUND`` (0.10) and clipped to [0, 1]: an hour whose posts average 10 % ER or more is as good as
an hour can be. Textbook UCB1 uses ``c = sqrt(2)``, the bonus for rewards that may spread over all of
[0, 1]. One post's ER spreads far less: its standard deviation around its slot's mean is about 0.014
(1.4 points) for posts with hundreds to thousands of impressions, 0.14 after scaling, and the UCB bonus
for σ-sub-Gaussian rewards is ``σ * sqrt(2 ln N / n)``; so ``DEFAULT_UCB_C = sqrt(2) * 0.14 ≈ 0.2``.
With the textbook ``c`` the bonus dwarfs the differences between hours and UCB1 barely beats random
(``shared.sim.regret`` measures both).

**Hours are adjusted for arms.** Arms and hours are chosen together and the arm mix drifts as Thompson
learns, so a plain per-hour mean credits an hour with its arms' quality; the learner feeds
:func:`slot_stats` with :func:`arm_adjusted_slot_observations`. Choices made in a batch from one model
pass ``pending`` to :func:`ucb1_choose` so they spread out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .arms import CONTENT_SCOPE, HOURS, ArmPosterior, SlotStats
from .metrics import SUCCESS_ER_THRESHOLD, success_of

__all__ = [
    "ARM_SHRINKAGE",
    "DEFAULT_PRIOR",
    "DEFAULT_UCB_C",
    "ER_REWARD_BOUND",
    "SUCCESS_ER_THRESHOLD",
    "arm_adjusted_slot_observations",
    "beta_posteriors",
    "slot_reward",
    "slot_stats",
    "success_of",
    "thompson_choose",
    "top_slots",
    "ucb1_choose",
    "ucb1_scores",
]

DEFAULT_PRIOR: tuple[float, float] = (1.0, 1.0)
ER_REWARD_BOUND = 0.10
DEFAULT_UCB_C = math.sqrt(2.0) * 0.14
ARM_SHRINKAGE = 5.0
TOP_SLOT_MIN_N = 10


class _BetaLike(Protocol):
    @property
    def alpha(self) -> float: ...
    @property
    def beta(self) -> float: ...


class _SlotLike(Protocol):
    @property
    def hour(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def mean_er(self) -> float | None: ...


def beta_posteriors(
    observations: Iterable[tuple[str, str, bool]], prior: tuple[float, float] = DEFAULT_PRIOR
) -> dict[tuple[str, str], ArmPosterior]:
    """Count ``(arm, scope, success)`` observations into Beta posteriors keyed by ``(scope, arm)``.

    ``alpha = prior[0] + successes``, ``beta = prior[1] + failures``. Only arms that were observed appear.
    """
    a0, b0 = float(prior[0]), float(prior[1])
    if not (a0 > 0 and b0 > 0 and math.isfinite(a0) and math.isfinite(b0)):
        raise ValueError(f"prior must be two positive finite numbers, got {prior!r}")
    counts: dict[tuple[str, str], list[int]] = {}
    for arm, scope, success in observations:
        c = counts.setdefault((scope, arm), [0, 0])
        c[0 if success else 1] += 1
    return {
        (scope, arm): ArmPosterior(arm=arm, scope=scope, alpha=a0 + s, beta=b0 + f, successes=s, failures=f)
        for (scope, arm), (s, f) in counts.items()
    }


def thompson_choose(
    posteriors: Mapping[tuple[str, str], _BetaLike] | Mapping[str, _BetaLike],
    arms: Sequence[str],
    rng: np.random.Generator,
    *,
    scope: str = CONTENT_SCOPE,
    prior: tuple[float, float] = DEFAULT_PRIOR,
) -> str:
    """Thompson sampling: draw one sample from each arm's Beta posterior, return the arm with the largest.

    ``posteriors`` is keyed by ``(scope, arm)`` (as :func:`beta_posteriors` returns) or by arm name alone;
    values are anything with ``alpha`` and ``beta`` (``ArmPosterior``, the ``ArmState`` of a
    ``model.updated`` event). An arm without a posterior draws from the prior, so before any model every
    arm is equally likely. Ties (practically impossible) go to the first arm in ``arms``.
    """
    if not arms:
        raise ValueError("no arms to choose from")
    a = np.empty(len(arms))
    b = np.empty(len(arms))
    for i, arm in enumerate(arms):
        p: Any = posteriors.get((scope, arm)) if posteriors else None  # type: ignore[call-overload]
        if p is None and posteriors:
            p = posteriors.get(arm)  # type: ignore[call-overload]
        a[i], b[i] = (p.alpha, p.beta) if p is not None else prior
    samples = rng.beta(a, b)
    return arms[int(np.argmax(samples))]


def slot_stats(observations: Iterable[tuple[int, float]]) -> list[SlotStats]:
    """Per hourly slot (all 24, in order): how many outcomes, their mean ER (``None`` if none) and sum."""
    n = [0] * 24
    total = [0.0] * 24
    for hour, er in observations:
        h = int(hour)
        if not 0 <= h <= 23:
            raise ValueError(f"hour out of range 0..23: {hour!r}")
        if er is None or not math.isfinite(er):
            raise ValueError(f"engagement rate must be a finite number, got {er!r}")
        n[h] += 1
        total[h] += float(er)
    return [
        SlotStats(hour=h, n=n[h], mean_er=(total[h] / n[h]) if n[h] else None, sum_er=total[h]) for h in HOURS
    ]


def arm_adjusted_slot_observations(
    observations: Iterable[tuple[str, int, float]], *, shrinkage: float = ARM_SHRINKAGE, n_iter: int = 20
) -> list[tuple[int, float]]:
    """``(arm, hour, er)`` -> ``(hour, er adjusted for the arm)``, for :func:`slot_stats`.

    Hours and content arms are chosen together, and the mix changes as the bandits learn: the hours
    exploited late are seen with good arms, the hours tried early with poor ones, so a plain mean ER per
    hour credits the hour with the arm's success. This fits the additive model
    ``er = mean + arm_effect + hour_effect`` by backfitting (``n_iter`` rounds; arm effects shrunk towards 0
    by ``shrinkage`` pseudo-observations, so an arm seen once does not swallow its post's hour effect), and
    returns each ER minus its arm's effect. Order is preserved.
    """
    obs = list(observations)
    if not obs:
        return []
    arm_index: dict[str, int] = {}
    arm_ix = np.array([arm_index.setdefault(a, len(arm_index)) for a, _, _ in obs])
    hour_ix = np.array([int(h) for _, h, _ in obs])
    if hour_ix.min() < 0 or hour_ix.max() > 23:
        raise ValueError("hour out of range 0..23")
    er = np.array([float(e) for _, _, e in obs])
    if not np.all(np.isfinite(er)):
        raise ValueError("engagement rates must be finite")
    n_arm = np.bincount(arm_ix, minlength=len(arm_index)).astype(float)
    n_hour = np.bincount(hour_ix, minlength=24).astype(float)
    mu = float(er.mean())
    arm_eff = np.zeros(len(arm_index))
    hour_eff = np.zeros(24)
    for _ in range(max(1, n_iter)):
        resid = er - mu - hour_eff[hour_ix]
        arm_eff = np.bincount(arm_ix, weights=resid, minlength=len(arm_index)) / (n_arm + shrinkage)
        resid = er - mu - arm_eff[arm_ix]
        with np.errstate(invalid="ignore", divide="ignore"):
            hour_eff = np.where(n_hour > 0, np.bincount(hour_ix, weights=resid, minlength=24) / n_hour, 0.0)
    adjusted = er - arm_eff[arm_ix]
    return [(int(h), float(e)) for h, e in zip(hour_ix, adjusted, strict=True)]


def top_slots(slots: Sequence[_SlotLike], k: int = 2, *, min_n: int = TOP_SLOT_MIN_N) -> tuple[int, ...]:
    """The ``k`` hours the statistics rate best: highest mean ER among slots with at least ``min_n``
    outcomes (ties to the earlier hour), sorted by hour. Fewer than ``k`` when fewer slots qualify."""
    rated = [s for s in slots if s.n >= min_n and s.mean_er is not None]
    rated.sort(key=lambda s: (-float(s.mean_er), int(s.hour)))  # type: ignore[arg-type]
    return tuple(sorted(int(s.hour) for s in rated[:k]))


def slot_reward(mean_er: float, bound: float = ER_REWARD_BOUND) -> float:
    """A slot's mean ER as a UCB1 reward in [0, 1]: ``clip(mean_er / bound, 0, 1)``."""
    return min(max(mean_er / bound, 0.0), 1.0)


def ucb1_scores(
    slots: Sequence[_SlotLike],
    *,
    c: float = DEFAULT_UCB_C,
    bound: float = ER_REWARD_BOUND,
    pending: Mapping[int, int] | None = None,
) -> dict[int, float]:
    """UCB1 index of every slot: ``reward + c * sqrt(ln N / n)``; ``inf`` for an untried slot.

    ``pending`` counts, per hour, decisions already scheduled there whose outcome is not in ``slots`` yet;
    they count as pulls (``n``, ``N``) at the slot's current mean, so a batch of choices made from one
    model spreads out instead of piling into one hour (the usual batched-UCB correction).
    """
    pend = pending or {}
    n_eff = {int(s.hour): int(s.n) + int(pend.get(int(s.hour), 0)) for s in slots}
    total = sum(n_eff.values())
    log_total = math.log(total) if total > 0 else 0.0
    scores: dict[int, float] = {}
    for s in slots:
        h = int(s.hour)
        if s.n <= 0 or s.mean_er is None:
            scores[h] = math.inf
        else:
            scores[h] = slot_reward(s.mean_er, bound) + c * math.sqrt(log_total / n_eff[h])
    return scores


def ucb1_choose(
    slots: Sequence[_SlotLike],
    rng: np.random.Generator,
    *,
    c: float = DEFAULT_UCB_C,
    bound: float = ER_REWARD_BOUND,
    hours: Sequence[int] = HOURS,
    pending: Mapping[int, int] | None = None,
) -> int:
    """UCB1 over hourly slots: an untried slot first, else the highest index; ties broken by ``rng``.

    ``slots`` holds ``SlotStats`` (or ``SlotState``) records; an hour of ``hours`` missing from ``slots``
    counts as untried. Before any data every hour is untried, so the choice is uniform. An untried slot
    that already has ``pending`` decisions ranks after untried slots without any (see :func:`ucb1_scores`).
    """
    if not hours:
        raise ValueError("no hours to choose from")
    pend = pending or {}
    by_hour = {int(s.hour): s for s in slots}
    known = [by_hour[h] for h in hours if h in by_hour]
    scores = ucb1_scores(known, c=c, bound=bound, pending=pend)
    values = np.array([scores.get(h, math.inf) for h in hours])
    if np.isinf(values.max()):  # untried slots: the least-pending of them first
        untried = [i for i, v in enumerate(values) if math.isinf(v)]
        least = min(int(pend.get(hours[i], 0)) for i in untried)
        best = np.array([i for i in untried if int(pend.get(hours[i], 0)) == least])
    else:
        best = np.flatnonzero(values == values.max())
    return int(hours[int(rng.choice(best))])
