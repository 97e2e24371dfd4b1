"""Several accounts in one stack, against the real nats-server: the services' own runtimes read an accounts file,
record it as ``account.configured`` once, and plan and post for each account apart -- its own topics, subjects,
uniqueness and limits; one account in trouble (226 cooldown, its limit reached, posting disabled) never stops
another; a bad accounts file stops a service at start with one line per problem; ``xbot accounts apply``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.planner.config import PlannerSettings
from services.poster.config import PosterSettings
from shared.bus import JetStreamBus
from shared.config import load_settings
from shared.events import (
    Command,
    DecisionPostFailed,
    DecisionPostStarted,
    DecisionRescheduled,
    new_event_id,
    utcnow,
)
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "docs" / "accounts.example.toml"

TWO = """
[[account]]
id = "runner"
username = "ana_runs"
topics = ["marathon_training", "nutrition", "race_day"]
angles = ["how_to", "story"]
banned_phrases = ["game changer"]
[account.limits]
max_posts_per_hour = 1
min_post_interval_minutes = 0

[[account]]
id = "chef"
username = "chef_luis"
topics = ["knife_skills", "sourdough"]
angles = ["how_to", "question"]
[account.limits]
max_posts_per_hour = 5
min_post_interval_minutes = 0
"""


async def start(name: str, settings_cls: Any, nats_url: str, namespace: str, accounts: Path, **extra: str
                ) -> ServiceRuntime:
    build = __import__(f"services.{name}.bootstrap", fromlist=["build"]).build
    environ = service_env(nats_url, namespace, MODE="shadow", XBOT_ACCOUNTS_FILE=str(accounts), **extra)
    ctx = await build_context(name, load_settings(settings_cls, environ), environ)
    rt = ServiceRuntime(name, ctx, await build(ctx))
    await rt.start()
    return rt


async def stop(rt: ServiceRuntime) -> None:
    await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


async def events(bus: JetStreamBus, type_: str) -> list[Any]:
    return [i.event async for i in bus.read() if i.event is not None and i.event.type == type_]


def cmd(job: str, run_id: str, account: str | None = None) -> Command:
    return Command(job=job, run_id=run_id, requested_at=utcnow(), params={"account": account} if account else {})


async def test_two_accounts_plan_and_post_apart(bus: JetStreamBus, nats_url: str, namespace: str,
                                                tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(TWO)
    planner = await start("planner", PlannerSettings, nats_url, namespace, accounts, PLAN_INTERVAL_MINUTES="0",
                          PLAN_BATCH="4")
    poster = await start("poster", PosterSettings, nats_url, namespace, accounts, POSTING_INTERVAL_MINUTES="0")
    try:
        configured = await events(bus, "account.configured")
        assert sorted(e.account for e in configured) == ["chef", "runner"]  # recorded once, by the first start
        plan = planner.parts.jobs["plan"]
        counts = await plan(cmd("plan", "run-1"))
        assert counts["queued"] + counts["skipped"] == 8  # four drafts for each account
        queued = await events(bus, "decision.queued")
        by_account = {a: [q for q in queued if q.account == a] for a in ("runner", "chef")}
        assert all(by_account.values())
        assert {q.topic_cluster for q in by_account["runner"]} <= {"marathon_training", "nutrition", "race_day"}
        assert {q.topic_cluster for q in by_account["chef"]} <= {"knife_skills", "sourdough"}
        # each account's events are on its own subjects
        runner_subjects = [i.subject async for i in bus.read(bus.names.account_events("runner")) if i.subject]
        assert runner_subjects and all(s.split(".")[2] == "runner" for s in runner_subjects)
        assert not [i async for i in bus.read(bus.names.account_events("default")) if i.subject]

        # the runner is in a 226 cooldown: the chef posts all it may, the runner nothing
        first = by_account["runner"][0].decision_id
        await bus.publish(DecisionPostStarted(event_id=new_event_id(), occurred_at=utcnow(), account="runner",
                                              decision_id=first, attempt=1, poster_id="p", simulated=True))
        await bus.publish(DecisionPostFailed(event_id=new_event_id(), occurred_at=utcnow(), account="runner",
                                             decision_id=first, attempt=1, error="looks automated",
                                             error_code="226"))
        for q in queued:  # an operator moves everything to now
            await bus.publish(DecisionRescheduled(event_id=new_event_id(), occurred_at=utcnow(), account=q.account,
                                                  decision_id=q.decision_id, actor="ops",
                                                  scheduled_at=utcnow() - timedelta(minutes=1)))
        posting = poster.parts.jobs["posting"]
        await posting(cmd("posting", "post-1"))
        posted = await events(bus, "decision.posted")
        assert {p.account for p in posted} == {"chef"}
        assert len(posted) == len(by_account["chef"]) <= 5
        started = await events(bus, "decision.post_started")
        assert {s.account for s in started if s.poster_id != "p"} == {"chef"}
        # one decision's history, whichever its account
        env = {**os.environ, "NATS_URL": nats_url, "XBOT_NAMESPACE": namespace}
        shown = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "xbot", "events", "show", posted[0].decision_id], env=env,
            capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert shown.returncode == 0, shown.stderr
        assert "decision.queued" in shown.stdout and "decision.posted" in shown.stdout
    finally:
        await stop(poster)
        await stop(planner)


async def test_a_second_start_records_nothing_and_a_changed_file_records_the_change(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(TWO)
    for _ in range(2):
        rt = await start("poster", PosterSettings, nats_url, namespace, accounts, POSTING_INTERVAL_MINUTES="0")
        await stop(rt)
    assert len(await events(bus, "account.configured")) == 2
    accounts.write_text(TWO.replace('"sourdough"]', '"sourdough", "pasta"]'))
    rt = await start("poster", PosterSettings, nats_url, namespace, accounts, POSTING_INTERVAL_MINUTES="0")
    try:
        configured = await events(bus, "account.configured")
        assert [e.account for e in configured] == ["runner", "chef", "chef"]
        assert configured[-1].profile.topics == ("knife_skills", "sourdough", "pasta")
        assert rt.ctx.accounts["chef"].topics == ("knife_skills", "sourdough", "pasta")
    finally:
        await stop(rt)


def test_a_bad_accounts_file_stops_a_service_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "accounts.toml"
    bad.write_text('[[account]]\nid = "runner"\ntopics = []\ntimezone = "Mars/Base"\ncolour = "red"\n'
                   '[[account]]\nid = "runner"\ntopics = ["x"]\npublisher = "browser"\nusername = "a"\n'
                   'session = "file:/nowhere/session.json"\n')
    env = {**os.environ, "XBOT_ACCOUNTS_FILE": str(bad), "NATS_URL": "nats://127.0.0.1:1"}
    proc = subprocess.run([sys.executable, "-m", "services.planner"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.splitlines() if x.startswith("xbot planner: configuration error:")]
    text = "\n".join(lines)
    assert "account 'runner': timezone" in text and "account 'runner': topics" in text
    assert "unknown key 'colour'" in text and "duplicate id" in text and "session" in text
    assert len(lines) >= 5 and "Traceback" not in proc.stderr


def test_xbot_accounts_apply_records_what_changed_once(bus: JetStreamBus, nats_url: str, namespace: str,
                                                      tmp_path: Path) -> None:
    env = {**os.environ, "NATS_URL": nats_url, "XBOT_NAMESPACE": namespace, "XBOT_HOME": str(tmp_path)}

    def xbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xbot", "accounts", *args], env=env, capture_output=True,
                              text=True, timeout=60, cwd=ROOT)

    first = xbot("apply", "--file", str(EXAMPLE))
    assert first.returncode == 0, first.stderr
    assert "runner: configured" in first.stdout and "lawyer: configured" in first.stdout
    again = xbot("apply", "--file", str(EXAMPLE))
    assert "runner: unchanged" in again.stdout and "lawyer: unchanged" in again.stdout
    listed = xbot("list", "--file", str(EXAMPLE))
    assert listed.returncode == 0 and listed.stdout.count("[as recorded]") == 2
    assert "posting disabled" in listed.stdout  # the lawyer's override


async def test_six_services_starting_at_once_record_fifty_accounts_once_each(bus: JetStreamBus) -> None:
    from shared.accounts import parse_accounts
    from shared.accounts.book import record_accounts

    text = "".join(f'[[account]]\nid = "a{i}"\ntopics = ["t{i}"]\n' for i in range(50))
    profiles = parse_accounts(text, "accounts.toml", {})
    books = await asyncio.gather(*(record_accounts(bus, profiles, "file:accounts.toml") for _ in range(6)))
    configured = await events(bus, "account.configured")
    assert sorted(e.account for e in configured) == sorted(p.id for p in profiles)  # each exactly once
    assert all(b.ids() == [p.id for p in profiles] for b in books)
