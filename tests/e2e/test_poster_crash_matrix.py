"""The poster as a process (``python -m services.poster``, MODE=live, LIVE_POSTS=true, POSTING_DISABLED=false)
against a real nats-server and the X imitation in headless Chromium.

- the crash matrix: the process is killed with SIGKILL (a) after the claim, (b) after the click before the id
  is read, (c) after the id is read before ``decision.posted`` is published; after a restart exactly one
  tweet exists and the decision ends posted. The kill comes from the TEST-ONLY hook ``XBOT_TEST_CRASH_AT``,
  with which the process kills itself (``kill -9`` on its own pid) at exactly that point;
- two poster replicas race one decision: one tweet;
- the seed's "Test Posting Skip" (MODE=live, POSTING_DISABLED=true): the seed's log line, no status changes;
- MAX_POSTS_PER_HOUR holds across a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.bus import JetStreamBus
from shared.events import (
    Command,
    DecisionPosted,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    Event,
    JobCompleted,
    new_event_id,
    utcnow,
)
from tests.conftest import service_env
from tests.fakes.x_imitation import XImitation, start_x_imitation

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PosterProcess:
    """One ``python -m services.poster`` in its own process group (so Chromium goes with it)."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.env = {**env, "SERVICE_HEALTH_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PosterProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.poster"],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    async def wait_ready(self, timeout: float = 40.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"poster exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1.0)
                    if r.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"poster not ready within {timeout}s:\n{self.log()[-3000:]}")

    async def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        rc = await asyncio.to_thread(self.proc.wait, timeout)
        self._kill_group()
        return rc

    def _kill_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._kill_group()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_messages(self) -> list[str]:
        out = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line).get("msg", ""))
        return out


@pytest.fixture
def imitation() -> Iterator[XImitation]:
    x = start_x_imitation(user="alice")
    try:
        yield x
    finally:
        x.stop()


@pytest.fixture
def posters(nats_url: str, namespace: str, imitation: XImitation, tmp_path: Path) -> Iterator[Any]:
    started: list[PosterProcess] = []
    session = imitation.write_session(tmp_path / "session.json")

    def make(**extra: str) -> PosterProcess:
        env = service_env(
            nats_url,
            namespace,
            MODE="live",
            LIVE_POSTS="true",
            POSTING_DISABLED="false",
            MAX_POSTS_PER_HOUR="100",
            MIN_POST_INTERVAL_MINUTES="0",
            POSTING_INTERVAL_MINUTES="0",
            RECONCILE_GRACE_MINUTES="0.02",
            POST_RETRY_BASE_SECONDS="0.2",
            X_BASE_URL=imitation.base_url,
            X_USERNAME="alice",
            X_SESSION_FILE=str(session),
            X_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
            CHROMIUM_PATH=CHROMIUM,
            X_DWELL_MIN_MS="0",
            X_DWELL_MAX_MS="0",
            X_TIMEOUT_MS="10000",
            XBOT_HOME=str(tmp_path / "home"),
        )
        env.update(extra)
        p = PosterProcess(env, tmp_path / f"poster-{len(started)}.log")
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.stop()


def queued(text: str) -> DecisionQueued:
    now = utcnow()
    return DecisionQueued(
        event_id=new_event_id(),
        occurred_at=now,
        decision_id=uuid.uuid4().hex,
        decision_type="single",
        content=text,
        parts=[],
        bandit_arm="how_to",
        timing_arm="slot-12",
        generation_source="real",
        scheduled_at=now - timedelta(minutes=1),
        topic_cluster="shipping",
        angle="practical",
        content_hash=uuid.uuid4().hex,
    )


async def history(bus: JetStreamBus, decision_id: str) -> list[Event]:
    return [i.event for i in await bus.aggregate_history("decision", decision_id) if i.event is not None]


async def trigger(bus: JetStreamBus) -> str:
    run_id = uuid.uuid4().hex
    await bus.publish_command(
        Command(job="posting", run_id=run_id, requested_at=utcnow(), requested_by="cli")
    )
    return run_id


async def job_done(
    bus: JetStreamBus, run_id: str, timeout: float = 90.0, logs: PosterProcess | None = None
) -> JobCompleted:
    deadline = time.monotonic() + timeout
    subject = f"{bus.names.evt_prefix}.job.{run_id}.completed"
    while time.monotonic() < deadline:
        items = [i async for i in bus.read(subject)]
        done = [i.event for i in items if isinstance(i.event, JobCompleted)]
        if done:
            return done[0]
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"job {run_id} did not complete within {timeout}s:\n{logs.log()[-4000:] if logs else ''}"
    )


def posted_of(events: list[Event]) -> list[DecisionPosted]:
    return [e for e in events if isinstance(e, DecisionPosted)]


