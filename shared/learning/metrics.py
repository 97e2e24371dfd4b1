"""Engagement rate and success: the one definition every service uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: An outcome is a "success" for the Thompson arms when its ER is strictly above this (seed default).
SUCCESS_ER_THRESHOLD = 0.03

ENGAGEMENT_FIELDS: tuple[str, ...] = ("likes", "retweets", "replies", "bookmarks", "quotes")


def _get(m: Any, key: str) -> int:
    value = m.get(key, 0) if isinstance(m, Mapping) else getattr(m, key, 0)
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a non-negative finite number, got {value!r}")
    return int(value)


def engagement_rate(m: Mapping[str, Any] | Any) -> float | None:
    """ER = (likes + retweets + replies + bookmarks + quotes) / impressions; ``None`` when impressions is 0.

    ``m`` is a mapping or any object with those attributes (an ``OutcomeRecorded`` event, a DB row).
    A missing engagement count counts as 0; a missing impressions count means ER is unknown (``None``).
    """
    impressions = _get(m, "impressions")
    if impressions == 0:
        return None
    return sum(_get(m, k) for k in ENGAGEMENT_FIELDS) / impressions


def success_of(er: float | None, threshold: float = SUCCESS_ER_THRESHOLD) -> bool:
    """Success for the Beta-Bernoulli arms: ``er > threshold``.

    An unknown ER (``None``, NaN) is neither success nor failure: it raises ``ValueError`` so that the
    caller leaves the outcome out instead of counting it as a failure.
    """
    if er is None or not math.isfinite(er):
        raise ValueError(f"no engagement rate to judge: {er!r}")
    return er > threshold
