"""The soak: all six services as processes in shadow mode on a fast clock, for ``SOAK_SECONDS`` (default 120;
``make test`` runs a 40 s soak -- three or so kills -- and ``make soak`` the full two minutes),
while every 10-20 s (seeded: ``SOAK_SEED``) one service is killed with SIGKILL and started again, in seeded
random order, each of the six once per round (two minutes make ~7 kills: every service at least once). Then everything is stopped with SIGTERM and the log and the read models are checked:

- no decision posted twice, no tweet id recorded twice, every post after a claim;
- no outcome recorded twice per (decision, horizon), none for an unposted decision;
- no reply target answered twice; model versions 1..n once each;
- budget intact: no LLM call and no spend in shadow mode, the budget bucket untouched;
- every posted decision has each outcome recorded or still owed (nothing forgotten across kills);
- no process ended on its own, nothing dead-lettered;
- the gateway's read models equal a fresh replay of the log into a second database, every row of every read
  model table compared (no column excluded: ``updated_at`` and ``created_at`` are event times, not projection
  times; the one projection-time column, ``projection_offsets.updated_at``, is not a read model).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import timedelta
from pathlib import Path

import pytest

from services.gateway import sql
from services.gateway.replay import rebuild
from shared.bus import JetStreamBus
from shared.clock import shared_clock
from shared.events import JobCompleted
from tests.chaos.helpers import (
    ServiceProc,
    check_log,
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
from xbot.embedded import free_port

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
SOAK_SEED = int(os.environ.get("SOAK_SEED", "20261124"))
SPEED = 1200.0  # one clock hour every 3 s: +1 h outcomes within seconds, +24 h within ~72 s
HORIZONS = (1, 24)
SERVICES = ("gateway", "planner", "replier", "poster", "collector", "learner")

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(int(SOAK_SECONDS) + 240)]


def soak_envs(nats_url: str, namespace: str, database_url: str, home: Path) -> dict[str, dict[str, str]]:
    common = {
        "MODE": "shadow", "SHADOW_CLOCK_SPEED": f"{SPEED:g}", "SHADOW_SEED": "7", "LOG_FORMAT": "json",
        "XBOT_HOME": str(home), "MAX_POSTS_PER_HOUR": "4", "MIN_POST_INTERVAL_MINUTES": "10",
        "REPLY_MAX_PER_DAY": "24",
    }
    # intervals in clock units; at x1200 each is 1.5-6 s of wall time
    extra = {
        "gateway": {"DATABASE_URL": database_url, "GATEWAY_PORT": str(free_port()), "GATEWAY_HOST": "127.0.0.1",
                    "ADMIN_TOKEN": "soak-token"},
        "planner": {"PLAN_INTERVAL_MINUTES": "60", "PLAN_MAX_QUEUED": "12"},
        "replier": {"REPLY_INTERVAL_MINUTES": "90"},
        "poster": {"POSTING_INTERVAL_MINUTES": "30", "RECONCILE_GRACE_MINUTES": "20"},
        "collector": {"COLLECT_INTERVAL_HOURS": "0.5"},
        "learner": {"LEARN_INTERVAL_MINUTES": "120"},
    }
    return {name: service_env(nats_url, namespace, **common, **extra[name]) for name in SERVICES}


async def test_soak_with_random_kills_keeps_every_promise(
    bus: JetStreamBus, nats_url: str, namespace: str, database_url: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SOAK_SEED)
    envs = soak_envs(nats_url, namespace, database_url, tmp_path / "home")
    procs = {name: ServiceProc(name, envs[name], tmp_path) for name in SERVICES}
    kills: list[tuple[float, str]] = []
    died_on_their_own: list[str] = []
    rotation: list[str] = []
    try:
        for p in procs.values():
            p.start()
        await asyncio.gather(*(p.wait_ready(90) for p in procs.values()))
        t0 = time.monotonic()
        end = t0 + SOAK_SECONDS
        next_kill = t0 + rng.uniform(10, 20)
        while time.monotonic() < end:
            await asyncio.sleep(0.25)
            for p in procs.values():
                if not p.alive:  # not one of our kills: a crash
                    died_on_their_own.append(f"{p.name} (rc={p.proc and p.proc.returncode}):\n{p.tail(1500)}")
                    p.start()
            if time.monotonic() >= next_kill and time.monotonic() < end - 5:
                if not rotation:  # seeded shuffles of all six: every service is killed once per round
                    rotation = rng.sample(SERVICES, len(SERVICES))
                victim = procs[rotation.pop()]
                await asyncio.to_thread(victim.kill9)
                kills.append((round(time.monotonic() - t0, 1), victim.name))
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                victim.start()
                next_kill = time.monotonic() + rng.uniform(10, 20)
        # the last victim comes back before the end, so every service has its say after its restart
        await asyncio.gather(*(p.wait_ready(90) for p in procs.values()))

        clock_now = (await shared_clock(bus, SPEED)).now()  # the collector is still running here
        drained = {}
        for name in SERVICES[1:]:  # the producers first, so the gateway sees the whole log
            drained[name] = await asyncio.to_thread(procs[name].stop)
        last = await bus.last_seq()
        caught_up = await wait_until_async(lambda: _offset_at_least(database_url, last), 60)
        assert caught_up, f"the gateway projected up to {await projector_offset(database_url)} of {last}"
        drained["gateway"] = await asyncio.to_thread(procs["gateway"].stop)
    finally:
        await asyncio.to_thread(stop_all, procs.values())

    assert died_on_their_own == [], died_on_their_own
    assert drained == dict.fromkeys(drained, 0), f"not a clean drain on SIGTERM: {drained}"

    events = await log_events(bus)
    # a collector down for a restart owes what came due meanwhile: allow 40 s of wall time of slack
    report = check_log(events, horizons=HORIZONS, clock_now=clock_now,
                       owed_slack=timedelta(seconds=40 * SPEED), mode="shadow")
    jobs = of(JobCompleted, events)
    job_status = {f"{j.service}:{j.status}": 0 for j in jobs}
    for j in jobs:
        job_status[f"{j.service}:{j.status}"] += 1
    budget = await _budget_spent(bus)
    dlq = await bus.dlq_count()

    live = await table_rows(database_url, sql.READ_MODEL_TABLES)
    async with fresh_database(postgres_admin_url) as replay_url:
        progress: list[int] = []
        stats = await rebuild(nats_url=nats_url, database_url=replay_url, namespace=namespace,
                              on_progress=lambda done, total: progress.append(done))
        replayed = await table_rows(replay_url, sql.READ_MODEL_TABLES)
    rows = {t: len(r) for t, r in live.items()}

    print(f"\nSOAK {SOAK_SECONDS:g}s seed={SOAK_SEED} kills={len(kills)} {kills}")
    print(f"SOAK counts {report.counts} rows={rows} jobs={job_status} budget_spent={budget} dlq={dlq}")
    print(f"SOAK invariants checked: {len(report.checked) + 5} ({'; '.join(report.checked)}; budget bucket; "
          "no crash; clean drain; no dead letter; read models == replay)")

    assert report.violations == [], report.violations
    assert budget == 0, f"shadow mode spent {budget} micro-USD"
    assert dlq == 0, f"{dlq} messages dead-lettered during the soak"
    assert not [j for j in jobs if j.status == "failed"], [j for j in jobs if j.status == "failed"]
    assert diff_rows(live, replayed) == [], diff_rows(live, replayed)
    assert stats.last_seq == last and progress and progress[-1] == last
    # the soak did something worth checking
    assert len(kills) >= max(1, int(SOAK_SECONDS // 20) - 1), kills
    if len(kills) >= len(SERVICES):  # a full round
        assert {name for _, name in kills} == set(SERVICES), kills
    assert report.counts["posted"] >= 5 and report.counts["outcomes"] >= 5, report.counts
    assert rows["content_metadata"] == report.counts["queued"] + report.counts["gated"]
    assert rows["posted_decisions"] == report.counts["posted"]
    assert rows["outcomes"] == report.counts["outcomes"]


async def _offset_at_least(database_url: str, seq: int) -> bool:
    return await projector_offset(database_url) >= seq


async def _budget_spent(bus: JetStreamBus) -> int:
    """Micro-USD spent or reserved in the shared budget bucket, over every day it holds."""
    import msgspec

    from shared.llm.budget import DayState

    kv = await bus.kv("budget")
    try:
        keys = await kv.keys()
    except Exception:  # no keys: nothing was ever reserved
        return 0
    total = 0
    for key in keys:
        entry = await kv.get(key)
        if entry.value:
            day = msgspec.json.decode(entry.value, type=DayState)
            total += day.spent + day.reserved
    return total
