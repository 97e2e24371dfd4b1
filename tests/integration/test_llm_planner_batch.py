"""A plan run against an OpenAI-compatible server: one bad answer ends one draft, and the batch goes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.bus import JetStreamBus
from shared.events import LlmCallCompleted, LlmCallFailed
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server
from tests.integration.test_planner_service import events_of, live_env, planners

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
    assert counts["failed"] == 1 and counts["queued"] + counts["skipped"] == 3 and counts["queued"] >= 2
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
