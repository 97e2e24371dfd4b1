"""Accounts are isolated in the gateway: each account's figures, decisions and rows, over a real log (two accounts'
events) and real read models; the admin API's profiles; a rebuild reproduces every row with its account."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.gateway.replay import rebuild
from shared.accounts import profile_digest
from shared.events import decode_command
from tests.integration.test_gateway_api import AUTH, SEED_METRICS_KEYS
from tests.integration.test_projector_replay import snapshot
from tests.integration.test_projector_scenario import (
    RUNNER,
    RUNNER_DECISIONS,
    RUNNER_PROFILE,
    SCENARIO_DECISIONS,
    caught_up,
    did,
    make_gateway,
    migrated,
    own_bus_and_database,
    project_all,
    scenario,
    two_accounts,
)

pytestmark = pytest.mark.integration

#: the default account's seed figures over ``scenario()`` (tests/integration/test_gateway_api.py says the same)
DEFAULT_SEED = {
    "openaiCalls_total": 4, "openaiCalls_failed": 1, "openaiFailureReasons": {"rate_limited": 1},
    "queueSize": 5, "postsAttempted": 9, "postsPosted": 2,
    "post_skipped_reason_counts": {"posting_disabled": 3}, "outcomesWritten": 2, "learnRuns": 1,
    "banditArmsUpdated": 6, "predictorVersion": "v2",
}
#: the runner's over ``runner_story()``
RUNNER_SEED = {
    "openaiCalls_total": 3, "openaiCalls_failed": 1, "openaiFailureReasons": {"budget_exceeded": 1},
    "queueSize": 2, "postsAttempted": 2, "postsPosted": 1,
    "post_skipped_reason_counts": {"outside_active_hours": 1}, "outcomesWritten": 1, "learnRuns": 1,
    "banditArmsUpdated": 2, "predictorVersion": "none",
}
COUNTED = ("openaiCalls_total", "openaiCalls_failed", "queueSize", "postsAttempted", "postsPosted",
           "outcomesWritten", "learnRuns", "banditArmsUpdated")


@pytest.fixture(scope="module")
async def two(nats_url, postgres_admin_url):
    """One gateway over two accounts' logs (the default account's scenario and the runner's story)."""
    async with own_bus_and_database(nats_url, postgres_admin_url) as (b, db):
        await b.publish_many(two_accounts())
        async with make_gateway(b, db) as (gateway, client):
            await caught_up(gateway)
            yield gateway, client


def seed(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m[k] for k in SEED_METRICS_KEYS}


async def test_metrics_are_per_account_the_seed_keys_the_default_accounts(two) -> None:
    _, client = two
    r = await client.get("/api/metrics")
    assert r.status_code == 200, r.text
    m = r.json()
    # the seed's keys, with the default account's figures: exactly what a one-account stack shows
    assert seed(m) == DEFAULT_SEED
    assert set(m["accounts"]) == {"default", RUNNER}
    top = set(m) - {"accounts"}
    assert all(set(a) == top for a in m["accounts"].values())
    assert seed(m["accounts"]["default"]) == DEFAULT_SEED and seed(m["accounts"][RUNNER]) == RUNNER_SEED
    runner = m["accounts"][RUNNER]
    assert runner["decisionsByStatus"] == {"posted": 1, "queued": 2, "skipped": 1}
    assert runner["postsInDoubt"] == 0 and runner["attentionDecisions"] == [] and m["attentionNeeded"] == 1
    assert runner["llmDraftCalls"] == 2 and m["llmDraftCalls"] == 4  # the budget's refusal made no call
    # the runner's 429 pauses the runner only (promise 8: one account's trouble never slows another)
    assert runner["xRateLimitedSeconds"] == 600.0 and m["xRateLimitedSeconds"] == 0.0
    # the two add up to what the log holds
    for k in COUNTED:
        assert m["accounts"]["default"][k] + runner[k] == DEFAULT_SEED[k] + RUNNER_SEED[k], k  # type: ignore[operator]
    # the log's and projector's figures are the stack's
    for k in ("projectorPosition", "logLastSeq", "projectorLag", "deadLetters", "mode", "budgetDay"):
        assert runner[k] == m[k], k
    one = (await client.get("/api/metrics", params={"account": RUNNER})).json()
    assert seed(one) == RUNNER_SEED and set(one["accounts"]) == {RUNNER}
    assert set(one) == set(m) and one["accounts"][RUNNER] == runner
    assert seed((await client.get("/api/metrics?account=default")).json()) == DEFAULT_SEED


