"""The shared recent-decisions state (``shared.drafting.state``): evolve from events, idempotently, and prune."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from shared.drafting import replay
from shared.events import (
    ArmState,
    DecisionPosted,
    DecisionPostFailed,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    LlmCallCompleted,
    ModelUpdated,
    float32_bytes,
)
from shared.gates import content_hash

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
GOOD = "Why do small pull requests ship faster? Reviewers read 200 lines with care and skim 2,000. Keep them short."


def vec(seed: int, dim: int = 16) -> bytes:
    return float32_bytes(np.random.default_rng(seed).normal(size=dim))


def queued(did: str, *, at: datetime = T0, text: str = GOOD, topic: str = "developer_workflow",
           angle: str = "how_to", dtype: str = "single", emb: bytes | None = None, model: str = "m",
           scheduled: datetime | None = None, target: str | None = None, cls: Any = DecisionQueued,
           **extra: Any) -> Any:
    fields: dict[str, Any] = dict(
        event_id=f"{did}:draft", occurred_at=at, decision_id=did, decision_type=dtype, content=text, parts=[text],
        bandit_arm=f"{topic}:{angle}", generation_source="synthetic", topic_cluster=topic, angle=angle,
        content_hash=content_hash(text), embedding=emb if emb is not None else vec(zlib.crc32(did.encode())),
        embedding_model=model, scheduled_at=scheduled or at + timedelta(hours=1), target_tweet_id=target,
        target_username="alice" if target else None, **extra,
    )
    return cls(**fields)


def posted(did: str, at: datetime, dtype: str = "single") -> DecisionPosted:
    return DecisionPosted(event_id=f"{did}:posted", occurred_at=at, decision_id=did, tweet_id="sim-1",
                          posted_at=at, decision_type=dtype, bandit_arm="a:b")


def test_queued_decisions_are_indexed_and_counted_skipped_ones_never() -> None:
    s = replay([
        queued("d1"),
        queued("d2", text="Another post entirely about something else, with a hook? Yes, 3 of them."),
        queued("d3", cls=DecisionSkipped, gate="quality", skip_reason="banned_phrase", score=0.68),
    ])
    assert s.indexed() == 2 and "d3" not in s.index_for("m")
    n, topics, _ = s.rotation.counts(T0)
    assert n == 2 and topics["developer_workflow"] == 2
    assert s.decisions["d3"].status == "skipped"
    assert s.hash_twin(content_hash(GOOD), T0) == "d1"


def test_applying_every_event_twice_changes_nothing() -> None:
    events = [
        queued("d1"), queued("d2", text="How I cut review time by half: 3 rules. Write them down first."),
        posted("d1", T0 + timedelta(hours=1)),
        DecisionPostFailed(event_id="f", occurred_at=T0, decision_id="d2", attempt=1, error="x", final=True),
    ]
    once = replay(events)
    twice = replay([e for e in events for _ in range(2)])
    assert once.decisions == twice.decisions
    assert once.indexed() == twice.indexed() == 1
    assert once.rotation.counts(T0) == twice.rotation.counts(T0)
    assert once.busy_times() == twice.busy_times() == [T0 + timedelta(hours=1)]


def test_failed_and_rejected_leave_the_index_and_the_window_posted_stays() -> None:
    s = replay([
        queued("a"), queued("b", text="Stop reviewing 1,000-line diffs. Split them in 3 and read each one."),
        queued("c", text="What is the one metric your startup tracks weekly? Mine is 7-day retention."),
        DecisionPostFailed(event_id="f", occurred_at=T0, decision_id="a", attempt=1, error="x", final=False),
        DecisionRejected(event_id="r", occurred_at=T0, decision_id="b"),
        posted("c", T0 + timedelta(minutes=5)),
    ])
    assert sorted(s.index_for("m").ids()) == ["a", "c"]  # a not-final failure keeps it queued
    assert s.decisions["b"].status == "rejected" and s.hash_twin(content_hash(GOOD), T0) == "a"
    assert s.rotation.get("c").status == "posted" and s.rotation.get("b") is None
    s.apply(DecisionPostFailed(event_id="f2", occurred_at=T0, decision_id="a", attempt=2, error="x", final=True))
    assert s.index_for("m").ids() == ["c"] and s.hash_twin(content_hash(GOOD), T0) is None


def test_rescheduling_moves_the_busy_time_and_the_latest_model_wins() -> None:
    later = T0 + timedelta(hours=5)

    def model(v: int) -> ModelUpdated:
        return ModelUpdated(event_id=f"m{v}", occurred_at=T0, version=v, arms=[], slots=[], outcomes_used=v,
                            simulated_used=True, success_er_threshold=0.03)

    s = replay([queued("a"), DecisionRescheduled(event_id="r", occurred_at=T0, decision_id="a", scheduled_at=later),
                model(2), model(1)])
    assert s.busy_times() == [later]
    assert s.model is not None and s.model.version == 2


def test_reply_targets_are_remembered_whatever_became_of_the_reply() -> None:
    s = replay([
        queued("r1", dtype="reply", target="111", topic="reply:alice", angle="add_insight"),
        queued("r2", dtype="reply", target="222", topic="reply:bob", angle="ask_question", cls=DecisionSkipped,
               gate="uniqueness", skip_reason="too_similar", score=0.9),
    ])
    assert s.answered("111") and s.answered("222") and not s.answered("333")
    assert len(s.reply_rotation) == 1 and len(s.rotation) == 0  # replies rotate apart from posts
    assert s.replies_in_last_day(T0) == 1


def test_replies_in_the_last_day_count_queued_and_posted_only_within_24_hours() -> None:
    old = T0 - timedelta(hours=30)
    s = replay([
        queued("r1", dtype="reply", target="1", at=old, scheduled=old),
        queued("r2", dtype="reply", target="2", at=old, scheduled=old, text="A different reply, 2 of them."),
        posted("r2", T0 - timedelta(hours=2), dtype="reply"),
        queued("r3", dtype="reply", target="3", text="Third reply here, with 3 points."),
    ])
    assert s.replies_in_last_day(T0) == 2  # r1 queued 30 h ago is outside; r2 posted 2 h ago and r3 count


def test_spend_is_summed_per_day() -> None:
    def call(cost: float, at: datetime) -> LlmCallCompleted:
        return LlmCallCompleted(event_id=f"c{cost}{at}", occurred_at=at, request_id="r", kind="chat", model="m",
                                cost_usd=cost)

    s = replay([call(0.5, T0), call(0.25, T0), call(1.0, T0 + timedelta(days=1))])
    assert s.spent_on(T0.date()) == 0.75 and s.llm_calls == 3


def test_prune_forgets_old_decisions_but_not_answered_targets() -> None:
    old = T0 - timedelta(days=40)
    s = replay([queued("r1", dtype="reply", target="1", at=old, scheduled=old), posted("r1", old, "reply"),
                queued("d", text="What changed when we shipped daily? Lead time fell from 5 days to 1.")])
    assert s.prune(T0) == 1
    assert "r1" not in s.decisions and s.answered("1") and s.indexed() == 1


def test_the_model_posteriors_are_kept_for_thompson() -> None:
    arm = ArmState(arm="startups:story", scope="content", alpha=9, beta=2, successes=8, failures=1)
    s = replay([ModelUpdated(event_id="m", occurred_at=T0, version=1, arms=[arm], slots=[], outcomes_used=9,
                             simulated_used=True, success_er_threshold=0.03)])
    assert s.summary()["model_version"] == 1 and s.model is not None and s.model.arms == [arm]
