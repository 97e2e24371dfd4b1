"""The one place the collector is wired: state, handler, schedule, browser adapter, simulator."""

from __future__ import annotations

from shared.bus import ReadItem
from shared.errors import ConfigError
from shared.events import Command
from shared.service import ServiceContext, ServiceParts
from shared.x.port import XAccount

from .config import CollectorSettings
from .domain import INTERESTED, CollectorState, due_outcomes, evolve
from .handlers import CollectorDeps, OpenX, SimulatedMetrics, collect


def browser_opener(s: CollectorSettings) -> OpenX:
    """Open the real browser adapter for one run (imported lazily: Playwright is only needed in live mode)."""

    async def open_x() -> XAccount:
        from shared.x.browser import PlaywrightX

        x = PlaywrightX(
            username=s.username(),
            base_url=s.X_BASE_URL,
            chromium_path=s.CHROMIUM_PATH or None,
            session_file=s.X_SESSION_FILE or None,
            session_b64=s.X_SESSION_B64 or None,
            artifacts_dir=s.X_ARTIFACTS_DIR or None,
            dwell_ms=(s.X_DWELL_MIN_MS, max(s.X_DWELL_MIN_MS, s.X_DWELL_MAX_MS)),
            timeout_ms=s.X_TIMEOUT_MS,
        )
        try:
            await x.start()
        except BaseException:
            await x.close()
            raise
        return x

    return open_x


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
        interested=INTERESTED,
        health=health,
    )
