"""The planner and the replier as real processes (``python -m services.<name>``) on a real nats-server: the
seed's "Test LLM Generation" flow in live mode against a local OpenAI-compatible server, the shadow schedule,
and the start-up checks."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.bus import JetStreamBus
from shared.events import Command, DecisionQueued, JobCompleted, utcnow
from shared.gates import ClaimPolicy
from tests.conftest import service_env
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
SEED_LINE = "[PLAN_JOB] ✅ Real LLM content generated (decision_id={}, status=queued, scheduled_at={})"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def openai_srv() -> Iterator[FakeOpenAIServer]:
    srv = start_openai_server()
    yield srv
    srv.stop()


class Proc:
    def __init__(self, name: str, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.port = int(env.get("SERVICE_HEALTH_PORT", "0"))
        self._log = log_path.open("w")
        self.p = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log_path.read_text().splitlines():
            if raw.startswith("{"):
                out.append(json.loads(raw))
        return out

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.p.poll() is None, self.log_path.read_text()
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"not ready in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._log.close()
        return self.p.returncode


async def wait_for_jobs(bus: JetStreamBus, n: int, job: str, timeout: float = 30.0) -> list[JobCompleted]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [i.event async for i in bus.read(names=frozenset({"job.completed"})) if isinstance(i.event, JobCompleted)]
        done = [d for d in done if d.job == job]
        if len(done) >= n:
            return done
        await asyncio.sleep(0.2)
    raise AssertionError(f"fewer than {n} {job} runs completed in {timeout}s")


async def queued_events(bus: JetStreamBus) -> list[DecisionQueued]:
    return [i.event async for i in bus.read(names=frozenset({"decision.queued"})) if i.event is not None]


async def test_live_plan_on_cmd_plan_queues_real_content_and_logs_the_seed_line(
    bus: JetStreamBus, nats_url: str, namespace: str, openai_srv: FakeOpenAIServer, tmp_path: Path
) -> None:
    # the seed's "Preparation Env", then "Test LLM Generation"
    env = service_env(
        nats_url, namespace, MODE="live", AI_QUOTA_CIRCUIT_OPEN="false", POSTING_DISABLED="true",
        LIVE_POSTS="false", REAL_METRICS_ENABLED="false", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=openai_srv.base_url,
        PLAN_INTERVAL_MINUTES="0", SERVICE_HEALTH_PORT=str(free_port()),
        # the imitation writes from templates, some claiming results no facts hold: with approval on they are
        # queued for a person with those claims flagged (not skipped), so the run queues all three
        REQUIRE_APPROVAL="true",
    )
    proc = Proc("planner", env, tmp_path / "planner.log")
    try:
        await proc.ready()
        run_id = f"admin-{uuid.uuid4().hex[:8]}"
        await bus.publish_command(Command(job="plan", run_id=run_id, requested_at=utcnow(), requested_by="admin"))
        (done,) = await wait_for_jobs(bus, 1, "plan")
        assert done.run_id == run_id and done.status == "ok" and done.service == "planner"
        assert done.counts == {"queued": 3, "skipped": 0, "failed": 0, "duplicate": 0}
        queued = await queued_events(bus)
        assert len(queued) == 3
        assert {(q.generation_source, q.correlation_id) for q in queued} == {("real", run_id)}
        messages = [line.get("msg") for line in proc.lines()]
        for q in queued:
            assert SEED_LINE.format(q.decision_id, q.scheduled_at.isoformat()) in messages
            assert q.flagged_claims == [c.span for c in ClaimPolicy().check(q.parts)[1]]
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"http://127.0.0.1:{proc.port}/healthz")).json()
        # three drafts and ONE embedding call for the run's three drafts
        assert health["mode"] == "live" and health["decisions"] == {"queued": 3} and health["llm_calls"] == 4
    finally:
        assert proc.stop() == 0


async def test_shadow_planner_runs_on_its_schedule(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    # an hour of the shadow clock per wall second: PLAN_INTERVAL_MINUTES=60 comes round every second
    env = service_env(nats_url, namespace, MODE="shadow", SHADOW_CLOCK_SPEED="3600", PLAN_INTERVAL_MINUTES="60",
                      PLAN_BATCH="1", SERVICE_HEALTH_PORT=str(free_port()))
    proc = Proc("planner", env, tmp_path / "planner.log")
    try:
        await proc.ready()
        runs = await wait_for_jobs(bus, 3, "plan", timeout=20)
        assert all(r.status == "ok" and r.run_id.startswith("plan-") for r in runs)
        assert len({r.run_id for r in runs}) == len(runs)  # one run per slot
        queued = await queued_events(bus)
        assert queued and all(q.generation_source == "synthetic" for q in queued)
    finally:
        assert proc.stop() == 0


async def test_shadow_replier_answers_on_cmd_reply(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    env = service_env(nats_url, namespace, MODE="shadow", REPLY_INTERVAL_MINUTES="0",
                      REPLY_TARGET_ACCOUNTS="alice", SERVICE_HEALTH_PORT=str(free_port()))
    proc = Proc("replier", env, tmp_path / "replier.log")
    try:
        await proc.ready()
        await bus.publish_command(Command(job="reply", run_id="reply-1", requested_at=utcnow()))
        (done,) = await wait_for_jobs(bus, 1, "reply")
        assert done.counts["queued"] >= 1
        queued = await queued_events(bus)
        assert queued and all(q.decision_type == "reply" and q.target_tweet_id for q in queued)
        assert any(str(line.get("msg", "")).startswith("[REPLY_JOB] ✅ Synthetic reply generated")
                   for line in proc.lines())
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize(("name", "extra", "named"), [
    ("planner", {"MODE": "live", "OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
    ("planner", {"LLM_PRICES_JSON": "{bad"}, "LLM_PRICES_JSON"),
    ("replier", {"MODE": "live", "OPENAI_API_KEY": "k", "X_USERNAME": ""}, "X_USERNAME"),
])
def test_a_bad_setting_stops_the_service_with_one_line(nats_url: str, namespace: str, name: str,
                                                       extra: dict[str, str], named: str) -> None:
    env = service_env(nats_url, namespace, **extra)
    proc = subprocess.run([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=40)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "configuration error" in ln]
    assert len(lines) == 1 and named in lines[0], proc.stderr
