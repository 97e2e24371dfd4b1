"""The one runtime every service uses: settings, logging, bus, flags, clock, projection, commands, schedule,
health, and a clean drain on SIGTERM. Each ``services/<name>/bootstrap.py`` only says what is specific to it."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from .accounts.book import AccountBook, accounts_source, record_accounts
from .accounts.profile import AccountProfile
from .bus import ConsumerPolicy, Delivered, JetStreamBus, Projection, ReadItem
from .bus.core import cancel_quietly
from .clock import Clock, shared_clock
from .config import CommonSettings, exit_on_config_error, load_settings
from .errors import ConfigError
from .events import Command, JobCompleted, utcnow
from .events.subjects import command_subject
from .flagstore import FlagStore
from .logging import bind_job, configure_logging, unbind_job
from .snapshots import Restored, SnapshotStore, code_fingerprint

log = structlog.get_logger("service")

JobHandler = Callable[[Command], Awaitable[dict[str, int]]]


@dataclass
class ServiceContext:
    name: str
    settings: Any
    bus: JetStreamBus
    flags: FlagStore
    clock: Clock
    environ: Mapping[str, str]
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    projection: Projection | None = None
    #: the accounts this stack runs, as the log last configured them (``shared.accounts.book``); the runtime's
    #: projection keeps it current. Without one given: the default account of ``environ``.
    accounts: AccountBook = None  # type: ignore[assignment]
    #: this replica's account leases (``shared.accounts.leases``) when ACCOUNT_LEASE_SECONDS > 0, else None
    leases: Any = None

    def __post_init__(self) -> None:
        if self.accounts is None:
            from .accounts import default_account_from_env

            self.accounts = AccountBook.of([default_account_from_env(self.environ)])

    async def publish(self, event: Any, **kw: Any) -> int:
        return await self.bus.publish(event, **kw)

    async def publish_and_apply(self, event: Any, **kw: Any) -> int:
        """Publish, then wait until our own projection has applied it (read-your-writes)."""
        seq = await self.bus.publish(event, **kw)
        if self.projection is not None:
            await self.projection.wait_for(seq)
        return seq

    async def catch_up(
        self, aggregate: str | None = None, aggregate_id: str | None = None, *, timeout: float = 60.0,
        account: str = "default",
    ) -> None:
        """Make our projection at least as new as the log -- all of it, or one aggregate instance's history of one
        account (e.g. ``catch_up("decision", id, account=a)``) -- before deciding on it. The one catch-up every
        service uses."""
        if self.projection is None:
            return
        subject = (self.bus.names.history(aggregate, aggregate_id, account) if aggregate and aggregate_id
                   else None)
        seq = await self.bus.last_seq(subject)
        if seq > self.projection.applied_seq:
            await self.projection.wait_for(seq, timeout=timeout)

    async def publish_many_and_apply(self, events: list[Any]) -> list[int]:
        """Publish many events pipelined (acks awaited together), then wait once until our own projection has
        applied the last of them (read-your-writes for the whole batch)."""
        if not events:
            return []
        seqs = await self.bus.publish_many(events)
        if self.projection is not None:
            await self.projection.wait_for(max(seqs))
        return seqs


def job_accounts(cmd: Command, ctx: ServiceContext) -> list[AccountProfile]:
    """The accounts a job command is for: ``params["account"]`` when it names one (none when this stack has no
    such account), else every account of the stack."""
    wanted = cmd.params.get("account")
    if wanted:
        profile = ctx.accounts.get(wanted)
        return [profile] if profile is not None else []
    if ctx.leases is not None and cmd.requested_by == "schedule":
        return [p for p in ctx.accounts if ctx.leases.holds(p.id)]  # this replica's share
    return list(ctx.accounts)


def combine_counts(per_account: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """One job's counts over the accounts it ran for: summed; ``_skipped`` only when every account's run was."""
    total: Counter[str] = Counter()
    skipped = 0
    for counts in per_account:
        counts = dict(counts)
        skipped += counts.pop("_skipped", 0) > 0
        total.update(counts)
    out = dict(total)
    if per_account and skipped >= len(per_account):
        out["_skipped"] = 1
    return out


#: how a job command is consumed: one at a time, redelivered up to ``max_deliver`` times after a failure
JOB_POLICY = ConsumerPolicy(batch=1, concurrency=1, max_deliver=3, ack_wait_s=60, retry_base_delay_s=2)


@dataclass
class ServiceParts:
    """What a service contributes to the runtime."""

    jobs: dict[str, JobHandler] = field(default_factory=dict)
    #: job -> interval in seconds of the service clock (shadow clock may be faster than the wall)
    schedules: dict[str, float] = field(default_factory=dict)
    apply: Callable[[ReadItem], None] | None = None
    #: the object ``apply`` evolves; when given, it is snapshotted with its stream sequence (shared/snapshots.py)
    #: and a restart replays only the log after the snapshot
    state: Any = None
    #: the settings the state is built with (e.g. a window length): a change makes the snapshot unusable
    state_config: Mapping[str, Any] = field(default_factory=dict)
    #: event types the projection decodes (others are skipped from the subject alone); None = all
    interested: frozenset[str] | None = None
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: Callable[[], Awaitable[None]] | None = None
    ready: Callable[[], bool] | None = None
    health: Callable[[], dict[str, Any]] | None = None
    #: the service acts per account: with ACCOUNT_LEASE_SECONDS > 0 its replicas split the accounts
    per_account: bool = True


Builder = Callable[[ServiceContext], Awaitable[ServiceParts]]


class ServiceRuntime:
    def __init__(self, name: str, ctx: ServiceContext, parts: ServiceParts):
        self.name, self.ctx, self.parts = name, ctx, parts
        self.consumers: list[Any] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.projection: Projection | None = None
        self._server: asyncio.AbstractServer | None = None
        self.started = False
        self.snapshots: SnapshotStore | None = None
        self.snapshot_seq = 0
        self.restored: Restored | None = None
        self._snapshot_lock = asyncio.Lock()

    async def start(self) -> None:
        ctx, parts = self.ctx, self.parts
        if parts.apply is not None:
            t0 = time.monotonic()
            every = int(getattr(ctx.settings, "SNAPSHOT_EVERY_EVENTS", 0) or 0)
            from_seq = 1
            if parts.state is not None and every > 0:
                self.snapshots = SnapshotStore(ctx.bus, self.name, snapshot_fingerprint(self.name, parts.state_config))
                self.restored = await self.snapshots.load_into(parts.state)
                if self.restored is not None:
                    from_seq = self.restored.seq + 1
                    self.snapshot_seq = self.restored.seq
            apply, book = parts.apply, ctx.accounts

            def apply_and_follow_accounts(item: ReadItem) -> None:
                if item.event is not None and item.event.type == "account.configured":
                    book.apply(item.event, item.seq)
                apply(item)

            interested = None if parts.interested is None else parts.interested | {"account.configured"}
            self.projection = Projection(ctx.bus, apply_and_follow_accounts, name=self.name, names=interested,
                                         from_seq=from_seq)
            ctx.projection = self.projection
            self.projection.start()
            await self.projection.wait_caught_up(timeout=600)
            log.info(
                "state rebuilt from the log", service=self.name, events=self.projection.applied_count,
                from_snapshot_seq=self.restored.seq if self.restored else None,
                snapshot_bytes=self.restored.bytes if self.restored else None,
                snapshot_load_seconds=round(self.restored.seconds, 3) if self.restored else None,
                seconds=round(time.monotonic() - t0, 3),
            )
            if self.snapshots is not None:
                await self.snapshot_if_due(every)
                self.tasks.append(asyncio.create_task(self._snapshot_loop(every), name="snapshots"))
        lease_s = float(getattr(ctx.settings, "ACCOUNT_LEASE_SECONDS", 0) or 0)
        if lease_s > 0 and parts.per_account and parts.jobs:
            from .accounts.leases import LeaseKeeper

            ctx.leases = LeaseKeeper(ctx.bus, self.name, ctx.instance_id, ctx.accounts.ids, lease_s)
            await ctx.leases.start()  # one round now: a lone replica holds every account before its first run
            log.info("account leases", service=self.name, held=sorted(ctx.leases.held()), lease_seconds=lease_s)
        for job, handler in parts.jobs.items():
            self.consumers.append(
                await ctx.bus.consume(
                    f"{self.name}-{job}",
                    command_subject(job, prefix=ctx.bus.names.cmd_prefix),
                    self._job_runner(job, handler),
                    stream="commands",
                    policy=JOB_POLICY,
                )
            )
        for job, interval in parts.schedules.items():
            if interval and interval > 0:
                self.tasks.append(asyncio.create_task(self._schedule(job, interval), name=f"schedule:{job}"))
        for bg in parts.background:
            self.tasks.append(asyncio.ensure_future(bg()))
        port = int(getattr(ctx.settings, "SERVICE_HEALTH_PORT", 0) or 0)
        if port:
            self._server = await asyncio.start_server(self._health, "0.0.0.0", port)
        self.started = True
        log.info("service started", service=self.name, jobs=list(parts.jobs), summary=ctx.flags.current().MODE)

    async def snapshot_if_due(self, every: int) -> bool:
        p = self.projection
        if p is None or p.applied_seq - self.snapshot_seq < every:
            return False
        return await self.snapshot()

    async def snapshot(self) -> bool:
        """Save the state with the sequence it reflects (taken synchronously, between two events)."""
        p, store = self.projection, self.snapshots
        if p is None or store is None or p.applied_seq <= self.snapshot_seq:
            return False
        async with self._snapshot_lock:
            seq = p.applied_seq
            t0 = time.perf_counter()
            try:
                size = await store.save(self.parts.state, seq, p.applied_count)
            except Exception as exc:  # a snapshot is an optimisation: never fatal
                log.warning("snapshot failed", service=self.name, seq=seq, error=str(exc))
                return False
            self.snapshot_seq = max(self.snapshot_seq, seq)
            log.info("snapshot saved", service=self.name, seq=seq, bytes=size,
                     seconds=round(time.perf_counter() - t0, 3))
            return True

    async def _snapshot_loop(self, every: int) -> None:
        interval = float(getattr(self.ctx.settings, "SNAPSHOT_CHECK_SECONDS", 30.0))
        while True:
            await asyncio.sleep(interval)
            await self.snapshot_if_due(every)

    def _job_runner(self, job: str, handler: JobHandler) -> Callable[[Delivered], Awaitable[None]]:
        async def run(d: Delivered) -> None:
            await self._run_job(job, handler, d.event, d.num_delivered)

        return run

    async def _run_job(self, job: str, handler: JobHandler, cmd: Command, num_delivered: int, *,
                       local: bool = False) -> None:
        """Run one job command and record ``job.completed``. A failed delivery is raised (redelivered) until the
        last one, which records the failure. ``local``: a scheduled run of this replica's own accounts (with
        account leases), never redelivered; its record names the replica, as every replica runs the slot."""
        bind_job(cmd.run_id, job)
        status, counts, detail = "ok", {}, ""
        try:
            counts = await handler(cmd) or {}
        except Exception as exc:
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
            if not local and num_delivered < JOB_POLICY.max_deliver:
                raise  # redelivered; the last delivery records the failure instead
            log.exception("job failed", job=job, run_id=cmd.run_id)
        finally:
            unbind_job()
        if counts.get("_skipped"):
            status = "skipped"
        suffix = f"-{self.ctx.instance_id}" if local else ""
        await self.ctx.bus.publish(
            JobCompleted(
                event_id=f"job-{cmd.run_id}-{self.name}{suffix}",
                occurred_at=utcnow(),
                correlation_id=cmd.run_id,
                run_id=cmd.run_id,
                job=job,
                service=self.name,
                status=status,
                counts={k: int(v) for k, v in counts.items() if not k.startswith("_")},
                detail=detail,
            )
        )

    async def _schedule(self, job: str, interval: float) -> None:
        clock = self.ctx.clock
        while True:
            now = clock.now().timestamp()
            slot = math.floor(now / interval)
            cmd = Command(job=job, run_id=f"{job}-{slot}", requested_at=utcnow(), requested_by="schedule", slot=str(slot))
            try:
                if self.ctx.leases is not None:
                    # every replica runs the slot for the accounts it holds (the same run id everywhere: a
                    # draft of an account handed over mid-slot gets the same id, and the log keeps it single)
                    await self._run_job(job, self.parts.jobs[job], cmd, 1, local=True)
                else:
                    await self.ctx.bus.publish_command(cmd, msg_id=f"{job}:{slot}")
            except Exception as exc:
                log.warning("schedule publish failed", job=job, error=str(exc))
            next_at = (slot + 1) * interval
            await asyncio.sleep(max(0.05, clock.wall_seconds(next_at - clock.now().timestamp())))

    def is_ready(self) -> bool:
        if not self.started or not self.ctx.bus.connected:
            return False
        return self.parts.ready() if self.parts.ready else True

    async def _health(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import json

        try:
            line = (await asyncio.wait_for(reader.readline(), 5)).decode(errors="replace")
            path = line.split(" ")[1] if " " in line else "/"
            if path.startswith("/readyz"):
                ok = self.is_ready()
            else:
                ok = True
            body = {"service": self.name, "ok": ok}
            if self.parts.health:
                body.update(self.parts.health())
            if self.ctx.leases is not None:
                body["accounts_held"] = sorted(self.ctx.leases.held())
            payload = json.dumps(body, default=str).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                f"Connection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        for t in self.tasks:
            await cancel_quietly(t)
        if self.ctx.leases is not None:
            with contextlib.suppress(Exception):
                await self.ctx.leases.stop(release=True)  # the other replicas take our accounts at once
        for c in self.consumers:
            await c.stop()
        if self.projection is not None:
            await self.projection.stop()
            if self.snapshots is not None and self.started:
                await self.snapshot()
        if self.parts.on_stop is not None:
            with contextlib.suppress(Exception):
                await self.parts.on_stop()
        if self._server is not None:
            self._server.close()
        log.info("service stopped", service=self.name)


def snapshot_fingerprint(name: str, state_config: Mapping[str, Any]) -> str:
    """The code's fingerprint plus the settings the state is built with (a window length changes what it keeps)."""
    import hashlib
    import json

    salt = json.dumps(dict(state_config), sort_keys=True, default=str).encode()
    return hashlib.sha256(code_fingerprint(name).encode() + salt).hexdigest()[:32]


