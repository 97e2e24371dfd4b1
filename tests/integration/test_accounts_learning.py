"""Accounts are isolated in collection and learning (DESIGN.md promise 8), against a real nats-server with the
services' own runtimes: each account's outcomes carry its account and come from its own simulated audience; the
learner keeps one model per account, trained only on that account's outcomes, with its own versions that a
restart (a snapshot) resumes; the every-N-outcomes trigger counts per account; and in a live collect run one
account's lost session never stops another account's collection."""

from __future__ import annotations

import importlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.collector.config import CollectorSettings
from shared.accounts import load_accounts
from shared.bus import JetStreamBus, wait_until
from shared.config import load_settings
from shared.events import (
    Command,
    DecisionPosted,
    DecisionQueued,
    JobCompleted,
    ModelUpdated,
    OutcomeCollectionFailed,
    OutcomeRecorded,
    utcnow,
)
from shared.service import ServiceRuntime, build_context
from shared.sim.audience import Audience
from shared.x.factory import account_settings
from tests.conftest import service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOPICS = ("ai_tools", "startups")
ANGLES = ("how_to", "story")
ARM_X, ARM_Y = "ai_tools:how_to", "startups:story"
SETTINGS = {"collector": "CollectorSettings", "learner": "LearnerSettings"}


def accounts_file(tmp_path: Path, *accounts: dict[str, str]) -> Path:
    """An accounts file of ``accounts`` (id, username, and for a browser account its session file)."""
    lines = []
    for a in accounts:
        lines += ["[[account]]", f'id = "{a["id"]}"', f'username = "{a.get("username", a["id"])}"',
                  f'publisher = "{a.get("publisher", "simulated")}"',
                  f"topics = [{', '.join(repr(t).replace(chr(39), chr(34)) for t in TOPICS)}]",
                  f"angles = [{', '.join(repr(t).replace(chr(39), chr(34)) for t in ANGLES)}]"]
        if "session" in a:
            lines.append(f'session = "{a["session"]}"')
        lines.append("")
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


async def start(name: str, nats_url: str, namespace: str, accounts: Path, **extra: str) -> ServiceRuntime:
    settings_cls = getattr(importlib.import_module(f"services.{name}.config"), SETTINGS[name])
    build = importlib.import_module(f"services.{name}.bootstrap").build
    env = {"MODE": "shadow", "XBOT_ACCOUNTS_FILE": str(accounts), "COLLECT_INTERVAL_HOURS": "0",
           "LEARN_INTERVAL_MINUTES": "0", **extra}
    environ = service_env(nats_url, namespace, **env)
    ctx = await build_context(name, load_settings(settings_cls, environ), environ)
    rt = ServiceRuntime(name, ctx, await build(ctx))
    await rt.start()
    return rt


async def stop(rt: ServiceRuntime) -> None:
    await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


async def completed(bus: JetStreamBus, run_id: str) -> JobCompleted:
    for _ in range(600):
        found = [i.event for i in await bus.aggregate_history("job", run_id) if isinstance(i.event, JobCompleted)]
        if found:
            return found[0]
        await wait_until(lambda: False, timeout=0.05)
    raise AssertionError(f"job {run_id} did not complete")


async def run_job(bus: JetStreamBus, job: str, run_id: str, **params: str) -> JobCompleted:
    await bus.publish_command(Command(job=job, run_id=run_id, requested_at=utcnow(), params=params))
    return await completed(bus, run_id)


async def events_of(bus: JetStreamBus, cls: type, account: str | None = None) -> list[Any]:
    """Every event of a type, or those under one account's subjects."""
    subject = bus.names.account_events(account) if account else None
    return [i.event async for i in bus.read(subject) if isinstance(i.event, cls)]


def posted(account: str, i: int, arm: str, at: datetime, *, simulated: bool = True,
           tweet_id: str | None = None) -> DecisionPosted:
    return DecisionPosted(
        event_id=f"posted-{account}-{i}", occurred_at=at, account=account, decision_id=f"{account}-d{i}",
        tweet_id=tweet_id or f"sim-{account}-{i:04d}", posted_at=at, decision_type="single", bandit_arm=arm,
        timing_arm=f"hour:{at.hour}", simulated=simulated,
    )


# --------------------------------------------------------------------------------------------- collector


