"""PostgreSQL stopped and restarted mid-stream: the projector pauses (not ready, API 503), keeps its batch, and
resumes with no gap and no double apply."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.replay import rebuild
from shared.bus import wait_until
from tests.integration.test_projector_replay import snapshot
from tests.integration.test_projector_scenario import SCENARIO_POSTED, caught_up, make_gateway, scenario

pytestmark = pytest.mark.integration


async def test_postgres_stopped_and_restarted_mid_stream(bus, database_url, postgres_server) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL is external (DATABASE_URL given): the test cannot stop it")
    events = scenario(n_bulk=200)
    async with make_gateway(bus, database_url) as (gw, client):
        p = gw.projector
        p.batch_size, p.retry_max_s = 20, 0.3
        await bus.publish_many(events[:300])
        await caught_up(gw)
        assert (await client.get("/readyz")).status_code == 200
        await asyncio.to_thread(postgres_server.stop)
        try:
            publishing = asyncio.create_task(bus.publish_many(events[300:]))
            assert await wait_until(lambda: not p.db_ok, timeout=15)
            await publishing
            stuck = p.position
            await asyncio.sleep(0.6)
            assert p.position == stuck < await bus.last_seq()  # paused, batch kept
            r = await client.get("/readyz")
            assert r.status_code == 503 and r.json()["database"] is False
            r = await client.get("/api/metrics")
            assert r.status_code == 503 and "unavailable" in r.json()["detail"]
        finally:
            await asyncio.to_thread(postgres_server.start)
        last = await bus.last_seq()
        assert await p.wait_for(last, 30), (p.position, last)
        assert p.db_ok and p.events_applied == last  # every event once: no gap, no double apply
        r = await client.get("/readyz")
        for _ in range(20):  # the API's pool reconnects on its next use
            if r.status_code == 200:
                break
            await asyncio.sleep(0.2)
            r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert (await client.get("/api/metrics")).json()["postsPosted"] == SCENARIO_POSTED + 200
    live = await snapshot(database_url)
    await rebuild(database_url=database_url, bus=bus)
    assert await snapshot(database_url) == live


async def test_nats_restarted_mid_stream(database_url, tmp_path) -> None:
    """Our own nats-server (a fault test), stopped and started again on the same store: the projector's reader
    resumes after the last event it handed over, with no gap."""
    from shared.bus import BusNames, JetStreamBus
    from tests.integration.test_projector_scenario import migrated
    from xbot.embedded import EmbeddedNats

    await migrated(database_url)
    srv = EmbeddedNats(tmp_path / "nats").start()
    bus = None
    try:
        bus = await JetStreamBus.connect(srv.url, names=BusNames("tnatsfault"))
        await bus.ensure()
        events = scenario(n_bulk=100)
        async with make_gateway(bus, database_url) as (gw, client):
            p = gw.projector
            await bus.publish_many(events[:200])
            await caught_up(gw)
            await asyncio.to_thread(srv.stop)
            await asyncio.sleep(1.0)
            assert (await client.get("/readyz")).status_code == 503
            await asyncio.to_thread(srv.start)
            assert await wait_until(lambda: bus.connected, timeout=15)
            for _ in range(50):  # publishing may need the reconnect to settle
                try:
                    await bus.publish_many(events[200:])
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            last = await bus.last_seq()
            assert last == len(events)
            assert await p.wait_for(last, 30), (p.position, last)
            assert p.events_applied == last
        live = await snapshot(database_url)
        await rebuild(database_url=database_url, bus=bus)
        assert await snapshot(database_url) == live
    finally:
        if bus is not None:
            await bus.close()
        srv.stop()
