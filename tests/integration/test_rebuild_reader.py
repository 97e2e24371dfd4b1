"""The rebuild in two processes (a reader process, the projector's batches here) writes exactly the rows the live
projector wrote, including when a straight COPY meets rows an earlier batch wrote; a reader that dies fails the
rebuild with the reason, promptly."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import structlog

from services.gateway.projector import Projector
from services.gateway.replay import RebuildProjector, rebuild, reset_read_models
from shared.bus.reader import ReaderConfig, ReaderFailed, ReaderProcess
from shared.events import DecisionPosted, DecisionPostStarted, Event, OutcomeRecorded
from tests.integration.test_projector_replay import publish_in_chunks, snapshot
from tests.integration.test_projector_scenario import (
    SCENARIO_DECISIONS,
    SCENARIO_OUTCOMES,
    T0,
    did,
    migrated,
    queued,
    scenario,
)

pytestmark = pytest.mark.integration


def history(n: int) -> list[Event]:
    """``n`` drafts queued first, then claimed and posted, then measured: the decision rows a later batch writes
    already exist (a straight COPY of them meets their keys), the posted and outcome rows are new."""
    ev: list[Event] = list(scenario())
    at = T0 + timedelta(days=3)
    ev += [queued(k, source="synthetic", at=at, salt="h") for k in range(n)]
    for k in range(n):
        ev.append(DecisionPostStarted(event_id=f"hst-{k}", occurred_at=at, decision_id=did(k, "h"), attempt=1,
                                      poster_id="p", simulated=True))
        ev.append(DecisionPosted(event_id=f"hp-{k}", occurred_at=at, decision_id=did(k, "h"), tweet_id=f"h-{k}",
                                 posted_at=at, decision_type="single", bandit_arm="howto:list", simulated=True))
    ev += [OutcomeRecorded(event_id=f"ho-{k}", occurred_at=at, decision_id=did(k, "h"), tweet_id=f"h-{k}",
                           horizon_hours=24, impressions=500 + k, likes=k % 11, retweets=1, replies=0, bookmarks=0,
                           quotes=0, er_calculated=(k % 11 + 1) / (500 + k), simulated=True, collected_at=at)
           for k in range(n)]
    return ev


async def _rebuild_with(bus: Any, database_url: str, *, reader: dict[str, Any] | None = None,
                        **kw: Any) -> RebuildProjector:
    conn = await asyncpg.connect(database_url)
    try:
        await reset_read_models(conn)
    finally:
        await conn.close()
    cfg = ReaderConfig(nats_url=bus.nc.connected_url.geturl(), namespace=bus.names.namespace, **(reader or {}))
    p = RebuildProjector(bus, database_url, reader=cfg, **kw)
    try:
        await asyncio.wait_for(p.run(), 120)
    finally:
        await p.stop()
    return p


async def test_the_two_process_rebuild_writes_the_live_rows(bus, database_url) -> None:
    await migrated(database_url)
    events = history(700)
    live = Projector(bus, database_url, batch_size=37, flush_s=0.0)
    live.start()
    try:
        await publish_in_chunks(bus, events[:900], 101)
        await bus.publish_raw(f"{bus.names.evt_prefix}.decision.x.queued", b"{not json")  # dead-lettered
        await publish_in_chunks(bus, events[900:], 211)
        last = await bus.last_seq()
        assert await live.wait_for(last, 60), (live.position, last)
    finally:
        await live.stop()
    before = await snapshot(database_url)
    assert len(before["content_metadata"]) == SCENARIO_DECISIONS + 700 and len(before["outcomes"]) == SCENARIO_OUTCOMES + 700

    # batches of 400: the posts of drafts an earlier batch queued update rows a straight COPY cannot insert
    p = await _rebuild_with(bus, database_url, batch_size=400)
    assert await snapshot(database_url) == before
    assert p.events_applied == last and p.position == last and p.dead_lettered == 1
    assert p.direct_misses >= 1  # the upsert took over for those, and the rows are still the live ones

    # one batch: every table COPYed straight in (one frame: the reader does not cut one on a timer, which on a busy
    # machine split the log into frames, and so batches, between a draft and its post)
    p = await _rebuild_with(bus, database_url, batch_size=10_000, reader=dict(flush_s=60.0))
    assert await snapshot(database_url) == before
    assert p.direct_misses == 0 and p.batches <= 3

    # and the same as reading in this process
    await rebuild(database_url=database_url, bus=bus, reader_process=False)
    assert await snapshot(database_url) == before


async def test_a_reader_that_dies_fails_the_rebuild_promptly(bus, database_url, monkeypatch) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario(n_bulk=50))
    start = ReaderProcess.start
    pids: list[int] = []

    async def start_then_kill(self: ReaderProcess) -> None:
        await start(self)
        assert self.proc is not None
        pids.append(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGKILL)

    monkeypatch.setattr(ReaderProcess, "start", start_then_kill)
    t0 = time.monotonic()
    with pytest.raises(ReaderFailed, match=r"exited before the end of the log \(exit code -9"):
        await asyncio.wait_for(rebuild(database_url=database_url, bus=bus), 60)
    assert time.monotonic() - t0 < 30 and len(pids) == 1
    with pytest.raises(ProcessLookupError):  # reaped, not left behind
        os.kill(pids[0], 0)


async def test_a_nats_restart_mid_rebuild_resumes_the_read_with_no_gap(database_url, tmp_path, monkeypatch) -> None:
    """Our own nats-server, stopped and started while the reader is mid-log (held back by a slow projector, small
    frames and a small pipe, so the server still holds most of the log): the reader's own connection dies with
    the server, and its read restarts after the last message it took."""
    from shared.bus import BusNames, JetStreamBus
    from xbot.embedded import EmbeddedNats

    await migrated(database_url)
    srv = EmbeddedNats(tmp_path / "nats").start()
    bus = None
    try:
        bus = await JetStreamBus.connect(srv.url, names=BusNames("trebuildfault"))
        await bus.ensure()
        await publish_in_chunks(bus, history(4000), 2000)  # 7 MB: several times what can be in flight
        last = await bus.last_seq()
        live = Projector(bus, database_url, batch_size=1000, flush_s=0.001)
        await live.run(follow=False)
        await live.stop()
        before = await snapshot(database_url)

        apply = RebuildProjector._apply_with_retry

        async def slow_apply(self: RebuildProjector, batch: Any) -> None:
            await asyncio.sleep(0.01)
            await apply(self, batch)

        monkeypatch.setattr(RebuildProjector, "_apply_with_retry", slow_apply)
        monkeypatch.setattr(ReaderProcess, "PIPE_LIMIT", 16 * 1024)
        started = asyncio.Event()
        with structlog.testing.capture_logs() as logs:
            rebuilding = asyncio.create_task(_rebuild_with(
                bus, database_url, batch_size=100, on_progress=lambda _: started.set(),
                reader=dict(frame_items=256, frame_bytes=64 * 1024)))
            await asyncio.wait_for(started.wait(), 30)
            await asyncio.to_thread(srv.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(srv.start)
            p = await asyncio.wait_for(rebuilding, 120)
        assert p.events_applied == last and p.position == last and p.dead_lettered == 0
        assert await snapshot(database_url) == before
        child = [str(e.get("line")) for e in logs if e.get("event") == "rebuild reader"]  # the child's stderr
        assert any("ordered read restarting" in line for line in child), child
    finally:
        if bus is not None:
            await bus.close()
        srv.stop()
