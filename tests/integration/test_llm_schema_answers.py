"""Drafts against a server that answers as structured outputs allow, not as our prompt asks.

The imitation's ``schema`` mode generates each answer from the request's json_schema alone: any number of parts
the schema allows, strings of any length it allows. With the schema of old (any number of parts) a single post
comes back in several parts and is rejected after it was paid for; with the schema per request every draft fits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import openai
import pytest

from shared.clock import FixedClock
from shared.gates.text import TWEET_LIMIT, weighted_length
from shared.llm import (
    GuardedLLM,
    InMemoryBudgetStore,
    LLMCallRecord,
    LLMFailure,
    OpenAILLM,
    make_client,
    record_to_event,
)
from shared.llm.port import PART_MAX_CHARS, DraftRequest
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server

pytestmark = pytest.mark.integration

NOW = datetime(2025, 10, 2, 12, 0, tzinfo=UTC)
TWEET = "Code review is a waste of time for senior engineers. Just merge and fix forward."
REQUESTS = [
    *(DraftRequest(kind="plan", topic=t, angle=a, seed=i) for i, (t, a) in enumerate(
        [("ai_tools", "how_to"), ("llm_engineering", "contrarian"), ("startups", "story"), ("productivity", "data"),
         ("developer_workflow", "question"), ("ai_tools", "contrarian")])),
    *(DraftRequest(kind="plan", topic=t, angle="how_to", decision_type="thread", seed=10 + i)
      for i, t in enumerate(["startups", "llm_engineering", "ai_tools"])),
    *(DraftRequest(kind="reply", topic="developer_workflow", angle=s, context=TWEET, seed=20 + i)
      for i, s in enumerate(["counterpoint", "ask_question", "add_insight"])),
]


class Flags:
    AI_QUOTA_CIRCUIT_OPEN = False
    DAILY_OPENAI_LIMIT_USD = 10.0
    DISABLE_LLM_WHEN_BUDGET_HIT = True


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    srv = start_openai_server("schema", seed=3)
    yield srv
    srv.stop()


@pytest.fixture
async def client(server: FakeOpenAIServer) -> Any:
    server.set_mode("schema")
    server.requests.clear()
    c = make_client("sk-test", base_url=server.base_url, timeout=5)
    yield c
    await c.close()
    server.set_mode("schema")


async def _outcomes(llm: OpenAILLM) -> list[Any]:
    out: list[Any] = []
    for r in REQUESTS:
        try:
            out.append(await llm.draft(r))
        except LLMFailure as exc:
            out.append(exc)
    return out


async def test_the_unconstrained_schema_gets_answers_that_are_rejected_after_they_were_paid(client, server) -> None:
    old = OpenAILLM(client, per_request_schema=False, repair=False)
    outcomes = await _outcomes(old)
    sent = server.requests[0]["body"]["response_format"]["json_schema"]["schema"]["properties"]["parts"]
    assert "minItems" not in sent and "maxItems" not in sent
    failures = [o for o in outcomes if isinstance(o, LLMFailure)]
    assert len(failures) >= len(REQUESTS) // 3  # a conforming server answers many a single in several parts
    assert {f.reason for f in failures} == {"invalid_response"}
    assert {f.wasted_reason for f in failures} <= {"parts_count", "too_long", "empty"}
    assert "parts_count" in {f.wasted_reason for f in failures}
    assert all(f.usage is not None and f.usage.completion_tokens > 0 for f in failures)  # billed all the same


async def test_with_the_schema_per_request_every_draft_fits(client, server) -> None:
    outcomes = await _outcomes(OpenAILLM(client))
    assert [type(o).__name__ for o in outcomes] == ["LLMResult"] * len(REQUESTS)
    assert len(server.requests) == len(REQUESTS)  # one call per draft, none spent again
    for r, request, res in zip(server.requests, REQUESTS, outcomes, strict=True):
        lo, hi = request.parts_range
        sent = r["body"]["response_format"]["json_schema"]
        parts = sent["schema"]["properties"]["parts"]
        assert sent["strict"] is True and (parts["minItems"], parts["maxItems"]) == (lo, hi)
        assert "maxLength" not in parts["items"]  # strict mode has none: the prompt says it
        assert f"at most {PART_MAX_CHARS} characters" in r["body"]["messages"][1]["content"]
        assert lo <= len(res.draft.parts) <= hi
        assert all(0 < weighted_length(p) <= TWEET_LIMIT for p in res.draft.parts)
    # the server chose counts and lengths freely within the schema: threads of different lengths, and some
    # answers too long for a post that were cut to their leading sentences for free
    assert len({len(o.draft.parts) for o in outcomes if o.draft.parts and len(o.draft.parts) > 1}) > 1
    assert any("dropped_sentences" in o.repairs or "split_parts" in o.repairs for o in outcomes)


async def test_a_strict_schema_with_max_length_is_refused_and_a_loose_one_is_honoured(client, server) -> None:
    schema = {"type": "object", "properties": {"parts": {"type": "array", "minItems": 2, "maxItems": 2, "items": {
        "type": "string", "maxLength": 50}}}, "required": ["parts"], "additionalProperties": False}
    messages = [{"role": "user", "content": "Write a thread of 2 parts on the topic 'ai tools'."}]
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages, response_format={
            "type": "json_schema", "json_schema": {"name": "draft", "strict": True, "schema": schema}})
    assert "'maxLength' is not permitted" in str(info.value)
    for seed in range(5):
        resp = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, seed=seed,
                                                    response_format={"type": "json_schema", "json_schema": {
                                                        "name": "draft", "strict": False, "schema": schema}})
        parts = json.loads(resp.choices[0].message.content)["parts"]
        assert len(parts) == 2 and all(0 < len(p) <= 50 for p in parts)


async def test_a_single_in_short_parts_is_joined_without_another_call(client, server) -> None:
    server.set_mode("short_parts")
    records: list[LLMCallRecord] = []

    async def emit(r: LLMCallRecord) -> None:
        records.append(r)

    g = GuardedLLM(OpenAILLM(client), None, InMemoryBudgetStore(), Flags, FixedClock(NOW), emit,  # type: ignore[arg-type]
                   draft_retries=1)
    res = await g.draft(REQUESTS[0])
    assert len(res.draft.parts) == 1 and res.repairs == ("joined_parts",)
    raw = server.requests[-1]
    assert len(server.requests) == 1 and raw["path"] == "/v1/chat/completions"
    assert [r.status for r in records] == ["success"] and records[0].repairs == ("joined_parts",)
    assert record_to_event(records[0]).repairs == ["joined_parts"]


async def test_an_unusable_answer_is_asked_again_once_then_the_draft_fails(client, server) -> None:
    records: list[LLMCallRecord] = []

    async def emit(r: LLMCallRecord) -> None:
        records.append(r)

    store = InMemoryBudgetStore()
    g = GuardedLLM(OpenAILLM(client), None, store, Flags, FixedClock(NOW), emit,  # type: ignore[arg-type]
                   draft_retries=1)
    server.queue_modes("invalid_json")
    res = await g.draft(REQUESTS[1])
    assert len(res.draft.parts) == 1 and len(server.requests) == 2
    seeds = [r["body"]["seed"] for r in server.requests]
    assert seeds[0] != seeds[1]  # the retry asks with another variation seed
    assert [(r.status, r.wasted_reason) for r in records] == [("failed", "not_json"), ("success", "")]
    event = record_to_event(records[0])
    assert event.failure_reason == "invalid_response" and event.wasted_reason == "not_json"
    spent = await store.spent(NOW.date().isoformat())  # both calls were billed, the rejected one included
    assert spent == pytest.approx(sum(r.cost_usd for r in records), abs=1e-5) and records[0].cost_usd > 0
    # two bad answers in a row: the draft fails with the second one's reason, and no third call is made
    server.queue_modes("invalid_json", "invalid_json")
    with pytest.raises(LLMFailure) as info:
        await g.draft(REQUESTS[2])
    assert info.value.wasted_reason == "not_json" and len(server.requests) == 4
