"""Each service restarted with 1M events in the log, until caught up: the first start replays the whole log (the
baseline) and saves a snapshot; the restart loads the snapshot and replays only the tail. Also each service's RSS
holding the state of those 1M events.

The first start is killed (-9) after its snapshot, and the log grows by one snapshot interval (less one event)
before the restart: the worst tail a restart can meet. Every service runs as its own process
(``python -m services.<name>``), as it is deployed. The catch-up time is the one the service logs itself
(``state rebuilt from the log``: snapshot load plus tail replay, from the start of its runtime); the wall time from
spawning the process, which adds the interpreter and imports, is in the note. The gateway's state is PostgreSQL with its offset row: its catch-up is timed from spawn until its projector is at the
end of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from xbot.embedded import free_port

from .core import Ctx, Row, account_history, publish_stream, readyz, stop_process

STATEFUL = ("planner", "replier", "poster", "collector", "learner")
QUIET = {"PLAN_INTERVAL_MINUTES": "0", "REPLY_INTERVAL_MINUTES": "0", "POSTING_INTERVAL_MINUTES": "0",
         "COLLECT_INTERVAL_HOURS": "0", "LEARN_INTERVAL_MINUTES": "0", "LEARN_EVERY_N_OUTCOMES": "0"}


def _log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
    return out


class Run:
    """One start of one service: spawn, wait until caught up, read RSS, stop (SIGTERM: a clean stop)."""

    def __init__(self, ctx: Ctx, name: str, ns: str, log_dir: Path, database_url: str, every: int):
        self.name, self.port = name, free_port()
        self.log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        env = dict(os.environ, NATS_URL=ctx.nats.url, DATABASE_URL=database_url, XBOT_NAMESPACE=ns,
                   LOG_FORMAT="json", LOG_LEVEL="INFO", MODE="shadow", SERVICE_HEALTH_PORT=str(self.port),
                   GATEWAY_PORT=str(free_port()), READY_MAX_LAG="0", SNAPSHOT_EVERY_EVENTS=str(every), **QUIET)
        self.t0 = time.perf_counter()
        self.fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, stdout=self.fh,  # noqa: ASYNC220
                                     stderr=subprocess.STDOUT)

    async def caught_up(self, last_seq: int, timeout: float) -> float:
        """Wall seconds from spawn until caught up with ``last_seq``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: see {self.log}")
            h = await readyz(self.port)
            if h is not None and h.get("status") == 200:
                pos = h.get("projector_position")
                if pos is None or pos >= last_seq:
                    return time.perf_counter() - self.t0
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.name} did not catch up within {timeout:.0f}s")

    def rebuilt(self) -> dict[str, Any]:
        return next((e for e in _log_lines(self.log) if e.get("msg", e.get("event")) == "state rebuilt from the log"), {})

    async def wait_snapshot(self, timeout: float) -> dict[str, Any]:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            found = [e for e in _log_lines(self.log) if e.get("msg", e.get("event")) == "snapshot saved"]
            if found:
                return found[-1]
            await asyncio.sleep(0.1)
        return {}

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.proc.pid).memory_info().rss / 1e6)

    def stop(self, *, crash: bool = False) -> None:
        stop_process(self.proc, crash=crash)
        self.fh.close()


async def bench_restart(ctx: Ctx, services: tuple[str, ...] = (*STATEFUL, "gateway")) -> list[Row]:
    n = 5_000 if ctx.quick else 1_000_000
    every = 1_000 if ctx.quick else 10_000  # the default SNAPSHOT_EVERY_EVENTS; smaller for the small log
    label = f"{n:,}" if n < 1_000_000 else "1M"
    ns = f"rs{uuid.uuid4().hex[:6]}"
    bus = await ctx.bus(ns)
    await publish_stream(bus, account_history(n), n, ctx.progress)
    last = await bus.last_seq()
    tail_events = account_history(10 * every, seed=2)
    log_dir = Path(tempfile.mkdtemp(prefix="xbot-bench-restart-"))
    import asyncpg

    admin = await asyncpg.connect(ctx.pg.url)
    await admin.execute(f'CREATE DATABASE "{ns}"')  # the gateway's read models, of this log only
    await admin.close()
    dsn = ctx.pg.url.rsplit("/", 1)[0] + f"/{ns}"
    rows: list[Row] = []
    try:
        for name in services:
            ctx.progress(f"{name}: first start, full replay of {n:,} events")
            first = Run(ctx, name, ns, log_dir, dsn, every)
            try:
                wall_full = await first.caught_up(last, 1200)
                full = first.rebuilt().get("seconds", wall_full)
                snap = await first.wait_snapshot(30) if name != "gateway" else {}
                await asyncio.sleep(1.0)  # settle: let the allocator return what the replay's buffers took
                rss = first.rss_mb()
            finally:
                first.stop(crash=True)  # kill -9: no snapshot on the way out
            # the worst case: the log grew by one snapshot interval less one event since the last snapshot
            ctx.progress(f"{name}: {every - 1:,} more events, then the restart")
            await publish_stream(bus, tail_events, every - 1, ctx.progress)
            last = await bus.last_seq()
            ctx.progress(f"{name}: restart")
            again = Run(ctx, name, ns, log_dir, dsn, every)
            try:
                wall = await again.caught_up(last, 600)
                rebuilt = again.rebuilt()
            finally:
                again.stop()
            if name == "gateway":
                dlq = await bus.dlq_count()
                secs, how = wall, f"from spawn; resumes from its offset row in PostgreSQL; {dlq} dead letters"
                full_s = wall_full
            else:
                secs = float(rebuilt.get("seconds", wall))
                full_s = float(full)
                tail = rebuilt.get("events")
                how = (f"snapshot of seq {rebuilt.get('from_snapshot_seq'):,} ({(snap.get('bytes') or 0) / 1e3:,.0f} kB,"
                       f" loaded in {rebuilt.get('snapshot_load_seconds')}s) + {tail:,} tail events (kill -9, then {every - 1:,} new); {wall:.2f}s from spawn") if rebuilt.get("from_snapshot_seq") else \
                      f"no snapshot used; {wall:.2f}s from spawn"
            rows.append(Row(f"restart with {label} events until caught up: {name}", secs, "s", full_s,
                            "full replay (first start)", secs / full_s if full_s else None, "< 2 s", secs < 2, how))
            rows.append(Row(f"RSS with state for {label} events: {name}", rss, "MB", goal="report", met=None,
                            note="after the full replay"))
    finally:
        await bus.delete_namespace()
        await bus.close()
    return rows
