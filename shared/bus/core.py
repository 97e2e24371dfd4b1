"""What every bus implementation shares: names, settings, the delivered message, the failure policy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..events import Event
from ..events.subjects import (
    CMD_PREFIX,
    DEFAULT_ACCOUNT,
    DLQ_PREFIX,
    EVT_PREFIX,
    account_subjects,
    aggregate_subjects,
    event_type_subjects,
)


@dataclass(frozen=True)
class BusNames:
    """Stream, subject and bucket names. ``namespace`` lets test runs share one server without sharing data."""

    namespace: str = "xbot"

    @property
    def _up(self) -> str:
        return self.namespace.upper().replace("-", "_")

    @property
    def events_stream(self) -> str:
        return f"{self._up}_EVENTS"

    @property
    def commands_stream(self) -> str:
        return f"{self._up}_COMMANDS"

    @property
    def dlq_stream(self) -> str:
        return f"{self._up}_DLQ"

    @property
    def evt_prefix(self) -> str:
        return EVT_PREFIX.replace("xbot", self.namespace, 1)

    @property
    def cmd_prefix(self) -> str:
        return CMD_PREFIX.replace("xbot", self.namespace, 1)

    @property
    def dlq_prefix(self) -> str:
        return DLQ_PREFIX.replace("xbot", self.namespace, 1)

    @property
    def all_events(self) -> str:
        """Every event of this namespace: ``<ns>.evt.>``."""
        return f"{self.evt_prefix}.>"

    def history(self, aggregate: str, aggregate_id: str, account: str = DEFAULT_ACCOUNT) -> str:
        """Every event of one aggregate instance of one account (e.g. one decision):
        ``<ns>.evt[.<account>].<aggregate>.<id>.*``."""
        return aggregate_subjects(aggregate, aggregate_id, prefix=self.evt_prefix, account=account)

    def history_of(self, event: Event) -> str:
        """The subjects of ``event``'s aggregate instance (what a publish guard is checked against)."""
        return self.history(event.aggregate, event.aggregate_id, event.account)

    def account_events(self, account: str) -> str:
        """Every event of one account."""
        return account_subjects(account, prefix=self.evt_prefix)

    def event_type(self, aggregate: str, name: str) -> tuple[str, str]:
        """One event type of every account (two filters: the default account's shape and the others')."""
        return event_type_subjects(aggregate, name, prefix=self.evt_prefix)

    def bucket(self, base: str) -> str:
        """KV bucket names: ``flags`` -> ``xbot_flags``."""
        return f"{self.namespace}_{base}".replace("-", "_")


@dataclass(frozen=True)
class StreamSettings:
    replicas: int = 1
    max_age_days: float = 0  # 0 = keep forever (the log is the truth)
    duplicate_window_s: float = 600.0
    commands_max_age_s: float = 3600.0
    max_msg_size: int = 1024 * 1024


@dataclass(frozen=True)
class ConsumerPolicy:
    """How a durable consumer treats failures (explicit, per DESIGN.md)."""

    batch: int = 100
    concurrency: int = 1
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0
    fetch_timeout_s: float = 1.0
    in_progress_every_s: float = 10.0


class Retry(Exception):
    """A transient failure: nak with a delay; redelivered until ``max_deliver``, then dead-lettered."""

    def __init__(self, reason: str, delay_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


class Poison(Exception):
    """The message can never be handled: term it and dead-letter it with the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Expect:
    """A publish guard, as data: write the event only if the last event of its aggregate instance has sequence
    ``last_seq`` (0: the aggregate has no event yet). The bus derives the subjects it checks from the event, and
    the server refuses a write that loses (``WrongSequence``): of two racing writers exactly one wins."""

    last_seq: int

    def __post_init__(self) -> None:
        if self.last_seq < 0:
            raise ValueError(f"last_seq must be >= 0, not {self.last_seq}")


#: the guard "this aggregate has no event yet" (a decision's first event, drafted by one replica only)
FIRST_EVENT = Expect(0)


def after(seq: int) -> Expect:
    """The guard "the aggregate's last event is still the one at ``seq``" (optimistic concurrency)."""
    return Expect(seq)


class WrongSequence(Exception):
    """Optimistic concurrency: the aggregate moved on since the sequence we expected (the loser of a race)."""


@dataclass
class Delivered:
    """One message handed to a handler."""

    subject: str
    seq: int
    data: bytes
    num_delivered: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    event: Any = None  # the decoded Event or Command
    _in_progress: Callable[[], Awaitable[None]] | None = None

    async def in_progress(self) -> None:
        """Tell the server we are still working (long handlers), so it does not redeliver."""
        if self._in_progress is not None:
            await self._in_progress()


Handler = Callable[[Delivered], Awaitable[None]]
Decoder = Callable[[bytes], Any]


def retry_delay(policy: ConsumerPolicy, num_delivered: int, hint: float | None) -> float:
    if hint is not None:
        return max(0.0, hint)
    return min(policy.retry_max_delay_s, policy.retry_base_delay_s * (2 ** max(0, num_delivered - 1)))


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching with ``*`` and ``>``."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or tok != "*" and tok != s[i]:
            return False
    return len(p) == len(s)


class ConsumerHandle(Protocol):
    async def stop(self) -> None: ...

    @property
    def processed(self) -> int: ...


class Bus(Protocol):
    names: BusNames

    async def ensure(self) -> None: ...
    async def publish(self, event: Event, *, expect: Expect | None = None) -> int: ...
    async def publish_begin(self, event: Event, *, expect: Expect | None = None) -> asyncio.Future[int]: ...
    async def publish_many(self, events: list[Event]) -> list[int]: ...
    async def publish_command(self, command: Any, *, msg_id: str | None = None) -> int: ...
    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int: ...
    async def consume(
        self, durable: str, filter_subject: str, handler: Handler, *, stream: str = "events",
        policy: ConsumerPolicy | None = None, decoder: Decoder | None = None,
    ) -> ConsumerHandle: ...
    def read(
        self, filter_subject: str | None = None, *, from_seq: int = 1, names: frozenset[str] | None = None,
        follow: bool = False,
    ) -> Any: ...
    async def last_seq(self, filter_subject: str | None = None) -> int: ...
    async def close(self) -> None: ...


async def cancel_quietly(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
