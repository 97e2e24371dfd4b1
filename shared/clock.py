"""Clocks. Live mode runs on the wall clock; shadow mode may run faster, one clock shared by every service.

Shadow time = epoch + (wall - epoch) * speed, where ``epoch`` is the wall time stored once in the flags bucket
(key ``_shadow_clock_epoch``), so every service and replica computes the same time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self, speed: float = 1.0, epoch: datetime | None = None, wall: Callable[[], datetime] | None = None):
        self.speed = speed
        self._wall = wall or (lambda: datetime.now(UTC))
        self.epoch = epoch or self._wall()

    def now(self) -> datetime:
        w = self._wall()
        if self.speed == 1.0:
            return w
        return self.epoch + (w - self.epoch) * self.speed

    def wall_seconds(self, sim_seconds: float) -> float:
        """How long in wall seconds a span of clock seconds takes."""
        return sim_seconds / self.speed

    def __call__(self) -> datetime:
        return self.now()


class FixedClock(Clock):
    """For tests: a clock that moves only when told."""

    def __init__(self, at: datetime):
        super().__init__(1.0, at, lambda: at)
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, **kw: float) -> None:
        self._at = self._at + timedelta(**kw)

    def set(self, at: datetime) -> None:
        self._at = at


async def shared_clock(bus: object, speed: float) -> Clock:
    """The clock every service agrees on (epoch kept in the flags bucket)."""
    if speed == 1.0:
        return Clock()
    kv = await bus.kv("flags")  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    try:
        await kv.create("_shadow_clock_epoch", now.isoformat().encode())
        epoch = now
    except Exception:
        entry = await kv.get("_shadow_clock_epoch")
        epoch = datetime.fromisoformat(entry.value.decode())
    return Clock(speed, epoch)
