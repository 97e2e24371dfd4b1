"""Bad input from outside, against running processes:

- the gateway (``python -m services.gateway``): admin calls without a token, with a wrong one, and on a gateway
  with no ``ADMIN_TOKEN`` (401 / 401 / 403), each answered and not obeyed (no command, no flag change); a
  20 MB body (4xx, the gateway stays healthy and answers); slow clients (headers or body trickled byte by
  byte, many at once) do not hold up anyone else;
- X's failure modes through the real browser adapter (headless Chromium, the X imitation), the ones not
  already asserted elsewhere (tests/integration/test_poster_x_modes.py has the poster's 226, 429, 187, dropped
  connection and logged out; tests/integration/test_x_browser.py the adapter's slow pages and slow answers;
  tests/integration/test_collector_browser.py the collector's slow pages): the poster as a process when X
  answers a post too slowly (in doubt, then found on the timeline: posted once with X's id); the collector
  under 429 and logged out (the run stops, no outcome, no attempt charged; then X's own numbers); the
  replier under 429 and logged out (nothing read, nothing queued, no made-up target).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.collector.bootstrap import build as build_collector
from services.collector.config import CollectorSettings
from services.replier.bootstrap import build as build_replier
from services.replier.config import ReplierSettings
from shared.bus import JetStreamBus
from shared.config import load_settings
from shared.events import (
    Command,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostStarted,
    DecisionQueued,
    FlagChanged,
    JobCompleted,
    OutcomeCollectionFailed,
    OutcomeRecorded,
    new_event_id,
    utcnow,
)
from shared.service import ServiceRuntime, build_context
from tests.chaos.helpers import ServiceProc, log_events, of, stop_all
from tests.conftest import service_env
from tests.fakes.openai_server import start_openai_server
from tests.fakes.x_imitation import start_x_imitation
from tests.integration.test_projector_scenario import did, own_bus_and_database, scenario
from xbot.embedded import free_port

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(180)]

CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")
TOKEN = "abuse-admin-token"
ADMIN_CALLS = (
    ("GET", "/admin/flags", None),
    ("PUT", "/admin/flags", {"values": {"POSTING_DISABLED": False, "LIVE_POSTS": True}}),
    ("POST", "/admin/jobs/run?job=posting", None),
    ("POST", f"/admin/decisions/{did(1)}/approve", None),
)


class Gateways:
    def __init__(self, bus: JetStreamBus, with_token: ServiceProc, without_token: ServiceProc):
        self.bus, self.with_token, self.without_token = bus, with_token, without_token

    def url(self, p: ServiceProc) -> str:
        return f"http://127.0.0.1:{p.env['GATEWAY_PORT']}"

    @property
    def base(self) -> str:
        return self.url(self.with_token)


@pytest.fixture(scope="module")
async def gateways(nats_url: str, postgres_admin_url: str, tmp_path_factory: Any) -> AsyncIterator[Gateways]:
    """Two gateway processes over one log and one database: one with ADMIN_TOKEN, one without."""
    logs = tmp_path_factory.mktemp("gateways")
    async with own_bus_and_database(nats_url, postgres_admin_url) as (bus, db):
        await bus.publish_many(scenario())
        procs = []
        for i, token in enumerate((TOKEN, None)):
            env = service_env(nats_url, bus.names.namespace, DATABASE_URL=db, GATEWAY_PORT=str(free_port()),
                              GATEWAY_HOST="127.0.0.1", MODE="live", LOG_FORMAT="json", READY_MAX_LAG="0")
            env.pop("ADMIN_TOKEN", None)
            if token:
                env["ADMIN_TOKEN"] = token
            (logs / str(i)).mkdir()
            procs.append(ServiceProc("gateway", env, logs / str(i)))
        try:
            for p in procs:
                p.start()
            await asyncio.gather(*(p.wait_ready(60) for p in procs))
            await asyncio.gather(*(_wait_http(f"http://127.0.0.1:{p.env['GATEWAY_PORT']}") for p in procs))
            yield Gateways(bus, procs[0], procs[1])
        finally:
            await asyncio.to_thread(stop_all, procs)


async def _wait_http(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base, timeout=2) as c:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{base} never answered /healthz")


async def test_admin_without_token_wrong_token_and_no_token_configured(gateways: Gateways) -> None:
    bus = gateways.bus
    commands_before = (await bus.js.stream_info(bus.names.commands_stream)).state.last_seq
    flags_before = len(of(FlagChanged, await log_events(bus)))
    answers: dict[str, list[int]] = {"none": [], "wrong": [], "off": []}
    async with httpx.AsyncClient(timeout=10) as c:
        for method, path, body in ADMIN_CALLS:
            for case, base, headers in (
                ("none", gateways.base, {}),
                ("wrong", gateways.base, {"Authorization": "Bearer not-the-token"}),
                ("wrong", gateways.base, {"X-Admin-Token": TOKEN[:-1]}),
                ("wrong", gateways.base, {"Authorization": f"Bearer {TOKEN}x"}),
                ("wrong", gateways.base, {"Authorization": f"Basic {TOKEN}"}),
                ("wrong", gateways.base, {"Authorization": f"Bearer {TOKEN.upper()}"}),
                ("off", gateways.url(gateways.without_token), {"Authorization": f"Bearer {TOKEN}"}),
                ("off", gateways.url(gateways.without_token), {"X-Admin-Token": "anything"}),
            ):
                r = await c.request(method, base + path, headers=headers, json=body)
                answers[case].append(r.status_code)
                assert r.json().get("detail"), (case, path, r.text)  # the answer says why
                if r.status_code == 401:
                    assert r.headers.get("www-authenticate") == "Bearer"
        # the right token still works (so the refusals above were about the token)
        ok = await c.get(gateways.base + "/admin/flags", headers={"Authorization": f"Bearer {TOKEN}"})
    assert set(answers["none"]) == {401} and set(answers["wrong"]) == {401} and set(answers["off"]) == {403}, answers
    assert ok.status_code == 200
    # answered, not obeyed: no command published, no flag changed
    assert (await bus.js.stream_info(bus.names.commands_stream)).state.last_seq == commands_before
    assert len(of(FlagChanged, await log_events(bus))) == flags_before
    kv = await bus.kv("flags")
    with contextlib.suppress(Exception):
        assert "LIVE_POSTS" not in await kv.keys()


async def test_a_20_mb_body_is_refused_and_the_gateway_stays_healthy(gateways: Gateways) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    garbage = b"{" * (20 * 1024 * 1024)
    padded = b'{"values": {"POSTING_DISABLED": "maybe"}, "pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=gateways.base, timeout=60) as c:
        answers = {}
        for label, body, headers in (
            ("garbage", garbage, auth),
            ("invalid flag value, padded", padded, auth),
        ):
            r = await c.put("/admin/flags", content=body, headers=headers)
            answers[label] = (r.status_code, len(r.content))
        t0 = time.monotonic()
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/api/metrics")).status_code == 200
        assert time.monotonic() - t0 < 5
        flags = (await c.get("/admin/flags", headers=auth)).json()
    assert answers["garbage"][0] == 422 and answers["invalid flag value, padded"][0] == 422, answers
    assert all(size < 64 * 1024 for _, size in answers.values()), answers
    assert flags["overrides"] == {} and gateways.with_token.alive


async def test_without_a_token_a_malformed_admin_body_is_still_401(gateways: Gateways) -> None:
    async with httpx.AsyncClient(base_url=gateways.base, timeout=60) as c:
        answers = [
            (await c.request(method, path, content=b"{" * size, headers={"Content-Type": "application/json"}))
            .status_code
            for method, path in (("PUT", "/admin/flags"), ("POST", f"/admin/decisions/{did(1)}/schedule"))
            for size in (10, 20 * 1024 * 1024)
        ]
    assert answers == [401] * 4, answers


async def test_a_20_mb_unknown_flag_name_is_not_echoed_back(gateways: Gateways) -> None:
    body = b'{"values": {"' + b"A" * (20 * 1024 * 1024) + b'": true}}'
    async with httpx.AsyncClient(base_url=gateways.base, timeout=60) as c:
        r = await c.put("/admin/flags", content=body,
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 422
    assert len(r.content) < 64 * 1024, f"a {len(r.content)}-byte answer to a 20 MB flag name"


async def test_an_oversized_string_flag_is_a_4xx_and_changes_nothing(gateways: Gateways) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bus = gateways.bus
    answers = []
    async with httpx.AsyncClient(base_url=gateways.base, timeout=60) as c:
        for value in ("m" * (20 * 1024 * 1024), "m" * 600_000, "n" * 600_000):
            r = await c.put("/admin/flags", json={"values": {"OPENAI_MODEL": value}}, headers=auth)
            answers.append(r.status_code)
        flags = (await c.get("/admin/flags", headers=auth)).json()
        changes = [f for f in of(FlagChanged, await log_events(bus)) if f.flag == "OPENAI_MODEL"]
        await c.put("/admin/flags", json={"values": {"OPENAI_MODEL": None}}, headers=auth)  # leave it clean
    effective = flags["flags"]["OPENAI_MODEL"]
    # every value the gateway took is audited, and what is in effect is what the audit says
    assert effective == (changes[-1].new_value if changes and changes[-1].new_value else "gpt-4o-mini"), (
        f"OPENAI_MODEL in effect is {effective[:8]!r}... ({len(effective)} chars) but the last flag.changed says "
        f"{(changes[-1].new_value or '')[:8] if changes else None!r}")
    assert all(400 <= s < 500 for s in answers), answers  # a model name of 600 KB is bad input, not a 503


def _slow_send(port: int, chunks: list[bytes], delay: float, stop: list[bool]) -> None:
    """A client that sends ``chunks`` one by one with ``delay`` between them (never finishing in time)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for ch in chunks:
            if stop:
                return
            s.sendall(ch)
            time.sleep(delay)


