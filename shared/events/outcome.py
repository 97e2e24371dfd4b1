"""Events of the outcome aggregate: engagement a posted decision earned. Subject ``xbot.evt.outcome.<decision_id>.<name>``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from .base import Event


class _OutcomeEvent(Event, frozen=True, kw_only=True):
    aggregate: ClassVar[str] = "outcome"
    decision_id: str

    @property
    def aggregate_id(self) -> str:
        return self.decision_id


class OutcomeRecorded(_OutcomeEvent, frozen=True, kw_only=True, tag="outcome.recorded"):
    """Metrics at a horizon after posting.

    ``er_calculated`` = (likes + retweets + replies + bookmarks + quotes) / impressions, ``None`` when
    impressions is 0. ``simulated`` is true only for shadow-mode outcomes from the simulator.
    """

    name: ClassVar[str] = "recorded"
    tweet_id: str
    #: hours after posting: whole hours as an integer (every event written before fractions were allowed),
    #: a fraction as a float (0.25 = +15 min); both decode unchanged
    horizon_hours: int | float
    impressions: int
    likes: int
    retweets: int
    replies: int
    bookmarks: int
    quotes: int
    er_calculated: float | None
    simulated: bool
    collected_at: datetime
    bandit_arm: str = ""
    timing_arm: str | None = None
    decision_type: str = ""


class OutcomeCollectionFailed(_OutcomeEvent, frozen=True, kw_only=True, tag="outcome.collection_failed"):
    name: ClassVar[str] = "collection_failed"
    tweet_id: str
    horizon_hours: int | float
    reason: str
    attempt: int
    final: bool = False
