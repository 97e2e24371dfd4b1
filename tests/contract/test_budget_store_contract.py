"""One contract for every budget store: in memory (one process) and the JetStream KV bucket every replica
shares (a real nats-server). Reserve before a call, settle the real cost after it; the cap is never passed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from nats.js.api import KeyValueConfig, StorageType

from shared.llm import InMemoryBudgetStore, KVBudgetStore

pytestmark = pytest.mark.integration
DAY = "2026-12-03"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


@pytest_asyncio.fixture(params=["memory", "kv"])
async def store(request: pytest.FixtureRequest, nats_url: str, namespace: str) -> AsyncIterator[tuple[object, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield InMemoryBudgetStore(reservation_ttl_s=60, now=clock), clock
        return
    name = f"{namespace}_budget_contract"
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket=name, history=8, storage=StorageType.FILE))
    try:
        yield KVBudgetStore(kv, reservation_ttl_s=60, now=clock), clock
    finally:
        await js.delete_key_value(name)
        await nc.close()


async def test_reservations_hold_the_cap_and_settle_the_real_cost(store) -> None:
    s, _ = store
    first = await s.reserve(DAY, 0.40, cap_usd=1.00)
    second = await s.reserve(DAY, 0.40, cap_usd=1.00)
    assert first is not None and second is not None
    assert await s.reserve(DAY, 0.40, cap_usd=1.00) is None  # 1.20 held would pass the cap: nothing held
    assert await s.reserved(DAY) == pytest.approx(0.80) and await s.spent(DAY) == 0.0
    await s.settle(first, 0.05)  # the call cost less than its estimate: the rest is free again
    assert await s.spent(DAY) == pytest.approx(0.05) and await s.reserved(DAY) == pytest.approx(0.40)
    assert await s.reserve(DAY, 0.50, cap_usd=1.00) is not None
    assert await s.spent("2026-12-04") == 0.0  # days are separate


async def test_a_repeated_settle_counts_once(store) -> None:
    s, _ = store
    r = await s.reserve(DAY, 0.10, cap_usd=1.00)
    assert r is not None
    await s.settle(r, 0.10)
    await s.settle(r, 0.10)
    assert await s.spent(DAY) == pytest.approx(0.10)


async def test_a_reservation_never_settled_expires(store) -> None:
    """A replica that died between reserve and settle does not hold the budget for good."""
    s, clock = store
    assert await s.reserve(DAY, 0.90, cap_usd=1.00) is not None
    assert await s.reserve(DAY, 0.20, cap_usd=1.00) is None
    clock.t += 61
    assert await s.reserve(DAY, 0.20, cap_usd=1.00) is not None


async def test_a_zero_or_invalid_cap_allows_nothing(store) -> None:
    s, _ = store
    assert await s.reserve(DAY, 0.01, cap_usd=0.0) is None
    assert await s.reserve(DAY, 0.01, cap_usd=float("nan")) is None
