"""``xbot replay --rebuild``: drop the read models and project them again from the log, fast."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from shared.bus import BusNames, JetStreamBus
from shared.db import apply_migrations

from . import sql
from .projector import Projector


class RebuildStats(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    seconds: float
    rate: float  # events per second
    last_seq: int
    rows: int
    dead_lettered: int
    batches: int


async def reset_read_models(conn: asyncpg.Connection, name: str = "gateway") -> None:
    """Truncate every read model and set the projector's offset to 0, under the offset row's lock (a running
    projector waits, then sees the reset and rewinds)."""
    async with conn.transaction():
        await conn.execute(sql.INIT_OFFSET, name)
        await conn.fetchval(sql.LOCK_OFFSET, name)
        await conn.execute(f"TRUNCATE {', '.join(sql.READ_MODEL_TABLES)}")
        await conn.execute(sql.SET_OFFSET, name, 0)


async def rebuild(
    *,
    database_url: str,
    nats_url: str | None = None,
    namespace: str = "xbot",
    bus: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 5000,
    name: str = "gateway",
) -> RebuildStats:
    """Truncate the read models and rebuild them from the whole log; ``on_progress(applied_seq, last_seq)``."""
    own_bus = bus is None
    if own_bus:
        if not nats_url:
            raise ValueError("rebuild needs nats_url or bus")
        bus = await JetStreamBus.connect(nats_url, names=BusNames(namespace), name="xbot-rebuild")
    try:
        conn = await asyncpg.connect(database_url)
        try:
            await apply_migrations(conn)
            await reset_read_models(conn, name)
        finally:
            await conn.close()
        total = await bus.last_seq()
        if on_progress is not None:
            on_progress(0, total)

        def progress(position: int) -> None:
            if on_progress is not None:
                on_progress(position, max(total, position))

        projector = Projector(bus, database_url, name=name, batch_size=batch_size, flush_s=0.002,
                              on_progress=progress)
        t0 = time.perf_counter()
        try:
            events = await projector.run(follow=False)
        finally:
            await projector.stop()
        seconds = time.perf_counter() - t0
        return RebuildStats(
            events=events, seconds=seconds, rate=events / seconds if seconds > 0 else 0.0,
            last_seq=projector.position, rows=projector.rows_written, dead_lettered=projector.dead_lettered,
            batches=projector.batches,
        )
    finally:
        if own_bus:
            await bus.close()
