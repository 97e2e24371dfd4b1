"""The OpenAI adapters with the real ``openai`` client against a local OpenAI-compatible server."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from shared.clock import FixedClock
from shared.llm import (
    GuardedLLM,
    InMemoryBudgetStore,
    LLMCallRecord,
    LLMFailure,
    OpenAIEmbedder,
    OpenAILLM,
    PriceTable,
    make_client,
    openai_adapters,
)
from shared.llm.port import DraftRequest
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server

pytestmark = pytest.mark.integration

NOW = datetime(2025, 10, 2, 12, 0, tzinfo=UTC)
SINGLE = DraftRequest(kind="plan", topic="ai_tools", angle="how_to", seed=1)
THREAD = DraftRequest(kind="plan", topic="startups", angle="story", decision_type="thread", seed=2)
REPLY = DraftRequest(kind="reply", topic="developer_workflow", angle="counterpoint", seed=3,
                     context="Code review is a waste of time for senior engineers. Just merge.")


class Flags:
    AI_QUOTA_CIRCUIT_OPEN = False
    DAILY_OPENAI_LIMIT_USD = 10.0
    DISABLE_LLM_WHEN_BUDGET_HIT = True


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    srv = start_openai_server(slow_seconds=3.0)
    yield srv
    srv.stop()


@pytest.fixture
async def adapters(server: FakeOpenAIServer) -> AsyncIterator[tuple[OpenAILLM, OpenAIEmbedder]]:
    server.set_mode("ok")
    server.requests.clear()
    llm, emb = openai_adapters("sk-test", base_url=server.base_url, timeout=0.75)
    yield llm, emb
    await llm.client.close()
    server.set_mode("ok")


async def test_chat_returns_a_validated_draft_of_the_requested_shape(adapters, server) -> None:
    llm, _ = adapters
    single, thread, reply = [await llm.draft(r) for r in (SINGLE, THREAD, REPLY)]
    assert len(single.draft.parts) == 1 and single.draft.topic == "ai_tools" and single.draft.hook
    assert 2 <= len(thread.draft.parts) <= 7
    assert len(reply.draft.parts) == 1 and ("review" in reply.draft.text.lower() or "merge" in reply.draft.text.lower())
    assert single.model == "gpt-4o-mini-2024-07-18"
    assert single.usage.prompt_tokens > 50 and single.usage.completion_tokens > 5
    assert single.usage.total_tokens == single.usage.prompt_tokens + single.usage.completion_tokens
    # what went over the wire: our model, strict JSON schema, a completion bound, our request id, no retries
    body = server.requests[0]["body"]
    assert body["model"] == "gpt-4o-mini" and body["response_format"]["type"] == "json_schema"
    assert body["max_completion_tokens"] == llm.max_output_tokens and body["seed"] == 1
    assert server.requests[0]["headers"]["x-client-request-id"] == single.request_id
    assert len(server.requests) == 3
    again = await llm.draft(SINGLE)
    assert again.draft.text != single.draft.text  # the server varies its answers


async def test_json_object_mode(server) -> None:
    server.set_mode("ok")
    client = make_client("sk-test", base_url=server.base_url, timeout=2)
    try:
        llm = OpenAILLM(client, model="gpt-4o", json_mode="json_object")
        r = await llm.draft(THREAD)
        assert server.requests[-1]["body"]["response_format"] == {"type": "json_object"}
        assert r.model == "gpt-4o-2024-08-06" and len(r.draft.parts) >= 2
    finally:
        await client.close()


async def test_a_truncated_answer_is_invalid(server) -> None:
    server.set_mode("ok")
    client = make_client("sk-test", base_url=server.base_url, timeout=2)
    try:
        with pytest.raises(LLMFailure) as info:
            await OpenAILLM(client, max_output_tokens=5).draft(THREAD)
        assert info.value.reason == "invalid_response" and info.value.usage.completion_tokens == 5
    finally:
        await client.close()


async def test_embeddings_are_unit_float32_and_deterministic(adapters, server) -> None:
    _, emb = adapters
    texts = ["Small pull requests merge faster.", "Small pull requests merge faster!", "Sourdough needs time."]
    r = await emb.embed(texts)
    assert r.vectors.shape == (3, 1536) and r.vectors.dtype == np.float32 and emb.dim == 1536
    assert np.allclose(np.linalg.norm(r.vectors, axis=1), 1.0, atol=1e-5)
    assert float(r.vectors[0] @ r.vectors[1]) > 0.9 > float(r.vectors[0] @ r.vectors[2])
    assert r.usage.total_tokens > 0 and r.model == "text-embedding-3-small"
    assert np.array_equal((await emb.embed(texts)).vectors, r.vectors)
    assert (await emb.embed([])).vectors.shape == (0, 1536)


async def test_embedding_dimensions_are_requested(server) -> None:
    server.set_mode("ok")
    _, emb = openai_adapters("sk-test", base_url=server.base_url, embed_dim=256)
    try:
        r = await emb.embed(["one", "two"])
        assert r.vectors.shape == (2, 256) and server.requests[-1]["body"]["dimensions"] == 256
    finally:
        await emb.client.close()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("rate_limit", "rate_limited"), ("quota", "quota"), ("server_error", "api_error"),
     ("invalid_json", "invalid_response"), ("slow", "timeout")],
)
async def test_errors_map_to_one_reason_and_are_not_retried(adapters, server, mode: str, reason: str) -> None:
    llm, emb = adapters
    server.set_mode(mode)
    with pytest.raises(LLMFailure) as info:
        await llm.draft(SINGLE)
    assert info.value.reason == reason
    assert len(server.requests) == 1  # max_retries=0: the caller decides
    with pytest.raises(LLMFailure) as info:
        await emb.embed(["a text"])
    assert info.value.reason == reason
    assert len(server.requests) == 2
    if mode in ("rate_limit", "quota", "server_error"):
        assert info.value.status == (500 if mode == "server_error" else 429)


async def test_connection_refused_is_api_error() -> None:
    from xbot.embedded import free_port

    llm, _ = openai_adapters("sk-test", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    try:
        with pytest.raises(LLMFailure) as info:
            await llm.draft(SINGLE)
        assert info.value.reason == "api_error"
    finally:
        await llm.client.close()


async def test_guarded_calls_settle_the_cost_of_the_reported_usage(adapters, server) -> None:
    llm, emb = adapters
    store = InMemoryBudgetStore()
    records: list[LLMCallRecord] = []

    async def emit(r: LLMCallRecord) -> None:
        records.append(r)

    g = GuardedLLM(llm, emb, store, Flags, FixedClock(NOW), emit)
    res = await g.draft(THREAD, correlation_id="plan-1")
    vec = await g.embed(res.draft.parts, correlation_id="plan-1")
    prices = PriceTable()
    chat_cost = prices.cost("gpt-4o-mini", res.usage.prompt_tokens, res.usage.completion_tokens)
    emb_cost = prices.cost("text-embedding-3-small", vec.usage.total_tokens, 0)
    assert [r.kind for r in records] == ["chat", "embedding"] and all(r.status == "success" for r in records)
    assert records[0].cost_usd == pytest.approx(chat_cost) and records[1].cost_usd == pytest.approx(emb_cost)
    assert records[0].total_tokens == res.usage.total_tokens and records[0].model == "gpt-4o-mini-2024-07-18"
    assert await store.spent("2025-10-02") == pytest.approx(chat_cost + emb_cost, abs=2e-6)
    assert await store.reserved("2025-10-02") == 0.0

    server.set_mode("quota")
    with pytest.raises(LLMFailure, match="quota"):
        await g.draft(SINGLE)
    assert records[-1].failure_reason == "quota" and records[-1].cost_usd == 0.0
    assert await store.reserved("2025-10-02") == 0.0
    assert await store.spent("2025-10-02") == pytest.approx(chat_cost + emb_cost, abs=2e-6)
