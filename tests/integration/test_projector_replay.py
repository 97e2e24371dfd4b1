"""The log is the truth: a rebuild reproduces the live rows exactly; a redelivered batch changes nothing; two
projectors share the work without corrupting each other; bad events are dead-lettered, never a stop."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from services.gateway import sql
from services.gateway.projector import Projector
from services.gateway.read_models import READ_MODELS
from services.gateway.replay import rebuild
from shared.bus import ReadItem
from shared.events import DecisionQueued
from tests.integration.test_projector_scenario import (
    SCENARIO_DECISIONS,
    SCENARIO_OUTCOMES,
    migrated,
    project_all,
    queued,
    scenario,
)

pytestmark = pytest.mark.integration

#: every read model's rows in primary-key order
ORDER = {m.table: ", ".join(m.upsert.key) for m in READ_MODELS}


async def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(database_url)
    try:
        out = {t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY {ORDER[t]}")]
               for t in sql.READ_MODEL_TABLES}
        out["projection_offsets"] = [tuple(r) for r in await conn.fetch(
            "SELECT projector, last_seq FROM projection_offsets ORDER BY projector")]
        return out
    finally:
        await conn.close()


async def publish_in_chunks(bus: Any, events: list[Any], chunk: int, pause: float = 0.0) -> None:
    for i in range(0, len(events), chunk):
        await bus.publish_many(events[i:i + chunk])
        await asyncio.sleep(pause)


async def test_rebuild_reproduces_the_live_rows_exactly(bus, database_url) -> None:
    await migrated(database_url)
    events = scenario(n_bulk=300)
    live = Projector(bus, database_url, batch_size=7, flush_s=0.0)  # many small batches, odd boundaries
    live.start()
    try:
        await publish_in_chunks(bus, events[:500], 13)
        await bus.publish_raw(f"{bus.names.evt_prefix}.decision.x.queued", b"{not json")  # dead-lettered
        await publish_in_chunks(bus, events[500:], 29)
        last = await bus.last_seq()
        assert await live.wait_for(last, 30), (live.position, last)
    finally:
        await live.stop()
    assert live.batches > 50 and live.dead_lettered == 1
    before = await snapshot(database_url)
    assert len(before["content_metadata"]) == SCENARIO_DECISIONS + 300 and len(before["outcomes"]) == SCENARIO_OUTCOMES + 300

    progress: list[tuple[int, int]] = []
    stats = await rebuild(database_url=database_url, bus=bus, on_progress=lambda d, t: progress.append((d, t)))
    after = await snapshot(database_url)
    assert after == before  # every row of every table, compared
    assert stats.events == last and stats.last_seq == last and stats.rate > 0
    assert stats.batches < live.batches
    assert progress[0] == (0, last) and progress[-1] == (last, last)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


async def test_a_redelivered_batch_changes_nothing(bus, database_url) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario(n_bulk=20))
    first = await project_all(bus, database_url)
    before = await snapshot(database_url)
    items = [i async for i in bus.read() if not i.caught_up]
    # the same batch again, as after a crash between commit and acknowledgement
    again = Projector(bus, database_url)
    await again._ensure_conn()
    try:
        await again._apply(items)
        await again._apply(items[10:40])
    finally:
        await again._close()
    assert await snapshot(database_url) == before
    assert again.events_applied == 0 and first.position == len(items)
    # even with the offset lost, every row's last_seq keeps a replayed row as it was
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT decision_id, last_seq FROM content_metadata")
        assert all(r["last_seq"] > 0 for r in rows)
        await conn.execute("UPDATE projection_offsets SET last_seq = 0")
        replay = [i for i in items if i.event is not None and i.event.type.startswith(("decision.", "outcome."))]
    finally:
        await conn.close()
    again = Projector(bus, database_url)
    await again._ensure_conn()
    try:
        await again._apply(replay)
    finally:
        await again._close()
    after = await snapshot(database_url)
    for table in ("content_metadata", "posted_decisions", "outcomes"):
        assert after[table] == before[table], table


async def test_two_projectors_share_the_log_without_double_apply(bus, database_url) -> None:
    await migrated(database_url)
    events = scenario(n_bulk=150)
    a = Projector(bus, database_url, name="gateway", batch_size=5, flush_s=0.0)
    b = Projector(bus, database_url, name="gateway", batch_size=11, flush_s=0.0)
    a.start()
    b.start()
    try:
        await a.wait_caught_up(10)
        await b.wait_caught_up(10)
        await publish_in_chunks(bus, events, 17, pause=0.02)  # both idle, both race for each chunk
        last = await bus.last_seq()
        assert await a.wait_for(last, 30) and await b.wait_for(last, 30)
    finally:
        await a.stop()
        await b.stop()
    assert a.events_applied > 0 and b.events_applied > 0  # both did some of the work
    assert a.events_applied + b.events_applied == last  # and none of it twice
    shared = await snapshot(database_url)
    await rebuild(database_url=database_url, bus=bus)
    assert await snapshot(database_url) == shared


async def test_a_rebuild_under_a_running_projector_makes_it_rewind_not_skip(bus, database_url) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario(n_bulk=100))
    live = Projector(bus, database_url, batch_size=50, flush_s=0.0)
    live.start()
    try:
        assert await live.wait_for(await bus.last_seq(), 20)
        expected = await snapshot(database_url)
        rebuilding = asyncio.create_task(rebuild(database_url=database_url, bus=bus, batch_size=20))
        await bus.publish_many(scenario(n_bulk=120)[-80:])  # more events while both run (20 new decisions)
        await rebuilding
        last = await bus.last_seq()
        assert await live.wait_for(last, 20)
        got = await snapshot(database_url)
    finally:
        await live.stop()
    assert len(got["content_metadata"]) == len(expected["content_metadata"]) + 20
    await rebuild(database_url=database_url, bus=bus)
    assert await snapshot(database_url) == got


async def test_bad_events_are_dead_lettered_and_the_projection_goes_on(bus, database_url) -> None:
    await migrated(database_url)
    good = queued(1)
    bad_id = DecisionQueued(**{**{f: getattr(good, f) for f in good.__struct_fields__},
                               "decision_id": "not-a-uuid", "event_id": "bad-id"})
    nul = DecisionQueued(**{**{f: getattr(good, f) for f in good.__struct_fields__},
                            "decision_id": str(uuid.uuid4()), "content": "a\x00b", "event_id": "nul"})
    await bus.publish(bad_id)
    await bus.publish_raw(f"{bus.names.evt_prefix}.decision.y.queued", b'{"type": "decision.queued"}')
    await bus.publish(nul)
    await bus.publish(good)
    p = await project_all(bus, database_url)
    assert p.position == 4 and p.dead_lettered == 3
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM content_metadata") == 1
    finally:
        await conn.close()
    dlq = [await bus.js.get_msg(bus.names.dlq_stream, s) for s in (1, 2, 3)]
    assert {m.headers["Xbot-Consumer"] for m in dlq} == {"gateway"}
    errors = [m.headers["Xbot-Error"] for m in dlq]
    assert "not a UUID" in errors[0] and "DecodeError" in errors[1] and "NUL" in errors[2]


class RefusingProjector(Projector):
    """The database refuses one event's data (as it would a value our checks did not foresee)."""

    def __init__(self, *a: Any, refuse_seq: int, **kw: Any):
        super().__init__(*a, **kw)
        self.refuse_seq = refuse_seq

    async def _apply(self, batch: list[ReadItem]) -> None:
        if any(i.seq == self.refuse_seq and i.event is not None for i in batch):
            raise asyncpg.exceptions.DataError("invalid input syntax (simulated)")
        await super()._apply(batch)


