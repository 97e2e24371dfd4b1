"""The /api/metrics snapshot cache: shared computations, freshness bounds, renewal ahead of expiry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.gateway.deps import Gateway
from services.gateway.queries import METRICS_MAX_AGE_S, METRICS_REFRESH_AHEAD_S, cached_metrics_snapshot
from shared.clock import FixedClock

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Snapshots:
    """Counts computations; each waits for ``gate`` (when set) and can be made to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self, gw: Gateway) -> dict[str, Any]:
        self.calls += 1
        n = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {"n": n, "position": gw.projector.position, "flags": gw.flags.version}


def gateway() -> Gateway:
    return Gateway(bus=None, flags=SimpleNamespace(version=1), pool=None,
                   clock=FixedClock(datetime(2026, 5, 1, tzinfo=UTC)), projector=SimpleNamespace(position=10))


async def test_concurrent_requests_share_one_computation() -> None:
    gw, snaps, clock = gateway(), Snapshots(), Clock()
    snaps.gate = asyncio.Event()
    waiting = [asyncio.create_task(cached_metrics_snapshot(gw, compute=snaps, clock=clock)) for _ in range(20)]
    await asyncio.sleep(0)
    snaps.gate.set()
    got = await asyncio.gather(*waiting)
    assert snaps.calls == 1 and all(g is got[0] for g in got) and got[0]["n"] == 1


async def test_new_events_or_flags_are_seen_by_the_next_request() -> None:
    gw, snaps, clock = gateway(), Snapshots(), Clock()
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock))["position"] == 10
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock))["n"] == 1  # same position: cached
    gw.projector.position = 11  # the projector applied an event: the request waits for the new figures
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock)) == {"n": 2, "position": 11, "flags": 1}
    gw.flags.version = 2  # a flag changed
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock)) == {"n": 3, "position": 11, "flags": 2}
    assert gw.metrics_refresh is None  # nothing in the background for any of that


async def test_renewed_in_the_background_before_it_expires_and_never_served_past_the_bound() -> None:
    gw, snaps, clock = gateway(), Snapshots(), Clock()
    first = await cached_metrics_snapshot(gw, compute=snaps, clock=clock)
    clock.t += METRICS_REFRESH_AHEAD_S / 2
    assert await cached_metrics_snapshot(gw, compute=snaps, clock=clock) is first
    assert gw.metrics_refresh is None and snaps.calls == 1
    # past the refresh-ahead age, still within the bound: answered at once from the cache, renewed behind it
    clock.t += METRICS_REFRESH_AHEAD_S / 2
    snaps.gate = asyncio.Event()
    assert await cached_metrics_snapshot(gw, compute=snaps, clock=clock) is first
    assert await cached_metrics_snapshot(gw, compute=snaps, clock=clock) is first
    assert gw.metrics_refresh is not None and not gw.metrics_refresh.done()
    snaps.gate.set()
    await gw.metrics_refresh
    assert snaps.calls == 2  # one renewal for both requests
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock))["n"] == 2
    # nobody asked for a while: past the bound the request waits for a fresh one rather than get the old one
    clock.t += METRICS_MAX_AGE_S
    assert (await cached_metrics_snapshot(gw, compute=snaps, clock=clock))["n"] == 3


async def test_a_failed_renewal_keeps_the_snapshot_until_the_bound_then_the_request_sees_the_error() -> None:
    gw, snaps, clock = gateway(), Snapshots(), Clock()
    first = await cached_metrics_snapshot(gw, compute=snaps, clock=clock)
    snaps.fail = ConnectionRefusedError("database down")
    clock.t += METRICS_REFRESH_AHEAD_S
    assert await cached_metrics_snapshot(gw, compute=snaps, clock=clock) is first
    assert gw.metrics_refresh is not None
    await gw.metrics_refresh  # logged, not raised
    assert gw.metrics_cache is not None and gw.metrics_cache[2] is first
    clock.t += METRICS_MAX_AGE_S
    with pytest.raises(ConnectionRefusedError):
        await cached_metrics_snapshot(gw, compute=snaps, clock=clock)
