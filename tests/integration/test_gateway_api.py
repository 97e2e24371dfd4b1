"""Every endpoint's shape against the seed's JSON, over a real log and real read models."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.gateway.queries import id_forms
from shared.clock import FixedClock
from shared.events import JOBS, DecisionPostFailed, DecisionPostStarted, DecisionQueued, decode_command
from tests.integration.test_projector_scenario import (
    ABANDONED,
    ATTENTION,
    CLOSED,
    COOLDOWN_226_AT,
    FLAGGED,
    FLAGGED_CLAIM,
    NOW,
    RATE_LIMITED_UNTIL,
    RETRIED,
    SCENARIO_DECISIONS,
    T0,
    TOKEN,
    UNSUPPORTED,
    UNSUPPORTED_CLAIM,
    caught_up,
    did,
    make_gateway,
    own_bus_and_database,
    queued,
    scenario,
)

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}

SEED_ENV_KEYS = {"AI_QUOTA_CIRCUIT_OPEN", "POSTING_DISABLED", "LIVE_POSTS", "REAL_METRICS_ENABLED", "MODE",
                 "OPENAI_MODEL", "llmAllowed", "postingAllowed", "analyticsAllowed", "summary"}
SEED_METRICS_KEYS = {"openaiCalls_total", "openaiCalls_failed", "openaiFailureReasons", "queueSize",
                     "postsAttempted", "postsPosted", "post_skipped_reason_counts", "outcomesWritten", "learnRuns",
                     "banditArmsUpdated", "predictorVersion"}


@pytest.fixture
async def gw(bus, database_url):
    """A gateway over the scenario, for tests that change things."""
    await bus.publish_many(scenario())
    async with make_gateway(bus, database_url) as (gateway, client):
        await caught_up(gateway)
        yield gateway, client


@pytest.fixture(scope="module")
async def shared_gw(nats_url, postgres_admin_url):
    """One gateway over the scenario for the tests that only read (and publish commands)."""
    async with own_bus_and_database(nats_url, postgres_admin_url) as (b, db):
        await b.publish_many(scenario())
        async with make_gateway(b, db) as (gateway, client):
            await caught_up(gateway)
            yield gateway, client


async def test_env_is_the_seed_json_with_sources_and_reflects_overrides(gw) -> None:
    gateway, client = gw
    r = await client.get("/env")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == SEED_ENV_KEYS | {"sources"}
    assert body["MODE"] == "live" and body["POSTING_DISABLED"] is True and body["LIVE_POSTS"] is False
    assert body["llmAllowed"] is True and body["postingAllowed"] is False and body["analyticsAllowed"] is False
    assert body["summary"].startswith("MODE=live LLM=ON POSTING=OFF(posting_disabled)")
    assert body["sources"]["MODE"] == "env" and body["sources"]["POSTING_DISABLED"] == "default"
    # the go-live switches, at runtime, audited
    r = await client.put("/admin/flags", headers={**AUTH, "X-Actor": "ops@test"},
                         json={"values": {"POSTING_DISABLED": False, "LIVE_POSTS": "true"}})
    assert r.status_code == 200, r.text
    body = (await client.get("/env")).json()
    assert body["postingAllowed"] is True and body["sources"]["LIVE_POSTS"] == "override"
    changes = [i.event async for i in gateway.bus.read(f"{gateway.bus.names.evt_prefix}.flag.>") if not i.caught_up]
    assert [(c.flag, c.new_value, c.actor) for c in changes[-2:]] == [
        ("POSTING_DISABLED", "false", "ops@test"), ("LIVE_POSTS", "true", "ops@test")]
    # and the projector records who/when
    await caught_up(gateway)
    rows = await gateway.pool.fetch("SELECT flag, new_value, actor FROM flag_changes ORDER BY last_seq")
    assert [tuple(r) for r in rows][-2:] == [("POSTING_DISABLED", "false", "ops@test"), ("LIVE_POSTS", "true", "ops@test")]


async def test_admin_flags_validate_every_value_before_writing_any(gw) -> None:
    _, client = gw
    r = await client.get("/admin/flags", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["flags"]["MIN_QUALITY_SCORE"] == 0.7 and body["overrides"] == {}
    assert {s["name"] for s in body["specs"]} >= {"AI_QUOTA_CIRCUIT_OPEN", "REQUIRE_APPROVAL"}
    r = await client.put("/admin/flags", headers=AUTH, json={"values": {"LIVE_POSTS": True, "MIN_QUALITY_SCORE": 7}})
    assert r.status_code == 422 and "MIN_QUALITY_SCORE" in r.json()["detail"]
    r = await client.put("/admin/flags", headers=AUTH, json={"values": {"NOPE": True}})
    assert r.status_code == 422 and "NOPE" in r.json()["detail"]
    assert (await client.get("/admin/flags", headers=AUTH)).json()["overrides"] == {}  # nothing half-applied
    r = await client.put("/admin/flags", headers=AUTH, json={"values": {"REQUIRE_APPROVAL": True}})
    assert r.json()["overrides"] == {"REQUIRE_APPROVAL": "true"}
    r = await client.put("/admin/flags", headers=AUTH, json={"values": {"REQUIRE_APPROVAL": None}})
    assert r.json()["overrides"] == {} and r.json()["sources"]["REQUIRE_APPROVAL"] == "default"


async def test_api_metrics_has_the_seed_keys_derived_from_events(shared_gw) -> None:
    _, client = shared_gw
    r = await client.get("/api/metrics")
    assert r.status_code == 200
    m = r.json()
    assert SEED_METRICS_KEYS <= set(m)
    assert {k: m[k] for k in SEED_METRICS_KEYS} == {
        "openaiCalls_total": 4, "openaiCalls_failed": 1, "openaiFailureReasons": {"rate_limited": 1},
        "queueSize": 5, "postsAttempted": 9, "postsPosted": 2,
        "post_skipped_reason_counts": {"posting_disabled": 3}, "outcomesWritten": 2, "learnRuns": 1,
        "banditArmsUpdated": 6, "predictorVersion": "v2",
    }
    assert m["outcomesSimulated"] == 1 and m["projectorLag"] == 0 and m["deadLetters"] == 0
    assert m["modelVersion"] == 2 and m["dailyLimitUsd"] == 10.0 and m["mode"] == "live"
    # the LLM calls happened on T0's day, the clock says a day later
    assert m["budgetDay"] == NOW.date().isoformat() and m["spendTodayUsd"] == 0.0
    # attempts in doubt: one, and the poster asks the operator about it
    assert m["postsInDoubt"] == 1 and m["decisionsByStatus"]["in_doubt"] == 1 and m["attentionNeeded"] == 1
    (a,) = m["attentionDecisions"]
    assert (a["decision_id"], a["reason"], a["detail"], a["attempts"]) == (
        did(ATTENTION), "in_doubt_too_long", "timeline unreadable: error page", 1)
    assert a["since"].replace("Z", "+00:00") == (T0 + timedelta(hours=6, seconds=30)).isoformat()
    assert a["content"].startswith(f"Draft number {ATTENTION}:")
    # the claims gate's flagged draft waits for a person; X's pauses are over a day later
    assert m["flaggedClaimsPending"] == 1
    assert (m["xRateLimitedUntil"], m["xRateLimitedSeconds"], m["xCooldownUntil"], m["xCooldownSeconds"]) == (
        None, 0.0, None, 0.0)


async def test_x_pauses_are_derived_from_the_log_while_they_last(bus, database_url) -> None:
    """A 429's pause (its paused_until) and the 226 cooldown (X_COOLDOWN_MINUTES after it), as the poster derives
    them, in /api/metrics and /metrics; a gateway started afresh over the same read models says the same."""
    await bus.publish_many(scenario())
    for at, minutes, until, cool in (
        (RATE_LIMITED_UNTIL - timedelta(minutes=7), 60, RATE_LIMITED_UNTIL, None),  # the 226 was at 12:01
        (RATE_LIMITED_UNTIL + timedelta(minutes=1), 300, None, COOLDOWN_226_AT + timedelta(minutes=300)),
    ):
        env = {"MODE": "live", "X_COOLDOWN_MINUTES": str(minutes)}
        async with make_gateway(bus, database_url, clock=FixedClock(at), env=env) as (g, client):
            await caught_up(g)
            m = (await client.get("/api/metrics")).json()
            text = (await client.get("/metrics")).text
            html = (await client.get("/")).text
        if until is not None:
            assert m["xRateLimitedUntil"].replace("Z", "+00:00") == until.isoformat()
            assert m["xRateLimitedSeconds"] == 420.0 and 'xbot_x_rate_limited_seconds{account="default"} 420.0' in text
            assert f"429 until {until:%H:%M:%S}" in html
        else:
            assert m["xRateLimitedUntil"] is None and 'xbot_x_rate_limited_seconds{account="default"} 0.0' in text
        if cool is not None:
            assert m["xCooldownUntil"].replace("Z", "+00:00") == cool.isoformat()
            assert m["xCooldownSeconds"] == 3820.0 and 'xbot_x_cooldown_seconds{account="default"} 3820.0' in text
            assert f"226 cooldown until {cool:%H:%M:%S}" in html
        else:
            assert m["xCooldownUntil"] is None and 'xbot_x_cooldown_seconds{account="default"} 0.0' in text


async def test_spend_today_counts_the_budget_day_only(bus, database_url) -> None:
    await bus.publish_many(scenario())
    async with make_gateway(bus, database_url, clock=FixedClock(T0)) as (g, client):
        await caught_up(g)
        m = (await client.get("/api/metrics")).json()
        assert m["spendTodayUsd"] == pytest.approx(3 * 0.000093)


async def test_prometheus_exposition_has_the_figures_and_latencies(shared_gw) -> None:
    _, client = shared_gw
    await client.get("/healthz")
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'xbot_queue_size{account="default"} 5.0' in text
    assert 'xbot_openai_calls_total{account="default"} 4.0' in text
    assert 'xbot_post_skipped_total{account="default",reason="posting_disabled"} 3.0' in text
    assert 'xbot_posts_in_doubt{account="default"} 1.0' in text and 'xbot_attention_needed{account="default"} 1.0' in text
    assert 'xbot_decisions{account="default",status="in_doubt"} 1.0' in text
    assert 'xbot_gateway_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}' in text


async def test_admin_job_trigger_publishes_the_command_and_answers_at_once(shared_gw) -> None:
    gateway, client = shared_gw
    r = await client.post("/admin/jobs/run?job=plan", headers=AUTH)
    assert r.status_code == 202
    body = r.json()
    assert body["job"] == "plan" and body["run_id"].startswith("plan-") and body["status"] == "queued"
    r2 = await client.post("/admin/jobs/run", params={"job": "posting"}, headers={"X-Admin-Token": TOKEN})
    assert r2.status_code == 202
    msg = await gateway.bus.js.get_last_msg(gateway.bus.names.commands_stream, f"{gateway.bus.names.cmd_prefix}.plan")
    cmd = decode_command(msg.data)
    assert cmd.run_id == body["run_id"] and cmd.requested_by == "admin"
    r = await client.post("/admin/jobs/run?job=tweet", headers=AUTH)
    assert r.status_code == 422
    assert all(j in r.json()["detail"] for j in JOBS)
    r = await client.post("/admin/jobs/run", headers=AUTH)
    assert r.status_code == 422 and "plan" in r.json()["detail"]


async def test_admin_auth_cases(bus, database_url) -> None:
    async with make_gateway(bus, database_url) as (_, client):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"X-Admin-Token": "nope"},
                        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
            r = await client.post("/admin/jobs/run?job=plan", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/admin/flags")).status_code == 401
        assert (await client.post(f"/admin/decisions/{did(1)}/approve")).status_code == 401
        # a wrong token does not help the right one, nor the other way round
        r = await client.post("/admin/jobs/run?job=plan", headers={"Authorization": f"Bearer {TOKEN}",
                                                                    "X-Admin-Token": "nope"})
        assert r.status_code == 202
    async with make_gateway(bus, database_url, admin_token=None) as (_, client):
        for path, method in (("/admin/jobs/run?job=plan", "POST"), ("/admin/flags", "GET"),
                             ("/admin/flags", "PUT"), (f"/admin/decisions/{did(1)}/reject", "POST")):
            r = await client.request(method, path, headers=AUTH, json={"values": {}})
            assert r.status_code == 403 and "ADMIN_TOKEN is not configured" in r.json()["detail"], path


async def test_decision_list_filters_orders_and_pages(shared_gw) -> None:
    _, client = shared_gw
    r = await client.get("/api/decisions", params={"status": "queued"})
    assert r.status_code == 200
    page = r.json()
    queue = page["items"]
    # scheduled order (7 moved later); 11 is back in the queue since the poster closed its doubt
    assert [d["decision_id"] for d in queue] == [did(1), did(2), did(3), did(CLOSED), did(7)]
    assert queue[0]["last_post_skip"] == "posting_disabled" and queue[4]["approval"] == "approved"
    assert all(d["attention_reason"] is None for d in queue)
    assert [d["flagged_claims"] for d in queue] == [[], [], [FLAGGED_CLAIM], [], []]
    (blocked,) = [d for d in (await client.get("/api/decisions", params={"status": "skipped"})).json()["items"]
                  if d["decision_id"] == did(UNSUPPORTED)]
    assert (blocked["gate"], blocked["skip_reason"], blocked["flagged_claims"]) == (
        "claims", "unsupported_claim", [UNSUPPORTED_CLAIM])
    detail = (await client.get(f"/api/decisions/{did(FLAGGED)}")).json()
    assert detail["decision"]["flagged_claims"] == [FLAGGED_CLAIM]
    assert detail["timeline"][0]["data"]["flagged_claims"] == [FLAGGED_CLAIM]
    (doubt,) = (await client.get("/api/decisions", params={"status": "in_doubt"})).json()["items"]
    assert (doubt["decision_id"], doubt["status"], doubt["attention_reason"]) == (
        did(ATTENTION), "in_doubt", "in_doubt_too_long")
    assert doubt["attention_detail"] == "timeline unreadable: error page" and doubt["attention_since"]
    assert page["next_cursor"] is None
    r = await client.get("/api/decisions", params={"type": "thread"})
    (thread,) = r.json()["items"]
    assert thread["status"] == "posted" and thread["tweet_id"] == "180000000000000000"
    assert thread["tweet_url"] == "https://x.com/acct/status/180000000000000000" and thread["parts"] == ["part 5.1", "part 5.2"]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/api/decisions", params=params)).json()
        seen += [d["decision_id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == SCENARIO_DECISIONS
    created = [(await client.get(f"/api/decisions/{d}")).json()["decision"]["created_at"] for d in seen]
    assert created == sorted(created, reverse=True)
    paged_queue: list[str] = []
    cursor = None
    for _ in range(10):
        body = (await client.get("/api/decisions", params={"status": "queued", "limit": 1,
                                                           **({"cursor": cursor} if cursor else {})})).json()
        paged_queue += [d["decision_id"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged_queue == [d["decision_id"] for d in queue]
    for bad in ({"cursor": "garbage"}, {"status": "lost"}, {"limit": 0}, {"type": "poll"}):
        r = await client.get("/api/decisions", params=bad)
        assert r.status_code == 422 and r.json()["detail"], bad


async def test_decision_timeline_holds_every_event(shared_gw) -> None:
    _, client = shared_gw
    r = await client.get(f"/api/decisions/{did(5)}")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "posted" and body["decision"]["status"] == "posted"
    types = [e["type"] for e in body["timeline"]]
    assert types == ["decision.queued", "decision.post_started", "decision.part_posted", "decision.part_posted",
                     "decision.posted", "outcome.recorded", "outcome.recorded", "outcome.collection_failed"]
    seqs = [e["seq"] for e in body["timeline"]]
    assert seqs == sorted(seqs)
    assert "embedding" not in body["timeline"][0]["data"]
    assert [o["horizon_hours"] for o in body["outcomes"]] == [1, 24]
    assert (await client.get(f"/api/decisions/{uuid.uuid4()}")).status_code == 404
    for bad in ("a.b", "*", "x%20y"):
        r = await client.get(f"/api/decisions/{bad}")
        assert r.status_code == 422, bad


async def test_approve_reject_schedule_and_409_unless_queued(gw) -> None:
    gateway, client = gw
    r = await client.post(f"/admin/decisions/{did(1)}/approve", headers={**AUTH, "X-Actor": "ana"})
    assert r.status_code == 200, r.text
    assert r.json()["event"] == "decision.approved"
    row = (await client.get(f"/api/decisions/{did(1)}")).json()["decision"]
    assert row["approval"] == "approved" and row["status"] == "queued"  # read-your-writes through the projector
    r = await client.post(f"/admin/decisions/{did(2)}/reject", headers=AUTH, json={"reason": "too salesy"})
    assert r.status_code == 200 and r.json()["status"] == "skipped"
    row = (await client.get(f"/api/decisions/{did(2)}")).json()["decision"]
    assert (row["status"], row["skip_reason"]) == ("skipped", "rejected: too salesy")
    r = await client.post(f"/admin/decisions/{did(3)}/schedule", headers=AUTH, json={"scheduled_at": "now"})
    assert r.status_code == 200
    row = (await client.get(f"/api/decisions/{did(3)}")).json()["decision"]
    assert row["scheduled_at"].replace("Z", "+00:00") == NOW.isoformat()
    later = (T0 + timedelta(days=3)).isoformat()
    r = await client.post(f"/admin/decisions/{did(7)}/schedule", headers=AUTH, json={"scheduled_at": later})
    assert r.status_code == 200
    timeline = (await client.get(f"/api/decisions/{did(7)}")).json()["timeline"]
    assert timeline[-1]["type"] == "decision.rescheduled" and timeline[-1]["data"]["actor"] == "admin"
    for d, why in ((5, "posted"), (6, "failed"), (4, "skipped"), (2, "skipped")):
        r = await client.post(f"/admin/decisions/{did(d)}/approve", headers=AUTH)
        assert r.status_code == 409 and why in r.json()["detail"], d
    assert (await client.post(f"/admin/decisions/{uuid.uuid4()}/approve", headers=AUTH)).status_code == 404
    for body in ({}, {"scheduled_at": "tomorrow"}, {"scheduled_at": [1]}):
        r = await client.post(f"/admin/decisions/{did(3)}/schedule", headers=AUTH, json=body)
        assert r.status_code == 422, body
    m = (await client.get("/api/metrics")).json()
    assert m["queueSize"] == 4
    assert m["flaggedClaimsPending"] == 1  # 3 was moved, not answered
    r = await client.post(f"/admin/decisions/{did(FLAGGED)}/approve", headers=AUTH)
    assert r.status_code == 200
    assert (await client.get("/api/metrics")).json()["flaggedClaimsPending"] == 0
    # in doubt is not queued: the queue's operations are refused
    r = await client.post(f"/admin/decisions/{did(ATTENTION)}/approve", headers=AUTH)
    assert r.status_code == 409 and "in_doubt" in r.json()["detail"]


async def test_resolve_answers_an_attempt_in_doubt(gw) -> None:
    gateway, client = gw
    url = f"/admin/decisions/{did(ATTENTION)}/resolve"
    assert (await client.post(url, json={"action": "retry"})).status_code == 401
    for body in ({}, {"action": "post"}, {"action": "retry", "note": "x" * 501}, {"action": ["retry"]}):
        r = await client.post(url, headers=AUTH, json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    r = await client.post(url, headers=AUTH, json={"action": "post"})
    assert "action" in r.json()["detail"] and "retry" in r.json()["detail"] and "abandon" in r.json()["detail"]
    # only an attempt in doubt can be answered
    for d, why in ((1, "queued"), (5, "posted"), (RETRIED, "posted"), (ABANDONED, "failed"), (4, "skipped")):
        r = await client.post(f"/admin/decisions/{did(d)}/resolve", headers=AUTH, json={"action": "retry"})
        assert r.status_code == 409 and why in r.json()["detail"] and "in_doubt" in r.json()["detail"], d
    assert (await client.post(f"/admin/decisions/{uuid.uuid4()}/resolve", headers=AUTH,
                              json={"action": "abandon"})).status_code == 404
    r = await client.post(url, headers={**AUTH, "X-Actor": "ana"},
                          json={"action": "retry", "note": "not on the profile, replies or search"})
    assert r.status_code == 200, r.text
    assert (r.json()["event"], r.json()["status"]) == ("decision.doubt_resolved", "queued")
    body = (await client.get(f"/api/decisions/{did(ATTENTION)}")).json()
    assert body["status"] == "queued" and body["decision"]["status"] == "queued"  # read-your-writes
    assert body["decision"]["attention_reason"] is None and body["decision"]["attention_since"] is None
    last = body["timeline"][-1]
    assert last["type"] == "decision.doubt_resolved"
    assert (last["data"]["action"], last["data"]["actor"], last["data"]["note"]) == (
        "retry", "ana", "not on the profile, replies or search")
    m = (await client.get("/api/metrics")).json()
    assert (m["postsInDoubt"], m["attentionNeeded"], m["attentionDecisions"]) == (0, 0, [])
    # answered once: a second answer is refused
    r = await client.post(url, headers=AUTH, json={"action": "abandon"})
    assert r.status_code == 409 and "queued" in r.json()["detail"]
    # the next attempt's answer is lost too; the operator gives it up
    await gateway.bus.publish_many([
        DecisionPostStarted(event_id="st-9-2", occurred_at=NOW, decision_id=did(ATTENTION), attempt=2, poster_id="p"),
        DecisionPostFailed(event_id="f-9-2", occurred_at=NOW, decision_id=did(ATTENTION), attempt=2,
                           error="answer lost", error_code="timeout", in_doubt=True),
    ])
    await caught_up(gateway)
    assert (await client.get("/api/metrics")).json()["postsInDoubt"] == 1
    r = await client.post(url, headers=AUTH, json={"action": "abandon"})
    assert r.status_code == 200 and r.json()["status"] == "failed"
    row = (await client.get(f"/api/decisions/{did(ATTENTION)}")).json()["decision"]
    assert (row["status"], row["error_message"]) == ("failed", "abandoned by admin")


async def test_operator_events_use_the_producers_spelling_of_the_id(bus, database_url) -> None:
    hex_id = uuid.uuid4().hex
    q = queued(1)
    await bus.publish(DecisionQueued(**{**{f: getattr(q, f) for f in q.__struct_fields__}, "decision_id": hex_id,
                                        "event_id": "hexq"}))
    async with make_gateway(bus, database_url) as (g, client):
        await caught_up(g)
        canonical = str(uuid.UUID(hex_id))
        assert id_forms(canonical) == [canonical, hex_id]
        r = await client.post(f"/admin/decisions/{canonical}/approve", headers=AUTH)
        assert r.status_code == 200 and r.json()["decision_id"] == hex_id
        history = await bus.aggregate_history("decision", hex_id)
        assert [i.event.type for i in history if not i.caught_up] == ["decision.queued", "decision.approved"]
        body = (await client.get(f"/api/decisions/{canonical}")).json()
        assert body["decision"]["approval"] == "approved" and len(body["timeline"]) == 2


async def test_health_and_readiness(shared_gw) -> None:
    gateway, client = shared_gw
    assert (await client.get("/healthz")).json() == {"ok": True, "service": "gateway"}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True and body["nats"] and body["database"] and body["migrations"]
    assert body["projector_lag"] == 0 and body["reasons"] == []
    gateway.ready_max_lag = -1  # any lag is too much
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503 and "READY_MAX_LAG" in r.json()["reasons"][0]
    finally:
        gateway.ready_max_lag = 1000


async def test_dashboard_renders_the_api_numbers(shared_gw) -> None:
    _, client = shared_gw
    m = (await client.get("/api/metrics")).json()
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert f'id="metric-queueSize">{m["queueSize"]}<' in html
    assert f'id="metric-postsPosted">{m["postsPosted"]}<' in html
    assert "https://x.com/acct/status/180000000000000000" in html
    assert html.count("<svg") == 3 and "<circle" in html and "<rect" in html
    assert f'data-id="{did(1)}"' in html and "post now" in html
    # the attempt in doubt past the limit: a panel that says what to do, with the two answers
    assert 'id="attention"' in html and "Needs attention" in html and "Look on X first" in html
    assert f'id="metric-attentionNeeded">{m["attentionNeeded"]}<' in html and m["attentionNeeded"] == 1
    assert f'data-attention="{did(ATTENTION)}"' in html
    assert f'data-resolve="retry" data-id="{did(ATTENTION)}"' in html
    assert f'data-resolve="abandon" data-id="{did(ATTENTION)}"' in html
    assert "timeline unreadable: error page" in html
    # the approval view: the flagged sentence highlighted in the draft, and listed, the rest escaped as text
    assert f'id="metric-flaggedClaimsPending">{m["flaggedClaimsPending"]}<' in html and m["flaggedClaimsPending"] == 1
    row = html.split(f'<tr data-decision="{did(FLAGGED)}">', 1)[1].split("</tr>", 1)[0]
    assert (f'Small batches keep reviews honest. <mark class="claim">{FLAGGED_CLAIM}</mark> Ship small, '
            "&lt;test&gt; it.") in row
    assert f'<li><mark class="claim">{FLAGGED_CLAIM}</mark></li>' in row and "1 unsupported claim<" in row
    assert html.count('<mark class="claim">') == 2  # only the flagged draft's row
    assert 'id="x-pauses"' in html and "no 429" in html and "no 226 cooldown" in html
    assert (await client.get("/static/dashboard.js")).status_code == 200


async def test_openapi_documents_every_endpoint(shared_gw) -> None:
    _, client = shared_gw
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for p in ("/env", "/api/metrics", "/metrics", "/admin/jobs/run", "/admin/flags", "/api/decisions",
              "/api/decisions/{decision_id}", "/admin/decisions/{decision_id}/approve",
              "/admin/decisions/{decision_id}/reject", "/admin/decisions/{decision_id}/schedule",
              "/admin/decisions/{decision_id}/resolve", "/healthz",
              "/readyz", "/api/jobs"):
        assert p in paths, p
    assert set(paths["/admin/flags"]) == {"get", "put"}
    assert {"401", "403", "422"} <= set(paths["/admin/jobs/run"]["post"]["responses"])
    assert {"409", "404"} <= set(paths["/admin/decisions/{decision_id}/approve"]["post"]["responses"])
    assert {"401", "404", "409", "422"} <= set(paths["/admin/decisions/{decision_id}/resolve"]["post"]["responses"])
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert (await client.get("/docs")).status_code == 200
