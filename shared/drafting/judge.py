"""Judging a draft: pure. A draft (``Proposal``) and the state in, a gate outcome (``Verdict``) out; then pure
factories write the event that records it, ``decision.queued`` (``queued_event``) or ``decision.skipped``
(``skipped_event``; ``draft_event`` picks one for a draft slotted before it was judged).

The caller decides what only it knows between the two: the planner slots a draft that passed (no gate depends
on the slot, and a skipped draft is never slotted), the replier has its slot before judging; both predict the
ER of the features they record (``predicted_er``, ``None`` without a model: never a made-up number).

The claims gate (``GateRules.claims``: the account's facts and languages; no facts when None) runs on every
draft of the real LLM (``generation_source='real'``) and on no synthetic one: a template's "results" are never
posted to X, and checking them would only thin out the shadow loop. With ``flag_claims`` (REQUIRE_APPROVAL=true)
an unsupported claim does not skip the draft: it is queued, for a person to approve, with the sentences in
``flagged_claims``; a skipped draft lists them there too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from shared.events import DEFAULT_ACCOUNT, DecisionQueued, DecisionSkipped, ModelUpdated, new_event_id
from shared.events.decision import FeatureValue
from shared.gates import (
    ChainOutcome,
    ClaimPolicy,
    GateConfig,
    GateResult,
    content_hash,
    flagged_claims,
    run_gate_chain,
)
from shared.gates.text import count_emoji, find_urls, weighted_length

from .state import RecentDecisions

Features = dict[str, FeatureValue]


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    """One draft to judge: what was written, what it is about, and what its event will carry."""

    decision_id: str
    decision_type: str
    parts: Sequence[str]
    #: the X account the draft is for (its events carry it)
    account: str = DEFAULT_ACCOUNT
    bandit_arm: str
    topic: str
    angle: str
    embedding: bytes
    embedding_model: str
    generation_source: str
    model_version: int | None = None
    target_tweet_id: str | None = None
    target_username: str | None = None
    correlation_id: str | None = None
    #: the event's id (derived from the decision, so a redelivered run writes the same one); None = a new one
    event_id: str | None = None


class GateRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a run judges its drafts by: the mode, the gates' thresholds, the account's claims policy."""

    live: bool
    gate: GateConfig = GateConfig()
    claims: ClaimPolicy | None = None
    flag_claims: bool = False


class Verdict(msgspec.Struct, frozen=True):
    """The gate chain's outcome for one draft, with the content hash it was judged by and its quality score."""

    outcome: ChainOutcome
    content_hash: str
    quality_score: float | None

    @property
    def passed(self) -> bool:
        return self.outcome.passed

    def scored(self, features: Features) -> Features:
        """The features a decision records: ``features`` with the quality score added."""
        return {**features, "quality_score": self.quality_score}


def draft_features(parts: Sequence[str], *, decision_type: str, topic: str, angle: str, hour: int | None
                   ) -> Features:
    """What a decision looked like when it was queued: the seed's ``features`` column, the predictors' inputs."""
    text = " ".join(parts)
    return {
        "decision_type": decision_type,
        "topic": topic,
        "angle": angle,
        "hour": hour,
        "n_parts": len(parts),
        "weighted_length": sum(weighted_length(p) for p in parts),
        "has_question": "?" in text,
        "has_number": any(ch.isdigit() for ch in text),
        "n_hashtags": text.count("#"),
        "n_emoji": count_emoji(text),
        "n_urls": len(find_urls(text)),
    }


