"""The one place the collector is wired: state, handler, schedule, and per account its X settings, browser
adapter and simulated audience."""

from __future__ import annotations

from shared.accounts import AccountProfile
from shared.bus import ReadItem
from shared.errors import ConfigError
from shared.events import DEFAULT_ACCOUNT, Command
from shared.service import ServiceContext, ServiceParts, job_accounts
from shared.x.factory import account_settings, browser_opener

from .config import CollectorSettings
from .domain import INTERESTED, CollectorState, due_outcomes, evolve
from .handlers import AccountCollect, CollectorDeps, SimulatedMetrics, collect


def audience_of(s: CollectorSettings, xs: CollectorSettings, profile: AccountProfile | None, *,
                builtin: bool) -> SimulatedMetrics:
    """An account's simulated audience: the default account of the environment keeps ``SHADOW_SEED`` and the
    default arms (today's figures); any other has its own seed (``account_settings``) over its own arms, so each
    account has a hidden truth of its own to be learnt."""
    from shared.sim.audience import Audience

    if builtin or profile is None:
        return SimulatedMetrics(Audience(s.SHADOW_SEED))
    return SimulatedMetrics(Audience(xs.SHADOW_SEED, content_arms=profile.content_arms()))


async def build(ctx: ServiceContext) -> ServiceParts:
    s: CollectorSettings = ctx.settings
    per_account: dict[tuple[str, int], AccountCollect] = {}

    def account_collect(profile: AccountProfile) -> AccountCollect:
        """One account's collection dependencies, rebuilt when its profile in force changes."""
        key = (profile.id, id(profile))
        acct = per_account.get(key)
        if acct is None:
            account = profile.id
            builtin = ctx.accounts.from_env(account)
            xs = account_settings(s, profile, ctx.environ, builtin=builtin)
            acct = per_account[key] = AccountCollect(
                account=account,
                settings=xs,
                flags=lambda: ctx.accounts.flags_for(account, ctx.flags.current()),
                open_x=browser_opener(xs) if xs.username() else None,
                simulator=audience_of(s, xs, profile, builtin=builtin),
            )
        return acct

    for profile in ctx.accounts:
        acct = account_collect(profile)
        f = acct.flags()
        if f.live and f.REAL_METRICS_ENABLED and not acct.settings.username():
            if ctx.accounts.from_env(profile.id):
                raise ConfigError("X_USERNAME is missing (live collection verifies each page is our account's)")
            raise ConfigError(f"account {profile.id}: username is missing (live collection verifies each page is "
                              "our account's)")
    state = CollectorState()

    def apply(item: ReadItem) -> None:
        evolve(state, item.event)

    def accounts_for(cmd: Command) -> list[AccountCollect]:
        return [account_collect(p) for p in job_accounts(cmd, ctx)]

    default = ctx.accounts.get(DEFAULT_ACCOUNT)
    default_acct = account_collect(default) if default is not None else None
    deps = CollectorDeps(
        state=state,
        settings=s,
        flags=ctx.flags.current,
        clock=ctx.clock,
        publish=ctx.publish_and_apply,
        publish_many=ctx.publish_many_and_apply,
        open_x=default_acct.open_x if default_acct else (browser_opener(s) if s.username() else None),
        simulator=default_acct.simulator if default_acct else audience_of(s, s, None, builtin=True),
        accounts=accounts_for,
    )

    async def collect_job(cmd: Command) -> dict[str, int]:
        return await collect(cmd, deps)

    def health() -> dict[str, object]:
        f = ctx.flags.current()
        owed = due_outcomes(
            state, ctx.clock.now(), s.horizons(), simulated=not f.live, max_attempts=s.COLLECT_MAX_ATTEMPTS
        )
        by_account: dict[str, int] = {}
        for d in owed:
            by_account[d.posted.account] = by_account.get(d.posted.account, 0) + 1
        return {"mode": f.MODE, "posted_tracked": len(state.posted), "outcomes_due": len(owed),
                "outcomes_due_by_account": by_account}

    return ServiceParts(
        jobs={"collect": collect_job},
        schedules={"collect": s.COLLECT_INTERVAL_HOURS * 3600.0},
        apply=apply,
        state=state,
        interested=INTERESTED,
        health=health,
    )
