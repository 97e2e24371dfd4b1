"""Per-account leases against a real nats-server: one holder per account, shares, takeover, rebalancing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from shared.accounts.leases import BUCKET, LeaseKeeper, lease_key

pytestmark = pytest.mark.integration

LEASE = 1.5
ACCOUNTS = ["acme", "bravo", "charlie", "delta"]
STEP = 0.02  # the polling loops check every 20 ms


@pytest.fixture
async def leases_bus(bus) -> AsyncIterator:
    yield bus
    with contextlib.suppress(Exception):  # the harness does not know this bucket yet
        await bus.js.delete_key_value(bus.names.bucket(BUCKET))


def keeper(bus, instance: str, accounts: Sequence[str] | list[str] = ACCOUNTS, **kw) -> LeaseKeeper:
    return LeaseKeeper(bus, "poster", instance, lambda: list(accounts), lease_seconds=LEASE, **kw)


def overlap(keepers: Sequence[LeaseKeeper], accounts: Sequence[str] = ACCOUNTS) -> list[str]:
    """Accounts that two keepers ``holds()`` at this instant."""
    return [a for a in accounts if sum(k.holds(a) for k in keepers) > 1]


async def poll(
    keepers: Sequence[LeaseKeeper], done, timeout: float, accounts: Sequence[str] = ACCOUNTS
) -> float:
    """Wait (bounded) for ``done()``, checking at every step that no account has two holders; the time it took."""
    start = time.monotonic()
    while True:
        assert not overlap(keepers, accounts), [sorted(k.held()) for k in keepers]
        if done():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not done after {timeout}s: {[sorted(k.held()) for k in keepers]}")
        await asyncio.sleep(STEP)


async def stop_all(*keepers: LeaseKeeper) -> None:
    for k in keepers:
        await k.stop()


async def test_one_replica_holds_every_account_after_start(leases_bus) -> None:
    changes: list[frozenset[str]] = []
    a = keeper(leases_bus, "a", on_change=changes.append)
    try:
        await a.start()
        assert a.held() == frozenset(ACCOUNTS)  # the first round runs inside start()
        assert all(a.holds(x) for x in ACCOUNTS) and not a.holds("zulu")
        assert changes == [frozenset(ACCOUNTS)]
        kv = await leases_bus.js.key_value(leases_bus.names.bucket(BUCKET))
        assert (await kv.get(lease_key("poster", "acme"))).value == b"a"
        # held across many renewals
        await poll([a], lambda: a.rounds >= 5, 5 * LEASE)
        assert a.held() == frozenset(ACCOUNTS)
    finally:
        await a.stop()
    assert a.held() == frozenset() and changes[-1] == frozenset()


async def test_two_replicas_split_evenly_never_overlapping(leases_bus) -> None:
    a, b = keeper(leases_bus, "a"), keeper(leases_bus, "b")
    try:
        await a.start()
        await b.start()
        took = await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 4 * LEASE)
        assert a.held() | b.held() == frozenset(ACCOUNTS)
        print(f"two replicas balanced {took:.2f}s after the second started")
        # and it stays so (no flapping) over a few more rounds
        rounds = a.rounds
        await poll([a, b], lambda: a.rounds >= rounds + 4, 4 * LEASE)
        assert len(a.held()) == 2 and len(b.held()) == 2
    finally:
        await stop_all(a, b)


async def test_crashed_replica_accounts_move_to_the_survivor(leases_bus) -> None:
    a, b = keeper(leases_bus, "a"), keeper(leases_bus, "b")
    try:
        await a.start()
        await b.start()
        await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 4 * LEASE)
        await a.stop(release=False)  # a crash: it just stops renewing (its held state decays by the 0.8 rule)
        took = await poll([a, b], lambda: b.held() == frozenset(ACCOUNTS), 2 * LEASE + 0.5)
        assert not a.held()
        print(f"crash takeover after {took:.2f}s (lease {LEASE}s)")
        assert took <= 2 * LEASE
    finally:
        await stop_all(a, b)


async def test_graceful_stop_hands_over_within_one_round(leases_bus) -> None:
    a, b = keeper(leases_bus, "a"), keeper(leases_bus, "b")
    try:
        await a.start()
        await b.start()
        await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 4 * LEASE)
        await a.stop(release=True)
        assert not a.held()
        took = await poll([a, b], lambda: b.held() == frozenset(ACCOUNTS), b.interval + 0.3)
        print(f"graceful takeover after {took:.2f}s (round {b.interval}s)")
    finally:
        await stop_all(a, b)


async def test_third_replica_rebalances_to_two_one_one(leases_bus) -> None:
    a, b, c = keeper(leases_bus, "a"), keeper(leases_bus, "b"), keeper(leases_bus, "c")
    try:
        await a.start()
        await b.start()
        await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 4 * LEASE)
        await c.start()
        took = await poll([a, b, c], lambda: sorted(len(k.held()) for k in (a, b, c)) == [1, 1, 2], 4 * LEASE)
        assert a.held() | b.held() | c.held() == frozenset(ACCOUNTS)
        assert len(c.held()) == 1  # the newcomer takes one, the tie between a and b gives a the extra
        print(f"third replica rebalanced after {took:.2f}s")
        rounds = c.rounds
        await poll([a, b, c], lambda: c.rounds >= rounds + 3, 4 * LEASE)
        assert sorted(len(k.held()) for k in (a, b, c)) == [1, 1, 2]
    finally:
        await stop_all(a, b, c)


async def test_accounts_added_and_removed_follow_the_callable(leases_bus) -> None:
    accounts = list(ACCOUNTS)
    changes: list[frozenset[str]] = []
    a, b = keeper(leases_bus, "a", accounts, on_change=changes.append), keeper(leases_bus, "b", accounts)
    everyone = [*ACCOUNTS, "echo"]
    try:
        await a.start()
        await b.start()
        await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 4 * LEASE, everyone)
        accounts.append("echo")
        await poll([a, b], lambda: a.holds("echo") or b.holds("echo"), 3 * LEASE, everyone)
        await poll([a, b], lambda: len(a.held() | b.held()) == 5, 3 * LEASE, everyone)
        assert sorted([len(a.held()), len(b.held())]) == [2, 3]
        accounts.remove("acme")
        await poll([a, b], lambda: not a.holds("acme") and not b.holds("acme"), 2 * LEASE, everyone)
        kv = await leases_bus.js.key_value(leases_bus.names.bucket(BUCKET))
        with pytest.raises(Exception):  # noqa: B017 -- released: a delete marker, nats-py raises KeyNotFoundError
            await kv.get(lease_key("poster", "acme"))
        await poll([a, b], lambda: len(a.held()) == 2 and len(b.held()) == 2, 3 * LEASE, everyone)
        assert a.held() | b.held() == frozenset(["bravo", "charlie", "delta", "echo"])
        # on_change is called at the end of the round that changed the set
        await poll([a, b], lambda: bool(changes) and changes[-1] == a.held(), 2 * LEASE, everyone)
    finally:
        await stop_all(a, b)


async def test_stalled_holder_stops_before_the_lease_can_move(leases_bus) -> None:
    """A replica whose renewals stall (not dead: its loop is stuck) gives up holds() at 0.8 x lease, while the
    server frees the lease only at 1 x lease: the two ``holds()`` never overlap, checked every 20 ms."""
    a = keeper(leases_bus, "a")
    b = keeper(leases_bus, "b")
    try:
        await a.start()
        stalled_at = time.monotonic()
        assert a._task is not None
        a._task.cancel()  # the stall: no more rounds, nothing released
        await b.start()
        gave_up = await poll([a, b], lambda: not a.held(), LEASE)
        took = await poll([a, b], lambda: b.held() == frozenset(ACCOUNTS), 2 * LEASE)
        print(
            f"stalled holder gave up at {gave_up:.2f}s, the other held all {time.monotonic() - stalled_at:.2f}s "
            f"after the stall ({took:.2f}s after that)"
        )
    finally:
        await stop_all(a, b)