async def test_shadow_outcomes_carry_their_accounts_and_come_from_each_accounts_own_audience(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    path = accounts_file(tmp_path, {"id": "alpha"}, {"id": "beta"})
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
    arms = [f"{t}:{a}" for t in TOPICS for a in ANGLES]
    n = 12
    await bus.publish_many([posted(acc, i, arms[i % len(arms)], at) for acc in ("alpha", "beta") for i in range(n)])
    rt = await start("collector", nats_url, namespace, path)
    try:
        # params.account: that account only
        first = await run_job(bus, "collect", "collect-alpha", account="alpha")
        assert first.status == "ok" and first.counts == {"recorded": 2 * n}  # +1 h and +24 h of each post
        assert {e.account for e in await events_of(bus, OutcomeRecorded)} == {"alpha"}
        # a run for every account: beta's now (alpha's are settled)
        second = await run_job(bus, "collect", "collect-all")
        assert second.status == "ok" and second.counts == {"recorded": 2 * n}
        third = await run_job(bus, "collect", "collect-again")
        assert not third.counts.get("recorded")
    finally:
        await stop(rt)

    outcomes = await events_of(bus, OutcomeRecorded)
    assert len(outcomes) == 4 * n and len({e.event_id for e in outcomes}) == 4 * n
    for e in outcomes:  # an outcome is its decision's account's, and its subject is that account's
        assert e.decision_id.startswith(f"{e.account}-") and e.simulated
    for acc in ("alpha", "beta"):
        under = await events_of(bus, OutcomeRecorded, acc)
        assert len(under) == 2 * n and {e.account for e in under} == {acc}

    # each account's counts are its own audience's (its own seed over its own arms), not the other's
    environ = service_env(nats_url, namespace, MODE="shadow", XBOT_ACCOUNTS_FILE=str(path))
    s = load_settings(CollectorSettings, environ)
    profiles = {p.id: p for p in load_accounts(environ)}
    audiences = {
        acc: Audience(account_settings(s, p, environ, builtin=False).SHADOW_SEED, content_arms=p.content_arms())
        for acc, p in profiles.items()
    }
    assert audiences["alpha"].seed != audiences["beta"].seed != s.SHADOW_SEED
    differs = 0
    for e in outcomes:
        got = {k: getattr(e, k) for k in ("impressions", "likes", "retweets", "replies", "bookmarks", "quotes")}
        own = audiences[e.account].metrics(e.decision_id, e.bandit_arm, at.hour, "single", e.horizon_hours)
        other = audiences["beta" if e.account == "alpha" else "alpha"].metrics(
            e.decision_id, e.bandit_arm, at.hour, "single", e.horizon_hours)
        assert got == own
        differs += got != other
    assert differs >= 0.9 * len(outcomes)
    # the hidden truths differ: the accounts have something of their own to learn
    assert [audiences["alpha"].expected_er(a, 9) for a in arms] != [audiences["beta"].expected_er(a, 9) for a in arms]


@pytest.mark.skipif(not (Path("/usr/bin/chromium").exists() or shutil.which("chromium")), reason="needs Chromium")
async def test_a_live_run_where_one_account_is_logged_out_still_records_the_others(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    from tests.fakes.x_imitation import start_x_imitation

    x = start_x_imitation(user="alice", users=("alice", "bob"))
    try:
        alice_session = x.write_session(tmp_path / "alice.json")
        stale = tmp_path / "bob-expired.json"  # bob's session was revoked on X: its token is no longer known
        revoked = x.session_state("bob")
        for cookie in revoked["cookies"]:
            cookie["value"] = "revoked"
        stale.write_text(json.dumps(revoked), encoding="utf-8")
        # the logged-out account comes first: its failure must not end the run before alpha's turn
        path = accounts_file(
            tmp_path,
            {"id": "beta", "username": "bob", "publisher": "browser", "session": f"file:{stale}"},
            {"id": "alpha", "username": "alice", "publisher": "browser", "session": f"file:{alice_session}"},
        )
        at = datetime.now(UTC) - timedelta(hours=2)
        a_tweets = [x.state.add_tweet("alice", f"alpha post {i}", metrics={"impressions": 1000 + i, "likes": 40 + i})
                    for i in range(2)]
        b_tweets = [x.state.add_tweet("bob", f"beta post {i}", metrics={"impressions": 900, "likes": 9})
                    for i in range(2)]
        events: list[Any] = [posted("alpha", i, ARM_X, at, simulated=False, tweet_id=t) for i, t in enumerate(a_tweets)]
        events += [posted("beta", i, ARM_Y, at, simulated=False, tweet_id=t) for i, t in enumerate(b_tweets)]
        await bus.publish_many(events)
        rt = await start(
            "collector", nats_url, namespace, path, MODE="live", REAL_METRICS_ENABLED="true", X_USERNAME="",
            X_BASE_URL=x.base_url, X_DWELL_MIN_MS="0", X_DWELL_MAX_MS="0", COLLECT_MAX_ATTEMPTS="2",
            X_TIMEOUT_MS="3000", X_ARTIFACTS_DIR=str(tmp_path / "artifacts"),
        )
        try:
            done = await run_job(bus, "collect", "collect-live")
        finally:
            await stop(rt)
    finally:
        x.stop()
    assert done.status == "ok" and done.counts == {"recorded": 2, "aborted": 1}, done.counts
    recorded = await events_of(bus, OutcomeRecorded)
    assert sorted((e.account, e.decision_id, e.horizon_hours, e.simulated) for e in recorded) == [
        ("alpha", "alpha-d0", 1, False), ("alpha", "alpha-d1", 1, False)]
    assert sorted(e.impressions for e in recorded) == [1000, 1001]
    assert await events_of(bus, OutcomeCollectionFailed) == []  # beta's decisions were not charged an attempt


# ----------------------------------------------------------------------------------------------- learner


def queued(account: str, i: int, arm: str, hour: int) -> DecisionQueued:
    topic, angle = arm.split(":")
    at = datetime(2025, 3, 1, hour, tzinfo=UTC)
    return DecisionQueued(
        event_id=f"q-{account}-{i}", occurred_at=at, account=account, decision_id=f"{account}-d{i}",
        decision_type="single", content=f"post {i}", parts=[], bandit_arm=arm, timing_arm=f"hour:{hour}",
        quality_score=0.7 + 0.01 * i, generation_source="synthetic", scheduled_at=at, topic_cluster=topic,
        angle=angle, content_hash=f"h-{account}-{i}", features={"weighted_length": 100 + 9 * i},
    )


def outcome(account: str, i: int, arm: str, hour: int, likes: int) -> OutcomeRecorded:
    at = datetime(2025, 3, 2, hour, tzinfo=UTC)
    return OutcomeRecorded(
        event_id=f"outcome:{account}:{account}-d{i}:24", occurred_at=at, account=account,
        decision_id=f"{account}-d{i}", tweet_id=f"sim-{account}-{i}", horizon_hours=24, impressions=1000,
        likes=likes, retweets=0, replies=0, bookmarks=0, quotes=0, er_calculated=likes / 1000, simulated=True,
        collected_at=at, bandit_arm=arm, timing_arm=f"hour:{hour}", decision_type="single",
    )


def story(account: str, arm: str, hour: int, ids: range, likes: int) -> list[Any]:
    return [e for i in ids for e in (queued(account, i, arm, hour), outcome(account, i, arm, hour, likes))]


async def test_one_model_per_account_trained_on_its_own_outcomes_with_its_own_versions_across_a_restart(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    path = accounts_file(tmp_path, {"id": "alpha"}, {"id": "beta"})
    # alpha's outcomes are all on arm x and all successes; beta's all on arm y and all failures
    await bus.publish_many(story("alpha", ARM_X, 9, range(6), likes=60) + story("beta", ARM_Y, 20, range(8), 5))
    rt = await start("learner", nats_url, namespace, path, LEARN_EVERY_N_OUTCOMES="3", SNAPSHOT_EVERY_EVENTS="1")
    try:
        first = await run_job(bus, "learn", "learn-1")
        assert first.status == "ok", first
        assert first.counts["models"] == 2 and first.counts["version.alpha"] == 1
        assert first.counts["version.beta"] == 1 and first.counts["outcomes_used"] == 14
        # three new outcomes of alpha: the trigger asks for alpha's run only (beta's count has not moved)
        await bus.publish_many(story("alpha", ARM_X, 9, range(6, 9), likes=60))
        by_trigger = await completed(bus, "learn-alpha-outcomes-9")
        assert by_trigger.status == "ok" and by_trigger.counts["version"] == 2
        assert rt.parts.health is not None
        health = rt.parts.health()["accounts"]
        assert {a: h["model_version"] for a, h in health.items()} == {"alpha": 2, "beta": 1}  # type: ignore[index]
    finally:
        await stop(rt)

    alpha = await events_of(bus, ModelUpdated, "alpha")
    beta = await events_of(bus, ModelUpdated, "beta")
    assert [m.version for m in alpha] == [1, 2] and [m.version for m in beta] == [1]
    assert {m.account for m in alpha} == {"alpha"} and {m.account for m in beta} == {"beta"}
    assert await events_of(bus, ModelUpdated, "default") == []  # no account of this stack is the default one
    for m in alpha:  # alpha's arms: only arm x, only its own outcomes; beta's arm y is not in it
        assert [(a.arm, a.successes, a.failures) for a in m.arms] == [(ARM_X, m.outcomes_used, 0)]
    assert [(a.arm, a.successes, a.failures) for a in alpha[-1].arms] == [(ARM_X, 9, 0)]
    assert [(a.arm, a.successes, a.failures) for a in beta[0].arms] == [(ARM_Y, 0, 8)]
    assert {s.hour for s in alpha[-1].slots if s.n} == {9} and {s.hour for s in beta[0].slots if s.n} == {20}

    # a restart from the snapshot: each account's versions go on from its own last one
    rt = await start("learner", nats_url, namespace, path, SNAPSHOT_EVERY_EVENTS="1")
    try:
        assert rt.restored is not None
        assert rt.parts.health is not None
        health = rt.parts.health()["accounts"]
        assert {a: h["model_version"] for a, h in health.items()} == {"alpha": 2, "beta": 1}  # type: ignore[index]
        nothing_new = await run_job(bus, "learn", "learn-2")
        assert nothing_new.status == "skipped"
        only_beta = await run_job(bus, "learn", "learn-3", force="true", account="beta")
        assert only_beta.counts["version"] == 2
        both = await run_job(bus, "learn", "learn-4", force="true")
        assert both.counts["version.alpha"] == 3 and both.counts["version.beta"] == 3
    finally:
        await stop(rt)
    assert [m.version for m in await events_of(bus, ModelUpdated, "alpha")] == [1, 2, 3]
    assert [m.version for m in await events_of(bus, ModelUpdated, "beta")] == [1, 2, 3]
    assert len({m.event_id for m in await events_of(bus, ModelUpdated)}) == 6
