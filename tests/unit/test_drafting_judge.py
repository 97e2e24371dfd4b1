"""Judging a draft (``shared.drafting.judge``): pure, the gate chain's verdict, then the event that records it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared.drafting import (
    GateRules,
    Proposal,
    RecentDecisions,
    draft_event,
    judge_draft,
    queued_event,
    replay,
    skipped_event,
)
from shared.events import DecisionQueued, DecisionSkipped
from shared.gates import ClaimPolicy, GateConfig, content_hash

from .test_drafting_state import GOOD, T0, queued, vec

pytestmark = pytest.mark.unit


def judge(state: RecentDecisions, text: str, *, did: str = "new", emb: bytes | None = None, model: str = "m",
          topic: str = "startups", angle: str = "story", source: str = "real", live: bool = True,
          claims: ClaimPolicy | None = None, flag: bool = False, decision_type: str = "single") -> Any:
    """Judge one draft slotted at T0 (hour 10) and write its event: ``(event, outcome)``."""
    draft = Proposal(
        decision_id=did, decision_type=decision_type, parts=[text], bandit_arm=f"{topic}:{angle}", topic=topic,
        angle=angle, embedding=emb if emb is not None else vec(999), embedding_model=model,
        generation_source=source,
    )
    verdict = judge_draft(draft, state, GateRules(live=live, gate=GateConfig(), claims=claims, flag_claims=flag), T0)
    event = draft_event(draft, verdict, now=T0, scheduled_at=T0, timing_arm="hour:10", features=verdict.scored({}))
    return event, verdict.outcome


def test_a_good_draft_is_queued_with_its_quality_score_and_hash() -> None:
    event, outcome = judge(RecentDecisions.empty(), GOOD)
    assert isinstance(event, DecisionQueued) and outcome.passed
    assert event.quality_score is not None and event.quality_score >= 0.7
    assert event.content_hash == content_hash(GOOD) and event.scheduled_at == T0 and event.occurred_at == T0


def test_a_bad_draft_is_skipped_with_gate_reason_and_score_and_no_schedule() -> None:
    event, _ = judge(RecentDecisions.empty(), "As an AI, I think we should delve into productivity tips today.")
    assert isinstance(event, DecisionSkipped)
    assert (event.gate, event.skip_reason) == ("quality", "banned_phrase") and event.score < 0.7
    assert event.scheduled_at is None


def test_a_near_duplicate_of_a_queued_decision_is_blocked_by_uniqueness() -> None:
    emb = vec(5)
    state = replay([queued("old", emb=emb, text="A completely different sentence, 4 words long and done.")])
    event, _ = judge(state, GOOD, emb=emb)
    assert isinstance(event, DecisionSkipped) and event.skip_reason == "too_similar" and event.score >= 0.85


def test_the_same_text_embedded_by_another_model_is_still_a_duplicate() -> None:
    state = replay([queued("old", model="hashing-256")])
    event, outcome = judge(state, GOOD, model="text-embedding-3-small", emb=vec(1, 32))
    assert isinstance(event, DecisionSkipped)
    assert (event.gate, event.skip_reason, event.score) == ("uniqueness", "duplicate_hash", 1.0)
    assert [r.gate for r in outcome.results] == ["quality", "claims", "uniqueness"]  # a real draft is claims-checked


def test_a_draft_with_no_embedding_fails_closed() -> None:
    event, _ = judge(RecentDecisions.empty(), GOOD, emb=b"")
    assert isinstance(event, DecisionSkipped) and event.skip_reason.startswith("gate_error:uniqueness")


def test_judging_is_pure_and_each_factory_takes_only_its_own_verdict() -> None:
    state = replay([queued("old", text="A completely different sentence, 4 words long and done.")])
    before = (dict(state.decisions), state.indexed(), state.rotation.counts(T0), state.events_applied)
    draft = Proposal(decision_id="new", decision_type="single", parts=[GOOD], bandit_arm="startups:story",
                     topic="startups", angle="story", embedding=vec(999), embedding_model="m",
                     generation_source="synthetic", event_id="new:draft", correlation_id="run-1")
    rules = GateRules(live=False)
    verdict = judge_draft(draft, state, rules, T0)
    assert judge_draft(draft, state, rules, T0) == verdict  # the same draft and state, the same verdict
    assert (dict(state.decisions), state.indexed(), state.rotation.counts(T0), state.events_applied) == before
    assert verdict.passed and verdict.content_hash == content_hash(GOOD)
    features = verdict.scored({"hour": 10})
    assert features == {"hour": 10, "quality_score": verdict.quality_score}
    event = queued_event(draft, verdict, now=T0, scheduled_at=T0, timing_arm="hour:10", features=features,
                         predicted_er=0.031)
    assert (event.event_id, event.correlation_id, event.predicted_er, event.features) == (
        "new:draft", "run-1", 0.031, features)
    with pytest.raises(AssertionError):
        skipped_event(draft, verdict, now=T0, features=features)
    blocked = judge_draft(msgspec.structs.replace(draft, parts=["As an AI, I think we should delve into it."]),
                          state, rules, T0)
    with pytest.raises(AssertionError):
        queued_event(draft, blocked, now=T0, scheduled_at=T0, timing_arm=None, features={})
    skipped = skipped_event(draft, blocked, now=T0, features=blocked.scored({}))
    assert (skipped.gate, skipped.scheduled_at, skipped.timing_arm) == ("quality", None, None)
