"""The daily LLM budget, shared by every replica (DESIGN.md promise 5: the budget holds).

Before a call a replica *reserves* the most it can cost; the reservation succeeds only if
``spent + reserved + amount <= cap`` for the day. After the call it *settles* the reservation with what the
call really cost (from the response's usage): the reservation is released and the real cost added to
``spent``. So at any instant the money that may be in flight is counted, and N replicas racing for the last
cents cannot pass the cap together.

`KVBudgetStore` keeps one key per UTC day in a JetStream KeyValue bucket, ``spend.<YYYY-MM-DD>``, whose value
is JSON ``{"reserved": µ$, "spent": µ$, "pending": {reservation_id: [µ$, unix_time]}, "settled": [id, ...]}``; every change is a
compare-and-set on the key's revision (``kv.create`` for the first write, ``kv.update(..., last=revision)``
after), retried a bounded number of times on conflict. Amounts are integer micro-dollars (no float drift).
Reservations are rounded up and costs rounded up, so rounding can only make the budget stricter.

A replica that dies between reserve and settle leaves its reservation pending; it is released after
``reservation_ttl_s`` (by whoever next writes the key), so a crash costs budget for a while, never overspends.
Settling is idempotent: a reservation settled twice (or after it expired) adds its cost once.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import msgspec

MICROS = 1_000_000
DEFAULT_RESERVATION_TTL_S = 900.0


def to_micros(usd: float) -> int:
    """USD -> integer micro-dollars, rounded up (a tiny epsilon absorbs float noise such as 0.1 * 3)."""
    if not math.isfinite(usd) or usd <= 0:
        return 0
    return math.ceil(usd * MICROS - 1e-6)


def from_micros(micros: int) -> float:
    return micros / MICROS


def budget_key(day: str) -> str:
    return f"spend.{day}"


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    day: str
    amount_micros: int

    @property
    def amount_usd(self) -> float:
        return from_micros(self.amount_micros)


class BudgetUnavailable(Exception):
    """The store could not record a change (endless contention); callers fail closed."""


@runtime_checkable
class BudgetStore(Protocol):
    async def reserve(self, day: str, amount_usd: float, cap_usd: float) -> Reservation | None:
        """Hold ``amount_usd`` for ``day``; None when that would pass ``cap_usd`` (nothing is held then)."""
        ...

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Release ``reservation`` and add ``actual_usd`` to the day's spend."""
        ...

    async def spent(self, day: str) -> float:
        """USD spent (settled) on ``day``."""
        ...


# ------------------------------------------------------------------------------------------- pure state
#: How many settled reservation ids a day's record remembers (what makes a repeated settle a no-op).
SETTLED_MEMORY = 200


class DayState(msgspec.Struct, kw_only=True):
    """One day's budget record (mutable; changed in place by the ``apply_*`` functions)."""

    reserved: int = 0
    spent: int = 0
    pending: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)  # id -> (micros, reserved_at)
    settled: list[str] = msgspec.field(default_factory=list)


def _expire(state: DayState, now: float, ttl_s: float) -> None:
    for rid in [rid for rid, (_, at) in state.pending.items() if now - at > ttl_s]:
        del state.pending[rid]
    state.reserved = sum(m for m, _ in state.pending.values())


def apply_reserve(state: DayState, rid: str, micros: int, cap_micros: int, now: float, ttl_s: float) -> bool:
    """Add a reservation when it fits under the cap; True when it did."""
    _expire(state, now, ttl_s)
    if state.spent + state.reserved + micros > cap_micros:
        return False
    state.pending[rid] = (micros, now)
    state.reserved += micros
    return True


def apply_settle(state: DayState, rid: str, actual_micros: int, now: float, ttl_s: float) -> bool:
    """Release ``rid`` and add the actual cost; False (nothing changed) when ``rid`` was already settled."""
    if rid in state.settled:
        return False
    _expire(state, now, ttl_s)
    state.pending.pop(rid, None)
    state.reserved = sum(m for m, _ in state.pending.values())
    state.spent += actual_micros
    state.settled = [*state.settled[-(SETTLED_MEMORY - 1):], rid]
    return True


