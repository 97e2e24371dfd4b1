"""The one place the replier is wired: state from the log, the writers, the X port, the job, its schedule."""

from __future__ import annotations

from datetime import timedelta

from shared.bus import ReadItem
from shared.decisions import INTERESTED, RecentDecisions, llm_writers, predicted_er
from shared.errors import ConfigError
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
    flags = ctx.flags.current()
    s.check_live(flags)
    if flags.live and not s.username():
        raise ConfigError("X_USERNAME is missing (MODE=live replies need our account, to skip our own tweets)")
    state = RecentDecisions.empty(uniqueness_window_days=s.UNIQUENESS_WINDOW_DAYS)
    bus = ctx.bus

    def apply(item: ReadItem) -> None:
        state.apply(item.event)

    async def catch_up() -> None:
        if ctx.projection is not None:
            await ctx.projection.wait_for(await bus.last_seq(), timeout=60)

    local, live = await llm_writers(ctx, s)
    own = s.username() or "xbot_shadow"
    deps = ReplyDeps(
        state=state,
        flags=ctx.flags.current,
        clock=ctx.clock.now,
        publish=ctx.publish_and_apply,
        local=local,
        live=live.current,
        simulated_x=simulated_account(s, now=ctx.clock.now),
        open_live_x=browser_opener(s) if s.username() else None,
        own_username=own,
        accounts=parse_list(s.REPLY_TARGET_ACCOUNTS),
        queries=parse_list(s.REPLY_SEARCH_QUERIES),
        max_age=timedelta(hours=s.REPLY_MAX_AGE_HOURS),
        batch=s.REPLY_BATCH,
        per_source=s.REPLY_CANDIDATES_PER_SOURCE,
        seed=s.SHADOW_SEED,
        catch_up=catch_up,
        predict=lambda f: predicted_er(state.model, f, predict_er),
        claims=s.claim_policy(),
    )

    async def reply(cmd: Command) -> dict[str, int]:
        return await reply_job(cmd, deps, evt_prefix=bus.names.evt_prefix)

    def health() -> dict[str, object]:
        return {"mode": ctx.flags.current().MODE, **state.summary()}

    return deps, ServiceParts(
        jobs={"reply": reply},
        schedules={"reply": s.REPLY_INTERVAL_MINUTES * 60.0},
        apply=apply,
        state=state,
        state_config={"UNIQUENESS_WINDOW_DAYS": s.UNIQUENESS_WINDOW_DAYS},
        interested=INTERESTED,
        on_stop=live.close,
        health=health,
    )

