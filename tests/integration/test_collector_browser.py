"""The collector service (in-process runtime, real nats-server) reading status pages of the X imitation
through the real browser adapter in headless Chromium."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.collector.bootstrap import build
from services.collector.config import CollectorSettings
from shared.bus import JetStreamBus, wait_until
from shared.config import load_settings
from shared.events import (
    Command,
    DecisionPosted,
    JobCompleted,
    OutcomeCollectionFailed,
    OutcomeRecorded,
    utcnow,
)
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env
from tests.fakes.x_imitation import XImitation, start_x_imitation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not (Path("/usr/bin/chromium").exists() or shutil.which("chromium")), reason="needs Chromium"
    ),
]

MISSING_ID = "1899999999999999999"


@pytest.fixture
def imitation():
    x = start_x_imitation(user="alice")
    yield x
    x.stop()


async def start_collector(nats_url: str, namespace: str, x: XImitation, **extra: str) -> ServiceRuntime:
    env = {
        "MODE": "live", "REAL_METRICS_ENABLED": "true", "X_USERNAME": "alice", "X_BASE_URL": x.base_url,
        "X_SESSION_B64": x.session_b64(), "X_DWELL_MIN_MS": "0", "X_DWELL_MAX_MS": "0",
        "COLLECT_INTERVAL_HOURS": "0", "COLLECT_MAX_ATTEMPTS": "2", "X_TIMEOUT_MS": "3000",
    }
    environ = service_env(nats_url, namespace, **{**env, **extra})
    settings = load_settings(CollectorSettings, environ)
    ctx = await build_context("collector", settings, environ)
    rt = ServiceRuntime("collector", ctx, await build(ctx))
    await rt.start()
    return rt


async def stop_collector(rt: ServiceRuntime) -> None:
    await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


def posted(decision_id: str, tweet_id: str, at: datetime, *, simulated: bool = False) -> DecisionPosted:
    return DecisionPosted(
        event_id=f"posted-{decision_id}", occurred_at=at, decision_id=decision_id, tweet_id=tweet_id,
        posted_at=at, decision_type="single", bandit_arm="ai_tools:how_to", timing_arm=f"hour:{at.hour}",
        simulated=simulated,
    )


async def run_collect(bus: JetStreamBus, run_id: str) -> JobCompleted:
    await bus.publish_command(Command(job="collect", run_id=run_id, requested_at=utcnow()))
    found: list[JobCompleted] = []

    async def poll() -> bool:
        items = await bus.aggregate_history("job", run_id)
        found[:] = [i.event for i in items if isinstance(i.event, JobCompleted)]
        return bool(found)

    for _ in range(600):
        if await poll():
            return found[0]
        await wait_until(lambda: False, timeout=0.1)
    raise AssertionError(f"job {run_id} did not complete")


async def outcome_events(bus: JetStreamBus) -> list:
    return [i.event async for i in bus.read(f"{bus.names.evt_prefix}.outcome.>") if i.event is not None]


async def test_live_collection_from_the_imitation(bus: JetStreamBus, nats_url: str, namespace: str, imitation):
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    ours = imitation.state.add_tweet(
        "alice", "our post", metrics={"impressions": 12345, "likes": 321, "retweets": 12, "replies": 7,
                                      "bookmarks": 5, "quotes": 2},
    )
    theirs = imitation.state.add_tweet("bob", "bob's post", metrics={"impressions": 999, "likes": 99})
    await bus.publish_many([
        posted("d-ours", ours, two_hours_ago),
        posted("d-bob", theirs, two_hours_ago + timedelta(seconds=1)),
        posted("d-gone", MISSING_ID, two_hours_ago + timedelta(seconds=2)),
        posted("d-sim", "sim-0001", two_hours_ago + timedelta(seconds=3), simulated=True),
        posted("d-young", ours, datetime.now(UTC) - timedelta(minutes=10)),
    ])
    rt = await start_collector(nats_url, namespace, imitation)
    try:
        first = await run_collect(bus, "collect-1")
        assert first.status == "ok" and first.counts == {"recorded": 1, "failed": 2}
        events = await outcome_events(bus)
        recorded = [e for e in events if isinstance(e, OutcomeRecorded)]
        assert [(e.decision_id, e.horizon_hours, e.simulated) for e in recorded] == [("d-ours", 1, False)]
        (r,) = recorded
        assert r.event_id == "outcome:d-ours:1" and r.tweet_id == ours
        assert (r.impressions, r.likes, r.retweets, r.replies, r.bookmarks, r.quotes) == (12345, 321, 12, 7, 5, 2)
        assert r.er_calculated == pytest.approx((321 + 12 + 7 + 5 + 2) / 12345)
        fails = {e.decision_id: e for e in events if isinstance(e, OutcomeCollectionFailed)}
        assert set(fails) == {"d-bob", "d-gone"}
        assert fails["d-bob"].final and fails["d-bob"].reason.startswith("page_mismatch")  # another account's
        assert not fails["d-gone"].final and fails["d-gone"].reason.startswith("unavailable")  # did not load

        second = await run_collect(bus, "collect-2")  # only the page that did not load is tried again
        assert second.counts == {"failed": 1}
        events = await outcome_events(bus)
        gone = [e for e in events if isinstance(e, OutcomeCollectionFailed) and e.decision_id == "d-gone"]
        assert [(e.attempt, e.final) for e in gone] == [(1, False), (2, True)]
        assert len([e for e in events if isinstance(e, OutcomeRecorded)]) == 1  # nothing fabricated, no dup

        third = await run_collect(bus, "collect-3")
        assert third.counts == {}
    finally:
        await stop_collector(rt)


async def test_a_page_that_does_not_load_is_retried_next_run(
    bus: JetStreamBus, nats_url: str, namespace: str, imitation
):
    ours = imitation.state.add_tweet("alice", "slow post", metrics={"impressions": 1000, "likes": 50})
    await bus.publish(posted("d-slow", ours, datetime.now(UTC) - timedelta(hours=2)))
    imitation.state.set_mode(None, slow=3.0, slow_on="pages")
    rt = await start_collector(nats_url, namespace, imitation, X_TIMEOUT_MS="1500")
    try:
        first = await run_collect(bus, "slow-1")
        assert first.counts == {"failed": 1}
        (fail,) = [e for e in await outcome_events(bus) if isinstance(e, OutcomeCollectionFailed)]
        assert fail.reason.startswith("timeout") and not fail.final
        imitation.state.clear_mode()
        second = await run_collect(bus, "slow-2")
        assert second.counts == {"recorded": 1}
        (rec,) = [e for e in await outcome_events(bus) if isinstance(e, OutcomeRecorded)]
        assert rec.er_calculated == pytest.approx(0.05) and rec.simulated is False
    finally:
        await stop_collector(rt)


async def test_live_collection_is_skipped_when_real_metrics_are_off(
    bus: JetStreamBus, nats_url: str, namespace: str, imitation
):
    ours = imitation.state.add_tweet("alice", "post", metrics={"impressions": 100, "likes": 5})
    await bus.publish(posted("d1", ours, datetime.now(UTC) - timedelta(hours=2)))
    rt = await start_collector(nats_url, namespace, imitation, REAL_METRICS_ENABLED="false")
    try:
        done = await run_collect(bus, "off-1")
        assert done.status == "skipped"
        assert await outcome_events(bus) == []
    finally:
        await stop_collector(rt)
