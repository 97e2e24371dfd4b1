"""/api/metrics under load from a second process, against a bare FastAPI endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from xbot.embedded import free_port

from .core import Ctx, Row


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
