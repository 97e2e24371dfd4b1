"""GuardedLLM: the circuit breaker, the budget reservation and settlement, and one record per call."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from shared.clock import FixedClock
from shared.events.llm import FAILURE_REASONS as EVENT_REASONS
from shared.events.llm import LlmCallCompleted, LlmCallFailed
from shared.llm.budget import InMemoryBudgetStore
from shared.llm.guarded import GuardedLLM, LLMCallRecord, record_to_event
from shared.llm.port import (
    FAILURE_REASONS,
    Draft,
    DraftRequest,
    EmbeddingResult,
    LLMFailure,
    LLMResult,
    Usage,
)
from shared.llm.pricing import PriceTable
from shared.llm.prompts import estimate_prompt_tokens
from shared.llm.synthetic import HashingEmbedder

pytestmark = pytest.mark.unit

NOW = datetime(2025, 10, 1, 23, 59, tzinfo=UTC)
DAY = "2025-10-01"
REQ = DraftRequest(kind="plan", topic="ai_tools", angle="how_to", seed=1)
PRICES = PriceTable()


@dataclass
class FlagsStub:
    AI_QUOTA_CIRCUIT_OPEN: bool = False
    DAILY_OPENAI_LIMIT_USD: float = 10.0
    DISABLE_LLM_WHEN_BUDGET_HIT: bool = True
    POSTING_DISABLED: bool = True
    LIVE_POSTS: bool = False


class FakeLLM:
    """Answers with a fixed usage, or raises what it is told; counts calls."""

    def __init__(self, usage: Usage = Usage(prompt_tokens=300, completion_tokens=80, total_tokens=380)):
        self.model = "gpt-4o-mini"
        self.max_output_tokens = 700
        self.usage = usage
        self.raises: BaseException | None = None
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def draft(self, request: DraftRequest, *, request_id: str | None = None) -> LLMResult:
        self.calls.append(request_id or "")
        if self.gate is not None:
            await self.gate.wait()
        if self.raises is not None:
            raise self.raises
        d = Draft(parts=["How to test an LLM wrapper: count the calls."], topic=request.topic, angle=request.angle)
        return LLMResult(draft=d, usage=self.usage, model="gpt-4o-mini-2024-07-18", request_id=request_id or "")


class FakeEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(32)
        self.calls = 0

    @property
    def model(self) -> str:
        return "text-embedding-3-small"

    async def embed(self, texts, *, request_id=None) -> EmbeddingResult:  # type: ignore[no-untyped-def]
        self.calls += 1
        n = sum(len(t.split()) for t in texts)
        return EmbeddingResult(vectors=self.embed_texts(list(texts)), usage=Usage(prompt_tokens=n, total_tokens=n),
                               model=self.model, request_id=request_id or "")


def make(flags: FlagsStub | None = None, llm: FakeLLM | None = None, store: InMemoryBudgetStore | None = None):
    flags = flags or FlagsStub()
    llm = llm or FakeLLM()
    store = store or InMemoryBudgetStore()
    records: list[LLMCallRecord] = []

    async def emit(r: LLMCallRecord) -> None:
        records.append(r)

    g = GuardedLLM(llm, FakeEmbedder(), store, lambda: flags, FixedClock(NOW), emit)
    return g, llm, store, records, flags


def chat_estimate() -> float:
    return PRICES.estimate_cost("gpt-4o-mini", estimate_prompt_tokens(REQ), 700)


def test_failure_reasons_are_the_events_reasons() -> None:
    assert FAILURE_REASONS == EVENT_REASONS
    with pytest.raises(ValueError):
        LLMFailure("nope")


async def test_success_settles_the_real_cost_from_usage() -> None:
    g, llm, store, records, _ = make()
    result = await g.draft(REQ, correlation_id="run-1")
    real = PRICES.actual_cost("gpt-4o-mini", llm.usage)
    assert result.draft.parts and len(llm.calls) == 1
    assert await store.spent(DAY) == pytest.approx(real, abs=1e-6)
    assert await store.reserved(DAY) == 0.0
    assert real < chat_estimate()
    [r] = records
    assert (r.status, r.kind, r.failure_reason, r.correlation_id) == ("success", "chat", None, "run-1")
    assert (r.prompt_tokens, r.completion_tokens, r.total_tokens) == (300, 80, 380)
    assert r.cost_usd == pytest.approx(real) and r.request_id == llm.calls[0] == result.request_id
    assert r.model == "gpt-4o-mini-2024-07-18" and r.started_at == NOW and r.duration_ms >= 0


async def test_circuit_open_blocks_with_no_call_and_is_recorded() -> None:
    g, llm, store, records, flags = make(FlagsStub(AI_QUOTA_CIRCUIT_OPEN=True))
    with pytest.raises(LLMFailure) as info:
        await g.draft(REQ)
    assert info.value.reason == "circuit_open"
    with pytest.raises(LLMFailure, match="circuit_open"):
        await g.embed(["text"])
    assert llm.calls == [] and g.embedder.calls == 0  # type: ignore[attr-defined]
    assert await store.reserved(DAY) == 0.0 and await store.spent(DAY) == 0.0
    assert [(r.status, r.failure_reason, r.kind, r.cost_usd) for r in records] == [
        ("failed", "circuit_open", "chat", 0.0), ("failed", "circuit_open", "embedding", 0.0)]
    flags.AI_QUOTA_CIRCUIT_OPEN = False  # read on every call: the override applies at once
    await g.draft(REQ)
    assert len(llm.calls) == 1


@pytest.mark.parametrize("posting_disabled", [True, False])
@pytest.mark.parametrize("live_posts", [True, False])
async def test_posting_flags_never_block_the_llm(posting_disabled: bool, live_posts: bool) -> None:
    g, llm, _, records, _ = make(FlagsStub(POSTING_DISABLED=posting_disabled, LIVE_POSTS=live_posts))
    await g.draft(REQ)
    assert len(llm.calls) == 1 and records[0].status == "success"


async def test_real_flags_struct_is_accepted() -> None:
    from shared.flags import Flags

    flags = Flags(AI_QUOTA_CIRCUIT_OPEN=True, POSTING_DISABLED=False)
    llm = FakeLLM()
    g = GuardedLLM(llm, FakeEmbedder(), InMemoryBudgetStore(), lambda: flags, FixedClock(NOW))
    with pytest.raises(LLMFailure, match="circuit_open"):
        await g.draft(REQ)
    assert llm.calls == []


async def test_budget_exceeded_blocks_with_no_call() -> None:
    est = chat_estimate()
    g, llm, store, records, flags = make(FlagsStub(DAILY_OPENAI_LIMIT_USD=est * 0.99))
    with pytest.raises(LLMFailure) as info:
        await g.draft(REQ)
    assert info.value.reason == "budget_exceeded" and "DAILY_OPENAI_LIMIT_USD" in info.value.detail
    assert llm.calls == [] and records[0].failure_reason == "budget_exceeded"
    flags.DAILY_OPENAI_LIMIT_USD = est * 1.01
    await g.draft(REQ)  # now it fits
    assert len(llm.calls) == 1


async def test_spend_accumulates_until_the_cap_stops_calls() -> None:
    est = chat_estimate()
    real = PRICES.actual_cost("gpt-4o-mini", FakeLLM().usage)
    cap = est + 3 * real + 2e-6  # micro-dollar rounding only ever makes the budget stricter
    g, llm, store, records, _ = make(FlagsStub(DAILY_OPENAI_LIMIT_USD=cap))
    outcomes = []
    for _ in range(10):
        try:
            await g.draft(REQ)
            outcomes.append("ok")
        except LLMFailure as f:
            outcomes.append(f.reason)
    # each success leaves `real` spent; a call needs `est` of room
    assert outcomes[:4] == ["ok"] * 4 and set(outcomes[4:]) == {"budget_exceeded"}
    assert await store.spent(DAY) <= cap
    assert len(llm.calls) == 4 and len(records) == 10


async def test_budget_switch_off_allows_calls_over_the_cap_but_still_counts_spend() -> None:
    g, llm, store, _, _ = make(FlagsStub(DAILY_OPENAI_LIMIT_USD=0.0, DISABLE_LLM_WHEN_BUDGET_HIT=False))
    await g.draft(REQ)
    await g.draft(REQ)
    assert len(llm.calls) == 2
    assert await store.spent(DAY) == pytest.approx(2 * PRICES.actual_cost("gpt-4o-mini", llm.usage), abs=2e-6)


@pytest.mark.parametrize("reason", ["rate_limited", "quota", "timeout", "api_error"])
async def test_a_failure_settles_to_zero_and_is_recorded(reason: str) -> None:
    g, llm, store, records, _ = make()
    llm.raises = LLMFailure(reason, "boom")
    with pytest.raises(LLMFailure) as info:
        await g.draft(REQ, correlation_id="c")
    assert info.value.reason == reason and len(llm.calls) == 1
    assert await store.spent(DAY) == 0.0 and await store.reserved(DAY) == 0.0
    [r] = records
    assert (r.status, r.failure_reason, r.detail, r.cost_usd, r.correlation_id) == ("failed", reason, "boom", 0.0, "c")


async def test_an_invalid_response_settles_what_its_usage_says() -> None:
    g, llm, store, records, _ = make()
    usage = Usage(prompt_tokens=250, completion_tokens=90, total_tokens=340)
    llm.raises = LLMFailure("invalid_response", "not JSON", usage=usage)
    with pytest.raises(LLMFailure, match="invalid_response"):
        await g.draft(REQ)
    cost = PRICES.actual_cost("gpt-4o-mini", usage)
    assert await store.spent(DAY) == pytest.approx(cost, abs=1e-6) and records[0].cost_usd == pytest.approx(cost)
    assert records[0].total_tokens == 340


async def test_an_unexpected_exception_becomes_api_error() -> None:
    g, llm, store, records, _ = make()
    llm.raises = RuntimeError("socket closed")
    with pytest.raises(LLMFailure) as info:
        await g.draft(REQ)
    assert info.value.reason == "api_error" and "socket closed" in info.value.detail
    assert records[0].failure_reason == "api_error" and await store.reserved(DAY) == 0.0


async def test_flags_or_store_that_cannot_answer_fail_closed() -> None:
    llm = FakeLLM()

    def broken_flags() -> FlagsStub:
        raise RuntimeError("kv down")

    g = GuardedLLM(llm, FakeEmbedder(), InMemoryBudgetStore(), broken_flags, FixedClock(NOW))
    with pytest.raises(LLMFailure, match="circuit_open"):
        await g.draft(REQ)

    class BrokenStore(InMemoryBudgetStore):
        async def reserve(self, day, amount_usd, cap_usd):  # type: ignore[no-untyped-def]
            raise ConnectionError("nats down")

    g = GuardedLLM(llm, FakeEmbedder(), BrokenStore(), FlagsStub, FixedClock(NOW))
    with pytest.raises(LLMFailure, match="budget_exceeded"):
        await g.draft(REQ)
    assert llm.calls == []


async def test_a_cancelled_call_keeps_its_estimate_reserved_as_spent() -> None:
    g, llm, store, _, _ = make()
    llm.gate = asyncio.Event()
    task = asyncio.ensure_future(g.draft(REQ))
    for _ in range(100):
        if llm.calls:
            break
        await asyncio.sleep(0.001)
    assert await store.reserved(DAY) == pytest.approx(chat_estimate(), abs=1e-6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.reserved(DAY) == 0.0
    assert await store.spent(DAY) == pytest.approx(chat_estimate(), abs=1e-6)


async def test_embeddings_go_through_the_same_guard() -> None:
    g, _, store, records, _ = make()
    res = await g.embed(["one two three", "four five"], correlation_id="e")
    assert res.vectors.shape == (2, 32) and res.vectors.dtype == np.float32
    assert records[0].kind == "embedding" and records[0].prompt_tokens == 5
    assert await store.spent(DAY) == pytest.approx(PRICES.actual_cost("text-embedding-3-small", res.usage), abs=1e-6)


async def test_a_failing_emit_does_not_lose_the_result() -> None:
    async def emit(r: LLMCallRecord) -> None:
        raise ConnectionError("bus down")

    llm = FakeLLM()
    g = GuardedLLM(llm, FakeEmbedder(), InMemoryBudgetStore(), FlagsStub, FixedClock(NOW), emit)
    assert (await g.draft(REQ)).draft.parts


def test_records_become_llm_events_with_a_stable_id() -> None:
    base = dict(request_id="r1", kind="chat", model="gpt-4o-mini", prompt_tokens=3, completion_tokens=4,
                total_tokens=7, cost_usd=0.001, started_at=NOW, duration_ms=12.5, correlation_id="job-1")
    ok = record_to_event(LLMCallRecord(**base, status="success", failure_reason=None), service="planner")
    bad = record_to_event(LLMCallRecord(**base, status="failed", failure_reason="quota", detail="billing"))
    assert isinstance(ok, LlmCallCompleted) and isinstance(bad, LlmCallFailed)
    assert ok.request_id == "r1" and ok.total_tokens == 7 and ok.correlation_id == "job-1" and ok.service == "planner"
    assert bad.failure_reason == "quota" and bad.detail == "billing" and bad.status == "failed"
    again = record_to_event(LLMCallRecord(**base, status="success", failure_reason=None))
    assert ok.event_id == again.event_id and len(ok.event_id) == 32



async def test_an_accounts_own_budget_holds_besides_the_stacks() -> None:
    """Promise 5: spend never passes the stack's cap nor the account's own; a refusal by the account's budget gives
    the stack's reservation back, and another account is not touched."""
    from shared.llm.guarded import account_budget_day

    g, _, store, records, _ = make()
    runner = msgspec.structs.replace(REQ, account="runner", account_budget_usd=0.0005)
    drafted = 0
    for _ in range(40):
        try:
            await g.draft(runner)
            drafted += 1
        except LLMFailure as exc:
            assert exc.reason == "budget_exceeded" and "account runner's daily budget" in exc.detail
            break
    assert 0 < drafted < 40
    assert await store.spent(account_budget_day(DAY, "runner")) <= 0.0005 + 1e-9
    assert await store.reserved(DAY) == 0 and await store.reserved(account_budget_day(DAY, "runner")) == 0
    before = await store.spent(DAY)
    await g.draft(msgspec.structs.replace(REQ, account="chef", account_budget_usd=1.0))
    await g.embed(["a text"], account="chef", account_budget_usd=1.0)
    assert await store.spent(DAY) > before  # the chef still drafts and embeds
    assert {r.account for r in records} == {"runner", "chef"}
    assert all(record_to_event(r).account == r.account for r in records)
