"""Shadow mode end to end through a real nats-server: simulated posts -> the collector (a subprocess) records
simulated outcomes from the audience's ground truth on the fast shadow clock -> the learner (a subprocess)
publishes model versions that climb as outcomes arrive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus import JetStreamBus
from shared.events import DecisionPosted, DecisionQueued, ModelUpdated, OutcomeRecorded, float32_bytes
from shared.learning.arms import default_content_arms, split_arm, timing_arm
from tests.conftest import service_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
ARMS = default_content_arms()[:6]


def decision(i: int, posted_at: datetime) -> list[object]:
    arm = ARMS[i % len(ARMS)]
    topic, angle = split_arm(arm)
    dtype = "thread" if i % 5 == 0 else "single"
    q = DecisionQueued(
        event_id=f"e2e-q-{i}", occurred_at=posted_at, decision_id=f"e2e-{i}", decision_type=dtype,
        content=f"simulated post {i}", parts=[], bandit_arm=arm, timing_arm=timing_arm(posted_at.hour),
        quality_score=0.7 + (i % 3) * 0.1, generation_source="synthetic", scheduled_at=posted_at,
        topic_cluster=topic, angle=angle, content_hash=f"h{i}",
        features={"length": 120 + 7 * (i % 11), "has_question": i % 2 == 0, "hashtags": i % 3},
        embedding=float32_bytes([0.0, 1.0]), embedding_model="hashing",
    )
    p = DecisionPosted(
        event_id=f"e2e-p-{i}", occurred_at=posted_at, decision_id=f"e2e-{i}", tweet_id=f"sim-{i:06d}",
        posted_at=posted_at, decision_type=dtype, bandit_arm=arm, timing_arm=q.timing_arm, simulated=True,
    )
    return [q, p]


def spawn(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    fh = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.log_file = fh  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    proc.log_file.close()  # type: ignore[attr-defined]


async def events_of(bus: JetStreamBus, subject: str) -> list:
    return [i.event async for i in bus.read(f"{bus.names.evt_prefix}.{subject}") if i.event is not None]


async def wait_for(predicate, timeout: float, procs: list[subprocess.Popen]) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        for p in procs:
            assert p.poll() is None, f"a service exited early with {p.returncode}"
        await asyncio.sleep(0.25)
    raise AssertionError("condition not met in time")


async def test_shadow_posts_become_outcomes_and_model_versions_climb(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
):
    common = {"MODE": "shadow", "SHADOW_SEED": "7", "SHADOW_CLOCK_SPEED": "7200", "LOG_FORMAT": "json"}
    collector_env = service_env(nats_url, namespace, **common, COLLECT_INTERVAL_HOURS="1")
    learner_env = service_env(
        nats_url, namespace, **common, LEARN_INTERVAL_MINUTES="0", LEARN_EVERY_N_OUTCOMES="10"
    )
    now = datetime.now(UTC)
    # the first batch went out a day ago, so both horizons (+1 h, +24 h) are owed at once
    first = [e for i in range(15) for e in decision(i, now - timedelta(hours=30) + timedelta(hours=i))]
    await bus.publish_many(first)
    procs = [
        spawn("collector", collector_env, tmp_path / "collector.log"),
        spawn("learner", learner_env, tmp_path / "learner.log"),
    ]
    try:
        async def outcomes_at_least(n: int):
            async def check() -> bool:
                return len(await events_of(bus, "outcome.*.recorded")) >= n
            return check

        async def models_at_least(n: int):
            async def check() -> bool:
                return len(await events_of(bus, "model.>")) >= n
            return check

        await wait_for(await outcomes_at_least(15), 40, procs)
        await wait_for(await models_at_least(1), 30, procs)
        v_first = max(m.version for m in await events_of(bus, "model.>"))

        # a second batch posted "now" on the shadow clock: its +1 h and +24 h come within seconds of wall time
        second = [e for i in range(15, 40) for e in decision(i, now + timedelta(minutes=i))]
        await bus.publish_many(second)
        await wait_for(await outcomes_at_least(80), 60, procs)

        async def model_over_everything() -> bool:
            models = await events_of(bus, "model.>")
            return len(models) >= v_first + 2 and any(m.outcomes_used == 40 for m in models)

        await wait_for(model_over_everything, 30, procs)
    finally:
        for p in procs:
            stop(p)

    outcomes = await events_of(bus, "outcome.*.recorded")
    assert all(isinstance(o, OutcomeRecorded) and o.simulated for o in outcomes)
    assert {(o.decision_id, o.horizon_hours) for o in outcomes} == {(f"e2e-{i}", h) for i in range(40) for h in (1, 24)}
    assert len(outcomes) == 80  # deterministic ids: nothing recorded twice
    models = [m for m in await events_of(bus, "model.>") if isinstance(m, ModelUpdated)]
    versions = [m.version for m in models]
    assert versions == list(range(1, len(models) + 1)) and len(models) >= 3
    assert [m.outcomes_used for m in models] == sorted(m.outcomes_used for m in models)
    last = models[-1]
    assert last.simulated_used and last.outcomes_used == 40
    assert {a.arm for a in last.arms} == set(ARMS)
    assert sum(a.successes + a.failures for a in last.arms) == 40
    collector_log = (tmp_path / "collector.log").read_text()
    learner_log = (tmp_path / "learner.log").read_text()
    assert "[ANALYTICS_COLLECTOR] ✅ Stored simulated outcome decision_id=e2e-" in collector_log
    assert f"[LEARN_JOB] ✅ arms_trained={len(last.arms)}, coeffs_updated=v{last.version}" in learner_log
