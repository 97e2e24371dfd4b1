"""The one place the learner is wired: state, job, schedule, the every-N-outcomes trigger."""

from __future__ import annotations

from shared.bus import ReadItem, after
from shared.events import Command, ModelUpdated, OutcomeRecorded
from shared.service import ServiceContext, ServiceParts

from .config import LearnerSettings
from .domain import INTERESTED, LearnerState, evolve
from .handlers import LearnerDeps, OutcomeTrigger, learn_job
from .predictors import fit_predictors


async def build(ctx: ServiceContext) -> ServiceParts:
    s: LearnerSettings = ctx.settings
    state = LearnerState()
    bus = ctx.bus

    async def publish_command(cmd: Command, msg_id: str) -> int:
        return await bus.publish_command(cmd, msg_id=msg_id)

    trigger = OutcomeTrigger(every=s.LEARN_EVERY_N_OUTCOMES, state=state, publish_command=publish_command)

    def apply(item: ReadItem) -> None:
        evolve(state, item.event, item.seq)
        if isinstance(item.event, OutcomeRecorded):
            trigger.notify()

    async def publish_model(model: ModelUpdated, expected_seq: int) -> int:
        seq = await bus.publish(model, expect=after(expected_seq))
        if ctx.projection is not None:
            await ctx.projection.wait_for(seq)
        return seq

    async def catch_up() -> None:
        await ctx.catch_up(timeout=10.0)

    deps = LearnerDeps(
        state=state,
        flags=ctx.flags.current,
        clock=ctx.clock,
        publish_model=publish_model,
        catch_up=catch_up,
        fit_predictors=fit_predictors,
    )

    async def learn(cmd: Command) -> dict[str, int]:
        return await learn_job(cmd, deps)

    def health() -> dict[str, object]:
        return {
            "mode": ctx.flags.current().MODE,
            "model_version": state.model_version,
            "outcomes": state.outcome_events,
            "outcomes_since_model": state.outcomes_since_model,
        }

    return ServiceParts(
        jobs={"learn": learn},
        schedules={"learn": s.LEARN_INTERVAL_MINUTES * 60.0},
        apply=apply,
        state=state,
        interested=INTERESTED,
        background=[trigger.run],
        health=health,
    )