async def test_unknown_and_malformed_accounts_are_answered(two) -> None:
    _, client = two
    for path in ("/api/metrics", "/metrics", "/api/decisions"):
        r = await client.get(path, params={"account": "lawyer"})
        assert r.status_code == 404 and "lawyer" in r.json()["detail"], path
        for bad in ("Runner", "a.b", "1x", "x" * 33, ""):
            r = await client.get(path, params={"account": bad})
            assert r.status_code == 422 and "account" in r.json()["detail"], (path, bad)
    r = await client.post("/admin/jobs/run", params={"job": "plan", "account": "lawyer"}, headers=AUTH)
    assert r.status_code == 404 and "lawyer" in r.json()["detail"]
    r = await client.post("/admin/jobs/run", params={"job": "plan", "account": "a*"}, headers=AUTH)
    assert r.status_code == 422 and "account" in r.json()["detail"]


async def test_decisions_list_every_account_or_one(two) -> None:
    _, client = two
    body = (await client.get("/api/decisions", params={"limit": 500})).json()
    accounts = [d["account"] for d in body["items"]]
    assert accounts.count("default") == SCENARIO_DECISIONS and accounts.count(RUNNER) == RUNNER_DECISIONS
    runner = (await client.get("/api/decisions", params={"account": RUNNER, "limit": 500})).json()["items"]
    assert {d["decision_id"] for d in runner} == {did(n, RUNNER) for n in range(1, 5)}
    assert {d["account"] for d in runner} == {RUNNER}
    queue = (await client.get("/api/decisions", params={"account": RUNNER, "status": "queued"})).json()["items"]
    assert [d["decision_id"] for d in queue] == [did(1, RUNNER), did(4, RUNNER)]
    default = (await client.get("/api/decisions", params={"account": "default", "limit": 500})).json()["items"]
    assert len(default) == SCENARIO_DECISIONS and {d["account"] for d in default} == {"default"}
    # one decision's timeline is read from its account's subjects
    detail = (await client.get(f"/api/decisions/{did(2, RUNNER)}")).json()
    assert detail["decision"]["account"] == RUNNER and detail["status"] == "posted"
    assert [e["type"] for e in detail["timeline"]] == [
        "decision.queued", "decision.post_started", "decision.posted", "outcome.recorded"]
    assert all(e["subject"].split(".")[2] == RUNNER for e in detail["timeline"])


async def test_prometheus_labels_each_accounts_series(two) -> None:
    _, client = two
    text = (await client.get("/metrics")).text
    assert 'xbot_queue_size{account="default"} 5.0' in text and f'xbot_queue_size{{account="{RUNNER}"}} 2.0' in text
    assert f'xbot_post_skipped_total{{account="{RUNNER}",reason="outside_active_hours"}} 1.0' in text
    assert f'xbot_x_rate_limited_seconds{{account="{RUNNER}"}} 600.0' in text
    assert "xbot_projector_lag 0.0" in text  # the stack's own: no account
    one = (await client.get("/metrics", params={"account": RUNNER})).text
    assert f'xbot_queue_size{{account="{RUNNER}"}} 2.0' in one and 'account="default"' not in one
    # the dashboard of one account: its figures and its queue
    html = (await client.get("/", params={"account": RUNNER})).text
    assert 'id="metric-queueSize">2<' in html and html.count("<tr data-decision=") >= 2
    assert f'data-id="{did(1, RUNNER)}"' in html and f'data-id="{did(1)}"' not in html
    assert (await client.get("/", params={"account": "lawyer"})).status_code == 404


