"""A simulated audience: the hidden ground truth that shadow mode's outcomes are drawn from.

The expected engagement rate of a post is a product of effects::

    expected_er = BASE_ER * arm_effect[arm] * hour_effect[hour] * TYPE_EFFECT[decision_type] * VIRAL_MEAN

- one content arm is clearly the best (its effect is ``BEST_ARM_MARGIN`` × the runner-up's), and one
  reply arm likewise among the reply arms;
- two hours (``best_hours()``) share the highest hour effect, the rest fall off around them, nights are low;
- threads do a little better than singles, replies a little worse;
- each post gets multiplicative log-normal noise (mean 1), binomial sampling noise on its engagements, and
  with probability ``VIRAL_PROB`` goes viral: ``VIRAL_IMPRESSIONS_MULT`` × impressions and
  ``VIRAL_ER_MULT`` × engagement rate.

Everything is deterministic for ``(seed, decision_id, horizon_hours)``: a post's eventual counts depend
only on ``(seed, decision_id)`` and its arm, hour and type, and the counts at a horizon are those totals
times a saturating curve of the horizon, so counts never decrease with the horizon (+24 h ≥ +1 h).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from shared.learning.arms import HOURS, REPLY_ARMS, default_content_arms
from shared.learning.metrics import ENGAGEMENT_FIELDS

BASE_ER = 0.024
BEST_ARM_MARGIN = 1.3
BEST_HOUR_EFFECT = 1.45
WORST_HOUR_EFFECT = 0.55
#: Hour effects fall off as a Gaussian of the circular distance (hours) to the nearest best hour ...
HOUR_WIDTH = 2.0
#: ... and every other hour is at least this factor below the best ones.
BEST_HOUR_MARGIN = 1.2
TYPE_EFFECT: dict[str, float] = {"single": 1.0, "thread": 1.12, "reply": 0.85}
NOISE_SIGMA = 0.30
VIRAL_PROB = 0.01
VIRAL_ER_MULT = 2.0
VIRAL_IMPRESSIONS_MULT = 12.0
VIRAL_MEAN = 1.0 + VIRAL_PROB * (VIRAL_ER_MULT - 1.0)
MAX_ER = 0.5
#: Impressions of an ordinary post: log-normal around ~800 (hundreds to a few thousand).
IMPRESSIONS_LOG_MEAN = math.log(800.0)
IMPRESSIONS_LOG_SIGMA = 0.5
#: Share of engagements by kind (likes, retweets, replies, bookmarks, quotes).
ENGAGEMENT_MIX: tuple[float, ...] = (0.62, 0.12, 0.10, 0.12, 0.04)
#: Counts at horizon h are ``total * (1 - exp(-h / tau))``, tau drawn per post in hours.
TAU_RANGE_HOURS = (2.0, 8.0)


def _seed_of(*parts: object) -> int:
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class Audience:
    """Hidden ground truth for shadow mode; see the module docstring."""

    def __init__(
        self,
        seed: int,
        *,
        content_arms: Sequence[str] | None = None,
        reply_arms: Sequence[str] = REPLY_ARMS,
    ) -> None:
        self.seed = int(seed)
        self.content_arms: tuple[str, ...] = tuple(content_arms or default_content_arms())
        self.reply_arms: tuple[str, ...] = tuple(reply_arms)
        rng = np.random.default_rng(_seed_of("audience", self.seed))
        self._arm_effect: dict[str, float] = {}
        self._best_arm: dict[str, str] = {}
        for scope, arms in (("content", self.content_arms), ("reply", self.reply_arms)):
            if not arms:
                continue
            effects = rng.uniform(0.65, 1.1, size=len(arms))
            best = int(rng.integers(len(arms)))
            others = np.delete(effects, best)
            effects[best] = (others.max() if others.size else 1.0) * BEST_ARM_MARGIN
            self._arm_effect.update(zip(arms, (float(e) for e in effects), strict=True))
            self._best_arm[scope] = arms[best]
        # Two best hours, at least 6 hours apart; effect falls off with circular distance to the nearest.
        first = int(rng.integers(24))
        second = int((first + rng.integers(6, 19)) % 24)
        self._best_hours = tuple(sorted((first, second)))
        hour_effect = {}
        for h in HOURS:
            d = min(min(abs(h - b), 24 - abs(h - b)) for b in self._best_hours)
            bump = math.exp(-0.5 * (d / HOUR_WIDTH) ** 2)
            hour_effect[h] = WORST_HOUR_EFFECT + (BEST_HOUR_EFFECT - WORST_HOUR_EFFECT) * bump
            if d > 0:
                hour_effect[h] = min(hour_effect[h], BEST_HOUR_EFFECT / BEST_HOUR_MARGIN)
        self._hour_effect = hour_effect

    # ----- the hidden truth, for regret and for tests -------------------------------------------------
    def arm_effect(self, arm: str) -> float:
        """Effect of an arm; an arm outside the catalogue gets a stable effect below the best arm's."""
        if arm in self._arm_effect:
            return self._arm_effect[arm]
        u = np.random.default_rng(_seed_of("unknown-arm", self.seed, arm)).uniform(0.65, 1.1)
        return float(u)

    def hour_effect(self, hour: int) -> float:
        return self._hour_effect[int(hour) % 24]

    def expected_er(self, arm: str, hour: int, decision_type: str = "single") -> float:
        """The mean engagement rate a post of this arm, hour and type earns (noise and virality included)."""
        p = BASE_ER * self.arm_effect(arm) * self.hour_effect(hour) * TYPE_EFFECT.get(decision_type, 1.0)
        return min(p, MAX_ER) * VIRAL_MEAN

    def best_arm(self, scope: str = "content") -> str:
        return self._best_arm[scope]

    def best_hours(self) -> tuple[int, ...]:
        return self._best_hours

    # ----- outcomes -----------------------------------------------------------------------------------
    def _totals(
        self, decision_id: str, arm: str, hour: int, decision_type: str
    ) -> tuple[dict[str, int], float]:
        rng = np.random.default_rng(_seed_of("post", self.seed, decision_id))
        viral = bool(rng.random() < VIRAL_PROB)
        noise = float(rng.lognormal(-0.5 * NOISE_SIGMA**2, NOISE_SIGMA))
        impressions = float(rng.lognormal(IMPRESSIONS_LOG_MEAN, IMPRESSIONS_LOG_SIGMA))
        impressions *= 0.8 + 0.2 * self.hour_effect(hour)
        if decision_type == "reply":
            impressions *= 0.4
        p = BASE_ER * self.arm_effect(arm) * self.hour_effect(hour) * TYPE_EFFECT.get(decision_type, 1.0)
        p = min(p * noise, MAX_ER)
        if viral:
            impressions *= VIRAL_IMPRESSIONS_MULT
            p = min(p * VIRAL_ER_MULT, MAX_ER)
        n_impressions = max(1, int(round(impressions)))
        engaged = int(rng.binomial(n_impressions, p))
        parts = rng.multinomial(engaged, ENGAGEMENT_MIX)
        totals = {"impressions": n_impressions}
        totals.update({k: int(v) for k, v in zip(ENGAGEMENT_FIELDS, parts, strict=True)})
        tau = float(rng.uniform(*TAU_RANGE_HOURS))
        return totals, tau

    def metrics(
        self, decision_id: str, arm: str, hour: int, decision_type: str, horizon_hours: float
    ) -> dict[str, int]:
        """Counts ``horizon_hours`` after posting: impressions, likes, retweets, replies, bookmarks, quotes.

        Deterministic for ``(seed, decision_id, horizon_hours)`` (given the post's arm, hour and type),
        and non-decreasing in ``horizon_hours``; all zero at horizon 0.
        """
        if horizon_hours < 0 or not math.isfinite(horizon_hours):
            raise ValueError(f"horizon_hours must be >= 0, got {horizon_hours!r}")
        totals, tau = self._totals(decision_id, arm, int(hour) % 24, decision_type)
        frac = 1.0 - math.exp(-float(horizon_hours) / tau)
        return {k: int(math.floor(v * frac + 1e-9)) for k, v in totals.items()}
