"""Idle RSS of each service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

from xbot.embedded import free_port

from .core import Ctx, Row


async def bench_rss(ctx: Ctx) -> list[Row]:
    import subprocess
    import sys

    import psutil

    from xbot.supervisor import existing_services

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
