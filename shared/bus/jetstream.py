"""The JetStream bus: streams, KV, idempotent publish, the durable consumer loop, ordered replay."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import msgspec
import nats
import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from ..events import Event, decode, encode, subject_of
from ..events.commands import Command
from ..events.subjects import DEFAULT_ACCOUNT, command_subject, dlq_subject, parse_event_subject
from .core import (
    BusNames,
    ConsumerPolicy,
    Decoder,
    Delivered,
    Expect,
    Handler,
    Poison,
    Retry,
    StreamSettings,
    WrongSequence,
    cancel_quietly,
    retry_delay,
)

log = structlog.get_logger("bus")

WRONG_LAST_SEQUENCE = 10071


class ReadItem(msgspec.Struct, gc=False):
    """One message from an ordered read; ``caught_up`` marks the moment the reader reached the end of the log.

    A read over a set of filter subjects (``filter_subjects``) also yields position markers (``position``: no
    subject, no data, ``seq`` = S): every message of its filters up to stream sequence S has been yielded, so a
    reader may count the messages of other subjects up to S as read (``Projection.applied_seq``).

    Not tracked by the garbage collector (it holds no cycle): a rebuild keeps tens of thousands of these in
    flight, and tracked ones made every full collection walk them all."""

    seq: int
    subject: str
    data: bytes
    event: Event | None = None
    error: str | None = None
    caught_up: bool = False
    position: bool = False


CAUGHT_UP = ReadItem(0, "", b"", caught_up=True)


def position_marker(seq: int) -> ReadItem:
    """The marker "every message of this read's filters up to ``seq`` has been yielded"."""
    return ReadItem(seq, "", b"", position=True)


class ReadCursor:
    """Lets the reader of a filtered read (``read(filter_subjects=..., cursor=...)``) ask it how far it has read.

    A filtered read receives only its subjects' messages, so a reader waiting for a sequence of another subject
    (``Projection.wait_for``, e.g. the end of the log) would wait for a message that never comes. ``want(seq)``
    asks the read to confirm with the server that nothing of its filters is left up to the log's end; it then
    yields a position marker (``position_marker``) at that end. Nothing is asked while nobody waits."""

    def __init__(self) -> None:
        self.wanted = 0
        self._wake: Callable[[], None] | None = None

    def want(self, seq: int) -> None:
        if seq > self.wanted:
            self.wanted = seq
            if self._wake is not None:
                self._wake()

    def bind(self, wake: Callable[[], None] | None) -> None:
        """Called by the read that serves the cursor: ``wake`` interrupts its wait for messages."""
        self._wake = wake


def type_subjects(names: BusNames, types: Collection[str]) -> list[str]:
    """The filter subjects of event types (``"<aggregate>.<name>"``) in both subject shapes (every account),
    sorted: a multi-filter consumer that receives exactly those types."""
    out: set[str] = set()
    for t in types:
        aggregate, _, name = t.partition(".")
        out.update(names.event_type(aggregate, name))
    return sorted(out)


def read_subjects(names: BusNames, filter_subject: str | None, filter_subjects: Collection[str] | None) -> list[str]:
    """The subjects a read filters on: ``filter_subjects`` (at least one), or ``filter_subject``, or every event."""
    if filter_subjects is not None:
        if filter_subject is not None:
            raise ValueError("read: filter_subject or filter_subjects, not both")
        subjects = sorted(set(filter_subjects))
        if not subjects:
            raise ValueError("read: filter_subjects is empty")
        return subjects
    return [filter_subject or names.all_events]


def publish_headers(event: Event, expect: Expect | None, names: BusNames) -> dict[str, str]:
    """``Nats-Msg-Id`` = the event id (the server drops a repeat within the duplicate window), and, with a guard,
    the expected last sequence over the subjects of the event's aggregate instance."""
    headers = {"Nats-Msg-Id": event.event_id}
    if expect is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(expect.last_seq)
        headers["Nats-Expected-Last-Subject-Sequence-Subject"] = names.history_of(event)
    return headers


def _type_of_subject(subject: str) -> str:
    """``"<aggregate>.<name>"`` of an event subject of either shape (``shared.events.subjects``), else ``""``."""
    parsed = parse_event_subject(subject)
    return parsed[1] if parsed is not None else ""