def _cap_micros(cap_usd: float) -> int:
    if math.isinf(cap_usd) and cap_usd > 0:
        return 2**62
    if not math.isfinite(cap_usd) or cap_usd <= 0:
        return 0
    return math.floor(cap_usd * MICROS + 1e-6)


# ---------------------------------------------------------------------------------------------- in memory
class InMemoryBudgetStore:
    """One process's budget (tests, a single replica)."""

    def __init__(self, *, reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S, now: Callable[[], float] = time.time):
        self._days: dict[str, DayState] = {}
        self._ttl = reservation_ttl_s
        self._now = now

    async def reserve(self, day: str, amount_usd: float, cap_usd: float) -> Reservation | None:
        state = self._days.setdefault(day, DayState())
        rid = uuid.uuid4().hex
        micros = to_micros(amount_usd)
        if not apply_reserve(state, rid, micros, _cap_micros(cap_usd), self._now(), self._ttl):
            return None
        return Reservation(id=rid, day=day, amount_micros=micros)

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        state = self._days.setdefault(reservation.day, DayState())
        apply_settle(state, reservation.id, to_micros(actual_usd), self._now(), self._ttl)

    async def spent(self, day: str) -> float:
        state = self._days.get(day)
        return from_micros(state.spent) if state else 0.0

    async def reserved(self, day: str) -> float:
        state = self._days.get(day)
        return from_micros(state.reserved) if state else 0.0


# ------------------------------------------------------------------------------------------------ JetStream KV
class KVBudgetStore:
    """The budget in a JetStream KeyValue bucket (``await js.key_value(name)`` / ``create_key_value``)."""

    def __init__(
        self,
        kv: Any,
        *,
        max_attempts: int = 100,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.kv = kv
        self.max_attempts = max_attempts
        self._ttl = reservation_ttl_s
        self._now = now
        self._rng = rng or random.Random()

    async def _read(self, key: str) -> tuple[DayState, int | None]:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:  # also a deleted or purged key: create() recreates it
            return DayState(), None
        if not entry.value:
            return DayState(), entry.revision
        return msgspec.json.decode(entry.value, type=DayState), entry.revision

    async def _write(self, key: str, state: DayState, revision: int | None) -> bool:
        from nats.js.errors import KeyWrongLastSequenceError

        data = msgspec.json.encode(state)
        try:
            if revision is None:
                await self.kv.create(key, data)
            else:
                await self.kv.update(key, data, last=revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def _cas(self, key: str, change: Callable[[DayState], bool]) -> bool:
        """Apply ``change`` by compare-and-set, retrying on conflict; returns what ``change`` returned."""
        for attempt in range(self.max_attempts):
            state, revision = await self._read(key)
            if not change(state):
                return False
            if await self._write(key, state, revision):
                return True
            await asyncio.sleep(self._rng.uniform(0, 0.001 * min(attempt + 1, 20)))
        raise BudgetUnavailable(f"budget key {key}: no compare-and-set after {self.max_attempts} attempts")

    async def reserve(self, day: str, amount_usd: float, cap_usd: float) -> Reservation | None:
        rid = uuid.uuid4().hex
        micros, cap = to_micros(amount_usd), _cap_micros(cap_usd)
        ok = await self._cas(budget_key(day), lambda s: apply_reserve(s, rid, micros, cap, self._now(), self._ttl))
        return Reservation(id=rid, day=day, amount_micros=micros) if ok else None

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        actual = to_micros(actual_usd)
        await self._cas(
            budget_key(reservation.day), lambda s: apply_settle(s, reservation.id, actual, self._now(), self._ttl)
        )

    async def spent(self, day: str) -> float:
        state, _ = await self._read(budget_key(day))
        return from_micros(state.spent)

    async def reserved(self, day: str) -> float:
        state, _ = await self._read(budget_key(day))
        return from_micros(state.reserved)
