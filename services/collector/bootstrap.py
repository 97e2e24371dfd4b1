"""The one place the collector is wired: state, handler, schedule, browser adapter, simulator."""

from __future__ import annotations

from shared.bus import ReadItem
from shared.errors import ConfigError
from shared.events import Command
from shared.service import ServiceContext, ServiceParts
from shared.x.factory import browser_opener

from .config import CollectorSettings
from .domain import INTERESTED, CollectorState, due_outcomes, evolve
from .handlers import CollectorDeps, SimulatedMetrics, collect


async def build(ctx: ServiceContext) -> ServiceParts:
    s: CollectorSettings = ctx.settings
    flags = ctx.flags.current()
    if flags.live and flags.REAL_METRICS_ENABLED and not s.username():
        raise ConfigError("X_USERNAME is missing (live collection verifies each page is our account's)")
    state = CollectorState()

    def apply(item: ReadItem) -> None:
        evolve(state, item.event)

    def simulator() -> SimulatedMetrics:
        from shared.sim.audience import Audience

        return SimulatedMetrics(Audience(s.SHADOW_SEED))

    deps = CollectorDeps(
        state=state,
        settings=s,
        flags=ctx.flags.current,
        clock=ctx.clock,
        publish=ctx.publish_and_apply,
        publish_many=ctx.publish_many_and_apply,
        open_x=browser_opener(s) if s.username() else None,
        simulator=simulator(),
    )

    async def collect_job(cmd: Command) -> dict[str, int]:
        return await collect(cmd, deps)

    def health() -> dict[str, object]:
        f = ctx.flags.current()
        owed = due_outcomes(
            state, ctx.clock.now(), s.horizons(), simulated=not f.live, max_attempts=s.COLLECT_MAX_ATTEMPTS
        )
        return {"mode": f.MODE, "posted_tracked": len(state.posted), "outcomes_due": len(owed)}

    return ServiceParts(
        jobs={"collect": collect_job},
        schedules={"collect": s.COLLECT_INTERVAL_HOURS * 3600.0},
        apply=apply,
        state=state,
        interested=INTERESTED,
        health=health,
    )
