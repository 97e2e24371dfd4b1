"""Events of the decision aggregate: one planned post, thread or reply, from draft to tweet.

Subject: ``xbot.evt.decision.<decision_id>.<name>``; one decision's history is ``xbot.evt.decision.<id>.*``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from .base import Event

DecisionType = Literal["single", "thread", "reply"]
GenerationSource = Literal["real", "synthetic"]
FeatureValue = float | int | str | bool | None


class _DecisionEvent(Event, frozen=True, kw_only=True):
    aggregate: ClassVar[str] = "decision"
    decision_id: str

    @property
    def aggregate_id(self) -> str:
        return self.decision_id


class _DraftFields(_DecisionEvent, frozen=True, kw_only=True):
    """Every column of the seed's ``content_metadata``, carried by queued and skipped alike."""

    decision_type: DecisionType
    content: str
    parts: list[str]
    bandit_arm: str
    timing_arm: str | None = None
    quality_score: float | None = None
    predicted_er: float | None = None
    generation_source: GenerationSource
    scheduled_at: datetime | None = None
    topic_cluster: str
    angle: str
    content_hash: str
    features: dict[str, FeatureValue] = {}
    embedding: bytes = b""
    embedding_model: str = ""
    target_tweet_id: str | None = None
    target_username: str | None = None
    model_version: int | None = None
    #: sentences of the draft asserting what the account's facts do not hold (the claims gate): on a skipped
    #: draft why it was skipped (``unsupported_claim``); on a queued one (REQUIRE_APPROVAL=true) what the
    #: approving person must check. Empty for every draft without such a claim, and in events written before it.
    flagged_claims: list[str] = []


class DecisionQueued(_DraftFields, frozen=True, kw_only=True, tag="decision.queued"):
    name: ClassVar[str] = "queued"


class DecisionSkipped(_DraftFields, frozen=True, kw_only=True, tag="decision.skipped"):
    """A draft blocked by a gate: status ``skipped`` with the gate, reason and score."""

    name: ClassVar[str] = "skipped"
    gate: str
    skip_reason: str
    score: float | None = None


class DecisionPostSkipped(_DecisionEvent, frozen=True, kw_only=True, tag="decision.post_skipped"):
    """The poster looked at a due decision and did not post it; its status stays queued."""

    name: ClassVar[str] = "post_skipped"
    reason: str
    detail: str = ""


class DecisionPostStarted(_DecisionEvent, frozen=True, kw_only=True, tag="decision.post_started"):
    """The claim: published with the decision's expected last sequence, so only one poster wins."""

    name: ClassVar[str] = "post_started"
    attempt: int
    poster_id: str
    simulated: bool = False


class DecisionPartPosted(_DecisionEvent, frozen=True, kw_only=True, tag="decision.part_posted"):
    """One part of a thread is on X (read back); an interrupted thread resumes after the last part."""

    name: ClassVar[str] = "part_posted"
    part_index: int
    tweet_id: str
    simulated: bool = False


class DecisionPosted(_DecisionEvent, frozen=True, kw_only=True, tag="decision.posted"):
    """On X: ``tweet_id`` was read back from X (or from the simulator when ``simulated``), never invented."""

    name: ClassVar[str] = "posted"
    tweet_id: str
    posted_at: datetime
    decision_type: DecisionType
    bandit_arm: str
    timing_arm: str | None = None
    url: str | None = None
    simulated: bool = False
    recovered: bool = False
    thread_tweet_ids: list[str] = []


class DecisionPostFailed(_DecisionEvent, frozen=True, kw_only=True, tag="decision.post_failed"):
    name: ClassVar[str] = "post_failed"
    attempt: int
    error: str
    error_code: str = ""
    final: bool = False
    in_doubt: bool = False
    #: X asked us to wait (429): no post to this account before this time (from X's reset header, else a
    #: backoff that grows with consecutive 429s). The pause is part of the log, so it survives restarts.
    paused_until: datetime | None = None
    #: the attempt is known to have landed on X (a retry answered 187 "duplicate"): it is never posted again,
    #: only looked for until its id is found
    landed: bool = False


class DecisionApproved(_DecisionEvent, frozen=True, kw_only=True, tag="decision.approved"):
    name: ClassVar[str] = "approved"
    actor: str = "admin"


class DecisionRejected(_DecisionEvent, frozen=True, kw_only=True, tag="decision.rejected"):
    name: ClassVar[str] = "rejected"
    actor: str = "admin"
    reason: str = ""


class DecisionRescheduled(_DecisionEvent, frozen=True, kw_only=True, tag="decision.rescheduled"):
    name: ClassVar[str] = "rescheduled"
    scheduled_at: datetime
    actor: str = "admin"


class DecisionAttentionNeeded(_DecisionEvent, frozen=True, kw_only=True, tag="decision.attention_needed"):
    """An attempt stayed in doubt past RECONCILE_ATTENTION_MINUTES: the poster stops retrying it and asks the
    operator. It keeps looking for the tweet (reads only); an operator resolves it (``decision.doubt_resolved``)."""

    name: ClassVar[str] = "attention_needed"
    attempt: int
    reason: str
    detail: str = ""
    in_doubt_since: datetime | None = None


DoubtAction = Literal["retry", "abandon"]


class DecisionDoubtResolved(_DecisionEvent, frozen=True, kw_only=True, tag="decision.doubt_resolved"):
    """An operator's answer to an attempt in doubt: ``retry`` (it is not on X; close the attempt, post again)
    or ``abandon`` (give the decision up: status failed)."""

    name: ClassVar[str] = "doubt_resolved"
    action: DoubtAction
    actor: str = "admin"
    note: str = ""
