"""A service's consume path against a raw durable pull."""

from __future__ import annotations

import asyncio
import time

from shared.bus import ConsumerPolicy, Delivered

from .core import Ctx, Row, fill


async def bench_consume(ctx: Ctx) -> list[Row]:
    n = 5_000 if ctx.quick else 200_000
    bus = await ctx.bus()
    await fill(bus, n, ctx.progress)
    from nats.js import api

    ctx.progress("baseline: raw durable pull, batch 1000, ack()")
    psub = await bus.js.pull_subscribe(bus.names.all_events, durable="raw", stream=bus.names.events_stream,
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
    c = await bus.consume("ours", bus.names.all_events, handler,
                          policy=ConsumerPolicy(batch=1000, concurrency=64, fetch_timeout_s=1))
    await asyncio.wait_for(done.wait(), 600)
    ours = n / (time.perf_counter() - t0)
    await c.stop()
    await bus.js.delete_stream(bus.names.events_stream)
    await bus.close()
    return [Row("service consume path (decode, handle, ack)", ours, "ev/s", base, "raw pull batch 1000 + ack",
                ours / base, ">= 0.5 x baseline", ours / base >= 0.5, f"{n:,} events")]
