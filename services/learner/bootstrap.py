"""The one place the learner is wired: the state of every account, the job (one run per account), its schedule,
the every-N-outcomes trigger (per account)."""

from __future__ import annotations

import structlog

from shared.bus import ReadItem, after
from shared.events import DEFAULT_ACCOUNT, Command, ModelUpdated, OutcomeRecorded
from shared.service import ServiceContext, ServiceParts, combine_counts, job_accounts

from .config import LearnerSettings
from .domain import INTERESTED, LearnerAccounts, evolve_accounts
from .handlers import LearnerDeps, OutcomeTrigger, learn_job
from .predictors import fit_predictors

log = structlog.get_logger("learner")


def combine(per_account: dict[str, dict[str, int]]) -> dict[str, int]:
    """One job's counts over its accounts: one account's exactly as a one-account stack's; several summed, each
    trained account's version as ``version.<account>`` and ``models`` the number published; ``_skipped`` only
    when every account skipped."""
    if len(per_account) == 1:
        return next(iter(per_account.values()))
    renamed = []
    for account, counts in per_account.items():
        counts = dict(counts)
        version = counts.pop("version", None)
        if version is not None:
            counts.update({f"version.{account}": version, "models": 1})
        renamed.append(counts)
    return combine_counts(renamed)


async def build(ctx: ServiceContext) -> ServiceParts:
    s: LearnerSettings = ctx.settings
    states = LearnerAccounts()
    bus = ctx.bus

    async def publish_command(cmd: Command, msg_id: str) -> int:
        return await bus.publish_command(cmd, msg_id=msg_id)

    trigger = OutcomeTrigger(every=s.LEARN_EVERY_N_OUTCOMES, state=states, publish_command=publish_command)

    def apply(item: ReadItem) -> None:
        evolve_accounts(states, item.event, item.seq)
        if isinstance(item.event, OutcomeRecorded):
            trigger.notify(item.event.account)

    async def publish_model(model: ModelUpdated, expected_seq: int) -> int:
        # the guard is over the model's own account's history (its subject names the account)
        seq = await bus.publish(model, expect=after(expected_seq))
        if ctx.projection is not None:
            await ctx.projection.wait_for(seq)
        return seq

    async def catch_up() -> None:
        await ctx.catch_up(timeout=10.0)

    def deps_for(account: str) -> LearnerDeps:
        return LearnerDeps(
            state=states.of(account),
            flags=lambda: ctx.accounts.flags_for(account, ctx.flags.current()),
            clock=ctx.clock,
            publish_model=publish_model,
            catch_up=catch_up,
            fit_predictors=fit_predictors,
            account=account,
        )

    async def learn(cmd: Command) -> dict[str, int]:
        per_account: dict[str, dict[str, int]] = {}
        failed: list[tuple[str, BaseException]] = []
        for profile in job_accounts(cmd, ctx):
            try:
                per_account[profile.id] = await learn_job(cmd, deps_for(profile.id))
            except Exception as exc:  # one account's failed run never stops another's
                log.error("[LEARN_JOB] ❌ run failed", account=profile.id, error=f"{type(exc).__name__}: {exc}")
                failed.append((profile.id, exc))
        if failed:
            raise failed[0][1]
        return combine(per_account) if per_account else {"_skipped": 1}

    def health() -> dict[str, object]:
        default = states.of(DEFAULT_ACCOUNT) if DEFAULT_ACCOUNT in states.accounts else None
        return {
            "mode": ctx.flags.current().MODE,
            "model_version": default.model_version if default else 0,
            "outcomes": default.outcome_events if default else 0,
            "outcomes_since_model": default.outcomes_since_model if default else 0,
            "accounts": {
                account: {"model_version": st.model_version, "outcomes": st.outcome_events,
                          "outcomes_since_model": st.outcomes_since_model}
                for account, st in sorted(states.accounts.items())
            },
        }

    return ServiceParts(
        jobs={"learn": learn},
        schedules={"learn": s.LEARN_INTERVAL_MINUTES * 60.0},
        apply=apply,
        state=states,
        interested=INTERESTED,
        background=[trigger.run],
        health=health,
    )
