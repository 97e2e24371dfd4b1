"""Races between processes (the other two of issue 9's races, two posters on one decision and four planners on
one budget, are in tests/e2e/test_poster_crash_matrix.py and tests/integration/test_planner_service.py):

- two gateway processes project the same log into the same database at once, one of them killed with SIGKILL
  mid-stream and restarted: the shared offset row is never corrupted (it ends at the log's end, never moves
  back), nothing is applied twice, and every row equals a single fresh replay;
- an operator flips ``POSTING_DISABLED=true`` through the flag store (the KV bucket, as the gateway does)
  while a live posting run is inside a post on the X imitation (slow to answer): the post in flight ends, no
  post starts after the flip is seen.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.gateway import sql
from services.gateway.replay import rebuild
from shared.bus import JetStreamBus
from shared.events import (
    Command,
    DecisionPosted,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    Event,
    FlagChanged,
    JobCompleted,
    new_event_id,
    utcnow,
)
from shared.flagstore import FlagStore
from tests.chaos.helpers import (
    ServiceProc,
    diff_rows,
    fresh_database,
    log_events,
    of,
    projector_offset,
    stop_all,
    table_rows,
    wait_until_async,
)
from tests.conftest import service_env
from tests.fakes.x_imitation import start_x_imitation
from tests.integration.test_projector_scenario import SCENARIO_DECISIONS, SCENARIO_OUTCOMES, scenario
from xbot.embedded import free_port

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(150)]

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")


def gateway_env(nats_url: str, namespace: str, database_url: str, batch: int) -> dict[str, str]:
    return service_env(nats_url, namespace, DATABASE_URL=database_url, GATEWAY_PORT=str(free_port()),
                       GATEWAY_HOST="127.0.0.1", ADMIN_TOKEN="race-token", MODE="shadow", LOG_FORMAT="json",
                       PROJECTOR_BATCH=str(batch), PROJECTOR_FLUSH_MS="0", READY_MAX_LAG="0")


async def test_two_gateways_one_database_one_killed_mid_stream(
    bus: JetStreamBus, nats_url: str, namespace: str, database_url: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    events = scenario(n_bulk=400)  # ~1650 events of every type the gateway projects
    a = ServiceProc("gateway", gateway_env(nats_url, namespace, database_url, 7), tmp_path / "a")
    b = ServiceProc("gateway", gateway_env(nats_url, namespace, database_url, 13), tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    offsets: list[int] = []
    watching = True

    async def watch_offset() -> None:  # the shared offset row, sampled all along: it may never move back
        conn = await asyncpg.connect(database_url)
        try:
            while watching:
                v = await conn.fetchval("SELECT last_seq FROM projection_offsets WHERE projector = 'gateway'")
                if v is not None:
                    offsets.append(int(v))
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    watcher: asyncio.Task[None] | None = None
    try:
        a.start()
        b.start()
        await asyncio.gather(a.wait_ready(60), b.wait_ready(60))
        watcher = asyncio.create_task(watch_offset())
        third = len(events) // 3

        async def publish(part: list[Event]) -> None:
            for i in range(0, len(part), 37):  # both race for each chunk
                await bus.publish_many(part[i:i + 37])
                await asyncio.sleep(0.01)

        await publish(events[:third])
        rest = asyncio.create_task(publish(events[third:]))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(a.kill9)  # mid-stream: most likely inside a batch, holding the offset row's lock
        killed_at = await projector_offset(database_url)
        await asyncio.sleep(0.5)
        await rest
        a.start()
        last = await bus.last_seq()
        assert await wait_until_async(lambda: _offset_is(database_url, last), 60), await projector_offset(database_url)
        await asyncio.gather(a.wait_ready(60), b.wait_ready(60))  # READY_MAX_LAG=0: each says it is caught up
        health = await asyncio.gather(*(_health(p) for p in (a, b)))
    finally:
        watching = False
        if watcher is not None:
            await watcher
        await asyncio.to_thread(stop_all, (a, b))

    assert offsets == sorted(offsets), "the shared offset moved back"
    assert offsets[-1] == last and await projector_offset(database_url) == last
    assert all(h["dead_lettered"] == 0 for h in health), health
    assert b.kills == 0 and a.kills == 1 and 0 < killed_at < last  # killed mid-stream
    shared = await table_rows(database_url, sql.READ_MODEL_TABLES)
    async with fresh_database(postgres_admin_url) as single:
        stats = await rebuild(nats_url=nats_url, database_url=single, namespace=namespace)
        replayed = await table_rows(single, sql.READ_MODEL_TABLES)
    assert stats.events == last
    assert diff_rows(shared, replayed) == []
    assert len(shared["content_metadata"]) == SCENARIO_DECISIONS + 400 and len(shared["outcomes"]) == SCENARIO_OUTCOMES + 400
    conn = await asyncpg.connect(database_url)
    try:  # one offset row per projector name, no stray one
        rows = await conn.fetch("SELECT projector, last_seq FROM projection_offsets")
    finally:
        await conn.close()
    assert [(r["projector"], r["last_seq"]) for r in rows] == [("gateway", last)]


async def _offset_is(database_url: str, seq: int) -> bool:
    return await projector_offset(database_url) == seq


async def _health(p: ServiceProc) -> dict[str, object]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{p.port}/healthz", timeout=5)).json()


def _queued(text: str) -> DecisionQueued:
    now = utcnow()
    return DecisionQueued(
        event_id=new_event_id(), occurred_at=now, decision_id=str(uuid.uuid4()), decision_type="single",
        content=text, parts=[], bandit_arm="how_to", timing_arm="slot-12", generation_source="real",
        scheduled_at=now - timedelta(minutes=1), topic_cluster="shipping", angle="practical",
        content_hash=uuid.uuid4().hex,
    )


async def _job_done(bus: JetStreamBus, run_id: str, timeout: float, proc: ServiceProc) -> JobCompleted:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = of(JobCompleted, await log_events(bus, frozenset({"job.completed"})))
        done = [d for d in done if d.run_id == run_id]
        if done:
            return done[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not complete in {timeout}s:\n{proc.tail()}")


@needs_chromium
async def test_posting_disabled_flipped_mid_run_no_post_starts_after_the_flip(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    x = start_x_imitation(user="alice")
    env = service_env(
        nats_url, namespace, MODE="live", LIVE_POSTS="true", POSTING_DISABLED="false", MAX_POSTS_PER_HOUR="100",
        MIN_POST_INTERVAL_MINUTES="0", POSTING_INTERVAL_MINUTES="0", X_BASE_URL=x.base_url, X_USERNAME="alice",
        X_SESSION_FILE=str(x.write_session(tmp_path / "session.json")), CHROMIUM_PATH=CHROMIUM,
        X_ARTIFACTS_DIR=str(tmp_path / "artifacts"), X_DWELL_MIN_MS="0", X_DWELL_MAX_MS="0",
        X_TIMEOUT_MS="20000", XBOT_HOME=str(tmp_path / "home"), LOG_FORMAT="json",
    )
    poster = ServiceProc("poster", env, tmp_path)
    operator = FlagStore(bus, {})  # what the gateway's PUT /admin/flags does: the KV bucket + flag.changed
    await operator.start()
    decisions = [_queued(f"Flip race #{i}: ship behind a flag {uuid.uuid4().hex[:6]}") for i in range(4)]
    try:
        poster.start()
        await poster.wait_ready(60)
        for q in decisions:
            await bus.publish(q)
        # every CreateTweet is slow to answer (the tweet exists at once; the answer comes 3 s later)
        x.state.set_mode(None, slow=3.0, slow_on="create")
        run_id = uuid.uuid4().hex
        await bus.publish_command(Command(job="posting", run_id=run_id, requested_at=utcnow(), requested_by="cli"))
        deadline = time.monotonic() + 60
        while x.state.create_requests < 1:  # the first post is in flight on X
            assert time.monotonic() < deadline, poster.tail()
            await asyncio.sleep(0.02)
        await operator.set("POSTING_DISABLED", "true", actor="chaos-operator")
        in_flight_at_flip = x.state.create_requests
        done = await _job_done(bus, run_id, 60, poster)
        await asyncio.sleep(0.5)
        create_requests = x.state.create_requests
    finally:
        await operator.stop()
        await asyncio.to_thread(poster.stop)
        x.stop()

    assert in_flight_at_flip == 1
    assert create_requests == 1, "a post started on X after the flip"
    assert done.status == "ok" and done.counts.get("posted") == 1 and done.counts.get("posting_disabled") == 3, done
    events = await log_events(bus)
    (flip_seq,) = [s for s, e in events if isinstance(e, FlagChanged) and e.new_value == "true"]
    late_claims = [e for s, e in events if isinstance(e, DecisionPostStarted) and s > flip_seq]
    assert late_claims == [], "a claim after the flip"
    (posted,) = of(DecisionPosted, events)
    (tweet,) = [t for q in decisions for t in x.state.tweets_with_text(q.content)]
    assert posted.tweet_id == tweet.tweet_id and not posted.simulated
    skipped = of(DecisionPostSkipped, events)
    assert sorted(s.decision_id for s in skipped) == sorted(q.decision_id for q in decisions
                                                            if q.decision_id != posted.decision_id)
    assert {s.reason for s in skipped} == {"posting_disabled"}
    line = "[POSTING_ORCHESTRATOR] ⏭️ Skipped posting decision_id={} reason=posting_disabled"
    assert all(line.format(s.decision_id) in poster.messages() for s in skipped)
