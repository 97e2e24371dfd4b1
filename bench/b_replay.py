"""Replay read and the rebuild of every read model, against a raw ordered read."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec

from shared.events import LlmCallCompleted

from .core import Ctx, Row, fill


async def bench_replay(ctx: Ctx) -> list[Row]:
    n = 5_000 if ctx.quick else 1_000_000
    bus = await ctx.bus()
    await fill(bus, n, ctx.progress)

    # baseline: raw nats-py ordered read + msgspec decode, the fastest way nats-py offers (a subscription
    # callback: no await per message on the reader's side), pending limits large enough that nothing is dropped
    ctx.progress("baseline: raw ordered read (callback) + decode")
    dec = msgspec.json.Decoder(LlmCallCompleted)
    done = asyncio.Event()
    got = 0

    async def on_msg(msg: Any) -> None:
        nonlocal got
        dec.decode(msg.data)
        got += 1
        if got >= n:
            done.set()

    t0 = time.perf_counter()
    sub = await bus.js.subscribe(bus.names.all_events, ordered_consumer=True, cb=on_msg,
                                 pending_msgs_limit=n + 1000, pending_bytes_limit=4 * 1024 * 1024 * 1024)
    async with asyncio.timeout(600):
        await done.wait()
    base = n / (time.perf_counter() - t0)
    await sub.unsubscribe()

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
                        f"{stats.events:,} events; read by a reader process, projected by this one"))
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    return rows
