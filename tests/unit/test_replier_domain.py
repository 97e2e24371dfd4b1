"""The replier's pure core: candidates, capacity, deterministic ids, style, topic, schedule."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from services.replier.domain import (
    capacity,
    choose_style,
    guess_topic,
    parse_list,
    reply_decision_id,
    reply_gate_config,
    reply_schedule,
    select_candidates,
)
from shared.drafting import RecentDecisions, replay
from shared.events import ArmState, DecisionPosted, DecisionQueued, ModelUpdated, float32_bytes
from shared.flags import Flags
from shared.gates import content_hash
from shared.learning.arms import REPLY_ARMS
from shared.x.port import TweetView

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)


def tweet(tid: str, author: str = "alice", age_h: float = 1.0, text: str = "LLM evals are underrated.") -> TweetView:
    return TweetView(tweet_id=tid, author=author, text=text, created_at=NOW - timedelta(hours=age_h))


def reply_queued(target: str, *, at: datetime = NOW, style: str = "add_insight", n: int = 0) -> DecisionQueued:
    text = f"Good point about evals, number {n}: start with 20 real cases."
    did = reply_decision_id(target)
    return DecisionQueued(
        event_id=f"{did}:draft", occurred_at=at, decision_id=did, decision_type="reply", content=text, parts=[text],
        bandit_arm=style, generation_source="synthetic", topic_cluster="llm_engineering", angle=style,
        content_hash=content_hash(text), embedding=float32_bytes(np.random.default_rng(n).normal(size=8)),
        embedding_model="m", scheduled_at=at, target_tweet_id=target, target_username="alice",
    )


def test_reply_ids_are_uuids_derived_from_the_target() -> None:
    a = reply_decision_id("1790000000000000001")
    assert a == reply_decision_id("1790000000000000001") != reply_decision_id("1790000000000000002")
    assert uuid.UUID(a).version == 5


def test_candidates_skip_our_own_answered_old_unknown_age_and_repeated_tweets() -> None:
    state = replay([reply_queued("answered")])
    tweets = [
        tweet("own", author="@XBot_Shadow"),
        tweet("answered"),
        tweet("old", age_h=30),
        TweetView(tweet_id="ageless", author="bob", text="no date", created_at=None),
        tweet("blank", text="   "),
        tweet("fresh", age_h=0.5),
        tweet("older", age_h=5),
        tweet("fresh", age_h=0.5),
    ]
    got = select_candidates(tweets, own_username="xbot_shadow", state=state, now=NOW, max_age=timedelta(hours=24))
    assert [t.tweet_id for t in got] == ["fresh", "older"]  # newest first, each once


def test_capacity_is_the_daily_cap_minus_replies_of_the_last_24_hours() -> None:
    events: list[Any] = [reply_queued(f"t{i}", n=i) for i in range(3)]
    events.append(reply_queued("old", at=NOW - timedelta(hours=30), n=9))
    events.append(DecisionPosted(event_id="p", occurred_at=NOW, decision_id=reply_decision_id("t0"),
                                 tweet_id="sim-9", posted_at=NOW - timedelta(hours=1), decision_type="reply",
                                 bandit_arm="add_insight"))
    state = replay(events)
    assert capacity(state, NOW, 10) == 7
    assert capacity(state, NOW, 3) == 0 and capacity(state, NOW, 0) == 0
    assert capacity(state, NOW + timedelta(hours=23.5), 10) == 8  # the t0 post (at NOW - 1 h) left the window
    assert capacity(state, NOW + timedelta(hours=25), 10) == 10


def test_styles_follow_the_reply_posteriors_and_respect_the_style_cap() -> None:
    best = ArmState(arm="ask_question", scope="reply", alpha=80, beta=3, successes=79, failures=2)
    content = ArmState(arm="counterpoint", scope="content", alpha=500, beta=1, successes=499, failures=0)
    state = RecentDecisions.empty()
    state.model = ModelUpdated(event_id="m", occurred_at=NOW, version=1, arms=[best, content], slots=[],
                               outcomes_used=80, simulated_used=True, success_er_threshold=0.03)
    gate = reply_gate_config(Flags())
    rng = np.random.default_rng(1)
    picks = Counter(choose_style(state, NOW, rng, gate) for _ in range(200))
    assert picks.most_common(1)[0][0] == "ask_question" and picks["ask_question"] > 150
    for i in range(12):  # 12 recent replies, all ask_question: the style is over 40 % and is left out
        state.apply(reply_queued(f"q{i}", style="ask_question", n=i))
    picks = Counter(choose_style(state, NOW, rng, gate) for _ in range(200))
    assert "ask_question" not in picks and set(picks) <= set(REPLY_ARMS)


def test_before_any_model_every_style_is_drawn() -> None:
    rng = np.random.default_rng(2)
    picks = Counter(choose_style(RecentDecisions.empty(), NOW, rng, reply_gate_config(Flags()))
                    for _ in range(1000))
    assert set(picks) == set(REPLY_ARMS) and min(picks.values()) > 120


def test_the_reply_gate_lifts_only_the_topic_cap() -> None:
    gate = reply_gate_config(Flags(MIN_QUALITY_SCORE=0.8, DUP_COSINE_THRESHOLD=0.9))
    assert (gate.topic_max, gate.angle_max, gate.min_quality_score, gate.dup_cosine_threshold) == (1.0, 0.4, 0.8, 0.9)


def test_topic_guess_uses_whole_word_keywords() -> None:
    assert guess_topic("Our LLM eval suite caught a prompt regression") == "llm_engineering"
    assert guess_topic("Founders: talk to customers before pricing") == "startups"
    assert guess_topic("I said it again and again") == "tech_trends"  # 'ai' inside words does not count
    assert guess_topic("Which AI assistant do you use?") == "ai_tools"


def test_replies_go_out_as_soon_as_the_gap_allows() -> None:
    gap = timedelta(minutes=15)
    assert reply_schedule(RecentDecisions.empty(), NOW, gap) == NOW
    state = replay([reply_queued("x", at=NOW - timedelta(minutes=5))])
    assert reply_schedule(state, NOW, gap) == NOW + timedelta(minutes=10)


def test_lists_are_split_on_commas_and_new_lines() -> None:
    assert parse_list(" @alice, bob,,\ncarol ") == ("@alice", "bob", "carol")
    assert parse_list("") == ()
