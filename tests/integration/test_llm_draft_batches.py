"""Plan and reply runs against an OpenAI-compatible server: one bad answer ends one draft, and the batch goes on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus import JetStreamBus
from shared.events import LlmCallCompleted, LlmCallFailed
from shared.x.port import TweetView
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server
from tests.integration.test_planner_service import events_of, live_env, planners
from tests.integration.test_replier_service import OWN, ReusableX, replier
from tests.integration.test_replier_service import live_env as reply_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def srv() -> Iterator[FakeOpenAIServer]:
    s = start_openai_server("schema", seed=11)
    yield s
    s.stop()


async def test_a_garbage_answer_ends_its_draft_and_the_rest_of_the_batch_is_queued(
    bus: JetStreamBus, srv: FakeOpenAIServer
) -> None:
    srv.set_mode("schema")
    srv.queue_modes("schema", "invalid_json")  # the run's second draft gets prose, not JSON
    before = len(srv.requests)
    env = live_env(srv, PLAN_BATCH="4", LLM_DRAFT_RETRIES="0", PLAN_MAX_QUEUED="50")
    async with planners(bus, env) as (planner,):
        counts = await planner.run()
    chats = [r for r in srv.requests[before:] if r["path"] == "/v1/chat/completions"]
    assert len(chats) == 4  # the run made its batch of calls, not one
    # the other three drafts were written and judged (the gates may block some: the imitation's text varies with
    # the run's picks)
    assert counts["failed"] == 1 and counts["queued"] + counts["skipped"] == 3
    drafts = await events_of(bus, "decision.queued", "decision.skipped")
    assert len(drafts) == 3
    calls = await events_of(bus, "llm.call_completed", "llm.call_failed")
    failed = [c for c in calls if isinstance(c, LlmCallFailed)]
    assert [(f.failure_reason, f.wasted_reason) for f in failed] == [("invalid_response", "not_json")]
    assert sorted(c.kind for c in calls if isinstance(c, LlmCallCompleted)) == ["chat"] * 3 + ["embedding"]


async def test_with_a_retry_the_bad_answer_costs_one_more_call_and_every_draft_is_written(
    bus: JetStreamBus, srv: FakeOpenAIServer
) -> None:
    srv.set_mode("schema")
    srv.queue_modes("invalid_json")
    before = len(srv.requests)
    async with planners(bus, live_env(srv, PLAN_BATCH="3", PLAN_MAX_QUEUED="50")) as (planner,):  # 1 retry
        counts = await planner.run()
    chats = [r for r in srv.requests[before:] if r["path"] == "/v1/chat/completions"]
    assert len(chats) == 4 and counts["failed"] == 0 and counts["queued"] + counts["skipped"] == 3
    failed = await events_of(bus, "llm.call_failed")
    assert [f.wasted_reason for f in failed] == ["not_json"]


async def test_a_refusal_of_the_budget_still_stops_the_run(bus: JetStreamBus, srv: FakeOpenAIServer) -> None:
    srv.set_mode("schema")
    before = len(srv.requests)
    # a cap below one call's estimate: the first draft is refused before any call, and so is nothing after it
    async with planners(bus, live_env(srv, PLAN_BATCH="4", DAILY_OPENAI_LIMIT_USD="0.00001")) as (planner,):
        counts = await planner.run()
    assert len(srv.requests) == before
    assert counts == {"queued": 0, "skipped": 0, "failed": 1, "duplicate": 0}
    failed = await events_of(bus, "llm.call_failed")
    assert [f.failure_reason for f in failed] == ["budget_exceeded"]


async def test_a_garbage_reply_answer_ends_that_reply_and_the_next_candidates_are_answered(
    bus: JetStreamBus, srv: FakeOpenAIServer
) -> None:
    now = datetime.now(UTC)
    tweets = [TweetView(tweet_id=f"18000000000000001{i:02d}", author="alice", created_at=now - timedelta(hours=1),
                        text=text) for i, text in enumerate([
                            "Our LLM evals caught a prompt regression before users did.",
                            "Code review for senior engineers is a waste of time.",
                            "Small pull requests merge faster and break less."])]
    x = ReusableX(username=OWN, seed=5)

    async def account_tweets(username: str, limit: int = 20) -> list[TweetView]:
        return [t for t in tweets if t.author == username][:limit]

    x.read_account_tweets = account_tweets  # type: ignore[method-assign]
    srv.set_mode("schema")
    srv.queue_modes("invalid_json")  # the first reply's answer is prose
    env = reply_env(srv, REPLY_TARGET_ACCOUNTS="alice", REPLY_SEARCH_QUERIES="", REPLY_BATCH="3",
                    LLM_DRAFT_RETRIES="0", REQUIRE_APPROVAL="true", MIN_POST_INTERVAL_MINUTES="1")
    async with replier(bus, env, x=x) as r:
        counts = await r.run()
    assert counts["failed"] == 1 and counts["queued"] + counts["skipped"] == 2
    drafts = await events_of(bus, "decision.queued", "decision.skipped")
    assert len(drafts) == 2 and all(d.decision_type == "reply" for d in drafts)
    failed = await events_of(bus, "llm.call_failed")
    assert [(f.failure_reason, f.wasted_reason, f.service) for f in failed] == [
        ("invalid_response", "not_json", "replier")]
