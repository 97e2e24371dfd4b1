"""The ``learn`` job and the every-N-outcomes trigger.

A run is a plain decision over the learner's state (``domain.learn``); the model is published with the
expected last sequence of the model subject, so of two replicas learning at once only one writes version n+1
(the other catches up and decides again: usually "no new outcomes").

One run per account (``learn_job`` takes one account's dependencies; the service runs each account the command
is for): each account's model is trained on its own state only, and the trigger counts each account's new
outcomes on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from shared.bus import WrongSequence
from shared.clock import Clock
from shared.events import DEFAULT_ACCOUNT, Command, ModelUpdated, utcnow
from shared.flags import Flags

from .domain import LearnerAccounts, LearnerState, Skip, Trained, learn, learned_line

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
    #: the account whose state ``state`` is, and whose model this publishes
    account: str = DEFAULT_ACCOUNT


async def learn_job(cmd: Command, deps: LearnerDeps) -> dict[str, int]:
    with structlog.contextvars.bound_contextvars(account=deps.account):
        return await _learn_job(cmd, deps)


async def _learn_job(cmd: Command, deps: LearnerDeps) -> dict[str, int]:
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
            account=deps.account,
        )
        if isinstance(result, Skip):
            if result.reason == "insufficient_outcomes":
                log.warning(result.message, outcomes=result.outcomes, mode=flags.MODE, account=deps.account)
            elif deps.account == DEFAULT_ACCOUNT:
                log.info(result.message, outcomes=result.outcomes, mode=flags.MODE)
            else:  # nothing new for one of many accounts: not a line per account per run
                log.debug(result.message, outcomes=result.outcomes, mode=flags.MODE, account=deps.account)
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
    """Requests a ``learn`` run of an account each time the count of its new outcomes crosses a multiple of
    ``every`` (each account counts its own; ``state``: one account's state, the default account's, or every
    account's).

    The message id ``learn:outcomes:<k>`` (another account's: ``learn:<account>:outcomes:<k>``, with
    ``params.account``) is deterministic, so N replicas request one run per multiple. Only multiples crossed
    while running count (a replay at start requests nothing; an account first seen while running starts at 0).
    """

    every: int
    state: LearnerState | LearnerAccounts
    publish_command: PublishCommand
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: per account, the last multiple requested (absent before ``run`` started)
    _done: dict[str, int] = field(default_factory=dict)
    _running: bool = False

    def _states(self) -> dict[str, LearnerState]:
        if isinstance(self.state, LearnerAccounts):
            return self.state.accounts
        return {DEFAULT_ACCOUNT: self.state}

    def bucket(self, account: str = DEFAULT_ACCOUNT) -> int:
        state = self._states().get(account)
        if self.every <= 0 or state is None:
            return 0
        return state.outcome_events // self.every

    def notify(self, account: str = DEFAULT_ACCOUNT) -> None:
        """Called by the projection after each applied outcome (synchronous, cheap)."""
        if self.every > 0 and self._running and self.bucket(account) > self._done.get(account, 0):
            self._wake.set()

    async def run(self) -> None:
        if self.every <= 0:
            return
        self._done = {account: self.bucket(account) for account in self._states()}
        self._running = True
        while True:
            await self._wake.wait()
            self._wake.clear()
            for account in sorted(self._states()):
                k = self.bucket(account)
                if k <= self._done.get(account, 0):
                    continue
                self._done[account] = k
                await self._request(account, k)

    async def _request(self, account: str, k: int) -> None:
        n = k * self.every
        if account == DEFAULT_ACCOUNT:
            run_id, msg_id, params = f"learn-outcomes-{n}", f"learn:outcomes:{k}", {"outcomes": str(n)}
        else:
            run_id, msg_id = f"learn-{account}-outcomes-{n}", f"learn:{account}:outcomes:{k}"
            params = {"outcomes": str(n), "account": account}
        cmd = Command(job="learn", run_id=run_id, requested_at=utcnow(), requested_by="outcomes", params=params)
        try:
            await self.publish_command(cmd, msg_id)
            log.info("learn requested after new outcomes", outcomes=n, account=account)
        except Exception as exc:
            log.warning("learn trigger publish failed", error=str(exc), account=account)