async def test_slow_clients_do_not_block_other_requests(gateways: Gateways) -> None:
    port = int(gateways.with_token.env["GATEWAY_PORT"])
    body = b'{"values": {"POSTING_DISABLED": true}}'
    head = (f"PUT /admin/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    slow_headers = [bytes([b]) for b in head]  # one byte every 0.1 s: ~13 s for the headers
    slow_body = [head] + [bytes([b]) for b in body]  # headers at once, then the body byte by byte
    stop: list[bool] = []
    tasks = [asyncio.create_task(asyncio.to_thread(_slow_send, port, slow_headers, 0.1, stop)) for _ in range(20)]
    tasks += [asyncio.create_task(asyncio.to_thread(_slow_send, port, slow_body, 0.1, stop)) for _ in range(20)]
    try:
        await asyncio.sleep(1.0)  # 40 slow clients connected, each mid-request
        latencies = []
        async with httpx.AsyncClient(base_url=gateways.base, timeout=5) as c:
            for _ in range(10):
                t0 = time.monotonic()
                r = await c.get("/healthz")
                latencies.append(time.monotonic() - t0)
                assert r.status_code == 200
                r = await c.get("/api/decisions", params={"limit": 2})
                assert r.status_code == 200
                await asyncio.sleep(0.1)
    finally:
        stop.append(True)
        await asyncio.gather(*tasks)
    assert max(latencies) < 2.0, latencies
    # the slow PUTs that never finished changed nothing
    assert not [f for f in of(FlagChanged, await log_events(gateways.bus)) if f.flag == "POSTING_DISABLED"
                and f.new_value == "true"]


# ----------------------------------------------------------------------------------------- X failure modes


@needs_chromium
async def test_poster_process_post_answered_too_slowly_is_in_doubt_then_found_once(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    x = start_x_imitation(user="alice")
    env = service_env(
        nats_url, namespace, MODE="live", LIVE_POSTS="true", POSTING_DISABLED="false", MAX_POSTS_PER_HOUR="100",
        MIN_POST_INTERVAL_MINUTES="0", POSTING_INTERVAL_MINUTES="0", RECONCILE_GRACE_MINUTES="0.05",
        X_BASE_URL=x.base_url, X_USERNAME="alice", X_SESSION_FILE=str(x.write_session(tmp_path / "s.json")),
        CHROMIUM_PATH=CHROMIUM, X_ARTIFACTS_DIR=str(tmp_path / "artifacts"), X_DWELL_MIN_MS="0",
        X_DWELL_MAX_MS="0", X_TIMEOUT_MS="3000", XBOT_HOME=str(tmp_path / "home"), LOG_FORMAT="json",
    )
    poster = ServiceProc("poster", env, tmp_path)
    now = utcnow()
    q = DecisionQueued(
        event_id=new_event_id(), occurred_at=now, decision_id=str(uuid.uuid4()), decision_type="single",
        content=f"Slow X: the answer never came back in time {uuid.uuid4().hex[:6]}", parts=[], bandit_arm="how_to",
        generation_source="real", scheduled_at=now - timedelta(minutes=1), topic_cluster="shipping",
        angle="practical", content_hash=uuid.uuid4().hex,
    )
    try:
        poster.start()
        await poster.wait_ready(60)
        await bus.publish(q)
        # created at once, answered after the adapter gave up (X_TIMEOUT_MS 3 s + 5 s looking at the page)
        x.state.set_mode(None, slow=10.0, slow_on="create")
        first = await _run(bus, "posting", poster)
        x.state.clear_mode()
        second = await _run(bus, "posting", poster)
        third = await _run(bus, "posting", poster)
    finally:
        await asyncio.to_thread(poster.stop)
        x.stop()
    history = [i.event for i in await bus.aggregate_history("decision", q.decision_id) if i.event is not None]
    (tweet,) = x.state.tweets_with_text(q.content)  # on X once
    posted = of(DecisionPosted, history)
    assert len(posted) == 1 and posted[0].tweet_id == tweet.tweet_id, (first, second, poster.tail())
    assert len(of(DecisionPostStarted, history)) == 1  # never a second attempt
    fails = of(DecisionPostFailed, history)
    assert fails and all(f.in_doubt and not f.final for f in fails)
    assert first.counts.get("in_doubt") == 1 or first.counts.get("recovered") == 1, first
    assert posted[0].recovered and third.counts.get("due", 0) == 0


async def _run(bus: JetStreamBus, job: str, proc: ServiceProc | None = None, timeout: float = 60) -> JobCompleted:
    run_id = f"{job}-{uuid.uuid4().hex[:8]}"
    await bus.publish_command(Command(job=job, run_id=run_id, requested_at=utcnow(), requested_by="chaos"))
    deadline = time.monotonic() + timeout
    subject = f"{bus.names.evt_prefix}.job.{run_id}.completed"
    while time.monotonic() < deadline:
        done = [i.event async for i in bus.read(subject) if isinstance(i.event, JobCompleted)]
        if done:
            return done[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{job} did not complete in {timeout}s\n{proc.tail() if proc else ''}")


async def _runtime(name: str, build: Any, settings_cls: Any, environ: dict[str, str]) -> ServiceRuntime:
    ctx = await build_context(name, load_settings(settings_cls, environ), environ)
    rt = ServiceRuntime(name, ctx, await build(ctx))
    await rt.start()
    return rt


async def _stop_runtime(rt: ServiceRuntime) -> None:
    await rt.stop()
    await rt.ctx.flags.stop()
    await rt.ctx.bus.close()


def _cmd(job: str) -> Command:
    return Command(job=job, run_id=f"{job}-{uuid.uuid4().hex[:8]}", requested_at=utcnow())


@needs_chromium
async def test_collector_under_429_and_logged_out_records_nothing_and_charges_nothing(
    bus: JetStreamBus, nats_url: str, namespace: str
) -> None:
    x = start_x_imitation(user="alice")
    environ = service_env(
        nats_url, namespace, MODE="live", REAL_METRICS_ENABLED="true", X_USERNAME="alice", X_BASE_URL=x.base_url,
        X_SESSION_B64=x.session_b64(), X_DWELL_MIN_MS="0", X_DWELL_MAX_MS="0", COLLECT_INTERVAL_HOURS="0",
        COLLECT_MAX_ATTEMPTS="2", X_TIMEOUT_MS="5000", CHROMIUM_PATH=CHROMIUM,
    )
    at = datetime.now(UTC) - timedelta(hours=2)
    tid = x.state.add_tweet("alice", "measured later", created_at=at,
                            metrics={"impressions": 900, "likes": 27, "retweets": 3})
    await bus.publish(DecisionPosted(event_id=new_event_id(), occurred_at=at, decision_id="d-abuse", tweet_id=tid,
                                     posted_at=at, decision_type="single", bandit_arm="a:b"))
    rt = await _runtime("collector", build_collector, CollectorSettings, environ)
    try:
        runs = {}
        for mode in ("429", "logged_out", "429"):  # more runs than COLLECT_MAX_ATTEMPTS: none is charged
            x.state.set_mode(mode)
            runs[mode] = await rt.parts.jobs["collect"](_cmd("collect"))
        x.state.clear_mode()
        after = await rt.parts.jobs["collect"](_cmd("collect"))
    finally:
        await _stop_runtime(rt)
        x.stop()
    assert all(r.get("aborted") == 1 and not r.get("recorded") and not r.get("failed") for r in runs.values()), runs
    events = await log_events(bus)
    assert of(OutcomeCollectionFailed, events) == []
    assert after.get("recorded") == 1, after
    (o,) = of(OutcomeRecorded, events)
    assert (o.tweet_id, o.impressions, o.likes, o.retweets, o.simulated) == (tid, 900, 27, 3, False)


@needs_chromium
async def test_replier_under_429_and_logged_out_queues_nothing(
    bus: JetStreamBus, nats_url: str, namespace: str
) -> None:
    x = start_x_imitation(user="xbot", users=("xbot", "alice"))
    llm = start_openai_server()
    target = x.state.add_tweet("alice", "Are AI agents ready for production work?",
                               created_at=datetime.now(UTC) - timedelta(hours=1))
    environ = service_env(
        nats_url, namespace, MODE="live", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm.base_url,
        X_USERNAME="xbot", X_BASE_URL=x.base_url, X_SESSION_B64=x.session_b64(), X_DWELL_MIN_MS="0",
        X_DWELL_MAX_MS="0", X_TIMEOUT_MS="5000", REPLY_INTERVAL_MINUTES="0", REPLY_TARGET_ACCOUNTS="alice",
        REPLY_SEARCH_QUERIES="agents", CHROMIUM_PATH=CHROMIUM,
        # the imitation's template replies may claim results ("we cut my review time in half"): with approval on
        # the claims gate queues them flagged instead of skipping them, so the count is about X's answers
        REQUIRE_APPROVAL="true",
    )
    rt = await _runtime("replier", build_replier, ReplierSettings, environ)
    try:
        runs = {}
        for mode in ("429", "logged_out"):
            x.state.set_mode(mode)
            runs[mode] = await rt.parts.jobs["reply"](_cmd("reply"))
        x.state.clear_mode()
        after = await rt.parts.jobs["reply"](_cmd("reply"))
    finally:
        await _stop_runtime(rt)
        llm.stop()
        x.stop()
    for mode, r in runs.items():
        assert r["read_errors"] == 2 and r["candidates"] == 0 and r["queued"] == 0, (mode, r)
    assert after["read_errors"] == 0 and after["queued"] == 1, after
    (q,) = of(DecisionQueued, await log_events(bus))
    assert q.target_tweet_id == target and q.target_username == "alice" and q.generation_source == "real"
