"""Live projection lag at a steady rate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from shared.bus import Projection
from shared.events import encode

from .core import Ctx, Row, _event


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
