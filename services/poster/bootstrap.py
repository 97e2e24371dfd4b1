"""The one place the poster is wired: projection state, the posting job, its schedule, the X accounts."""

from __future__ import annotations

from typing import Any

import structlog

from shared.errors import ConfigError
from shared.flags import Flags, is_posting_allowed
from shared.service import ServiceContext, ServiceParts
from shared.x.factory import Submitted, open_account
from shared.x.port import XAccount

from .config import PosterSettings
from .domain import INTERESTED, PosterState
from .handlers import Poster, PostingPolicy

log = structlog.get_logger("poster")


class Accounts:
    """The browser account (live) and the simulated one (shadow), each opened on first use and kept open:
    one persistent browser context for the service's life. Synthetic content only ever gets the simulator."""

    def __init__(self, settings: PosterSettings, clock: Any, on_submitted: Submitted | None = None) -> None:
        self.s = settings
        self.clock = clock
        #: TEST ONLY: the crash matrix's after_click point (set when XBOT_TEST_CRASH_AT=after_click)
        self.on_submitted = on_submitted
        self._live: XAccount | None = None
        self._sim: XAccount | None = None

    async def get(self, simulated: bool) -> XAccount:
        if simulated:
            if self._sim is None:
                self._sim = await open_account(
                    self.s, simulated=True, now=self.clock.now, on_submitted=self.on_submitted
                )
            return self._sim
        changed = getattr(self._live, "session_changed_on_disk", None)
        if changed is not None and changed():
            # a session file replaced on disk (a fresh login) is picked up on the next use, without a restart
            log.info("x_session_file_changed", path=self.s.X_SESSION_FILE, detail="reopening the browser")
            await self.reset_live()
        if self._live is None:
            self._live = await open_account(self.s, simulated=False, on_submitted=self.on_submitted)
        return self._live

    async def reset_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            await live.close()

    async def close(self) -> None:
        await self.reset_live()
        sim, self._sim = self._sim, None
        if sim is not None:
            await sim.close()


def policy_of(s: PosterSettings) -> PostingPolicy:
    return PostingPolicy(
        batch=s.POSTING_BATCH,
        max_attempts=s.POSTING_MAX_ATTEMPTS,
        retry_base_seconds=s.POST_RETRY_BASE_SECONDS,
        retry_inline_max_seconds=s.POST_RETRY_INLINE_MAX_SECONDS,
        reconcile_grace_minutes=s.RECONCILE_GRACE_MINUTES,
        attention_minutes=s.RECONCILE_ATTENTION_MINUTES,
        rate_limit_backoff_seconds=s.RATE_LIMIT_BACKOFF_SECONDS,
        timeline_limit=s.RECONCILE_TIMELINE_LIMIT,
        x_base_url=s.X_BASE_URL,
        crash_at=s.XBOT_TEST_CRASH_AT,
    )


def check_settings(s: PosterSettings, flags: Flags) -> None:
    """Posting to X switched on at start needs an account and a session: say which one is missing."""
    if not flags.live or not is_posting_allowed(flags).allowed:
        return
    if not s.username():
        raise ConfigError("X_USERNAME is missing (MODE=live with posting on)")
    if not (s.X_SESSION_FILE or s.X_SESSION_B64):
        raise ConfigError("X_SESSION_FILE is missing (or X_SESSION_B64; MODE=live with posting on)")


async def build(ctx: ServiceContext) -> ServiceParts:
    s: PosterSettings = ctx.settings
    check_settings(s, ctx.flags.current())
    if s.XBOT_TEST_CRASH_AT:
        log.warning(
            "TEST ONLY: XBOT_TEST_CRASH_AT is set; this poster kills itself mid-post", at=s.XBOT_TEST_CRASH_AT
        )
    state = PosterState()
    accounts = Accounts(s, ctx.clock)
    async def catch_up(decision_id: str | None) -> None:
        await ctx.catch_up("decision", decision_id)

    poster = Poster(
        state=state,
        publish=ctx.publish_and_apply,
        flags=ctx.flags.refresh,
        clock=ctx.clock,
        accounts=accounts,
        policy=policy_of(s),
        poster_id=ctx.instance_id,
        catch_up=catch_up,
    )
    if s.XBOT_TEST_CRASH_AT == "after_click":
        accounts.on_submitted = poster.after_click

    def health() -> dict[str, Any]:
        f = ctx.flags.current()
        until = state.cooldown_until(not f.live, f.X_COOLDOWN_MINUTES)
        paused = state.rate_paused_until(not f.live)
        return {
            "mode": f.MODE,
            "posting_allowed": is_posting_allowed(f).allowed,
            "logged_out": poster.logged_out,
            "cooldown_until": until.isoformat() if until and until > ctx.clock.now() else None,
            "rate_limited_until": paused.isoformat() if paused and paused > ctx.clock.now() else None,
            **state.counts(),
        }

    interval = s.POSTING_INTERVAL_MINUTES * 60.0
    return ServiceParts(
        jobs={"posting": poster.run},
        schedules={"posting": interval} if interval > 0 else {},
        apply=state.apply,
        state=state,
        interested=INTERESTED,
        ready=poster.ready,
        health=health,
        on_stop=accounts.close,
    )
