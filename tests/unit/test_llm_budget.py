"""The budget arithmetic (pure state + the in-memory store): reserve under the cap, settle the real cost."""

import asyncio

import pytest

from shared.llm.budget import (
    SETTLED_MEMORY,
    BudgetStore,
    DayState,
    InMemoryBudgetStore,
    apply_reserve,
    apply_settle,
    budget_key,
    from_micros,
    to_micros,
)

pytestmark = pytest.mark.unit
DAY = "2025-10-01"


def test_micro_dollars_round_up_and_never_drift() -> None:
    assert to_micros(0.1) == 100_000 and to_micros(1e-7) == 1 and to_micros(0) == 0 and to_micros(-3) == 0
    assert to_micros(0.1 + 0.2) == 300_000  # float noise absorbed, not rounded up a micro-dollar
    assert sum(to_micros(0.1) for _ in range(10)) == to_micros(1.0)
    assert from_micros(1_500_000) == 1.5
    assert budget_key(DAY) == "spend.2025-10-01"


async def test_reserve_until_the_cap_then_refuse() -> None:
    s = InMemoryBudgetStore()
    assert isinstance(s, BudgetStore)
    held = [await s.reserve(DAY, 0.3, 1.0) for _ in range(3)]
    assert all(held)
    assert await s.reserve(DAY, 0.2, 1.0) is None  # 0.9 + 0.2 > 1.0
    assert await s.reserve(DAY, 0.1, 1.0) is not None  # exactly the cap is allowed
    assert await s.reserve(DAY, 1e-6, 1.0) is None
    assert await s.reserved(DAY) == pytest.approx(1.0) and await s.spent(DAY) == 0.0
    assert await s.reserve("2025-10-02", 0.5, 1.0) is not None  # another day, another budget


async def test_settle_releases_the_estimate_and_adds_the_real_cost() -> None:
    s = InMemoryBudgetStore()
    r = await s.reserve(DAY, 0.5, 1.0)
    assert r is not None and r.amount_usd == 0.5
    await s.settle(r, 0.0123)
    assert await s.spent(DAY) == pytest.approx(0.0123) and await s.reserved(DAY) == 0.0
    await s.settle(r, 0.0123)  # settling twice changes nothing
    assert await s.spent(DAY) == pytest.approx(0.0123)
    assert await s.reserve(DAY, 0.98, 1.0) is not None
    assert await s.reserve(DAY, 0.01, 1.0) is None


async def test_zero_or_negative_cap_refuses_everything_but_a_zero_reservation() -> None:
    s = InMemoryBudgetStore()
    assert await s.reserve(DAY, 0.01, 0.0) is None
    assert await s.reserve(DAY, 0.01, -5) is None
    assert await s.reserve(DAY, 0.01, float("nan")) is None
    assert await s.reserve(DAY, 0.0, 0.0) is not None
    assert await s.reserve(DAY, 1e9, float("inf")) is not None


async def test_a_crashed_reservation_expires_after_its_ttl() -> None:
    now = [1000.0]
    s = InMemoryBudgetStore(reservation_ttl_s=60, now=lambda: now[0])
    lost = await s.reserve(DAY, 0.9, 1.0)  # its replica dies and never settles
    assert lost is not None and await s.reserve(DAY, 0.2, 1.0) is None
    now[0] += 61
    late = await s.reserve(DAY, 0.2, 1.0)
    assert late is not None and await s.reserved(DAY) == pytest.approx(0.2)
    await s.settle(lost, 0.05)  # a settle after expiry still counts the real cost, once
    assert await s.spent(DAY) == pytest.approx(0.05) and await s.reserved(DAY) == pytest.approx(0.2)


def test_pure_state_remembers_a_bounded_number_of_settled_ids() -> None:
    st = DayState()
    for i in range(SETTLED_MEMORY + 50):
        assert apply_reserve(st, f"r{i}", 1, 10**9, 0.0, 900)
        assert apply_settle(st, f"r{i}", 2, 0.0, 900)
    assert len(st.settled) == SETTLED_MEMORY and st.spent == 2 * (SETTLED_MEMORY + 50) and st.reserved == 0
    assert not apply_settle(st, f"r{SETTLED_MEMORY + 49}", 2, 0.0, 900)


async def test_concurrent_reservers_in_one_process_never_pass_the_cap() -> None:
    s = InMemoryBudgetStore()

    async def worker() -> int:
        n = 0
        for _ in range(50):
            r = await s.reserve(DAY, 0.013, 0.5)
            if r is None:
                continue
            n += 1
            await asyncio.sleep(0)
            await s.settle(r, 0.011)
        return n

    counts = await asyncio.gather(*(worker() for _ in range(8)))
    spent = await s.spent(DAY)
    assert spent <= 0.5 and sum(counts) == round(spent / 0.011)
    assert spent > 0.5 - 0.013 - 0.011  # and the budget was actually used up