class AckInbox:
    """Publishes whose acks are awaited later: one wildcard inbox subscription, one future per message, at most
    ``max_in_flight`` unacknowledged. Used instead of nats-py's ``publish_async``, whose reply handler raises a
    refused publish's error (a wrong expected sequence, a full stream) inside the subscription callback, so that
    future never settles."""

    def __init__(self, nc: nats.NATS, max_in_flight: int):
        self.nc = nc
        self._slots = asyncio.Semaphore(max_in_flight)
        self._futures: dict[str, asyncio.Future[int]] = {}
        self._prefix = ""
        self._n = 0
        self._sub: Any = None
        self._subscribing = asyncio.Lock()

    async def send(self, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future[int]:
        """Put the message on the wire; the future gives its stream sequence, or raises ``WrongSequence`` /
        ``nats.js.errors.APIError`` as the server answered. It never times out by itself: await it with one."""
        if self._sub is None:
            async with self._subscribing:  # two first sends at once: one subscription
                if self._sub is None:
                    inbox = self.nc.new_inbox()
                    self._prefix = inbox + "."
                    self._sub = await self.nc.subscribe(inbox + ".*", cb=self._on_reply)
        try:
            await asyncio.wait_for(self._slots.acquire(), 30)
        except TimeoutError:
            raise TimeoutError("30 s with every publish slot waiting for its ack") from None
        self._n += 1
        token = str(self._n)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._futures[token] = fut
        fut.add_done_callback(lambda _f: self._done(token))
        try:
            await self.nc.publish(subject, payload, reply=self._prefix + token, headers=headers)
        except BaseException:
            fut.cancel()
            raise
        return fut

    def _done(self, token: str) -> None:
        if self._futures.pop(token, None) is not None:
            self._slots.release()

    async def _on_reply(self, msg: Any) -> None:
        fut = self._futures.get(msg.subject[len(self._prefix):])
        if fut is None or fut.done():
            return
        status = (msg.headers or {}).get("Status")
        if status == "503":
            fut.set_exception(NoStreamResponseError())
            return
        try:
            resp = msgspec.json.decode(msg.data)
            err = resp.get("error")
            if err is None:
                fut.set_result(int(resp["seq"]))
            elif err.get("err_code") == WRONG_LAST_SEQUENCE:
                fut.set_exception(WrongSequence(str(err.get("description", "wrong last sequence"))))
            else:
                try:
                    APIError.from_error(err)  # raises the class for the code (BadRequestError for 400...)
                except APIError as exc:
                    fut.set_exception(exc)
        except (msgspec.DecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            fut.set_exception(APIError(description=f"unreadable publish ack: {exc}"))


class JetStreamBus:
    def __init__(self, nc: nats.NATS, names: BusNames, settings: StreamSettings, max_in_flight: int = 1000,
                 *, raw_reads: bool = False):
        self.nc = nc
        self.js = nc.jetstream()
        self.acks = AckInbox(nc, max_in_flight)
        self.names = names
        self.settings = settings
        #: the raw read mode: ``read`` takes delivery on a connection of its own, parsed in bulk
        #: (``shared.bus.raw``); falls back to nats-py's subscription when that connection is refused (TLS)
        self.raw_reads = raw_reads
        self._closing_state: dict[str, bool] | None = None

    # --- connection -------------------------------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        names: BusNames | None = None,
        settings: StreamSettings | None = None,
        name: str = "xbot",
        connect_timeout: float = 5.0,
        raw_reads: bool = False,
    ) -> JetStreamBus:
        """``raw_reads=True``: the raw read mode (see ``shared.bus.raw``), for a process that reads the whole log."""
        state = {"closing": False}

        async def on_disconnect() -> None:
            if not state["closing"]:
                log.warning("nats disconnected", url=url)

        async def on_reconnect() -> None:
            log.info("nats reconnected", url=url)

        async def on_error(exc: Exception) -> None:
            log.warning("nats error", error=str(exc))

        nc = await nats.connect(
            servers=[u.strip() for u in url.split(",")],
            name=name,
            connect_timeout=connect_timeout,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        )
        bus = cls(nc, names or BusNames(), settings or StreamSettings(), raw_reads=raw_reads)
        bus._closing_state = state
        return bus

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    async def close(self) -> None:
        if self._closing_state is not None:
            self._closing_state["closing"] = True
        if not self.nc.is_closed:
            # bounded: a subscription whose callback never returns would hold drain for its 30 s default
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(self.nc.drain(), 2.0)
            with contextlib.suppress(Exception):
                await self.nc.close()

    # --- streams and buckets (idempotent) ---------------------------------------------------------------------
    async def delete_namespace(self) -> None:
        """Delete this namespace's streams, buckets and snapshots (tests and benchmarks clean up with it)."""
        n = self.names
        for stream in (n.events_stream, n.commands_stream, n.dlq_stream):
            with contextlib.suppress(Exception):
                await self.js.delete_stream(stream)
        for base in ("flags", "budget", "leases"):
            with contextlib.suppress(Exception):
                await self.js.delete_key_value(n.bucket(base))
        with contextlib.suppress(Exception):
            await self.js.delete_object_store(n.bucket("snapshots"))

    async def ensure(self) -> None:
        s, n = self.settings, self.names
        configs = [
            api.StreamConfig(
                name=n.events_stream,
                subjects=[n.all_events],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                num_replicas=s.replicas,
                max_age=s.max_age_days * 86400 if s.max_age_days else 0,
                duplicate_window=s.duplicate_window_s,
                max_msg_size=s.max_msg_size,
                allow_direct=True,
            ),
            api.StreamConfig(
                name=n.commands_stream,
                subjects=[f"{n.cmd_prefix}.>"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
                num_replicas=s.replicas,
                max_age=s.commands_max_age_s,
                duplicate_window=min(s.duplicate_window_s, s.commands_max_age_s),
                max_msg_size=s.max_msg_size,
            ),
            api.StreamConfig(
                name=n.dlq_stream,
                subjects=[f"{n.dlq_prefix}.>"],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                num_replicas=s.replicas,
                max_age=30 * 86400,
                duplicate_window=s.duplicate_window_s,
            ),
        ]
        for cfg in configs:
            try:
                await self.js.stream_info(str(cfg.name))
                await self.js.update_stream(cfg)
            except NotFoundError:
                await self.js.add_stream(cfg)
        for base in ("flags", "budget"):
            await self.kv(base)
        await self.object_store_bucket()

    async def kv(self, base: str) -> Any:
        bucket = self.names.bucket(base)
        try:
            return await self.js.key_value(bucket)
        except Exception:
            return await self.js.create_key_value(
                api.KeyValueConfig(bucket=bucket, history=5, replicas=self.settings.replicas, storage=api.StorageType.FILE)
            )

    async def object_store_bucket(self) -> Any:
        bucket = self.names.bucket("snapshots")
        try:
            return await self.js.object_store(bucket)
        except Exception:
            return await self.js.create_object_store(
                bucket, api.ObjectStoreConfig(bucket=bucket, replicas=self.settings.replicas, storage=api.StorageType.FILE)
            )

    # --- publishing -------------------------------------------------------------------------------------------
    def subject(self, event: Event) -> str:
        return subject_of(event, prefix=self.names.evt_prefix)

    async def publish(self, event: Event, *, expect: Expect | None = None) -> int:
        """Publish one event with ``Nats-Msg-Id`` = event id. With a guard (``expect``) the server refuses the
        write (``WrongSequence``) unless the last message over the event's aggregate subjects has exactly the
        expected sequence."""
        headers = publish_headers(event, expect, self.names)
        try:
            ack = await self.js.publish(self.subject(event), encode(event), headers=headers, timeout=10)
        except BadRequestError as exc:
            if getattr(exc, "err_code", None) == WRONG_LAST_SEQUENCE:
                raise WrongSequence(str(exc)) from exc
            raise
        return ack.seq

    async def publish_begin(self, event: Event, *, expect: Expect | None = None) -> asyncio.Future[int]:
        """``publish`` without waiting for the server's ack: the message is on the wire (in order with every
        later publish on this connection) when this returns; the future gives its sequence, or raises as
        ``publish`` would (``WrongSequence``...). The caller awaits it, with a timeout, before it reports the
        event written."""
        headers = publish_headers(event, expect, self.names)
        return await self.acks.send(self.subject(event), encode(event), headers)

    async def publish_many(self, events: list[Event]) -> list[int]:
        """Many events without awaiting each (``publish_begin``, a bounded number in flight), then every ack."""
        futures = [await self.acks.send(self.subject(ev), encode(ev), {"Nats-Msg-Id": ev.event_id}) for ev in events]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), 30))
        finally:
            for f in futures:
                f.cancel()  # only those not settled: a failed batch leaves no future behind

    async def publish_command(self, command: Command, *, msg_id: str | None = None) -> int:
        """A job request. Periodic runs pass ``msg_id=<job>:<slot>`` so N replicas produce one run per slot."""
        ack = await self.js.publish(
            command_subject(command.job, prefix=self.names.cmd_prefix),
            encode(command),
            headers={"Nats-Msg-Id": msg_id or command.run_id},
            timeout=10,
        )
        return 0 if ack.duplicate else ack.seq

    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        ack = await self.js.publish(subject, data, headers=headers or None, timeout=10)
        return ack.seq

    async def dead_letter(
        self, consumer: str, subject: str, seq: int, data: bytes, error: str, num_delivered: int = 1
    ) -> None:
        headers = {
            "Nats-Msg-Id": f"dlq:{consumer}:{subject}:{seq}",
            "Xbot-Consumer": consumer,
            "Xbot-Error": error[:2000].replace("\r", " ").replace("\n", " "),
            "Xbot-Original-Subject": subject,
            "Xbot-Original-Seq": str(seq),
            "Xbot-Deliveries": str(num_delivered),
        }
        await self.js.publish(dlq_subject(consumer, prefix=self.names.dlq_prefix), data, headers=headers, timeout=10)
        log.error("dead-lettered", consumer=consumer, subject=subject, seq=seq, error=error)

    async def dlq_count(self) -> int:
        info = await self.js.stream_info(self.names.dlq_stream)
        return int(info.state.messages)

    # --- reading ------------------------------------------------------------------------------------------------
    async def last_seq(self, filter_subject: str | None = None) -> int:
        if filter_subject is None:
            info = await self.js.stream_info(self.names.events_stream)
            return info.state.last_seq
        try:
            msg = await self.js.get_last_msg(self.names.events_stream, filter_subject)
            return msg.seq or 0
        except NotFoundError:
            return 0

    async def aggregate_history(
        self, aggregate: str, aggregate_id: str, account: str = DEFAULT_ACCOUNT
    ) -> list[ReadItem]:
        """Every event of one aggregate (e.g. one decision's timeline), in order."""
        items = []
        async for item in self.read(self.names.history(aggregate, aggregate_id, account)):
            items.append(item)
        return items

    async def read(
        self,
        filter_subject: str | None = None,
        *,
        from_seq: int = 1,
        names: frozenset[str] | None = None,
        follow: bool = False,
        since: Any = None,
        decode_events: bool = True,
        filter_subjects: Collection[str] | None = None,
        cursor: ReadCursor | None = None,
    ) -> AsyncIterator[ReadItem]:
        """Ordered read of the event stream from ``from_seq`` (or time ``since``). Without ``follow`` it stops once
        caught up; with ``follow`` it yields ``CAUGHT_UP`` once and goes on with live events. ``names`` restricts
        decoding to those event types (decided from the subject, so other events cost nothing); a message that
        does not decode is yielded with ``error`` set.

        ``filter_subjects``: a consumer with those filters (NATS >= 2.10), so the server sends only their messages.
        Such a read also yields position markers (``ReadItem.position``): with ``follow``, one at the end of the
        log before ``CAUGHT_UP``, and one each time ``cursor.want(seq)`` asks past what it has yielded.

        Caught up means: a message at or past the end of the log as it was when the read started (by sequence;
        a push consumer's pending count can read 0 while messages are still on their way to us); with filters,
        the last message of the filters at the start (the server's pending count after it is 0)."""
        subjects = read_subjects(self.names, filter_subject, filter_subjects)
        filtered = filter_subjects is not None
        start = max(1, from_seq)
        feed = self._ordered_feed(subjects, from_seq=start, since=since)
        position = start - 1  # (filtered) every message of the filters up to here has been yielded
        tried: tuple[int, int, int] | None = None

        async def confirm() -> int:
            """The log's last sequence if every message of the filters up to it has been taken, else 0."""
            last = await self.last_seq()
            return last if await feed.nothing_left() else 0

        try:
            info = await feed.start()
            if cursor is not None:
                cursor.bind(feed.wake.set)
            if filtered:
                target = await self.last_seq()
            else:
                target = await self.last_seq(None if subjects[0] == self.names.all_events else subjects[0])
            caught_up = (since is None and target < start) or feed.took_everything(info)
            if caught_up:
                if filtered and follow and (last := await confirm()) > position:
                    position = last
                    yield position_marker(last)
                yield CAUGHT_UP
                if not follow:
                    return
            want = decode_events
            dec = decode
            announce = False  # (filtered, follow) caught up in this batch: a position, then CAUGHT_UP, after it
            ask = 0  # (filtered) a position asked for: confirmed with the server once a batch is handed over
            while True:
                if filtered:
                    if cursor is not None and cursor.wanted > ask:
                        ask = cursor.wanted
                    if ask > position and (key := (ask, feed._gen, feed.dseq)) != tried:
                        tried = key  # asked again only when something changed (a new ask, messages, a restart)
                        if (last := await confirm()) > position:
                            position = last
                            yield position_marker(last)
                batch = await feed.batch(None if caught_up else 1.0)
                if not batch:
                    if not caught_up and await feed.nothing_left():  # e.g. the tail was deleted (max_age)
                        caught_up = True
                        if filtered and follow and (last := await confirm()) > position:
                            position = last
                            yield position_marker(last)
                        yield CAUGHT_UP
                        if not follow:
                            return
                    continue
                for seq, subj, data, pending in batch:
                    item = ReadItem(seq, subj, data)
                    if want and (names is None or _type_of_subject(subj) in names):
                        try:
                            item.event = dec(data)
                        except Exception as exc:  # malformed: the reader decides (projections dead-letter it)
                            item.error = f"{type(exc).__name__}: {exc}"
                    position = seq
                    yield item
                    if not caught_up and (seq >= target or pending == 0):
                        caught_up = True
                        if not follow:
                            yield CAUGHT_UP
                            return
                        if filtered:  # the position is confirmed once the rest of the batch is handed over
                            announce = True
                        else:
                            yield CAUGHT_UP
                if announce:
                    announce = False
                    if (last := await confirm()) > position:
                        position = last
                        yield position_marker(last)
                    elif target > position:
                        ask = max(ask, target)  # messages on their way: confirmed after them
                    yield CAUGHT_UP
        finally:
            if cursor is not None:
                cursor.bind(None)
            await feed.stop()

    def _ordered_feed(self, subjects: list[str], *, from_seq: int, since: Any) -> _OrderedFeed:
        """The feed behind ``read``."""
        return _OrderedFeed(self, subjects, from_seq=from_seq, since=since)

    # --- the durable consumer loop ------------------------------------------------------------------------------
    async def consume(
        self,
        durable: str,
        filter_subject: str,
        handler: Handler,
        *,
        stream: str = "events",
        policy: ConsumerPolicy | None = None,
        decoder: Decoder | None = None,
    ) -> JetStreamConsumer:
        pol = policy or ConsumerPolicy()
        stream_name = self.names.events_stream if stream == "events" else self.names.commands_stream
        cfg = api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=pol.ack_wait_s,
            max_deliver=pol.max_deliver,
            filter_subject=filter_subject,
            max_ack_pending=max(pol.batch * 2, pol.concurrency * 2, 10),
            deliver_policy=api.DeliverPolicy.ALL,
        )
        psub = await self.js.pull_subscribe(filter_subject, durable=durable, stream=stream_name, config=cfg)
        dec = decoder or (decode if stream == "events" else _decode_command)
        consumer = JetStreamConsumer(self, durable, psub, handler, pol, dec)
        consumer.start()
        return consumer

