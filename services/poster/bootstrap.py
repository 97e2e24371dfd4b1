"""The one place the poster is wired: projection state, the posting job, its schedule, the X accounts."""

from __future__ import annotations

from typing import Any

import structlog

from shared.errors import ConfigError
from shared.events import DEFAULT_ACCOUNT, Command
from shared.flags import Flags, is_posting_allowed
from shared.service import ServiceContext, ServiceParts, combine_counts, job_accounts
from shared.x.factory import Submitted, account_settings, open_account
from shared.x.port import XAccount

from .config import PosterSettings
from .domain import INTERESTED, PosterStates
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
    states = PosterStates()
    posters: dict[str, Poster] = {}
    x_accounts: dict[str, Accounts] = {}

    def poster_for(account: str) -> Poster:
        """The poster of one account: its state, its flags, its own X session (and its own simulated X)."""
        poster = posters.get(account)
        if poster is not None:
            return poster
        profile = ctx.accounts.get(account)
        builtin = profile is None or ctx.accounts.from_env(account)
        xs = s if profile is None else account_settings(s, profile, ctx.environ, builtin=builtin)
        x_accounts[account] = accounts = Accounts(xs, ctx.clock)

        async def flags() -> Flags:
            return ctx.accounts.flags_for(account, await ctx.flags.refresh())

        async def catch_up(decision_id: str | None) -> None:
            await ctx.catch_up("decision", decision_id, account=account)

        poster = posters[account] = Poster(
            state=states.of(account),
            publish=ctx.publish_and_apply,
            flags=flags,
            clock=ctx.clock,
            accounts=accounts,
            policy=policy_of(s),
            poster_id=ctx.instance_id,
            catch_up=catch_up,
            account=account,
        )
        if s.XBOT_TEST_CRASH_AT == "after_click":
            accounts.on_submitted = poster.after_click
        return poster

    async def run(cmd: Command) -> dict[str, int]:
        """One posting run for every account (or ``params.account``), one after another. An account whose run
        fails does not stop the others': the failure is raised once they have all run (the command is then
        redelivered; what was posted is in the log, and every claim is guarded)."""
        per_account: list[dict[str, int]] = []
        accounts = job_accounts(cmd, ctx)
        failure: BaseException | None = None
        await ctx.catch_up()  # once for the run
        current = ctx.flags.current()
        for profile in accounts:
            poster = poster_for(profile.id)
            if not poster.has_work(ctx.accounts.flags_for(profile.id, current)):
                per_account.append({"due": 0, "_skipped": 1})
                continue
            try:
                per_account.append(await poster.run(cmd, caught_up=True))
            except Exception as exc:
                log.exception("posting run failed for one account", account=profile.id, run_id=cmd.run_id)
                failure = failure or exc
        if failure is not None:
            raise failure
        return combine_counts(per_account)

    def ready() -> bool:
        """Unready only when every account's session is logged out (one account in trouble never takes the
        others' poster out of service)."""
        served = [poster_for(p.id) for p in ctx.accounts] or [poster_for(DEFAULT_ACCOUNT)]
        return any(p.ready() for p in served)

    def health() -> dict[str, Any]:
        f = ctx.flags.current()
        state = states.of(DEFAULT_ACCOUNT)
        until = state.cooldown_until(not f.live, f.X_COOLDOWN_MINUTES)
        paused = state.rate_paused_until(not f.live)
        default = posters.get(DEFAULT_ACCOUNT)
        return {
            "mode": f.MODE,
            "posting_allowed": is_posting_allowed(f).allowed,
            "logged_out": default.logged_out if default is not None else None,
            "accounts_logged_out": sorted(a for a, p in posters.items() if p.logged_out),
            "cooldown_until": until.isoformat() if until and until > ctx.clock.now() else None,
            "rate_limited_until": paused.isoformat() if paused and paused > ctx.clock.now() else None,
            **states.counts(),
        }

    async def close() -> None:
        for accounts in x_accounts.values():
            await accounts.close()

    for profile in ctx.accounts:
        poster_for(profile.id)
    interval = s.POSTING_INTERVAL_MINUTES * 60.0
    return ServiceParts(
        jobs={"posting": run},
        schedules={"posting": interval} if interval > 0 else {},
        apply=states.apply,
        state=states,
        interested=INTERESTED,
        ready=ready,
        health=health,
        on_stop=close,
    )
