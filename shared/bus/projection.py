"""The projection runner: apply the log to state, in order, and let a handler wait for its own writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any

import structlog

from .core import cancel_quietly
from .jetstream import ReadCursor, ReadItem, type_subjects

log = structlog.get_logger("projection")

Apply = Callable[[ReadItem], None]


class Projection:
    """Follows the event stream from ``from_seq`` and calls ``apply`` for each decoded event of interest.

    With ``names`` (the ``"<aggregate>.<name>"`` types it folds) the projection reads through a consumer filtered
    on exactly those types' subjects, of every account (``BusNames.event_type``), so the server sends nothing
    else; ``filter_subjects`` names other subjects, ``filter_subject`` one (then every message of it is read).
    ``applied_seq`` is the stream sequence the projection has read up to, the skipped messages of other subjects
    included: the read's position markers move it, at the end of the log when caught up and on demand when
    ``wait_for`` asks for a sequence it did not receive (``ReadCursor``).

    ``apply`` is synchronous and pure with respect to I/O (state evolves in memory), so the hot path awaits nothing
    per event. A malformed event is dead-lettered to ``xbot.dlq.<name>`` and skipped; it never stops the projection.
    """

    def __init__(
        self,
        bus: Any,
        apply: Apply,
        *,
        name: str,
        filter_subject: str | None = None,
        filter_subjects: Collection[str] | None = None,
        names: frozenset[str] | None = None,
        from_seq: int = 1,
    ):
        self.bus, self.apply, self.name = bus, apply, name
        self.filter_subject, self.names, self.from_seq = filter_subject, names, from_seq
        if filter_subjects is None and filter_subject is None and names:
            filter_subjects = type_subjects(bus.names, names)
        #: the read's filters (a multi-filter consumer), or None: ``filter_subject`` or every event
        self.filter_subjects: list[str] | None = None if filter_subjects is None else sorted(set(filter_subjects))
        self._cursor = ReadCursor() if self.filter_subjects is not None else None
        self.applied_seq = from_seq - 1
        #: messages of the log read through since ``from_seq``: with filters, the skipped ones of other subjects
        #: too (counted by sequence), so it means what it meant before filters
        self.applied_count = 0
        #: messages the server delivered to this projection (with filters: its types only)
        self.received = 0
        self.caught_up = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"projection:{self.name}")

    async def _run(self) -> None:
        while True:
            try:
                if self.filter_subjects is None:
                    items = self.bus.read(
                        self.filter_subject, from_seq=self.applied_seq + 1, names=self.names, follow=True
                    )
                else:
                    items = self.bus.read(
                        from_seq=self.applied_seq + 1, names=self.names, follow=True,
                        filter_subjects=self.filter_subjects, cursor=self._cursor,
                    )
                async for item in items:
                    if item.caught_up:
                        self.caught_up.set()
                    elif item.position:  # nothing of ours up to item.seq: the skipped messages count as read
                        if item.seq > self.applied_seq:
                            self.applied_count += item.seq - self.applied_seq
                            self.applied_seq = item.seq
                    else:
                        await self._apply(item)
                    if item.caught_up or item.position or item.seq % 256 == 0 or self.caught_up.is_set():
                        async with self._progress:
                            self._progress.notify_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: resume from the last applied sequence
                log.warning("projection read failed, resuming", projection=self.name, error=str(exc))
                await asyncio.sleep(0.5)

    async def _apply(self, item: ReadItem) -> None:
        # The sequence is recorded right after the (synchronous) apply, before any await, so a snapshot taken at
        # any await point sees a state and an applied_seq that agree.
        failure: str | None = item.error
        if item.error is None and item.event is not None:
            try:
                self.apply(item)
            except Exception as exc:
                log.exception("apply failed; event dead-lettered", projection=self.name, seq=item.seq)
                failure = f"apply: {exc!r}"
        self.applied_count += 1 if self.filter_subjects is None else max(1, item.seq - self.applied_seq)
        self.applied_seq = item.seq
        self.received += 1
        if failure is not None:
            try:
                await self.bus.dead_letter(self.name, item.subject, item.seq, item.data, failure)
            except Exception:
                log.exception("dead letter failed", projection=self.name, seq=item.seq)

    async def wait_caught_up(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)

    async def wait_for(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until the event at ``seq`` (e.g. our own publish) has been applied -- or, not one of ours, read
        past (``seq`` must be written: a filtered read confirms its position up to the log's end)."""
        if self.applied_seq >= seq:
            return
        if self._cursor is not None:
            self._cursor.want(seq)

        async def _wait() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: self.applied_seq >= seq)

        await asyncio.wait_for(_wait(), timeout)

    async def stop(self) -> None:
        await cancel_quietly(self._task)
