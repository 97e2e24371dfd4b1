"""The ``learn`` job and the every-N-outcomes trigger.

A run is a plain decision over the learner's state (``domain.learn``); the model is published with the
expected last sequence of the model subject, so of two replicas learning at once only one writes version n+1
(the other catches up and decides again: usually "no new outcomes").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from shared.bus import WrongSequence
from shared.clock import Clock
from shared.events import Command, ModelUpdated, utcnow
from shared.flags import Flags

from .domain import LearnerState, Skip, Trained, learn, learned_line

log = structlog.get_logger("learner")

#: publish a model expecting the model subject's last sequence; returns the new sequence
PublishModel = Callable[[ModelUpdated, int], Awaitable[int]]
PublishCommand = Callable[[Command, str], Awaitable[int]]
FitPredictors = Callable[..., tuple[list[Any], str | None]]  # (samples, *, threshold, seed)
RACE_RETRIES = 3


@dataclass
class LearnerDeps:
    state: LearnerState
    flags: Callable[[], Flags]
    clock: Clock
    publish_model: PublishModel  # publish with the expected sequence, then wait until our projection applied it
    catch_up: Callable[[], Awaitable[None]]  # wait until our projection has applied the log's current end
    fit_predictors: FitPredictors


async def learn_job(cmd: Command, deps: LearnerDeps) -> dict[str, int]:
    force = cmd.params.get("force", "").lower() in ("1", "true", "yes")
    for _ in range(RACE_RETRIES):
        flags = deps.flags()
        result = learn(
            deps.state,
            live=flags.live,
            threshold=flags.SUCCESS_ER_THRESHOLD,
            now=deps.clock.now(),
            fit_predictors=deps.fit_predictors,
            force=force,
            correlation_id=cmd.run_id,
        )
        if isinstance(result, Skip):
            if result.reason == "insufficient_outcomes":
                log.warning(result.message, outcomes=result.outcomes, mode=flags.MODE)
            else:
                log.info(result.message, outcomes=result.outcomes, mode=flags.MODE)
            return {"_skipped": 1, "outcomes": result.outcomes}
        assert isinstance(result, Trained)
        model = result.model
        try:
            await deps.publish_model(model, deps.state.model_seq)
        except WrongSequence:
            log.info("another learner published a model first; catching up", version=model.version)
            await deps.catch_up()
            continue
        log.info(
            learned_line(model),
            outcomes_used=model.outcomes_used,
            simulated_used=model.simulated_used,
            predictors=[p.kind for p in model.predictors],
            predictor_skipped_reason=model.predictor_skipped_reason,
            mode=flags.MODE,
        )
        return {
            "arms_trained": len(model.arms),
            "version": model.version,
            "outcomes_used": model.outcomes_used,
            "predictors": len(model.predictors),
        }
    raise RuntimeError(f"lost the model-version race {RACE_RETRIES} times")


@dataclass
class OutcomeTrigger:
    """Requests a ``learn`` run each time the count of new outcomes crosses a multiple of ``every``.

    The message id ``learn:outcomes:<k>`` is deterministic, so N replicas request one run per multiple.
    Only multiples crossed while running count (a replay at start requests nothing).
    """

    every: int
    state: LearnerState
    publish_command: PublishCommand
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _done_bucket: int = -1

    def bucket(self) -> int:
        return self.state.outcome_events // self.every if self.every > 0 else 0

    def notify(self) -> None:
        """Called by the projection after each applied outcome (synchronous, cheap)."""
        if self.every > 0 and self._done_bucket >= 0 and self.bucket() > self._done_bucket:
            self._wake.set()

    async def run(self) -> None:
        if self.every <= 0:
            return
        self._done_bucket = self.bucket()
        while True:
            await self._wake.wait()
            self._wake.clear()
            k = self.bucket()
            if k <= self._done_bucket:
                continue
            self._done_bucket = k
            cmd = Command(
                job="learn", run_id=f"learn-outcomes-{k * self.every}", requested_at=utcnow(),
                requested_by="outcomes", params={"outcomes": str(k * self.every)},
            )
            try:
                await self.publish_command(cmd, f"learn:outcomes:{k}")
                log.info("learn requested after new outcomes", outcomes=k * self.every)
            except Exception as exc:
                log.warning("learn trigger publish failed", error=str(exc))