async def build_context(name: str, settings: CommonSettings, environ: Mapping[str, str],
                        profiles: Sequence[AccountProfile] | None = None) -> ServiceContext:
    """Connect, then record the accounts (``profiles``: the accounts file's, or -- None -- loaded here) in the log
    and take the book of the accounts in force."""
    from .accounts import load_accounts

    if profiles is None:
        profiles = load_accounts(environ)
    bus = await connect_bus(settings, name=f"xbot-{name}")
    await bus.ensure()
    flags = FlagStore(bus, environ)
    await flags.start()
    clock = await shared_clock(bus, settings.SHADOW_CLOCK_SPEED if flags.current().MODE == "shadow" else 1.0)
    accounts = await record_accounts(bus, profiles, accounts_source(environ))
    return ServiceContext(name=name, settings=settings, bus=bus, flags=flags, clock=clock, environ=environ,
                          accounts=accounts)


async def connect_bus(settings: CommonSettings, *, name: str, attempts: int = 60) -> JetStreamBus:
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await JetStreamBus.connect(
                settings.NATS_URL, names=settings.names(), settings=settings.stream_settings(), name=name
            )
        except Exception as exc:  # NATS not up yet (compose start order): retry, bounded
            last = exc
            await asyncio.sleep(1.0)
    raise ConfigError(f"NATS_URL={settings.NATS_URL} is not reachable: {last}")


