"""The projector: follows the whole event log and keeps the PostgreSQL read models.

A reader task streams the log (ordered consumer) into a bounded queue; the writer takes up to ``batch_size``
items (or what arrived within ``flush_s``) and applies them in ONE transaction: lock this projector's
``projection_offsets`` row, skip what is already applied, load the decision rows the batch touches, fold
(pure, ``domain.fold_batch`` through the folds of ``read_models``), upsert every table with column arrays, and move the offset. So:

- a redelivered batch changes nothing (the offset and each row's ``last_seq`` guard it);
- two gateways projecting serialize on the offset row and each applies only what the other has not;
- a rebuild (offset reset to 0 under the same lock) makes a running projector rewind, never skip;
- when PostgreSQL is down the writer keeps its batch and retries with backoff (the queue fills, the reader
  waits): it resumes with no gap and no double apply, and ``db_ok`` is false meanwhile;
- a malformed event, or one no row can hold, is dead-lettered to ``xbot.dlq.<name>`` and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from shared.bus import ReadItem
from shared.bus.core import cancel_quietly

from . import sql
from .domain import BatchWrites, DecisionRow, fold_batch
from .read_models import DECODED, READ_MODELS, decision_row, touched_decisions

log = structlog.get_logger("projector")

#: failures that say "the database is not there right now": keep the batch and retry
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,
)

_END = object()


class _Handoff:
    """The bounded FIFO between the reader task and the writer: a deque and two events, so handing over an item
    costs an append (``asyncio.Queue`` costs a future check and a wakeup per item). The reader waits while it
    holds ``maxsize`` items; the writer takes what is there."""

    def __init__(self, maxsize: int):
        self.items: deque[Any] = deque()
        self.maxsize = maxsize
        self.more = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    async def put(self, item: Any) -> None:
        items = self.items
        while len(items) >= self.maxsize:
            self.room.clear()
            await self.room.wait()
        items.append(item)
        self.more.set()

    async def wait_more(self, timeout: float | None = None) -> None:
        """Until there is something to take (at most ``timeout``)."""
        if self.items:
            return
        self.more.clear()
        if timeout is None:
            await self.more.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.more.wait()

    def take(self) -> Any:
        item = self.items.popleft()
        if len(self.items) < self.maxsize:
            self.room.set()
        return item


class Rewind(Exception):
    """The offset row is behind where this projector stood: the read models were reset (a rebuild)."""

    def __init__(self, offset: int):
        super().__init__(f"offset reset to {offset}")
        self.offset = offset


_NOT_DATA: tuple[type[BaseException], ...] = (Rewind, *TRANSIENT)


class Projector:
    def __init__(
        self,
        bus: Any,
        dsn: str,
        *,
        name: str = "gateway",
        batch_size: int = 1000,
        flush_s: float = 0.005,
        queue_size: int = 20_000,
        retry_base_s: float = 0.2,
        retry_max_s: float = 5.0,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.bus, self.dsn, self.name = bus, dsn, name
        self.batch_size, self.flush_s, self.queue_size = batch_size, flush_s, queue_size
        self.retry_base_s, self.retry_max_s = retry_base_s, retry_max_s
        self.on_progress = on_progress
        #: the applied offset as last seen in (or written to) projection_offsets
        self.position = 0
        self.events_applied = 0
        self.rows_written = 0
        self.dead_lettered = 0
        self.batches = 0
        self.db_ok = False
        self.last_error: str | None = None
        self.caught_up = asyncio.Event()
        self._advanced = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[int] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue = _Handoff(queue_size)
        self._follow = True
        self._last_taken = 0

    # --- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self.run(follow=True), name=f"projector:{self.name}")

    async def stop(self) -> None:
        await cancel_quietly(self._task)
        await cancel_quietly(self._reader)
        await self._close()

    @property
    def failed(self) -> BaseException | None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None

    async def wait_for(self, seq: int, timeout: float = 10.0) -> bool:
        """Wait (bounded) until the event at ``seq`` is in the read models."""
        deadline = time.monotonic() + timeout
        while self.position < seq:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ev = self._advanced
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ev.wait(), min(left, 0.5))
        return True

    async def wait_caught_up(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)

    # --- the loop -----------------------------------------------------------------------------------------
    async def run(self, *, follow: bool = True) -> int:
        """Project until stopped (``follow``) or until the end of the log; returns the events applied."""
        self._follow = follow
        await self._ensure_conn()
        self.position = await self._read_offset()
        self._start_reader(self.position + 1)
        try:
            while True:
                batch, end = await self._next_batch()
                if batch:
                    try:
                        await self._apply_with_retry(batch)
                    except Rewind as rw:
                        log.warning("read models were reset; projecting again from the offset",
                                    projector=self.name, offset=rw.offset)
                        self.position = rw.offset
                        self.caught_up.clear()
                        await self._restart_reader(rw.offset + 1)
                        continue
                if end is _END:
                    return self.events_applied
                if end is not None:  # caught up with the log
                    self.caught_up.set()
        finally:
            await cancel_quietly(self._reader)

    def _start_reader(self, from_seq: int) -> None:
        self._queue = _Handoff(self.queue_size)
        self._last_taken = from_seq - 1
        self._reader = asyncio.create_task(self._read(from_seq, self._queue), name=f"projector-reader:{self.name}")

    async def _restart_reader(self, from_seq: int) -> None:
        await cancel_quietly(self._reader)
        self._start_reader(from_seq)

    async def _read(self, from_seq: int, queue: _Handoff) -> None:
        """The log through ``bus.read`` (an ordered consumer read by callback, flow-controlled) into the bounded
        queue; after a failure it resumes from the sequence after the last item handed over."""
        next_seq = from_seq
        while True:
            try:
                async for item in self.bus.read(None, from_seq=next_seq, follow=self._follow, names=DECODED):
                    if item.caught_up:
                        await queue.put(item)
                        continue
                    await queue.put(item)
                    next_seq = item.seq + 1
                if not self._follow:
                    await queue.put(_END)
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS trouble: resume after the last item handed over
                log.warning("projector read failed, resuming", projector=self.name, error=str(exc), from_seq=next_seq)
                await asyncio.sleep(0.5)

    async def _next_batch(self) -> tuple[list[ReadItem], Any]:
        """Up to ``batch_size`` items; stops early at a caught-up marker or the end. Waits at most ``flush_s``
        for more once the first item is there."""
        q = self._queue
        items = q.items
        batch: list[ReadItem] = []
        append = batch.append
        size = self.batch_size
        waited = False
        last = self._last_taken
        try:
            while len(batch) < size:
                if not items:
                    if not batch:
                        await q.wait_more()
                    elif waited or self.flush_s <= 0:
                        break
                    else:
                        waited = True
                        await q.wait_more(self.flush_s)
                    continue
                item = q.take()
                if item is _END or item.caught_up:
                    return batch, item
                if item.seq <= last:  # a reader restart handed this one over twice
                    continue
                last = item.seq
                append(item)
            return batch, None
        finally:
            self._last_taken = last

    # --- applying a batch ---------------------------------------------------------------------------------
    async def _apply_with_retry(self, batch: list[ReadItem]) -> None:
        delay = self.retry_base_s
        while True:
            try:
                await self._ensure_conn()
                await self._apply_isolating(batch)
                if not self.db_ok:
                    log.info("database back; projection resumed", projector=self.name, position=self.position)
                self.db_ok = True
                self.last_error = None
                return
            except Rewind:
                raise
            except TRANSIENT as exc:
                if self.db_ok:
                    log.warning("database unavailable; projection paused, batch kept", projector=self.name,
                                error=f"{type(exc).__name__}: {exc}", first_seq=batch[0].seq)
                self.db_ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                await self._close()
                await asyncio.sleep(delay)
                delay = min(self.retry_max_s, delay * 2)
            except Exception as exc:  # a bug or a refusal we did not foresee: keep the batch, say so, retry
                log.exception("projection batch failed; retrying", projector=self.name, first_seq=batch[0].seq)
                self.last_error = f"{type(exc).__name__}: {exc}"
                await self._close()
                await asyncio.sleep(delay)
                delay = min(self.retry_max_s, delay * 2)

    async def _apply_isolating(self, batch: list[ReadItem]) -> None:
        """Apply the batch; if the database refuses its data (not its availability), find the event it
        refuses by halving, dead-letter that one and apply the rest."""
        try:
            await self._apply(batch)
        except _NOT_DATA:
            raise
        except (asyncpg.PostgresError, ValueError, TypeError, OverflowError) as exc:
            if len(batch) == 1:
                item = batch[0]
                reason = f"database refused: {type(exc).__name__}: {exc}"
                log.error("event refused by the database; dead-lettered", projector=self.name, seq=item.seq,
                          error=reason)
                await self._dead_letter([(item, reason)])
                await self._apply([ReadItem(item.seq, item.subject, item.data)])  # moves the offset only
                return
            mid = len(batch) // 2
            await self._apply_isolating(batch[:mid])
            await self._apply_isolating(batch[mid:])

    async def _apply(self, batch: list[ReadItem]) -> None:
        conn = self._conn
        assert conn is not None
        async with conn.transaction():
            offset = await conn.fetchval(sql.LOCK_OFFSET, self.name)
            if offset is None:
                await conn.execute(sql.INIT_OFFSET, self.name)
                offset = await conn.fetchval(sql.LOCK_OFFSET, self.name)
            if offset < self.position:
                raise Rewind(offset)
            items = [it for it in batch if it.seq > offset]
            if not items:  # another projector applied these already
                self.position = offset
                return
            ids = touched_decisions(items)
            existing: dict[str, DecisionRow] = {}
            if ids:
                for r in await conn.fetch(sql.LOAD_DECISIONS, list(ids)):
                    row = decision_row(r)
                    existing[row.decision_id] = row
            w = fold_batch(items, existing)
            if w.dead:
                await self._dead_letter(w.dead)
            await self._write(conn, w)
            await conn.execute(sql.SET_OFFSET, self.name, w.last_seq)
        self.position = w.last_seq
        self.events_applied += w.events
        self.rows_written += w.rows
        self.batches += 1
        self._advanced.set()
        self._advanced = asyncio.Event()
        if self.on_progress is not None:
            self.on_progress(self.position)

    async def _write(self, conn: asyncpg.Connection, w: BatchWrites) -> None:
        """Every read model's rows of the batch (the registry's tables, one upsert or COPY each)."""
        for model in READ_MODELS:
            rows = model.rows(w)
            if rows:
                await self._write_table(conn, model.upsert, rows)

    async def _write_table(self, conn: asyncpg.Connection, up: sql.Upsert, rows: list[tuple[Any, ...]]) -> None:
        """One table's rows of the batch: one upsert (from a COPY into the staging table when there are many)."""
        if len(rows) >= sql.COPY_MIN_ROWS:
            await conn.copy_records_to_table(up.stage, records=rows, columns=up.names)
            await conn.execute(up.from_stage)
        else:
            await conn.execute(up.sql, *up.args(rows))

    async def _dead_letter(self, dead: list[tuple[ReadItem, str]]) -> None:
        for item, reason in dead:
            try:
                await self.bus.dead_letter(self.name, item.subject, item.seq, item.data, reason)
                self.dead_lettered += 1
            except Exception:
                log.exception("dead letter failed", projector=self.name, seq=item.seq)

    # --- the connection -----------------------------------------------------------------------------------
    async def _ensure_conn(self) -> None:
        delay = self.retry_base_s
        while self._conn is None or self._conn.is_closed():
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                await conn.execute(sql.CREATE_STAGES)  # this connection's staging tables for big batches
                self._conn = conn
                return
            except TRANSIENT as exc:
                if conn is not None:
                    conn.terminate()
                self.db_ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay)
                delay = min(self.retry_max_s, delay * 2)

    async def _read_offset(self) -> int:
        while True:
            try:
                assert self._conn is not None
                await self._conn.execute(sql.INIT_OFFSET, self.name)
                value = await self._conn.fetchval("SELECT last_seq FROM projection_offsets WHERE projector = $1",
                                                  self.name)
                self.db_ok = True
                return int(value or 0)
            except TRANSIENT as exc:
                self.db_ok = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                await self._close()
                await asyncio.sleep(self.retry_base_s)
                await self._ensure_conn()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()

