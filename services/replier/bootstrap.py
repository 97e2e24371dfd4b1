"""The one place the replier is wired: the shared drafting wiring (state from the log, catch-up, writers, budget,
health), then what is the replier's own: the X port and its dependencies per account, the job, its schedule."""

from __future__ import annotations

from datetime import timedelta

from shared.drafting import wire_drafting
from shared.drafting.voice import voice_of
from shared.events import DEFAULT_ACCOUNT, Command
from shared.learning.predictors import predict_er
from shared.service import ServiceContext, ServiceParts, combine_counts, job_accounts
from shared.x.factory import account_settings, browser_opener, simulated_account

from .config import ReplierSettings
from .domain import parse_list
from .handlers import ReplyDeps, reply_job


async def build(ctx: ServiceContext) -> ServiceParts:
    _, parts = await wire(ctx)
    return parts


async def wire(ctx: ServiceContext) -> tuple[ReplyDeps, ServiceParts]:
    """The replier's dependencies (the default account's; tests use them directly) and its parts."""

    s: ReplierSettings = ctx.settings
    d = await wire_drafting(ctx, s)  # MODE=live also needs X_USERNAME (ReplierSettings.check_live)
    deps_by_account: dict[tuple[str, int], ReplyDeps] = {}

    def deps_for(account: str) -> ReplyDeps:
        """The dependencies of one account, rebuilt when its profile in force changes."""
        profile = ctx.accounts.get(account)
        key = (account, id(profile))
        deps = deps_by_account.get(key)
        if deps is not None:
            return deps
        builtin = profile is None or ctx.accounts.from_env(account)
        xs = s if profile is None else account_settings(s, profile, ctx.environ, builtin=builtin)
        voice = None if profile is None else voice_of(profile, builtin=builtin,
                                                       claims=s.claim_policy() if builtin else None)
        if builtin:
            targets, queries = parse_list(s.REPLY_TARGET_ACCOUNTS), parse_list(s.REPLY_SEARCH_QUERIES)
        else:
            assert profile is not None
            targets, queries = tuple(profile.replies.targets), tuple(profile.replies.searches)
        deps = deps_by_account[key] = ReplyDeps(
            state=d.states.of(account),
            flags=lambda: ctx.accounts.flags_for(account, ctx.flags.current()),
            clock=ctx.clock.now,
            publish=ctx.publish_and_apply,
            local=d.local,
            live=d.live.current,
            simulated_x=simulated_account(xs, now=ctx.clock.now),
            open_live_x=browser_opener(xs) if xs.username() else None,
            own_username=xs.username() or "xbot_shadow",
            accounts=targets,
            queries=queries,
            max_age=timedelta(hours=s.REPLY_MAX_AGE_HOURS),
            batch=s.REPLY_BATCH,
            per_source=s.REPLY_CANDIDATES_PER_SOURCE,
            seed=s.SHADOW_SEED,
            catch_up=d.catch_up,
            predict=predict_er,
            claims=voice.claims if voice else s.claim_policy(),
            account=account,
            voice=voice,
            ours=ctx.accounts.usernames() - {xs.username().lower()},
        )
        return deps

    async def reply(cmd: Command) -> dict[str, int]:
        await d.catch_up()  # once for the run: every account's state is then as new as the log
        return combine_counts([await reply_job(cmd, deps_for(p.id), caught_up=True)
                               for p in job_accounts(cmd, ctx)])

    return deps_for(DEFAULT_ACCOUNT), d.parts(jobs={"reply": reply},
                                              schedules={"reply": s.REPLY_INTERVAL_MINUTES * 60.0})