async def test_the_job_trigger_names_the_account_in_the_command(two) -> None:
    gateway, client = two
    r = await client.post("/admin/jobs/run", params={"job": "plan", "account": RUNNER},
                          headers={**AUTH, "X-Actor": "ana"})
    assert r.status_code == 202, r.text
    assert r.json()["account"] == RUNNER
    msg = await gateway.bus.js.get_last_msg(gateway.bus.names.commands_stream, f"{gateway.bus.names.cmd_prefix}.plan")
    cmd = decode_command(msg.data)
    assert cmd.run_id == r.json()["run_id"] and cmd.params == {"actor": "ana", "account": RUNNER}
    r = await client.post("/admin/jobs/run", params={"job": "learn"}, headers=AUTH)
    msg = await gateway.bus.js.get_last_msg(gateway.bus.names.commands_stream, f"{gateway.bus.names.cmd_prefix}.learn")
    assert "account" not in decode_command(msg.data).params  # every account


async def test_operator_events_go_to_the_decisions_account(bus, database_url) -> None:
    await bus.publish_many(two_accounts())
    async with make_gateway(bus, database_url) as (g, client):
        await caught_up(g)
        r = await client.post(f"/admin/decisions/{did(4, RUNNER)}/approve", headers=AUTH)
        assert r.status_code == 200, r.text
        history = await bus.aggregate_history("decision", did(4, RUNNER), RUNNER)
        last = [i for i in history if not i.caught_up][-1]
        assert last.event.type == "decision.approved" and last.event.account == RUNNER
        assert last.subject.split(".")[2] == RUNNER
        row = (await client.get(f"/api/decisions/{did(4, RUNNER)}")).json()["decision"]
        assert (row["account"], row["approval"]) == (RUNNER, "approved")


