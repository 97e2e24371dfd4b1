"""The one place the replier is wired: the shared drafting wiring (state from the log, catch-up, writers, budget,
health), then what is the replier's own: the X port, its dependencies, the job, its schedule."""

from __future__ import annotations

from datetime import timedelta

from shared.drafting import wire_drafting
from shared.events import Command
from shared.learning.predictors import predict_er
from shared.service import ServiceContext, ServiceParts
from shared.x.factory import browser_opener, simulated_account

from .config import ReplierSettings
from .domain import parse_list
from .handlers import ReplyDeps, reply_job


async def build(ctx: ServiceContext) -> ServiceParts:
    _, parts = await wire(ctx)
    return parts


async def wire(ctx: ServiceContext) -> tuple[ReplyDeps, ServiceParts]:
    """The replier's dependencies and its parts (tests use the dependencies directly)."""

    s: ReplierSettings = ctx.settings
    d = await wire_drafting(ctx, s)  # MODE=live also needs X_USERNAME (ReplierSettings.check_live)
    deps = ReplyDeps(
        state=d.state,
        flags=ctx.flags.current,
        clock=ctx.clock.now,
        publish=ctx.publish_and_apply,
        local=d.local,
        live=d.live.current,
        simulated_x=simulated_account(s, now=ctx.clock.now),
        open_live_x=browser_opener(s) if s.username() else None,
        own_username=s.username() or "xbot_shadow",
        accounts=parse_list(s.REPLY_TARGET_ACCOUNTS),
        queries=parse_list(s.REPLY_SEARCH_QUERIES),
        max_age=timedelta(hours=s.REPLY_MAX_AGE_HOURS),
        batch=s.REPLY_BATCH,
        per_source=s.REPLY_CANDIDATES_PER_SOURCE,
        seed=s.SHADOW_SEED,
        catch_up=d.catch_up,
        predict=predict_er,
        claims=s.claim_policy(),
    )

    async def reply(cmd: Command) -> dict[str, int]:
        return await reply_job(cmd, deps)

    return deps, d.parts(jobs={"reply": reply}, schedules={"reply": s.REPLY_INTERVAL_MINUTES * 60.0})
