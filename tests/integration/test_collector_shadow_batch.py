"""The collector in shadow mode (in-process runtime, real nats-server): a run's simulated outcomes are published
pipelined, in chunks, and the run returns only once its own state has applied them all, so the next run finds
nothing due and no outcome is ever recorded twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from services.collector.bootstrap import build
from services.collector.config import CollectorSettings
from services.collector.handlers import SHADOW_PUBLISH_CHUNK
from shared.config import load_settings
from shared.events import DecisionPosted, OutcomeRecorded, utcnow
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env
from tests.integration.test_collector_browser import run_collect

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_shadow_outcomes_are_published_in_pipelined_chunks_exactly_once(nats_url: str, namespace: str):
    environ = service_env(nats_url, namespace, COLLECT_INTERVAL_HOURS="0", COLLECT_HORIZONS_HOURS="1,24",
                          MODE="shadow")
    settings = load_settings(CollectorSettings, environ)
    ctx = await build_context("collector", settings, environ)
    rt = ServiceRuntime("collector", ctx, await build(ctx))
    await rt.start()
    try:
        bus = ctx.bus
        n = SHADOW_PUBLISH_CHUNK + 150  # more than one chunk per horizon
        posted_at = utcnow() - timedelta(hours=48)  # both horizons are due on a clock at about the wall's pace
        await bus.publish_many([
            DecisionPosted(event_id=f"posted-{i}", occurred_at=posted_at, decision_id=f"d{i}", tweet_id=f"{10**18 + i}",
                           posted_at=posted_at, decision_type="single", bandit_arm="ai_tools:how_to",
                           timing_arm="hour:9", simulated=True)
            for i in range(n)
        ])
        first = await run_collect(bus, "collect-1")
        assert first.status == "ok", first
        assert first.counts.get("recorded") == 2 * n
        second = await run_collect(bus, "collect-2")  # the state had applied every outcome of the first run
        assert not second.counts.get("recorded"), second
        outcomes = [i.event async for i in bus.read(f"{bus.names.evt_prefix}.outcome.>")
                    if isinstance(i.event, OutcomeRecorded)]
        per = Counter((o.decision_id, int(o.horizon_hours)) for o in outcomes)
        assert len(per) == 2 * n and max(per.values()) == 1
        assert {h for _, h in per} == {1, 24}
        assert all(o.simulated and o.er_calculated is not None for o in outcomes)
    finally:
        await rt.stop()
        await ctx.flags.stop()
        await ctx.bus.close()