async def test_rows_carry_their_account_and_a_rebuild_reproduces_them(bus, database_url) -> None:
    await migrated(database_url)
    events = two_accounts(n_bulk=40)
    await bus.publish_many(events)
    await project_all(bus, database_url, batch_size=7)
    before = await snapshot(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        by = {r["account"]: r["n"] for r in await conn.fetch(
            "SELECT account, COUNT(*) AS n FROM content_metadata GROUP BY 1")}
        assert by == {"default": SCENARIO_DECISIONS + 40, RUNNER: RUNNER_DECISIONS}
        # the same scope and arm names in two accounts are two rows each (one learner never overwrites another)
        arms = await conn.fetch("SELECT account, arm_name, alpha FROM bandit_arms WHERE arm_name = 'howto:story' "
                                "ORDER BY account")
        assert [(a["account"], float(a["alpha"])) for a in arms] == [("default", 3.0), (RUNNER, 7.0)]
        runs = await conn.fetch("SELECT account FROM job_runs WHERE run_id = 'learn-1' ORDER BY account")
        assert [r["account"] for r in runs] == ["default", RUNNER]
        counters = {(r[0], r[1], r[2]): r[3] for r in await conn.fetch(
            "SELECT account, name, key, value FROM gateway_counters WHERE name = 'posts_attempted'")}
        assert counters == {("default", "posts_attempted", ""): 9 + 40, (RUNNER, "posts_attempted", ""): 2}
        for table in ("posted_decisions", "outcomes", "api_usage", "x_limit_answers", "timing_slots",
                      "model_versions"):
            got = {r[0] for r in await conn.fetch(f"SELECT DISTINCT account FROM {table}")}
            assert got == {"default", RUNNER}, table
        acc = await conn.fetchrow("SELECT * FROM accounts WHERE account = $1", RUNNER)
        assert (acc["username"], acc["publisher"], acc["digest"], acc["source"]) == (
            "ana_runs", "simulated", profile_digest(RUNNER_PROFILE), "file:accounts.toml")
    finally:
        await conn.close()
    await rebuild(database_url=database_url, bus=bus)
    assert await snapshot(database_url) == before  # every row of every table, the accounts' included


async def test_admin_accounts_get_and_put_validate_and_record(bus, database_url) -> None:
    await bus.publish_many(scenario()[:3])
    from tests.integration.test_projector_scenario import runner_story

    await bus.publish(runner_story()[0])  # the runner's account.configured
    async with make_gateway(bus, database_url) as (g, client):
        await caught_up(g)
        assert (await client.get("/admin/accounts")).status_code == 401
        listed = (await client.get("/admin/accounts", headers=AUTH)).json()
        assert [(a["id"], a["username"], a["publisher"], a["source"]) for a in listed] == [
            (RUNNER, "ana_runs", "simulated", "file:accounts.toml")]
        assert listed[0]["digest"] == profile_digest(RUNNER_PROFILE) and listed[0]["configured_at"]
        profile = (await client.get(f"/admin/accounts/{RUNNER}", headers=AUTH)).json()
        assert profile["id"] == RUNNER and profile["topics"] == ["marathon_training", "nutrition"]
        assert (await client.get("/admin/accounts/lawyer", headers=AUTH)).status_code == 404
        assert (await client.get("/admin/accounts/Bad.Id", headers=AUTH)).status_code == 422
        last = await bus.last_seq()

        # the same profile again: nothing written
        r = await client.put(f"/admin/accounts/{RUNNER}", headers=AUTH, json=profile)
        assert r.status_code == 200 and r.json()["unchanged"] is True, r.text
        assert await bus.last_seq() == last

        # every problem, one line each naming the account and the field; nothing written
        bad = {**profile, "topics": [], "timezone": "Mars/Olympus", "limits": {"posts_per_day": -1},
               "publisher": "carrier-pigeon", "colour": "blue"}
        r = await client.put(f"/admin/accounts/{RUNNER}", headers=AUTH, json=bad)
        assert r.status_code == 422, r.text
        problems = r.json()["problems"]
        assert len(problems) >= 5 and r.json()["detail"] == "\n".join(problems)
        for field in ("topics", "timezone", "limits.posts_per_day", "publisher", "colour"):
            assert any(field in p and f"account {RUNNER!r}" in p for p in problems), (field, problems)
        r = await client.put(f"/admin/accounts/{RUNNER}", headers=AUTH, json={**profile, "id": "lawyer"})
        assert r.status_code == 422 and "lawyer" in r.json()["detail"] and "id" in r.json()["detail"]
        assert await bus.last_seq() == last

        # a good change: account.configured in the log (source admin, the actor), the row follows
        good = {**profile, "topics": ["marathon_training", "trail_running"], "username": "@ana_trails"}
        r = await client.put(f"/admin/accounts/{RUNNER}", headers={**AUTH, "X-Actor": "ana"}, json=good)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["account"] == RUNNER and body["seq"] == last + 1
        history = [i for i in await bus.aggregate_history("account", RUNNER, RUNNER) if not i.caught_up]
        ev = history[-1].event
        assert (ev.type, ev.source, ev.actor, ev.digest, ev.profile.topics) == (
            "account.configured", "admin", "ana", body["digest"], ("marathon_training", "trail_running"))
        assert ev.profile.username == "ana_trails"
        row = await g.pool.fetchrow("SELECT * FROM accounts WHERE account = $1", RUNNER)
        assert (row["digest"], row["source"], row["actor"], row["username"]) == (
            body["digest"], "admin", "ana", "ana_trails")
        again = (await client.get(f"/admin/accounts/{RUNNER}", headers=AUTH)).json()
        assert again["topics"] == ["marathon_training", "trail_running"]

        # a new account through the API; then it is known to /api/metrics
        r = await client.put("/admin/accounts/lawyer", headers=AUTH,
                             json={"topics": ["contracts"], "username": "tom_lex"})
        assert r.status_code == 200, r.text
        m = (await client.get("/api/metrics", params={"account": "lawyer"})).json()
        assert m["queueSize"] == 0 and set(m["accounts"]) == {"lawyer"}
        # our own accounts never share a handle nor reply to each other
        r = await client.put("/admin/accounts/lawyer", headers=AUTH,
                             json={"topics": ["contracts"], "username": "ana_trails"})
        assert r.status_code == 422 and "username" in r.json()["detail"]
        r = await client.put("/admin/accounts/lawyer", headers=AUTH,
                             json={"topics": ["contracts"], "replies": {"targets": ["@ana_trails"]}})
        assert r.status_code == 422 and "replies.targets" in r.json()["detail"]
        r = await client.put("/admin/accounts/decision", headers=AUTH, json={"topics": ["contracts"]})
        assert r.status_code == 422 and "aggregate" in r.json()["detail"]
    async with make_gateway(bus, database_url, admin_token=None) as (_, client):
        assert (await client.get("/admin/accounts", headers=AUTH)).status_code == 403
