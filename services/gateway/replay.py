"""``xbot replay --rebuild``: drop the read models and project them again from the log, fast.

The rebuild is the projector's batch path with the log read in a second process (the bus's process read mode, ``shared.bus.reader``): the child
reads and parses the log on one core while this process decodes, folds and COPYs on the other. Batches are
applied exactly as the live projector applies them (``Projector._apply``: the offset row's lock, idempotency,
dead letters, progress), so the rows are the same; only the write differs: rows go straight into their tables
by COPY, and a key already there sends that table back to the upsert. A reset of the offset under the rebuild
(another rebuild) makes it start a new reader from the offset, as the live projector rewinds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec
import structlog

from shared.bus import BusNames, JetStreamBus, ReadItem
from shared.bus.core import cancel_quietly
from shared.bus.jetstream import _type_of_subject
from shared.bus.reader import ReaderConfig, ReaderProcess, spec_of
from shared.db import apply_migrations
from shared.events import decode

from . import sql
from .projector import Projector, Rewind
from .read_models import DECODED

log = structlog.get_logger("rebuild")


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


class RebuildProjector(Projector):
    """``Projector.run(follow=False)`` with the log read by a reader process. A task takes the child's frames,
    decodes the events and cuts batches while the applier waits on PostgreSQL; at most ``ahead`` batches wait."""

    def __init__(self, bus: Any, dsn: str, *, reader: ReaderConfig, ahead: int = 3, stall_s: float = 30.0,
                 **kw: Any):
        super().__init__(bus, dsn, **kw)
        self.reader_cfg, self.ahead, self.stall_s = reader, ahead, stall_s
        self._skip_direct: dict[str, int] = {}  # table -> batches to upsert before COPYing straight in again
        self._misses: dict[str, int] = {}  # table -> straight COPYs in a row that met a key already there
        self.direct_misses = 0

    async def run(self, *, follow: bool = False) -> int:
        if follow:
            raise ValueError("a rebuild projects to the end of the log; the live projector follows it")
        await self._ensure_conn()
        self.position = await self._read_offset()
        while True:
            try:
                await self._project_from(self.position + 1)
                return self.events_applied
            except Rewind as rw:
                log.warning("read models were reset; projecting again from the offset", projector=self.name,
                            offset=rw.offset)
                self.position = rw.offset

    async def _project_from(self, from_seq: int) -> None:
        reader = ReaderProcess(msgspec.structs.replace(self.reader_cfg, from_seq=from_seq), stall_s=self.stall_s)
        ready: asyncio.Queue[list[ReadItem] | BaseException | None] = asyncio.Queue(self.ahead)
        prepare: asyncio.Task[None] | None = None
        try:
            await reader.start()
            prepare = asyncio.create_task(self._prepare(reader, ready), name=f"rebuild-prepare:{self.name}")
            while (batch := await ready.get()) is not None:  # _prepare always ends with None or its failure
                if isinstance(batch, BaseException):
                    raise batch
                await self._apply_with_retry(batch)
        finally:
            await cancel_quietly(prepare)
            await reader.close()

    async def _write_table(self, conn: asyncpg.Connection, up: sql.Upsert, rows: list[tuple[Any, ...]]) -> None:
        """Rows a rebuild writes are mostly new keys: COPY them straight into the table (no staging table, no
        conflict check; the same rows an upsert would insert). A key already there undoes that COPY (it runs in a
        savepoint) and the table is upserted instead, for a number of batches that doubles at each such miss."""
        if len(rows) < sql.COPY_MIN_ROWS:
            await super()._write_table(conn, up, rows)
            return
        skip = self._skip_direct.get(up.table, 0)
        if skip > 0:
            self._skip_direct[up.table] = skip - 1
            await super()._write_table(conn, up, rows)
            return
        try:
            async with conn.transaction():  # a savepoint
                await conn.copy_records_to_table(up.table, records=rows, columns=up.names)
            self._misses[up.table] = 0
            return
        except asyncpg.UniqueViolationError:
            self.direct_misses += 1
            misses = self._misses[up.table] = self._misses.get(up.table, 0) + 1
            self._skip_direct[up.table] = min(2 ** misses, 256)
        await super()._write_table(conn, up, rows)

    async def _prepare(self, reader: ReaderProcess, ready: asyncio.Queue[Any]) -> None:
        """Frames -> decoded items -> batches of ``batch_size`` (or whatever came, when the applier is idle)."""
        size = self.batch_size
        pending: list[ReadItem] = []
        dec = decode
        try:
            async for items in reader.frames():
                for item in items:
                    if _type_of_subject(item.subject) not in DECODED:  # no table folds it: as the live read
                        continue
                    try:
                        item.event = dec(item.data)
                    except Exception as exc:  # malformed: dead-lettered by the fold, as in the live projector
                        item.error = f"{type(exc).__name__}: {exc}"
                pending += items
                while len(pending) >= size:
                    await ready.put(pending[:size])
                    pending = pending[size:]
                if pending and ready.empty():
                    await ready.put(pending)
                    pending = []
            if pending:
                await ready.put(pending)
            await ready.put(None)
        except Exception as exc:  # ReaderFailed above all: the applier raises it
            await ready.put(exc)


async def rebuild(
    *,
    database_url: str,
    nats_url: str | None = None,
    namespace: str = "xbot",
    bus: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 5000,
    name: str = "gateway",
    reader_process: bool = True,
) -> RebuildStats:
    """Truncate the read models and rebuild them from the whole log; ``on_progress(applied_seq, last_seq)``.
    The log is read by a reader process (``reader_process``, for a ``JetStreamBus``) or in this process."""
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

        projector: Projector
        if reader_process and isinstance(bus, JetStreamBus):
            url, ns = spec_of(bus, nats_url)
            projector = RebuildProjector(bus, database_url, reader=ReaderConfig(nats_url=url, namespace=ns),
                                         name=name, batch_size=batch_size, on_progress=progress)
        else:
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
