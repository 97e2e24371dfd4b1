"""The one place the planner is wired: the shared drafting wiring (state from the log, catch-up, writers, budget,
health), then what is the planner's own: its dependencies, the job, its schedule."""

from __future__ import annotations

from shared.drafting import wire_drafting
from shared.events import Command
from shared.learning.predictors import predict_er
from shared.service import ServiceContext, ServiceParts

from .config import PlannerSettings
from .handlers import PlanDeps, plan_job


async def build(ctx: ServiceContext) -> ServiceParts:
    _, parts = await wire(ctx)
    return parts


async def wire(ctx: ServiceContext) -> tuple[PlanDeps, ServiceParts]:
    """The planner's dependencies and its parts (tests use the dependencies directly)."""
    s: PlannerSettings = ctx.settings
    d = await wire_drafting(ctx, s)
    bus = ctx.bus
    deps = PlanDeps(
        state=d.state,
        flags=ctx.flags.current,
        clock=ctx.clock.now,
        publish=ctx.publish_and_apply,
        publish_begin=bus.publish_begin,
        local=d.local,
        live=d.live.current,
        batch=s.PLAN_BATCH,
        max_queued=s.PLAN_MAX_QUEUED,
        thread_ratio=s.PLAN_THREAD_RATIO,
        predict=predict_er,
        seed=s.SHADOW_SEED,
        catch_up=d.catch_up,
        service=ctx.name,
        claims=s.claim_policy(),
    )

    async def plan(cmd: Command) -> dict[str, int]:
        return await plan_job(cmd, deps)

    return deps, d.parts(jobs={"plan": plan}, schedules={"plan": s.PLAN_INTERVAL_MINUTES * 60.0})