_ACK_PREFIX = "$JS.ACK."
_FC_PREFIX = "$JS.FC."


class _OrderedFeed:
    """An ordered push consumer read through a plain subscription callback, for ``JetStreamBus.read``.

    The callback only appends the message to a deque: no task, timer or await per message. The reader takes
    the deque in batches (``batch``). Flow control is answered by the reader, in order: a flow-control request
    is acknowledged once every message delivered before it has been handed to the caller, so however slow the
    caller, what waits in memory is bounded by the server's flow-control window (32 MB), never the whole log. (nats-py's
    own ordered consumer with a callback acknowledges on receipt and then drops what overflows its pending
    limits.) A gap in the consumer sequence, a reconnect or missing heartbeats restart the consumer after the
    last message taken."""

    #: messages taken per batch; between batches the reader lets the event loop run, so a task it feeds (e.g. a
    #: projector's writer waiting on its database) is not kept waiting while messages keep arriving
    BATCH = 256

    def __init__(self, bus: JetStreamBus, subjects: list[str], *, from_seq: int, since: Any, heartbeat_s: float = 2.0):
        self.bus, self.subjects, self.since, self.heartbeat_s = bus, subjects, since, heartbeat_s
        self.next_seq = from_seq  # where a (re)started consumer begins: after the last message taken
        self.taken_any = False
        self.buf: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.sub: Any = None
        self.consumer: str | None = None
        self.dseq = 0  # consumer sequence of the last message taken (a new consumer counts from 1)
        self.arrived = 0  # messages of any kind delivered by the current subscription
        self._gen = 0
        self._reconnects = 0
        self._seen_arrived = 0
        self._quiet_since = time.monotonic()
        self._fc_reply: str | None = None  # answered once the batch before it has been handed over

    def _callback(self, gen: int) -> Any:
        buf, wake = self.buf, self.wake

        async def on_msg(msg: Any) -> None:
            if gen == self._gen:
                # a tuple of str/bytes, not the Msg: the collector stops tracking it once it has seen it (a tuple
                # holding a dict stays tracked, so only control messages, which carry no data, keep headers)
                data = msg.data
                buf.append((msg.subject, msg.reply, data, None if data else msg.headers))
                self.arrived += 1
                wake.set()

        return on_msg

    async def start(self) -> api.ConsumerInfo:
        """(Re)create the consumer from ``next_seq`` (or ``since`` when nothing was taken yet)."""
        await self._drop_sub()
        bus = self.bus
        self._gen += 1
        self.buf.clear()
        self._fc_reply = None
        self.dseq = 0
        self._reconnects = bus.nc.stats.get("reconnects", 0)
        inbox = await self._subscribe()
        one = len(self.subjects) == 1
        cfg = api.ConsumerConfig(
            deliver_subject=inbox,
            filter_subject=self.subjects[0] if one else None,
            filter_subjects=None if one else list(self.subjects),  # a multi-filter consumer (NATS >= 2.10)
            ack_policy=api.AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=self.heartbeat_s,
            num_replicas=1,
            mem_storage=True,
            inactive_threshold=5.0,
        )
        if self.since is not None and not self.taken_any:
            cfg.deliver_policy, cfg.opt_start_time = api.DeliverPolicy.BY_START_TIME, self.since
        else:
            cfg.deliver_policy, cfg.opt_start_seq = api.DeliverPolicy.BY_START_SEQUENCE, self.next_seq
        info = await bus.js.add_consumer(bus.names.events_stream, cfg)
        self.consumer = info.name
        self._seen_arrived, self._quiet_since = self.arrived, time.monotonic()
        return info

    async def _subscribe(self) -> str:
        """Subscribe ``self.sub`` (anything with ``unsubscribe()``) to a new inbox whose messages go to ``buf`` as
        (subject, reply, data, headers of a message without data); return the inbox."""
        nc = self.bus.nc
        inbox = nc.new_inbox()
        url = nc.connected_url
        if self.bus.raw_reads and url is not None and url.scheme in ("nats", ""):
            from .raw import RawSubscription

            try:
                self.sub = await RawSubscription.open(self, self._gen, url, inbox)
                return inbox
            except Exception as exc:  # e.g. TLS: nats-py's subscription, as any read
                self.bus.raw_reads = False
                log.warning("own connection refused; reading through nats-py", error=f"{type(exc).__name__}: {exc}")
        self.sub = await nc.subscribe(inbox, cb=self._callback(self._gen))
        return inbox

    async def restart(self, why: str) -> None:
        log.info("ordered read restarting", subject=",".join(self.subjects), from_seq=self.next_seq, reason=why)
        for attempt in range(5):
            try:
                await self.start()
                return
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)

    def took_everything(self, info: api.ConsumerInfo) -> bool:
        """Nothing left for the consumer and every message it delivered has been taken."""
        delivered = info.delivered.consumer_seq if info.delivered is not None else 0
        return info.num_pending == 0 and (delivered or 0) <= self.dseq and not self.buf

    async def nothing_left(self) -> bool:
        if self.consumer is None:
            return False
        try:
            info = await self.bus.js.consumer_info(self.bus.names.events_stream, self.consumer)
        except NotFoundError:
            return False
        return self.took_everything(info)

    async def batch(self, timeout: float | None) -> list[tuple[int, str, bytes, int]]:
        """Up to ``BATCH`` messages, in order, as (stream seq, subject, data, pending); waits for the first
        (at most ``timeout``, or a heartbeat check interval). Empty when nothing came."""
        buf = self.buf
        if not buf:  # before any await: a wake-up (a message, a ``ReadCursor.want``) from now on is not lost
            self.wake.clear()
        if self._fc_reply is not None:  # the caller has taken everything delivered before it
            reply, self._fc_reply = self._fc_reply, None
            await self.bus.nc.publish(reply)
        if not buf:
            wait = self.heartbeat_s if timeout is None else min(timeout, self.heartbeat_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):  # one timer per empty buffer, none per message
                    await self.wake.wait()
            if not buf:
                await self._watchdog()
                return []
        else:
            await asyncio.sleep(0)
        out: list[tuple[int, str, bytes, int]] = []
        dseq = self.dseq
        while buf and len(out) < self.BATCH:
            subject, reply, data, headers = buf.popleft()
            if reply.startswith(_ACK_PREFIX):
                toks = reply.split(".")
                if len(toks) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
                    sseq, d, pending = int(toks[5]), int(toks[6]), int(toks[8])
                else:  # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>...
                    sseq, d, pending = int(toks[7]), int(toks[8]), int(toks[10])
                if d != dseq + 1:
                    await self._restart_after(out, dseq, f"consumer sequence gap ({dseq} then {d})")
                    return out
                dseq = d
                self.next_seq = sseq + 1
                out.append((sseq, subject, data, pending))
            elif reply.startswith(_FC_PREFIX):  # let the server go on once the caller has what came before
                if out:
                    self._fc_reply = reply
                    break
                await self.bus.nc.publish(reply)
            else:  # idle heartbeat: a stalled flow control to answer, or a last message we never got
                hdr = headers or {}
                stalled = hdr.get("Nats-Consumer-Stalled")
                if stalled:
                    await self.bus.nc.publish(stalled)
                last = hdr.get("Nats-Last-Consumer")
                if last is not None and last.isdigit() and int(last) != dseq:
                    await self._restart_after(out, dseq, f"heartbeat says {last} delivered, {dseq} taken")
                    return out
        self.dseq = dseq
        if out:
            self.taken_any = True
        return out

    async def _restart_after(self, out: list[Any], dseq: int, why: str) -> None:
        self.dseq = dseq
        if out:
            self.taken_any = True
        await self.restart(why)

    async def _watchdog(self) -> None:
        """Called when nothing came for a while: restart after a reconnect or when heartbeats stopped."""
        nc = self.bus.nc
        if not nc.is_connected:
            return
        if nc.stats.get("reconnects", 0) != self._reconnects:
            await self.restart("reconnected to NATS")
            return
        now = time.monotonic()
        if self.arrived != self._seen_arrived:
            self._seen_arrived, self._quiet_since = self.arrived, now
        elif now - self._quiet_since > 3 * self.heartbeat_s:
            await self.restart("no heartbeat")

    async def _drop_sub(self) -> None:
        sub, self.sub = self.sub, None
        self._gen += 1
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def stop(self) -> None:
        await self._drop_sub()
        self.buf.clear()


