"""The one place the planner is wired: the shared drafting wiring (state from the log, catch-up, writers, budget,
health), then what is the planner's own: its dependencies per account, the job, its schedule."""

from __future__ import annotations

from shared.drafting import wire_drafting
from shared.drafting.voice import voice_of
from shared.events import DEFAULT_ACCOUNT, Command
from shared.learning.predictors import predict_er
from shared.service import ServiceContext, ServiceParts, combine_counts, job_accounts

from .config import PlannerSettings
from .handlers import PlanDeps, plan_job


async def build(ctx: ServiceContext) -> ServiceParts:
    _, parts = await wire(ctx)
    return parts


async def wire(ctx: ServiceContext) -> tuple[PlanDeps, ServiceParts]:
    """The planner's dependencies (the default account's; tests use them directly) and its parts."""
    s: PlannerSettings = ctx.settings
    d = await wire_drafting(ctx, s)
    bus = ctx.bus
    deps_by_account: dict[tuple[str, int], PlanDeps] = {}

    def deps_for(account: str) -> PlanDeps:
        """The dependencies of one account, rebuilt when its profile in force changes."""
        profile = ctx.accounts.get(account)
        key = (account, id(profile))
        deps = deps_by_account.get(key)
        if deps is None:
            builtin = ctx.accounts.from_env(account)
            voice = voice_of(profile, builtin=builtin, claims=s.claim_policy() if builtin else None) \
                if profile is not None else None
            deps = deps_by_account[key] = PlanDeps(
                state=d.states.of(account),
                flags=lambda: ctx.accounts.flags_for(account, ctx.flags.current()),
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
                claims=voice.claims if voice else s.claim_policy(),
                account=account,
                voice=voice,
            )
        return deps

    async def plan(cmd: Command) -> dict[str, int]:
        await d.catch_up()  # once for the run: every account's state is then as new as the log
        return combine_counts([await plan_job(cmd, deps_for(p.id), caught_up=True) for p in job_accounts(cmd, ctx)])

    return deps_for(DEFAULT_ACCOUNT), d.parts(jobs={"plan": plan},
                                              schedules={"plan": s.PLAN_INTERVAL_MINUTES * 60.0})