async def serve(name: str, settings: CommonSettings, builder: Builder, environ: Mapping[str, str],
                profiles: Sequence[AccountProfile] | None = None) -> None:
    ctx = await build_context(name, settings, environ, profiles)
    parts = await builder(ctx)
    runtime = ServiceRuntime(name, ctx, parts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        await ctx.flags.stop()
        await ctx.bus.close()


def single_threaded_blas() -> None:
    """One BLAS thread per service process. A service's numpy work is small (a uniqueness check is one
    matrix-vector product over the window) and it shares the cores with the other services and NATS: there,
    OpenBLAS's worker threads spin-wait for each other and made the same product 10x slower than one thread
    (docs/decisions/0009-benchmarks.md)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def main(name: str, settings_cls: type[CommonSettings], builder_path: str) -> None:
    """Entry point used by ``python -m services.<name>`` and ``xbot service <name>``."""
    import importlib

    environ = dict(os.environ)
    from .accounts import load_accounts

    try:
        settings = load_settings(settings_cls)
        profiles = load_accounts(environ)  # a bad accounts file stops the service here, one line per problem
    except ConfigError as exc:
        exit_on_config_error(exc, name)
        return
    configure_logging(settings.LOG_FORMAT, settings.LOG_LEVEL, service=name)
    single_threaded_blas()
    module, _, attr = builder_path.partition(":")
    builder = getattr(importlib.import_module(module), attr)
    try:
        asyncio.run(serve(name, settings, builder, environ, profiles))
    except ConfigError as exc:
        exit_on_config_error(exc, name)
    except KeyboardInterrupt:
        pass
