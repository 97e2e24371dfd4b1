"""The benchmark suite: each figure with its baseline measured in the same run on the same servers.

Run with `make bench` or `xbot bench [--quick]`. Starts its own NATS and PostgreSQL (as `make up` does) in a
temp dir, prints one table and writes it as JSON to bench/results/latest.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from shared.bus import BusNames, ConsumerPolicy, Delivered, JetStreamBus, Projection, StreamSettings
from shared.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from shared.events import LlmCallCompleted, encode

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass
class Row:
    benchmark: str
    figure: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Ctx:
    quick: bool
    nats: EmbeddedNats
    pg: EmbeddedPostgres
    progress: Callable[[str], None]

    async def bus(self, ns: str | None = None) -> JetStreamBus:
        b = await JetStreamBus.connect(
            self.nats.url, names=BusNames(ns or f"b{uuid.uuid4().hex[:8]}"),
            settings=StreamSettings(duplicate_window_s=60),
        )
        await b.ensure()
        return b


def _event(i: int) -> LlmCallCompleted:
    return LlmCallCompleted(
        event_id=f"e{i:09d}-{uuid.uuid4().hex[:8]}", occurred_at=datetime.now(UTC), correlation_id="bench-run",
        request_id=f"r{i:09d}", kind="chat", model="gpt-4o-mini", prompt_tokens=420, completion_tokens=96,
        total_tokens=516, cost_usd=0.0001206, duration_ms=812.5, service="planner",
    )


async def fill(bus: JetStreamBus, n: int, progress: Callable[[str], None], chunk: int = 20_000) -> None:
    done = 0
    while done < n:
        k = min(chunk, n - done)
        await bus.publish_many([_event(done + i) for i in range(k)])
        done += k
        progress(f"published {done:,}/{n:,} events")


async def bench_replay(ctx: Ctx) -> list[Row]:
    n = 5_000 if ctx.quick else 1_000_000
    bus = await ctx.bus()
    await fill(bus, n, ctx.progress)

    # baseline: raw nats-py ordered read + msgspec decode
    ctx.progress("baseline: raw ordered read + decode")
    dec = msgspec.json.Decoder(LlmCallCompleted)
    t0 = time.perf_counter()
    sub = await bus.js.subscribe(f"{bus.names.evt_prefix}.>", ordered_consumer=True,
                                 pending_msgs_limit=200_000, pending_bytes_limit=512 * 1024 * 1024)
    got = 0
    while got < n:
        msg = await sub.next_msg(timeout=10)
        dec.decode(msg.data)
        got += 1
    await sub.unsubscribe()
    base = n / (time.perf_counter() - t0)

    ctx.progress("ours: bus.read (decode into the tagged union)")
    t0 = time.perf_counter()
    got = 0
    async for item in bus.read():
        if not item.caught_up:
            got += 1
    ours = got / (time.perf_counter() - t0)
    rows = [Row("replay read (bus.read, decode)", ours, "ev/s", base, "raw ordered read + msgspec decode",
                ours / base, ">= 0.33 x baseline", ours / base >= 0.33, f"{n:,} events")]
    try:
        from services.gateway.replay import rebuild
    except Exception as exc:
        rows.append(Row("rebuild all read models", None, "ev/s", base, "raw ordered read + msgspec decode",
                        note=f"not run: {exc}"))
    else:
        import asyncpg

        db = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(ctx.pg.url)
        await admin.execute(f'CREATE DATABASE "{db}"')
        await admin.close()
        dsn = ctx.pg.url.rsplit("/", 1)[0] + f"/{db}"
        ctx.progress("rebuild read models from the log")
        stats = await rebuild(nats_url=ctx.nats.url, database_url=dsn, namespace=bus.names.namespace,
                              on_progress=lambda d, t: ctx.progress(f"rebuild {d:,}/{t:,}") if d % 50_000 == 0 else None)
        rate = stats.rate
        rows.append(Row("rebuild all read models", rate, "ev/s", base, "raw ordered read + msgspec decode",
                        rate / base, ">= 50k ev/s and >= 0.33 x baseline", rate >= 50_000 and rate / base >= 0.33,
                        f"{stats.events:,} events"))
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    return rows


async def bench_consume(ctx: Ctx) -> list[Row]:
    n = 5_000 if ctx.quick else 200_000
    bus = await ctx.bus()
    await fill(bus, n, ctx.progress)
    from nats.js import api

    ctx.progress("baseline: raw durable pull, batch 1000, ack()")
    psub = await bus.js.pull_subscribe(f"{bus.names.evt_prefix}.>", durable="raw", stream=bus.names.events_stream,
                                       config=api.ConsumerConfig(max_ack_pending=20_000))
    t0 = time.perf_counter()
    got = 0
    while got < n:
        for m in await psub.fetch(1000, timeout=5):
            await m.ack()
            got += 1
    base = n / (time.perf_counter() - t0)

    ctx.progress("ours: consumer loop (decode, handle, ack)")
    done = asyncio.Event()
    count = 0

    async def handler(d: Delivered) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    t0 = time.perf_counter()
    c = await bus.consume("ours", f"{bus.names.evt_prefix}.>", handler,
                          policy=ConsumerPolicy(batch=1000, concurrency=64, fetch_timeout_s=1))
    await asyncio.wait_for(done.wait(), 600)
    ours = n / (time.perf_counter() - t0)
    await c.stop()
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    return [Row("service consume path (decode, handle, ack)", ours, "ev/s", base, "raw pull batch 1000 + ack",
                ours / base, ">= 0.5 x baseline", ours / base >= 0.5, f"{n:,} events")]


async def bench_lag(ctx: Ctx) -> list[Row]:
    seconds = 2 if ctx.quick else 15
    rate = 1000
    bus = await ctx.bus()
    lags: list[float] = []
    sent_at: dict[str, float] = {}

    def apply(item: Any) -> None:
        t = sent_at.pop(item.event.event_id, None)
        if t is not None:
            lags.append(time.perf_counter() - t)

    proj = Projection(bus, apply, name="lag")
    proj.start()
    await proj.wait_caught_up()
    ctx.progress(f"steady {rate} ev/s for {seconds}s")
    start = time.perf_counter()
    i = 0
    pending = []
    while time.perf_counter() - start < seconds:
        target = int((time.perf_counter() - start) * rate)
        while i < target:
            ev = _event(i)
            sent_at[ev.event_id] = time.perf_counter()
            pending.append(await bus.js.publish_async(bus.subject(ev), encode(ev), headers={"Nats-Msg-Id": ev.event_id}))
            i += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*pending)
    deadline = time.perf_counter() + 10
    while sent_at and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    await proj.stop()
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    p99 = float(np.percentile(lags, 99)) * 1000 if lags else None
    p50 = float(np.percentile(lags, 50)) * 1000 if lags else None
    return [Row("live projection lag at 1,000 ev/s (p99)", p99, "ms", goal="p99 < 50 ms",
                met=p99 is not None and p99 < 50, note=f"p50 {p50:.2f} ms, {len(lags):,} events" if lags else "")]


async def bench_uniqueness(ctx: Ctx) -> list[Row]:
    from shared.gates.uniqueness import UniquenessIndex, uniqueness_gate

    rows = []
    dim = 1536
    rng = np.random.default_rng(1)
    now = datetime.now(UTC)
    for n in ((10_000,) if ctx.quick else (10_000, 100_000)):
        ctx.progress(f"uniqueness over {n:,} x {dim}")
        m = rng.standard_normal((n, dim), dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        idx = UniquenessIndex(window_days=30, capacity=n)
        for i in range(n):
            idx.add(f"d{i}", m[i], f"h{i}", now)
        q = rng.standard_normal(dim, dtype=np.float32)
        q /= np.linalg.norm(q)
        reps = 20

        t0 = time.perf_counter()
        for _ in range(reps):
            float((m @ q).max())
        base = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            uniqueness_gate(q, "new", idx, threshold=0.85, now=now)
        ours = (time.perf_counter() - t0) / reps
        rows.append(Row(f"uniqueness gate over {n:,} embeddings", ours * 1000, "ms", base * 1000,
                        "one numpy matrix-vector product", ours / base, "<= 1.5 x baseline", ours / base <= 1.5))
    return rows


async def bench_regret(ctx: Ctx) -> list[Row]:
    from shared.sim.audience import Audience
    from shared.sim.regret import run_policy

    n = 2000
    seeds = (1, 2) if ctx.quick else (1, 2, 3, 4, 5)
    res: dict[str, float] = {}
    for policy in ("ours", "thompson_ref", "ucb1_ref", "random"):
        ctx.progress(f"regret: {policy}")
        vals = [run_policy(Audience(seed=s), policy, n_decisions=n, seed=s).cumulative_regret for s in seeds]
        res[policy] = float(np.mean(vals))
    ref = min(res["thompson_ref"], res["ucb1_ref"])
    return [
        Row("learning: cumulative regret, 2,000 decisions", res["ours"], "regret", ref,
            "best reference (Thompson / UCB1)", res["ours"] / ref, "<= 1.1 x reference", res["ours"] / ref <= 1.1,
            f"thompson_ref {res['thompson_ref']:.2f}, ucb1_ref {res['ucb1_ref']:.2f}, mean of {len(seeds)} seeds"),
        Row("learning: regret vs uniform random", res["ours"], "regret", res["random"], "uniform random",
            res["ours"] / res["random"], "<= 0.3 x random", res["ours"] / res["random"] <= 0.3),
    ]


async def bench_rss(ctx: Ctx) -> list[Row]:
    import subprocess
    import sys

    import psutil

    from shared.supervisor import existing_services

    rows = []
    ns = f"rss{uuid.uuid4().hex[:6]}"
    for name in existing_services():
        ctx.progress(f"idle RSS: {name}")
        env = dict(os.environ, NATS_URL=ctx.nats.url, DATABASE_URL=ctx.pg.url, XBOT_NAMESPACE=ns, LOG_FORMAT="json",
                   GATEWAY_PORT=str(free_port()), MODE="shadow")
        p = subprocess.Popen(  # noqa: ASYNC220 - a child we measure, started once per service
            [sys.executable, "-m", f"services.{name}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await asyncio.sleep(4 if ctx.quick else 8)
            rss = psutil.Process(p.pid).memory_info().rss / 1e6 if p.poll() is None else None
        finally:
            p.terminate()
            with contextlib.suppress(Exception):
                p.wait(10)
        rows.append(Row(f"idle RSS: {name}", rss, "MB", goal="< 120 MB", met=rss is not None and rss < 120,
                        note="" if rss is not None else "service exited during start"))
    return rows


def _loadgen(port: int, path: str, seconds: float, conns: int) -> dict[str, Any]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(Path(__file__).parent / "loadgen.py"), str(port), path, str(seconds),
                          str(conns)], capture_output=True, text=True, timeout=seconds + 60, check=True)
    return json.loads(out.stdout)


async def _wait_http(port: int, path: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if (await client.get(f"http://127.0.0.1:{port}{path}")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"nothing answered on :{port}{path}")


async def bench_api_metrics(ctx: Ctx) -> list[Row]:
    import subprocess
    import sys

    seconds, conns = (2.0, 8) if ctx.quick else (10.0, 16)
    gport, bport = free_port(), free_port()
    ns = f"api{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, NATS_URL=ctx.nats.url, DATABASE_URL=ctx.pg.url, XBOT_NAMESPACE=ns, LOG_FORMAT="json",
               GATEWAY_PORT=str(gport), MODE="shadow", LOG_LEVEL="WARNING")
    gw = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env, stdout=subprocess.DEVNULL,  # noqa: ASYNC220
                          stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, str(Path(__file__).parent / "bare_app.py"), str(bport)],  # noqa: ASYNC220
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_http(gport, "/api/metrics")
        await _wait_http(bport, "/api/metrics")
        ctx.progress("load on the bare endpoint")
        base = await asyncio.to_thread(_loadgen, bport, "/api/metrics", seconds, conns)
        ctx.progress("load on /api/metrics")
        ours = await asyncio.to_thread(_loadgen, gport, "/api/metrics", seconds, conns)
    finally:
        for p in (gw, bare):
            p.terminate()
            with contextlib.suppress(Exception):
                p.wait(10)
    ratio = ours["rps"] / base["rps"]
    return [
        Row("/api/metrics under load (second process)", ours["rps"], "req/s", base["rps"], "bare FastAPI endpoint",
            ratio, ">= 0.8 x baseline", ratio >= 0.8, f"{conns} connections, {ours['errors']} errors"),
        Row("/api/metrics latency p99", ours["p99_ms"], "ms", base["p99_ms"], "bare FastAPI endpoint p99",
            ours["p99_ms"] / base["p99_ms"], "p99 < 10 ms", ours["p99_ms"] < 10, f"p50 {ours['p50_ms']:.2f} ms"),
    ]


async def bench_restart(ctx: Ctx) -> list[Row]:
    """A service restarted with N events in the log, until caught up (its projection replays the log)."""
    from services.poster.domain import INTERESTED, PosterState

    n = 5_000 if ctx.quick else 1_000_000
    bus = await ctx.bus()
    await fill(bus, n, ctx.progress)
    ctx.progress("full replay into a service's state (the poster's projection)")
    state = PosterState()
    t0 = time.perf_counter()
    proj = Projection(bus, state.apply, name="restart", names=INTERESTED)
    proj.start()
    await proj.wait_caught_up(timeout=600)
    full = time.perf_counter() - t0
    await proj.stop()
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    return [Row("service restart with the log, until caught up", full, "s", goal="< 2 s",
                met=full < 2, note=f"{n:,} events; no snapshots yet, so this is the full replay time")]


BENCHMARKS: dict[str, Callable[[Ctx], Awaitable[list[Row]]]] = {
    "replay": bench_replay,
    "consume": bench_consume,
    "lag": bench_lag,
    "uniqueness": bench_uniqueness,
    "regret": bench_regret,
    "rss": bench_rss,
    "api": bench_api_metrics,
    "restart": bench_restart,
}


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def render(rows: list[Row]) -> str:
    head = ("benchmark", "figure", "unit", "baseline", "ratio", "goal", "met", "note")
    table = [head] + [
        (r.benchmark, _fmt(r.figure), r.unit, _fmt(r.baseline) + (f" ({r.baseline_name})" if r.baseline_name else ""),
         _fmt(r.ratio), r.goal, {True: "yes", False: "NO", None: "-"}[r.met], r.note)
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in table)


async def run(quick: bool, only: list[str] | None, progress: Callable[[str], None]) -> list[Row]:
    tmp = Path(tempfile.mkdtemp(prefix="xbot-bench-"))
    os.chmod(tmp, 0o755)
    nats = EmbeddedNats(tmp / "nats").start()
    pg = EmbeddedPostgres(tmp / "pg" / "data").start()
    ctx = Ctx(quick, nats, pg, progress)
    rows: list[Row] = []
    try:
        for name, fn in BENCHMARKS.items():
            if only and name not in only:
                continue
            progress(f"[{name}] start")
            try:
                rows += await fn(ctx)
            except Exception as exc:
                rows.append(Row(name, None, "", note=f"failed: {type(exc).__name__}: {exc}"))
    finally:
        pg.stop()
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(quick: bool = False, only: list[str] | None = None, out: Path = RESULTS) -> list[Row]:
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("benchmarks") as status:
        rows = asyncio.run(run(quick, only, lambda m: status.update(m)))
    print(render(rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": quick, "at": datetime.now(UTC).isoformat(),
                               "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"\nwritten to {out}")
    return rows


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
