"""The learn job (skip rule, the version race) and the every-N-outcomes trigger, with in-memory fakes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from services.learner.domain import LearnerState, evolve
from services.learner.handlers import LearnerDeps, OutcomeTrigger, learn_job
from shared.bus import WrongSequence
from shared.clock import FixedClock
from shared.events import Command, ModelUpdated, OutcomeRecorded
from shared.flags import Flags

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def outcome(i: int, er: float, *, simulated: bool) -> OutcomeRecorded:
    return OutcomeRecorded(
        event_id=f"outcome:d{i}:24", occurred_at=T0, decision_id=f"d{i}", tweet_id=f"t{i}", horizon_hours=24,
        impressions=1000, likes=round(er * 1000), retweets=0, replies=0, bookmarks=0, quotes=0,
        er_calculated=round(er * 1000) / 1000, simulated=simulated, collected_at=T0, bandit_arm="ai_tools:data",
        timing_arm="hour:9", decision_type="single",
    )


class Log:
    """An in-memory model log: sequences, the expected-sequence check, and the learner's projection."""

    def __init__(self, state: LearnerState):
        self.state, self.seq, self.models = state, 100, []
        self.competitor: ModelUpdated | None = None

    async def publish_model(self, model: ModelUpdated, expected: int) -> int:
        if self.competitor is not None:  # another replica wins the race once
            other, self.competitor = self.competitor, None
            self.seq += 1
            self.pending = (other, self.seq)
            raise WrongSequence("wrong last sequence")
        assert expected == self.state.model_seq
        self.seq += 1
        self.models.append(model)
        evolve(self.state, model, self.seq)
        return self.seq

    async def catch_up(self) -> None:
        other, seq = self.pending
        evolve(self.state, other, seq)


def deps_for(state: LearnerState, log: Log, flags: Flags) -> LearnerDeps:
    return LearnerDeps(
        state=state, flags=lambda: flags, clock=FixedClock(T0), publish_model=log.publish_model,
        catch_up=log.catch_up, fit_predictors=lambda samples, **kw: ([], "not fitted in this test"),
    )


def cmd(run_id: str, **params: str) -> Command:
    return Command(job="learn", run_id=run_id, requested_at=T0, params=params)


async def test_fewer_than_five_real_outcomes_logs_the_seed_line_and_publishes_nothing():
    st = LearnerState()
    for i in range(30):
        evolve(st, outcome(i, 0.05, simulated=True))
    for i in range(4):
        evolve(st, outcome(100 + i, 0.05, simulated=False))
    log = Log(st)
    with capture_logs() as logs:
        counts = await learn_job(cmd("l1"), deps_for(st, log, Flags(MODE="live")))
    assert counts == {"_skipped": 1, "outcomes": 4}
    assert log.models == []
    assert "[LEARN_JOB] ⚠️ Training skipped: insufficient real outcomes (need 5)" in [e["event"] for e in logs]


async def test_a_trained_model_is_published_and_logged_with_its_version():
    st = LearnerState()
    for i in range(6):
        evolve(st, outcome(i, 0.05 if i < 4 else 0.01, simulated=False))
    log = Log(st)
    with capture_logs() as logs:
        counts = await learn_job(cmd("l1"), deps_for(st, log, Flags(MODE="live")))
    assert counts == {"arms_trained": 1, "version": 1, "outcomes_used": 6, "predictors": 0}
    (m,) = log.models
    assert m.version == 1 and m.predictor_skipped_reason == "not fitted in this test" and not m.simulated_used
    assert "[LEARN_JOB] ✅ arms_trained=1, coeffs_updated=v1" in [e["event"] for e in logs]
    assert await learn_job(cmd("l2"), deps_for(st, log, Flags(MODE="live"))) == {"_skipped": 1, "outcomes": 6}
    assert (await learn_job(cmd("l3", force="true"), deps_for(st, log, Flags(MODE="live"))))["version"] == 2


async def test_losing_the_version_race_catches_up_and_goes_on_from_the_winner():
    st = LearnerState()
    for i in range(6):
        evolve(st, outcome(i, 0.05, simulated=True))
    log = Log(st)
    log.competitor = ModelUpdated(
        event_id="other", occurred_at=T0, version=1, arms=[], slots=[], outcomes_used=5, simulated_used=True,
        success_er_threshold=0.03,
    )
    counts = await learn_job(cmd("l1"), deps_for(st, log, Flags(MODE="shadow")))
    assert counts["version"] == 2  # the winner wrote v1; we wrote v2 over 6 outcomes, never a second v1
    assert [m.version for m in log.models] == [2] and st.model_version == 2


async def test_the_outcome_trigger_requests_one_run_per_multiple_with_deterministic_ids():
    st = LearnerState()
    for i in range(4):  # replayed before start: requests nothing
        evolve(st, outcome(i, 0.05, simulated=True))
    sent: list[tuple[str, str]] = []

    async def publish_command(c: Command, msg_id: str) -> int:
        sent.append((c.run_id, msg_id))
        return len(sent)

    trig = OutcomeTrigger(every=3, state=st, publish_command=publish_command)
    task = asyncio.create_task(trig.run())
    try:
        await asyncio.sleep(0.01)
        assert sent == []
        for i in range(4, 10):
            evolve(st, outcome(i, 0.05, simulated=True))
            trig.notify()
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert sent == [("learn-outcomes-6", "learn:outcomes:2"), ("learn-outcomes-9", "learn:outcomes:3")]


async def test_trigger_is_off_at_zero():
    trig = OutcomeTrigger(every=0, state=LearnerState(), publish_command=None)  # type: ignore[arg-type]
    await asyncio.wait_for(trig.run(), 1)
    trig.notify()