async def test_an_event_the_database_refuses_is_found_and_dead_lettered(bus, database_url) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario())
    last = await bus.last_seq()
    p = RefusingProjector(bus, database_url, batch_size=1000, refuse_seq=2)
    await p.run(follow=False)
    await p.stop()
    assert p.position == last and p.dead_lettered == 1
    msg = await bus.js.get_msg(bus.names.dlq_stream, 1)
    assert msg.headers["Xbot-Original-Seq"] == "2" and "database refused" in msg.headers["Xbot-Error"]
    conn = await asyncpg.connect(database_url)
    try:
        # every draft but the refused one
        assert await conn.fetchval("SELECT COUNT(*) FROM content_metadata") == SCENARIO_DECISIONS - 1
    finally:
        await conn.close()


async def test_the_in_memory_bus_projects_the_same_rows(bus, database_url) -> None:
    """The projector on the in-memory bus (its ``read`` path) writes exactly what it writes from JetStream."""
    from services.gateway.replay import reset_read_models
    from shared.bus.memory import InMemoryBus

    await migrated(database_url)
    events = scenario(n_bulk=30)
    await bus.publish_many(events)
    await project_all(bus, database_url)
    from_jetstream = await snapshot(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await reset_read_models(conn)
    finally:
        await conn.close()
    mem = InMemoryBus(bus.names)
    await mem.publish_many(events)
    p = await project_all(mem, database_url, batch_size=9)
    assert p.position == len(events)
    assert await snapshot(database_url) == from_jetstream
