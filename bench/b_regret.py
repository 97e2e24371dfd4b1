"""Cumulative regret of our learner against reference bandits."""

from __future__ import annotations

import numpy as np

from .core import Ctx, Row


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
