"""The uniqueness gate against one numpy matrix-vector product."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np

from .core import Ctx, Row


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
