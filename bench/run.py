"""The benchmark suite: each figure with its baseline measured in the same run on the same servers.

Run with `make bench` or `xbot bench [--quick]`. Starts its own NATS and PostgreSQL (as `make up` does) in a
temp dir, prints one table and writes it as JSON to bench/results/latest.json. One module per benchmark
(``bench/b_<name>.py``); each has a ``--quick`` size used by the smoke test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from xbot.embedded import EmbeddedNats, EmbeddedPostgres

from .b_accounts import bench_accounts
from .b_api import bench_api_metrics
from .b_consume import bench_consume
from .b_lag import bench_lag
from .b_llm_calls import bench_llm_calls
from .b_regret import bench_regret
from .b_replay import bench_replay
from .b_restart import bench_restart
from .b_rss import bench_rss
from .b_shadow_loop import bench_shadow_loop
from .b_uniqueness import bench_uniqueness
from .core import Ctx, Row

RESULTS = Path(__file__).parent / "results" / "latest.json"
#: one benchmark that runs longer than this is cut and reported as failed, naming its last step (a hang must not
#: eat the suite's time)
QUICK_LIMIT_S, FULL_LIMIT_S = 120.0, 1800.0

BENCHMARKS: dict[str, Callable[[Ctx], Awaitable[list[Row]]]] = {
    "replay": bench_replay,
    "consume": bench_consume,
    "lag": bench_lag,
    "uniqueness": bench_uniqueness,
    "regret": bench_regret,
    "rss": bench_rss,
    "api": bench_api_metrics,
    "restart": bench_restart,
    "shadow": bench_shadow_loop,
    "llm_calls": bench_llm_calls,
    "accounts": bench_accounts,
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
    last = ["start"]

    def step(message: str) -> None:
        last[0] = message
        progress(message)

    ctx = Ctx(quick, nats, pg, step)
    rows: list[Row] = []
    try:
        for name, fn in BENCHMARKS.items():
            if only and name not in only:
                continue
            progress(f"[{name}] start")
            limit = QUICK_LIMIT_S if quick else FULL_LIMIT_S
            t0 = time.monotonic()
            try:
                rows += await asyncio.wait_for(fn(ctx), timeout=limit)
            except TimeoutError as exc:
                took = time.monotonic() - t0
                why = f"not done after {limit:.0f} s" if took >= limit - 1 else f"timed out after {took:.0f} s ({exc})"
                rows.append(Row(name, None, "", note=f"failed: {why} (last step: {last[0]})"))
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
