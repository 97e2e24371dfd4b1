"""The one place the planner is wired: state from the log, the writers, the budget, the job, its schedule."""

from __future__ import annotations

from shared.bus import ReadItem
from shared.decisions import INTERESTED, RecentDecisions, llm_writers
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
    s.check_live(ctx.flags.current())
    state = RecentDecisions.empty(uniqueness_window_days=s.UNIQUENESS_WINDOW_DAYS)
    bus = ctx.bus

    def apply(item: ReadItem) -> None:
        state.apply(item.event)

    async def catch_up() -> None:
        if ctx.projection is not None:
            await ctx.projection.wait_for(await bus.last_seq(), timeout=60)

    local, live = await llm_writers(ctx, s)
    deps = PlanDeps(
        state=state,
        flags=ctx.flags.current,
        clock=ctx.clock.now,
        publish=ctx.publish_and_apply,
        publish_begin=bus.publish_begin,
        local=local,
        live=live.current,
        batch=s.PLAN_BATCH,
        max_queued=s.PLAN_MAX_QUEUED,
        thread_ratio=s.PLAN_THREAD_RATIO,
        predict=predict_er,
        seed=s.SHADOW_SEED,
        catch_up=catch_up,
        service=ctx.name,
        claims=s.claim_policy(),
    )

    async def plan(cmd: Command) -> dict[str, int]:
        return await plan_job(cmd, deps, evt_prefix=bus.names.evt_prefix)

    def health() -> dict[str, object]:
        return {"mode": ctx.flags.current().MODE, **state.summary()}

    return deps, ServiceParts(
        jobs={"plan": plan},
        schedules={"plan": s.PLAN_INTERVAL_MINUTES * 60.0},
        apply=apply,
        state=state,
        state_config={"UNIQUENESS_WINDOW_DAYS": s.UNIQUENESS_WINDOW_DAYS},
        interested=INTERESTED,
        on_stop=live.close,
        health=health,
    )