def judge_draft(draft: Proposal, state: RecentDecisions, rules: GateRules, now: datetime) -> Verdict:
    """Run the gate chain (quality -> claims -> uniqueness -> rotation) on one draft against the state; a draft
    that passed is still a duplicate when a queued or posted decision of another embedding model has its exact
    text (``hash_twin``)."""
    parts = draft.parts
    policy = (rules.claims or ClaimPolicy()) if draft.generation_source == "real" else None
    chash = content_hash(parts)
    exclude = (draft.decision_id,)
    outcome = run_gate_chain(
        parts=parts,
        decision_type=draft.decision_type,
        embedding=draft.embedding,
        topic=draft.topic,
        angle=draft.angle,
        index=state.index_for(draft.embedding_model),
        window=state.window_for(draft.decision_type),
        now=now,
        live=rules.live,
        content_hash=chash,
        config=rules.gate,
        exclude=exclude,
        claims=policy,
        flag_claims=rules.flag_claims,
    )
    twin = state.hash_twin(chash, now, exclude=exclude)
    if outcome.passed and twin is not None:  # the same text queued under another embedding model
        blocked_by = GateResult("uniqueness", False, "duplicate_hash", 1.0, {"duplicate_of": twin})
        results = [r for r in outcome.results if r.gate in ("quality", "claims")] + [blocked_by]
        outcome = ChainOutcome(False, results, blocked_by)
    quality = outcome.result("quality")
    quality_score = None if quality is None or quality.score is None else round(float(quality.score), 6)
    return Verdict(outcome, chash, quality_score)


def _common(draft: Proposal, verdict: Verdict, now: datetime, features: Features, timing_arm: str | None,
            predicted_er: float | None) -> dict[str, Any]:
    parts = list(draft.parts)
    return dict(
        event_id=draft.event_id or new_event_id(),
        occurred_at=now,
        account=draft.account,
        correlation_id=draft.correlation_id,
        decision_id=draft.decision_id,
        decision_type=draft.decision_type,
        content="\n\n".join(parts),
        parts=parts,
        bandit_arm=draft.bandit_arm,
        timing_arm=timing_arm,
        quality_score=verdict.quality_score,
        predicted_er=predicted_er,
        generation_source=draft.generation_source,
        topic_cluster=draft.topic,
        angle=draft.angle,
        content_hash=verdict.content_hash,
        features=features,
        embedding=draft.embedding,
        embedding_model=draft.embedding_model,
        target_tweet_id=draft.target_tweet_id,
        target_username=draft.target_username,
        model_version=draft.model_version,
        flagged_claims=flagged_claims(verdict.outcome.result("claims")),
    )


def queued_event(draft: Proposal, verdict: Verdict, *, now: datetime, scheduled_at: datetime | None,
                 timing_arm: str | None, features: Features, predicted_er: float | None = None) -> DecisionQueued:
    """``decision.queued`` for a draft every gate passed. ``features`` as recorded (``verdict.scored(...)``)."""
    assert verdict.passed, "only a draft that passed every gate is queued"
    return DecisionQueued(scheduled_at=scheduled_at,
                          **_common(draft, verdict, now, features, timing_arm, predicted_er))


def skipped_event(draft: Proposal, verdict: Verdict, *, now: datetime, features: Features,
                  timing_arm: str | None = None, predicted_er: float | None = None) -> DecisionSkipped:
    """``decision.skipped`` for a draft a gate blocked: the blocking gate, its reason and score (no schedule)."""
    blocked = verdict.outcome.blocked_by
    assert blocked is not None, "only a blocked draft is skipped"
    return DecisionSkipped(
        scheduled_at=None,
        gate=blocked.gate,
        skip_reason=blocked.reason,
        score=None if blocked.score is None else float(blocked.score),
        **_common(draft, verdict, now, features, timing_arm, predicted_er),
    )


def draft_event(draft: Proposal, verdict: Verdict, *, now: datetime, scheduled_at: datetime | None,
                timing_arm: str | None, features: Features, predicted_er: float | None = None
                ) -> DecisionQueued | DecisionSkipped:
    """The event of a draft slotted before it was judged (the replier's): queued at ``scheduled_at`` when it
    passed, else skipped (with no schedule; the timing arm and the features are kept)."""
    if verdict.passed:
        return queued_event(draft, verdict, now=now, scheduled_at=scheduled_at, timing_arm=timing_arm,
                            features=features, predicted_er=predicted_er)
    return skipped_event(draft, verdict, now=now, timing_arm=timing_arm, features=features,
                         predicted_er=predicted_er)


Predictor = Callable[[ModelUpdated, dict[str, Any]], float | None]


def predicted_er(model: ModelUpdated | None, features: dict[str, Any], predict: Predictor | None) -> float | None:
    """The latest model's ER prediction for a draft, or ``None`` when there is no model, no predictor or no
    prediction (never a made-up number)."""
    if model is None or not model.predictors or predict is None:
        return None
    try:
        value = predict(model, features)
    except Exception:
        return None
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)
