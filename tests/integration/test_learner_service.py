"""The learner service (in-process runtime, real nats-server): live mode trains on real outcomes only, the
<5 rule, an honest (failed) fit, and the same state after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.learner.bootstrap import build
from services.learner.config import LearnerSettings
from shared.bus import JetStreamBus, wait_until
from shared.config import load_settings
from shared.events import Command, DecisionQueued, JobCompleted, ModelUpdated, OutcomeRecorded, utcnow
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

T0 = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def queued(i: int, arm: str, hour: int, *, quality: float = 0.8, features: dict | None = None) -> DecisionQueued:
    topic, angle = arm.split(":")
    at = T0.replace(hour=hour)
    return DecisionQueued(
        event_id=f"q-{i}", occurred_at=at, decision_id=f"d{i}", decision_type="single", content=f"post {i}",
        parts=[], bandit_arm=arm, timing_arm=f"hour:{hour}", quality_score=quality, generation_source="real",
        scheduled_at=at, topic_cluster=topic, angle=angle, content_hash=f"h{i}",
        features={"weighted_length": 100 + 9 * i, "has_question": i % 2 == 0} if features is None else features,
    )


def outcome(i: int, arm: str, hour: int, likes: int, *, simulated: bool, impressions: int = 1000) -> OutcomeRecorded:
    return OutcomeRecorded(
        event_id=f"outcome:d{i}:24", occurred_at=T0 + timedelta(days=1), decision_id=f"d{i}", tweet_id=f"t{i}",
        horizon_hours=24, impressions=impressions, likes=likes, retweets=0, replies=0, bookmarks=0, quotes=0,
        er_calculated=likes / impressions, simulated=simulated, collected_at=T0 + timedelta(days=1),
        bandit_arm=arm, timing_arm=f"hour:{hour}", decision_type="single",
    )


async def start_learner(nats_url: str, namespace: str, **extra: str) -> ServiceRuntime:
    environ = service_env(nats_url, namespace, **{"LEARN_INTERVAL_MINUTES": "0", **extra})
    settings = load_settings(LearnerSettings, environ)
    ctx = await build_context("learner", settings, environ)
    rt = ServiceRuntime("learner", ctx, await build(ctx))
    await rt.start()
    return rt


async def stop_learner(rt: ServiceRuntime) -> None:
    await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


async def run_learn(bus: JetStreamBus, run_id: str, **params: str) -> JobCompleted:
    await bus.publish_command(Command(job="learn", run_id=run_id, requested_at=utcnow(), params=params))
    for _ in range(300):
        found = [i.event for i in await bus.aggregate_history("job", run_id) if isinstance(i.event, JobCompleted)]
        if found:
            return found[0]
        await wait_until(lambda: False, timeout=0.05)
    raise AssertionError(f"learn run {run_id} did not complete")


async def models(bus: JetStreamBus) -> list[ModelUpdated]:
    return [i.event async for i in bus.read(f"{bus.names.evt_prefix}.model.>") if isinstance(i.event, ModelUpdated)]


def mixed_log() -> list:
    """40 simulated outcomes, all great, on one arm; 24 real ones on two other arms."""
    events: list = []
    for i in range(40):
        events += [queued(i, "ai_tools:how_to", 9), outcome(i, "ai_tools:how_to", 9, 90, simulated=True)]
    for j in range(24):
        i = 100 + j
        arm = "startups:story" if j % 2 else "productivity:data"
        hour = 14 if j % 3 else 20
        likes = 45 if (arm == "startups:story" and hour == 14) else 10 + j
        events += [queued(i, arm, hour, quality=0.7 + 0.01 * j), outcome(i, arm, hour, likes, simulated=False)]
    return events


async def test_live_trains_only_on_real_outcomes_and_a_restart_has_the_same_state(
    bus: JetStreamBus, nats_url: str, namespace: str
):
    await bus.publish_many(mixed_log())
    rt = await start_learner(nats_url, namespace, MODE="live")
    try:
        done = await run_learn(bus, "learn-1")
        assert done.status == "ok" and done.counts["version"] == 1
    finally:
        await stop_learner(rt)
    (m1,) = await models(bus)
    assert m1.version == 1 and m1.simulated_used is False and m1.outcomes_used == 24
    arms = {a.arm: a for a in m1.arms}
    assert set(arms) == {"startups:story", "productivity:data"}  # the simulated arm never counted
    assert sum(a.successes + a.failures for a in arms.values()) == 24
    for a in arms.values():
        assert (a.alpha, a.beta) == (1.0 + a.successes, 1.0 + a.failures)
    slots = {s.hour: s for s in m1.slots}
    assert slots[9].n == 0 and slots[14].n + slots[20].n == 24
    kinds = {p.kind for p in m1.predictors}
    assert kinds <= {"ridge_er", "logistic_success"} and kinds
    for p in m1.predictors:
        assert p.n_train + p.n_holdout == 24 and p.n_holdout >= 5
        assert len(p.coefficients) == len(p.feature_names) == len(p.means) == len(p.stds)
        assert p.metrics and all(v == v for v in p.metrics.values())  # measured, finite

    # restart: the state is rebuilt from the log; the next version is v2 over exactly the same posteriors
    rt = await start_learner(nats_url, namespace, MODE="live")
    try:
        assert rt.parts.health is not None and rt.parts.health()["model_version"] == 1
        skipped = await run_learn(bus, "learn-2")
        assert skipped.status == "skipped"  # nothing new since v1
        done = await run_learn(bus, "learn-3", force="true")
        assert done.counts["version"] == 2
    finally:
        await stop_learner(rt)
    m1_again, m2 = await models(bus)
    assert m1_again == m1
    assert m2.version == 2 and m2.arms == m1.arms and m2.slots == m1.slots and m2.outcomes_used == 24


async def test_fewer_than_five_real_outcomes_publishes_nothing(bus: JetStreamBus, nats_url: str, namespace: str):
    events: list = []
    for i in range(30):
        events.append(outcome(i, "ai_tools:how_to", 9, 80, simulated=True))
    for i in range(4):
        events.append(outcome(100 + i, "startups:story", 14, 80, simulated=False))
    await bus.publish_many(events)
    rt = await start_learner(nats_url, namespace, MODE="live")
    try:
        done = await run_learn(bus, "learn-1")
    finally:
        await stop_learner(rt)
    assert done.status == "skipped" and done.counts == {"outcomes": 4}
    assert await models(bus) == []


async def test_a_degenerate_fit_publishes_no_predictor_and_says_why(
    bus: JetStreamBus, nats_url: str, namespace: str
):
    events: list = []
    for i in range(25):  # identical decisions: no feature varies, nothing to fit
        events += [
            queued(i, "ai_tools:how_to", 9, features={}),
            outcome(i, "ai_tools:how_to", 9, 20 + (i % 5), simulated=False),
        ]
    await bus.publish_many(events)
    rt = await start_learner(nats_url, namespace, MODE="live")
    try:
        done = await run_learn(bus, "learn-1")
    finally:
        await stop_learner(rt)
    assert done.status == "ok"
    (m,) = await models(bus)
    assert m.predictors == []
    assert m.predictor_skipped_reason is not None and m.predictor_skipped_reason.startswith("zero_variance_features")
    assert m.arms and m.arms[0].successes + m.arms[0].failures == 25  # the bandits still learn