def _decode_command(data: bytes) -> Command:
    from ..events import decode_command

    return decode_command(data)


class _Keepalive:
    """Sends ``in_progress`` for a handler that runs long, without a task per message on the hot path."""

    def __init__(self, msg: Any, every: float):
        self.msg, self.every = msg, every
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(every, self._fire)
        self._task: asyncio.Task[Any] | None = None

    def _fire(self) -> None:
        self._task = self._loop.create_task(self._send())
        self._handle = self._loop.call_later(self.every, self._fire)

    async def _send(self) -> None:
        with contextlib.suppress(Exception):
            await self.msg.in_progress()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class JetStreamConsumer:
    """Batch fetch, bounded concurrency, the ack policy, dead letters, ``in_progress`` and drain."""

    def __init__(self, bus: JetStreamBus, name: str, psub: Any, handler: Handler, policy: ConsumerPolicy, decoder: Decoder):
        self.bus, self.name, self.psub, self.handler, self.policy, self.decoder = bus, name, psub, handler, policy, decoder
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._sem = asyncio.Semaphore(policy.concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self.processed = 0
        self.dead_lettered = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self.name}")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self.psub.fetch(self.policy.batch, timeout=self.policy.fetch_timeout_s)
            except (TimeoutError, NatsTimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected: the client reconnects on its own
                log.warning("fetch failed", consumer=self.name, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                if self._stopping.is_set():
                    # drain: leave the rest unacked, the server redelivers them to the next consumer
                    break
                await self._sem.acquire()
                if self.policy.concurrency == 1:
                    await self._handle(msg)  # in order, no task per message
                    continue
                t = asyncio.create_task(self._handle(msg))
                self._inflight.add(t)
                t.add_done_callback(self._inflight.discard)
            if self.policy.concurrency == 1 and self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _handle(self, msg: Any) -> None:
        try:
            md = msg.metadata
            d = Delivered(
                subject=msg.subject,
                seq=md.sequence.stream,
                data=msg.data,
                num_delivered=md.num_delivered,
                headers=dict(msg.headers or {}),
                _in_progress=msg.in_progress,
            )
            try:
                d.event = self.decoder(msg.data)
            except Exception as exc:
                await self._poison(msg, d, f"decode: {type(exc).__name__}: {exc}")
                return
            keepalive = _Keepalive(msg, self.policy.in_progress_every_s)
            try:
                await self.handler(d)
            except Poison as exc:
                await self._poison(msg, d, f"poison: {exc.reason}")
                return
            except Retry as exc:
                await self._retry(msg, d, f"retry: {exc.reason}", exc.delay_s)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("handler failed", consumer=self.name, seq=d.seq, deliveries=d.num_delivered)
                await self._retry(msg, d, f"{type(exc).__name__}: {exc}", None)
                return
            finally:
                keepalive.cancel()
            await msg.ack()
            self.processed += 1
        except Exception:
            log.exception("consumer ack path failed", consumer=self.name)
        finally:
            self._sem.release()


    async def _retry(self, msg: Any, d: Delivered, error: str, delay: float | None) -> None:
        if d.num_delivered >= self.policy.max_deliver:
            await self._poison(msg, d, f"max_deliver ({self.policy.max_deliver}) reached: {error}")
            return
        await msg.nak(delay=retry_delay(self.policy, d.num_delivered, delay))

    async def _poison(self, msg: Any, d: Delivered, error: str) -> None:
        await self.bus.dead_letter(self.name, d.subject, d.seq, d.data, error, d.num_delivered)
        self.dead_lettered += 1
        await msg.term()

    async def stop(self, timeout: float = 10.0) -> None:
        """Drain: stop fetching, let handlers in flight finish (bounded), then stop."""
        self._stopping.set()
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)
        await cancel_quietly(self._task)
        with contextlib.suppress(Exception):
            await self.psub.unsubscribe()


async def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Bounded polling helper for tests and start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())
