"""The projection runner: apply the log to state, in order, and let a handler wait for its own writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from .core import cancel_quietly
from .jetstream import ReadItem

log = structlog.get_logger("projection")

Apply = Callable[[ReadItem], None]


class Projection:
    """Follows the event stream from ``from_seq`` and calls ``apply`` for each decoded event of interest.

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
        names: frozenset[str] | None = None,
        from_seq: int = 1,
    ):
        self.bus, self.apply, self.name = bus, apply, name
        self.filter_subject, self.names, self.from_seq = filter_subject, names, from_seq
        self.applied_seq = from_seq - 1
        self.applied_count = 0
        self.caught_up = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"projection:{self.name}")

    async def _run(self) -> None:
        while True:
            try:
                async for item in self.bus.read(
                    self.filter_subject, from_seq=self.applied_seq + 1, names=self.names, follow=True
                ):
                    if item.caught_up:
                        self.caught_up.set()
                    else:
                        await self._apply(item)
                    if item.caught_up or item.seq % 256 == 0 or self.caught_up.is_set():
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
        self.applied_seq = item.seq
        self.applied_count += 1
        if failure is not None:
            try:
                await self.bus.dead_letter(self.name, item.subject, item.seq, item.data, failure)
            except Exception:
                log.exception("dead letter failed", projection=self.name, seq=item.seq)

    async def wait_caught_up(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(self.caught_up.wait(), timeout)

    async def wait_for(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until the event at ``seq`` (e.g. our own publish) has been applied."""

        async def _wait() -> None:
            async with self._progress:
                await self._progress.wait_for(lambda: self.applied_seq >= seq)

        await asyncio.wait_for(_wait(), timeout)

    async def stop(self) -> None:
        await cancel_quietly(self._task)
