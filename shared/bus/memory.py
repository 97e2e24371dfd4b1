"""An in-memory bus with the JetStream bus's interface, for unit tests of handlers and domain wiring.

It keeps the semantics the services rely on — dedup by event id, expected last subject sequence, ordered reads
that know when they caught up, durable consumers with ack / nak-with-delay / term / max_deliver and dead
letters, KV with compare-and-set and watches — but it is not proof of JetStream's behaviour: the same contract
suite runs against a real nats-server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

from ..events import Event, decode, decode_command, encode, subject_of
from ..events.commands import Command
from ..events.subjects import DEFAULT_ACCOUNT, command_subject, dlq_subject
from .core import (
    BusNames,
    ConsumerPolicy,
    Decoder,
    Delivered,
    Expect,
    Handler,
    Poison,
    Retry,
    WrongSequence,
    cancel_quietly,
    retry_delay,
    subject_matches,
)
from .jetstream import (
    CAUGHT_UP,
    ReadCursor,
    ReadItem,
    _type_of_subject,
    position_marker,
    publish_headers,
    read_subjects,
)


@dataclass
class _Msg:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]


@dataclass
class _Stream:
    msgs: list[_Msg] = field(default_factory=list)
    dedup: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    work_queue: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def append(self, subject: str, data: bytes, headers: dict[str, str]) -> int:
        self.last_seq += 1
        self.msgs.append(_Msg(self.last_seq, subject, data, headers))
        return self.last_seq


class KeyExists(Exception):
    pass


@dataclass
class KVEntry:
    key: str
    value: bytes | None
    revision: int
    operation: str | None = None


class InMemoryKV:
    def __init__(self) -> None:
        self._data: dict[str, KVEntry] = {}
        self._rev = 0
        self._watchers: list[asyncio.Queue[KVEntry]] = []

    def _emit(self, e: KVEntry) -> None:
        for q in self._watchers:
            q.put_nowait(e)

    async def get(self, key: str) -> KVEntry:
        e = self._data.get(key)
        if e is None or e.value is None:
            raise KeyError(key)
        return e

    async def put(self, key: str, value: bytes) -> int:
        self._rev += 1
        self._data[key] = KVEntry(key, value, self._rev)
        self._emit(self._data[key])
        return self._rev

    async def create(self, key: str, value: bytes) -> int:
        if key in self._data and self._data[key].value is not None:
            raise KeyExists(key)
        return await self.put(key, value)

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        cur = self._data.get(key)
        if cur is None or cur.revision != last:
            raise WrongSequence(f"kv {key}: expected revision {last}, have {cur.revision if cur else None}")
        return await self.put(key, value)

    async def delete(self, key: str) -> bool:
        self._rev += 1
        self._data[key] = KVEntry(key, None, self._rev, "DEL")
        self._emit(self._data[key])
        return True

    async def keys(self) -> list[str]:
        return [k for k, e in self._data.items() if e.value is not None]

    async def watchall(self, include_history: bool = False) -> AsyncIterator[KVEntry]:
        q: asyncio.Queue[KVEntry] = asyncio.Queue()
        self._watchers.append(q)

        async def gen() -> AsyncIterator[KVEntry]:
            try:
                while True:
                    yield await q.get()
            finally:
                self._watchers.remove(q)

        return gen()


class InMemoryBus:
    def __init__(self, names: BusNames | None = None):
        self.names = names or BusNames()
        self.events = _Stream()
        self.commands = _Stream(work_queue=True)
        self.dlq = _Stream()
        self._kv: dict[str, InMemoryKV] = {}
        self._durables: dict[str, _Durable] = {}
        self.connected = True

    async def ensure(self) -> None:
        return None

    async def close(self) -> None:
        for d in list(self._durables.values()):
            await d.stop()
        self.connected = False

    async def kv(self, base: str) -> InMemoryKV:
        return self._kv.setdefault(base, InMemoryKV())

    def subject(self, event: Event) -> str:
        return subject_of(event, prefix=self.names.evt_prefix)

    async def _append(self, stream: _Stream, subject: str, data: bytes, headers: dict[str, str]) -> int:
        msg_id = headers.get("Nats-Msg-Id")
        if msg_id and msg_id in stream.dedup:
            return stream.dedup[msg_id]
        exp = headers.get("Nats-Expected-Last-Subject-Sequence")
        if exp is not None:
            filt = headers.get("Nats-Expected-Last-Subject-Sequence-Subject", subject)
            last = max((m.seq for m in stream.msgs if subject_matches(filt, m.subject)), default=0)
            if last != int(exp):
                raise WrongSequence(f"wrong last sequence: {last}")
        seq = stream.append(subject, data, headers)
        if msg_id:
            stream.dedup[msg_id] = seq
        async with stream.changed:
            stream.changed.notify_all()
        return seq

    async def publish(self, event: Event, *, expect: Expect | None = None) -> int:
        headers = publish_headers(event, expect, self.names)
        return await self._append(self.events, self.subject(event), encode(event), headers)

    async def publish_begin(self, event: Event, *, expect: Expect | None = None) -> asyncio.Future[int]:
        seq: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        try:
            seq.set_result(await self.publish(event, expect=expect))
        except Exception as exc:
            seq.set_exception(exc)
        return seq

    async def publish_many(self, events: list[Event]) -> list[int]:
        return [await self.publish(e) for e in events]

    async def publish_command(self, command: Command, *, msg_id: str | None = None) -> int:
        before = self.commands.last_seq
        seq = await self._append(self.commands, command_subject(command.job, prefix=self.names.cmd_prefix),
                                 encode(command), {"Nats-Msg-Id": msg_id or command.run_id})
        return seq if seq > before else 0

    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        stream = self.commands if subject.startswith(self.names.cmd_prefix + ".") else self.events
        return await self._append(stream, subject, data, dict(headers or {}))

    async def dead_letter(self, consumer: str, subject: str, seq: int, data: bytes, error: str,
                          num_delivered: int = 1) -> None:
        await self._append(self.dlq, dlq_subject(consumer, prefix=self.names.dlq_prefix), data, {
            "Nats-Msg-Id": f"dlq:{consumer}:{subject}:{seq}", "Xbot-Consumer": consumer, "Xbot-Error": error,
            "Xbot-Original-Subject": subject, "Xbot-Original-Seq": str(seq), "Xbot-Deliveries": str(num_delivered)})

    async def dlq_count(self) -> int:
        return len(self.dlq.msgs)

    async def last_seq(self, filter_subject: str | None = None) -> int:
        if filter_subject is None:
            return self.events.last_seq
        return max((m.seq for m in self.events.msgs if subject_matches(filter_subject, m.subject)), default=0)

    async def aggregate_history(
        self, aggregate: str, aggregate_id: str, account: str = DEFAULT_ACCOUNT
    ) -> list[ReadItem]:
        return [i async for i in self.read(self.names.history(aggregate, aggregate_id, account))]

    async def read(self, filter_subject: str | None = None, *, from_seq: int = 1, names: frozenset[str] | None = None,
                   follow: bool = False, since: Any = None, decode_events: bool = True,
                   filter_subjects: Collection[str] | None = None,
                   cursor: ReadCursor | None = None) -> AsyncIterator[ReadItem]:
        """As ``JetStreamBus.read``, position markers of a filtered read included (at the end of the log before
        ``CAUGHT_UP`` when following, and when ``cursor.want`` asks past what was yielded)."""
        filters = read_subjects(self.names, filter_subject, filter_subjects)
        filtered = filter_subjects is not None
        pos = max(1, from_seq)
        position = pos - 1  # (filtered) every message of the filters up to here has been yielded
        caught_up = False
        poked = asyncio.Event()
        notified: set[asyncio.Task[None]] = set()

        def poke() -> None:
            poked.set()
            task = asyncio.ensure_future(self._notify())
            notified.add(task)
            task.add_done_callback(notified.discard)

        if cursor is not None:
            cursor.bind(poke)
        try:
            while True:
                poked.clear()  # a ``want`` from here on wakes the wait below
                batch = [m for m in self.events.msgs[pos - 1:] if any(subject_matches(f, m.subject) for f in filters)]
                pos = self.events.last_seq + 1
                for m in batch:
                    item = ReadItem(m.seq, m.subject, m.data)
                    if decode_events and (names is None or _type_of_subject(m.subject) in names):
                        try:
                            item.event = decode(m.data)
                        except Exception as exc:
                            item.error = f"{type(exc).__name__}: {exc}"
                    position = m.seq
                    yield item
                asked = cursor is not None and cursor.wanted > position
                if filtered and follow and (asked or not caught_up) and pos - 1 > position:
                    position = pos - 1
                    yield position_marker(position)
                if not caught_up:
                    caught_up = True
                    yield CAUGHT_UP
                    if not follow:
                        return
                async with self.events.changed:
                    await self.events.changed.wait_for(
                        lambda target=pos: self.events.last_seq >= target or poked.is_set()  # type: ignore[misc]
                    )
        finally:
            if cursor is not None:
                cursor.bind(None)

    async def _notify(self) -> None:
        async with self.events.changed:
            self.events.changed.notify_all()

    async def consume(self, durable: str, filter_subject: str, handler: Handler, *, stream: str = "events",
                      policy: ConsumerPolicy | None = None, decoder: Decoder | None = None) -> _Durable:
        st = self.events if stream == "events" else self.commands
        d = self._durables.get(durable)
        if d is None or d.stream is not st:
            d = _Durable(self, durable, st, filter_subject)
            self._durables[durable] = d
        d.start(handler, policy or ConsumerPolicy(), decoder or (decode if stream == "events" else decode_command))
        return d


class _Durable:
    """A durable consumer's server-side state (ack floor, deliveries, delays) survives stop/start like JetStream's."""

    def __init__(self, bus: InMemoryBus, name: str, stream: _Stream, filter_subject: str):
        self.bus, self.name, self.stream, self.filter = bus, name, stream, filter_subject
        self.acked: set[int] = set()
        self.deliveries: dict[int, int] = {}
        self.not_before: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.dead_lettered = 0

    def start(self, handler: Handler, policy: ConsumerPolicy, decoder: Decoder) -> None:
        self.handler, self.policy, self.decoder = handler, policy, decoder
        self._sem = asyncio.Semaphore(policy.concurrency)
        self._task = asyncio.create_task(self._run())

    def _next(self) -> list[_Msg]:
        now = time.monotonic()
        out = []
        for m in self.stream.msgs:
            if m.seq in self.acked or not subject_matches(self.filter, m.subject):
                continue
            if self.deliveries.get(m.seq, 0) >= self.policy.max_deliver or self.not_before.get(m.seq, 0) > now:
                continue
            out.append(m)
            if len(out) >= self.policy.batch:
                break
        return out

    async def _run(self) -> None:
        while True:
            msgs = self._next()
            if not msgs:
                await asyncio.sleep(0.01)
                continue
            await asyncio.gather(*(self._one(m) for m in msgs))

    async def _one(self, m: _Msg) -> None:
        async with self._sem:
            n = self.deliveries[m.seq] = self.deliveries.get(m.seq, 0) + 1
            d = Delivered(m.subject, m.seq, m.data, n, dict(m.headers))
            try:
                d.event = self.decoder(m.data)
                await self.handler(d)
            except Poison as exc:
                return await self._dead(m, d, f"poison: {exc.reason}")
            except Retry as exc:
                return await self._retry(m, d, f"retry: {exc.reason}", exc.delay_s)
            except Exception as exc:
                if d.event is None:
                    return await self._dead(m, d, f"decode: {type(exc).__name__}: {exc}")
                return await self._retry(m, d, f"{type(exc).__name__}: {exc}", None)
            self._ack(m)
            self.processed += 1

    def _ack(self, m: _Msg) -> None:
        self.acked.add(m.seq)
        if self.stream.work_queue and m in self.stream.msgs:
            self.stream.msgs.remove(m)

    async def _retry(self, m: _Msg, d: Delivered, error: str, delay: float | None) -> None:
        if d.num_delivered >= self.policy.max_deliver:
            return await self._dead(m, d, f"max_deliver ({self.policy.max_deliver}) reached: {error}")
        self.not_before[m.seq] = time.monotonic() + retry_delay(self.policy, d.num_delivered, delay)

    async def _dead(self, m: _Msg, d: Delivered, error: str) -> None:
        await self.bus.dead_letter(self.name, m.subject, m.seq, m.data, error, d.num_delivered)
        self.dead_lettered += 1
        self._ack(m)

    async def stop(self, timeout: float = 10.0) -> None:
        await cancel_quietly(self._task)
