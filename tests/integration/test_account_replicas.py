"""Accounts split across replicas (ACCOUNT_LEASE_SECONDS), against the real nats-server: two poster replicas
and four accounts -- each account's posts come from one replica at a time; one replica dies (stops renewing,
no release), the other takes its accounts, and no decision is posted twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.poster.config import PosterSettings
from shared.bus import JetStreamBus
from shared.config import load_settings
from shared.events import DecisionQueued, new_event_id, utcnow
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ACCOUNTS = ("ana", "ben", "cai", "dee")
LEASE = "1.5"


def accounts_file(tmp_path: Path) -> Path:
    text = "".join(
        f'[[account]]\nid = "{a}"\nusername = "{a}_x"\ntopics = ["t_{a}"]\n'
        f"[account.limits]\nmax_posts_per_hour = 100\nmin_post_interval_minutes = 0\n\n"
        for a in ACCOUNTS
    )
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    return path


async def poster(nats_url: str, namespace: str, accounts: Path) -> ServiceRuntime:
    from services.poster.bootstrap import build

    environ = service_env(nats_url, namespace, MODE="shadow", XBOT_ACCOUNTS_FILE=str(accounts),
                          ACCOUNT_LEASE_SECONDS=LEASE, POSTING_INTERVAL_MINUTES="0.005", POSTING_BATCH="10")
    ctx = await build_context("poster", load_settings(PosterSettings, environ), environ)
    rt = ServiceRuntime("poster", ctx, await build(ctx))
    await rt.start()
    return rt


def queued(account: str, n: int) -> DecisionQueued:
    now = utcnow()
    return DecisionQueued(
        event_id=new_event_id(), occurred_at=now, account=account, decision_id=str(uuid.uuid4()),
        decision_type="single", content=f"{account}: a short useful note number {n} about practice.", parts=[],
        bandit_arm=f"t_{account}:how_to", generation_source="synthetic", scheduled_at=now - timedelta(minutes=1),
        topic_cluster=f"t_{account}", angle="how_to", content_hash=uuid.uuid4().hex, features={},
        embedding=b"", embedding_model="hashing-256",
    )


async def posts(bus: JetStreamBus) -> tuple[list[Any], list[Any]]:
    evs = [i.event async for i in bus.read() if i.event is not None]
    return ([e for e in evs if e.type == "decision.post_started"], [e for e in evs if e.type == "decision.posted"])


async def wait_posted(bus: JetStreamBus, n: int, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, posted = await posts(bus)
        if len(posted) >= n:
            return posted
        await asyncio.sleep(0.2)
    raise AssertionError(f"{len(posted)} of {n} posted after {timeout}s")


async def test_two_poster_replicas_split_four_accounts_and_take_over_a_dead_ones(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    path = accounts_file(tmp_path)
    a = await poster(nats_url, namespace, path)
    b = await poster(nats_url, namespace, path)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (len(a.ctx.leases.held()) == len(b.ctx.leases.held()) == 2):
            await asyncio.sleep(0.1)
        held_a, held_b = a.ctx.leases.held(), b.ctx.leases.held()
        assert len(held_a) == len(held_b) == 2 and not held_a & held_b and held_a | held_b == set(ACCOUNTS)

        await bus.publish_many([queued(acct, n) for acct in ACCOUNTS for n in range(3)])
        await wait_posted(bus, 12)
        started, _ = await posts(bus)
        by_account: dict[str, set[str]] = defaultdict(set)
        for s in started:
            by_account[s.account].add(s.poster_id)
        holder = {acct: (a if acct in held_a else b).ctx.instance_id for acct in ACCOUNTS}
        assert {acct: ids for acct, ids in by_account.items()} == {acct: {holder[acct]} for acct in ACCOUNTS}

        # replica a dies: it stops renewing and posting, releasing nothing
        await a.ctx.leases.stop(release=False)
        a.ctx.leases = None
        await a.stop()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and b.ctx.leases.held() != set(ACCOUNTS):
            await asyncio.sleep(0.1)
        takeover = time.monotonic() - t0
        assert b.ctx.leases.held() == set(ACCOUNTS) and takeover < 2 * float(LEASE) + 1.0, takeover

        await bus.publish_many([queued(acct, n) for acct in ACCOUNTS for n in range(3, 5)])
        posted = await wait_posted(bus, 20)
        started, _ = await posts(bus)
        later = [s for s in started if s.decision_id not in {p.decision_id for p in posted[:12]}]
        assert {s.poster_id for s in later} == {b.ctx.instance_id}
        # no decision posted twice, no tweet recorded twice
        assert len({p.decision_id for p in posted}) == len(posted) == 20
        assert len({p.tweet_id for p in posted}) == 20
    finally:
        await b.stop()
        for rt in (a, b):
            await rt.ctx.flags.stop()
            await rt.ctx.bus.close()
        with contextlib.suppress(Exception):
            await bus.js.delete_key_value(bus.names.bucket("leases"))