@needs_chromium
@pytest.mark.parametrize("crash_at", ["after_claim", "after_click", "after_readback"])
async def test_crash_matrix_kill_9_then_restart_posts_exactly_once(bus, posters, imitation, crash_at):
    text = f"Crash matrix {crash_at}: small batches ship faster than big ones {uuid.uuid4().hex[:6]}"
    q = queued(text)
    await bus.publish(q)

    doomed = posters(XBOT_TEST_CRASH_AT=crash_at)
    await doomed.wait_ready()
    await trigger(bus)
    try:
        rc = await doomed.wait_exit(90)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the poster did not crash at {crash_at}:\n{doomed.log()[-4000:]}") from None
    assert rc == -signal.SIGKILL, doomed.log()[-3000:]

    before = await history(bus, q.decision_id)
    assert any(isinstance(e, DecisionPostStarted) for e in before)  # it had claimed
    assert posted_of(before) == []  # and died before recording anything
    expected_on_x = 0 if crash_at == "after_claim" else 1
    assert imitation.state.count_text(text) == expected_on_x

    survivor = posters()
    await survivor.wait_ready()
    done = await job_done(bus, await trigger(bus), logs=survivor)
    assert done.status == "ok", (done, survivor.log()[-4000:])

    assert imitation.state.count_text(text) == 1, survivor.log()[-4000:]
    after = await history(bus, q.decision_id)
    (ev,) = posted_of(after)
    (tweet,) = imitation.state.tweets_with_text(text)
    assert ev.tweet_id == tweet.tweet_id  # read back from X, never made up
    assert ev.recovered is (crash_at != "after_claim")
    if crash_at == "after_claim":
        assert [e.attempt for e in after if isinstance(e, DecisionPostStarted)] == [1, 2]
    # one more run changes nothing
    await job_done(bus, await trigger(bus))
    assert imitation.state.count_text(text) == 1 and len(posted_of(await history(bus, q.decision_id))) == 1


@needs_chromium
async def test_two_replicas_race_one_decision_one_tweet(bus, posters, imitation):
    a, b = posters(), posters()
    await asyncio.gather(a.wait_ready(), b.wait_ready())
    text = f"Race: two posters, one decision, one tweet {uuid.uuid4().hex[:6]}"
    q = queued(text)
    await bus.publish(q)
    runs = await asyncio.gather(trigger(bus), trigger(bus))
    done = await asyncio.gather(*(job_done(bus, r) for r in runs))
    assert all(d.status == "ok" for d in done), done
    assert imitation.state.count_text(text) == 1
    events = await history(bus, q.decision_id)
    assert len(posted_of(events)) == 1
    assert len([e for e in events if isinstance(e, DecisionPostStarted)]) == 1
    counts = [d.counts for d in done]
    assert sum(c.get("posted", 0) for c in counts) == 1
    # the other run lost the claim race (usual: both saw it due), or came after the post
    loser = next(c for c in counts if not c.get("posted"))
    assert loser.get("claim_lost") == 1 or loser.get("due") == 0 or loser.get("not_queued") == 1, counts
    assert {d.service for d in done} == {"poster"}


async def test_posting_disabled_skips_with_the_seed_log_line_and_changes_nothing(bus, posters, imitation):
    # the seed's "Preparation Env": MODE=live, POSTING_DISABLED=true, LIVE_POSTS=false; no X session needed
    p = posters(POSTING_DISABLED="true", LIVE_POSTS="false", X_SESSION_FILE="", X_USERNAME="")
    await p.wait_ready()
    decisions = [queued(f"Queued while posting is disabled #{i} {uuid.uuid4().hex[:6]}") for i in range(3)]
    for q in decisions:
        await bus.publish(q)
    done = await job_done(bus, await trigger(bus))
    assert done.counts.get("posting_disabled") == 3
    for q in decisions:
        events = await history(bus, q.decision_id)
        assert [type(e) for e in events] == [DecisionQueued, DecisionPostSkipped]
        assert events[1].reason == "posting_disabled"
    assert imitation.state.snapshot()["tweets"] == [] and imitation.state.snapshot()["create_requests"] == 0
    messages = p.log_messages()
    for q in decisions:
        line = f"[POSTING_ORCHESTRATOR] ⏭️ Skipped posting decision_id={q.decision_id} reason=posting_disabled"
        assert line in messages


@needs_chromium
async def test_max_posts_per_hour_holds_across_a_restart(bus, posters, imitation):
    first = posters(MAX_POSTS_PER_HOUR="1")
    await first.wait_ready()
    a, b = (
        queued(f"First of the hour {uuid.uuid4().hex[:6]}"),
        queued(f"Second of the hour {uuid.uuid4().hex[:6]}"),
    )
    await bus.publish(a)
    await bus.publish(b)
    done = await job_done(bus, await trigger(bus))
    assert done.counts.get("posted") == 1 and done.counts.get("rate_limited") == 1
    first.stop()

    again = posters(MAX_POSTS_PER_HOUR="1")
    await again.wait_ready()
    done = await job_done(bus, await trigger(bus))
    assert done.counts.get("rate_limited") == 1 and not done.counts.get("posted")
    assert imitation.state.count_text(a.content) == 1 and imitation.state.count_text(b.content) == 0
    skips = [e for e in await history(bus, b.decision_id) if isinstance(e, DecisionPostSkipped)]
    assert [s.reason for s in skips] == ["rate_limited", "rate_limited"]
