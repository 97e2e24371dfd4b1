"""A deterministic account history (every event type the gateway projects), and the seed's database check on it.

``scenario()`` is imported by the other gateway and projector tests.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import pytest

from services.gateway.app import create_app
from services.gateway.deps import Gateway
from services.gateway.projector import Projector
from services.gateway.read_models import READ_MODELS
from shared.accounts import AccountProfile, profile_digest
from shared.clock import FixedClock
from shared.db import apply_migrations, create_pool
from shared.events import (
    AccountConfigured,
    ArmState,
    DecisionApproved,
    DecisionAttentionNeeded,
    DecisionDoubtResolved,
    DecisionPartPosted,
    DecisionPosted,
    DecisionPostFailed,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRejected,
    DecisionRescheduled,
    DecisionSkipped,
    Event,
    FlagChanged,
    JobCompleted,
    LlmCallCompleted,
    LlmCallFailed,
    ModelUpdated,
    OutcomeCollectionFailed,
    OutcomeRecorded,
    PredictorState,
    SlotState,
    float32_bytes,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def did(n: int, salt: str = "d") -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xbot-test/{salt}/{n}"))


def queued(n: int, *, source: str = "real", kind: str = "single", at: datetime | None = None, salt: str = "d",
           **kw: object) -> DecisionQueued:
    at = at or T0 + timedelta(minutes=n)
    return DecisionQueued(
        event_id=f"q-{salt}-{n}", occurred_at=at, decision_id=did(n, salt), decision_type=kind,  # type: ignore[arg-type]
        content=f"Draft number {n}: one useful idea about shipping small, tested changes.",
        parts=[f"part {n}.1", f"part {n}.2"] if kind == "thread" else [],
        bandit_arm=["howto:story", "opinion:data", "howto:list"][n % 3], timing_arm=f"h{(9 + n) % 24:02d}",
        quality_score=0.81, predicted_er=0.0423, generation_source=source,  # type: ignore[arg-type]
        scheduled_at=at + timedelta(hours=1), topic_cluster=["howto", "opinion"][n % 2], angle="story",
        content_hash=f"hash{n}", features={"len": 80 + n, "has_question": n % 2 == 0, "topic": "howto"},
        embedding=float32_bytes([0.1 * (n % 7), 0.2, 0.3]), embedding_model="hashing-256",
        target_tweet_id="1790000000000000001" if kind == "reply" else None,
        target_username="someone" if kind == "reply" else None, model_version=3, **kw,  # type: ignore[arg-type]
    )


def scenario(n_bulk: int = 0) -> list[Event]:
    """The story of a few days of the account, plus ``n_bulk`` extra decisions (queued, posted, measured)."""
    ev: list[Event] = []
    t = T0
    # the seed's check: three real single drafts, queued; the claims gate flagged a sentence of the third
    # (REQUIRE_APPROVAL=true: queued for a person with the claim highlighted)
    ev += [queued(i) for i in range(1, 3)] + [flagged(FLAGGED)]
    # a gate blocked one (status skipped with the gate's reason)
    sk = queued(4)
    ev.append(DecisionSkipped(**{**{f: getattr(sk, f) for f in sk.__struct_fields__ if f != "event_id"},
                                 "event_id": "s-4"}, gate="quality", skip_reason="score 0.55 < 0.7", score=0.55))
    # the poster looked at one and did not post it (posting disabled): it stays queued
    ev.append(DecisionPostSkipped(event_id="ps-1", occurred_at=t + timedelta(hours=1), decision_id=did(1),
                                  reason="posting_disabled"))
    ev.append(DecisionPostSkipped(event_id="ps-1b", occurred_at=t + timedelta(hours=1, minutes=1),
                                  decision_id=did(2), reason="posting_disabled"))
    # a thread: claimed, two parts, posted
    ev.append(queued(5, kind="thread"))
    ev.append(DecisionPostStarted(event_id="st-5", occurred_at=t + timedelta(hours=2), decision_id=did(5), attempt=1,
                                  poster_id="poster-a"))
    ev += [DecisionPartPosted(event_id=f"pp-5-{i}", occurred_at=t + timedelta(hours=2, seconds=i), decision_id=did(5),
                              part_index=i, tweet_id=f"18000000000000000{i}") for i in range(2)]
    ev.append(DecisionPosted(event_id="p-5", occurred_at=t + timedelta(hours=2, seconds=5), decision_id=did(5),
                             tweet_id="180000000000000000", posted_at=t + timedelta(hours=2, seconds=4),
                             decision_type="thread", bandit_arm="opinion:data", timing_arm="h11",
                             url="https://x.com/acct/status/180000000000000000",
                             thread_tweet_ids=["180000000000000000", "180000000000000001"]))
    # a reply: two failed attempts, the last final; X answered 226 ("looks automated") after the first
    ev.append(queued(6, kind="reply"))
    for a, final in ((1, False), (2, True)):
        ev.append(DecisionPostStarted(event_id=f"st-6-{a}", occurred_at=t + timedelta(hours=3, minutes=a),
                                      decision_id=did(6), attempt=a, poster_id="poster-b"))
        ev.append(DecisionPostFailed(event_id=f"f-6-{a}", occurred_at=t + timedelta(hours=3, minutes=a, seconds=30),
                                     decision_id=did(6), attempt=a, error="compose box not found",
                                     error_code="selector", final=final))
        if a == 1:
            ev.append(DecisionPostFailed(event_id="f-6-226", occurred_at=COOLDOWN_226_AT, decision_id=did(6),
                                         attempt=1, error="this request looks like it might be automated",
                                         error_code="226"))
    # the operator: approve one, reject one, move one
    ev.append(queued(7))
    ev.append(queued(8))
    ev.append(DecisionApproved(event_id="ap-7", occurred_at=t + timedelta(hours=4), decision_id=did(7), actor="ops"))
    ev.append(DecisionRejected(event_id="rj-8", occurred_at=t + timedelta(hours=4), decision_id=did(8), actor="ops",
                               reason="off brand"))
    ev.append(DecisionRescheduled(event_id="rs-7", occurred_at=t + timedelta(hours=4, minutes=1), decision_id=did(7),
                                  scheduled_at=t + timedelta(hours=5), actor="ops"))
    # attempts in doubt (the answer was lost): doubt_story() below
    ev += doubt_story()
    # the claims gate blocked a draft (approval off): skipped, with the sentence it could not support
    claim = flagged(UNSUPPORTED)
    ev.append(DecisionSkipped(**{**{f: getattr(claim, f) for f in claim.__struct_fields__ if f != "event_id"},
                                 "event_id": f"s-{UNSUPPORTED}"}, gate="claims", skip_reason="unsupported_claim",
                              score=0.0))
    # outcomes of the thread at +1 h (simulated) and +24 h (real)
    for h, sim, imp in ((1, True, 1200), (24, False, 5400)):
        ev.append(OutcomeRecorded(
            event_id=f"outcome:{did(5)}:{h}", occurred_at=t + timedelta(hours=2 + h), decision_id=did(5),
            tweet_id="180000000000000000", horizon_hours=h, impressions=imp, likes=40, retweets=5, replies=3,
            bookmarks=2, quotes=1, er_calculated=round(51 / imp, 6), simulated=sim,
            collected_at=t + timedelta(hours=2 + h), bandit_arm="opinion:data", timing_arm="h11",
            decision_type="thread"))
    ev.append(OutcomeCollectionFailed(event_id="ocf-5", occurred_at=t + timedelta(hours=30), decision_id=did(5),
                                      tweet_id="180000000000000000", horizon_hours=48, reason="page_timeout",
                                      attempt=1))
    # the learner, twice (the second supersedes arms and slots)
    for v in (1, 2):
        ev.append(ModelUpdated(
            event_id=f"m-{v}", occurred_at=t + timedelta(hours=26 + v), version=v,
            arms=[ArmState(arm=a, scope="content", alpha=1.0 + v + i, beta=2.0 + i, successes=v + i, failures=1 + i)
                  for i, a in enumerate(("howto:story", "opinion:data", "howto:list"))],
            slots=[SlotState(hour=h, n=v * 2 + h % 3, mean_er=0.01 * (h % 5) if h % 4 else None) for h in range(24)],
            predictors=[PredictorState(kind="ridge_er", feature_names=["len"], coefficients=[0.001], intercept=0.01,
                                       means=[80.0], stds=[5.0], metrics={"r2_holdout": 0.12}, n_train=8,
                                       n_holdout=2)] if v == 2 else [],
            predictor_skipped_reason=None if v == 2 else "insufficient outcomes (need 5)",
            outcomes_used=5 * v, simulated_used=True, success_er_threshold=0.03))
    # LLM calls, one failed
    for i in range(3):
        ev.append(LlmCallCompleted(event_id=f"llm-{i}", occurred_at=t + timedelta(minutes=i), request_id=f"req-{i}",
                                   kind="chat", model="gpt-4o-mini", prompt_tokens=300, completion_tokens=80,
                                   total_tokens=380, cost_usd=0.000093, duration_ms=850.0, service="planner"))
    ev.append(LlmCallFailed(event_id="llm-f", occurred_at=t + timedelta(minutes=9), request_id="req-f", kind="chat",
                            model="gpt-4o-mini", failure_reason="rate_limited", service="planner"))
    # job runs and a flag change
    ev.append(JobCompleted(event_id="job-plan-1", occurred_at=t + timedelta(minutes=2), run_id="plan-1", job="plan",
                           service="planner", status="ok", counts={"queued": 3, "skipped": 1}))
    ev.append(JobCompleted(event_id="job-learn-1", occurred_at=t + timedelta(hours=28), run_id="learn-1", job="learn",
                           service="learner", status="ok", counts={"arms_trained": 3}))
    ev.append(FlagChanged(event_id="fc-1", occurred_at=t + timedelta(hours=5), flag="POSTING_DISABLED",
                          old_value=None, new_value="false", actor="ops@example"))
    # bulk: queued, claimed, posted (simulated), measured
    for k in range(n_bulk):
        at = T0 + timedelta(days=2, seconds=k)
        d = did(k, "bulk")
        ev.append(queued(k, source="synthetic", at=at, salt="bulk"))
        ev.append(DecisionPostStarted(event_id=f"bst-{k}", occurred_at=at, decision_id=d, attempt=1,
                                      poster_id="p", simulated=True))
        ev.append(DecisionPosted(event_id=f"bp-{k}", occurred_at=at, decision_id=d, tweet_id=f"sim-{k}",
                                 posted_at=at, decision_type="single", bandit_arm="howto:list", simulated=True))
        ev.append(OutcomeRecorded(event_id=f"bo-{k}", occurred_at=at, decision_id=d, tweet_id=f"sim-{k}",
                                  horizon_hours=1, impressions=100 + k, likes=k % 7, retweets=0, replies=1,
                                  bookmarks=0, quotes=0, er_calculated=(k % 7 + 1) / (100 + k), simulated=True,
                                  collected_at=at))
    return ev


#: the queued draft whose claim the claims gate flagged for a person, and the one it skipped
FLAGGED, UNSUPPORTED = 3, 13
#: the sentence of each the account's facts do not hold
FLAGGED_CLAIM = "We cut p95 latency by 42% last quarter."
UNSUPPORTED_CLAIM = "I shipped 30 apps this year."
#: X answered 226 (decision 6) and 429 (decision 11, paused until RATE_LIMITED_UNTIL)
COOLDOWN_226_AT = T0 + timedelta(hours=3, minutes=1, seconds=40)
RATE_LIMITED_UNTIL = T0 + timedelta(hours=6, minutes=57)


def flagged(n: int) -> DecisionQueued:
    """A draft with one sentence the claims gate flagged (the content holds it, between supported ones)."""
    claim = FLAGGED_CLAIM if n == FLAGGED else UNSUPPORTED_CLAIM
    q = queued(n, flagged_claims=[claim])
    return msgspec.structs.replace(q, content=f"Small batches keep reviews honest. {claim} Ship small, <test> it.")


#: the decisions of ``doubt_story``: 9 needs the operator, 10 was retried and posted, 11 was closed by the poster
#: and waits out a 429, 12 was abandoned
ATTENTION, RETRIED, CLOSED, ABANDONED = 9, 10, 11, 12
#: rows ``scenario()`` makes besides its bulk decisions (each bulk decision adds one row to both)
SCENARIO_DECISIONS, SCENARIO_OUTCOMES, SCENARIO_POSTED = 13, 3, 2


def doubt_story() -> list[Event]:
    """Attempts whose answer was lost: in doubt, asking the operator, answered retry / abandon, closed."""
    t = T0 + timedelta(hours=6)
    ev: list[Event] = []

    def started(n: int, a: int, at: datetime) -> DecisionPostStarted:
        return DecisionPostStarted(event_id=f"st-{n}-{a}", occurred_at=at, decision_id=did(n), attempt=a,
                                   poster_id="poster-a")

    def lost(n: int, a: int, at: datetime) -> DecisionPostFailed:
        return DecisionPostFailed(event_id=f"f-{n}-{a}", occurred_at=at, decision_id=did(n), attempt=a,
                                  error="answer lost: connection reset", error_code="timeout", in_doubt=True)

    def attention(n: int, at: datetime, since: datetime) -> DecisionAttentionNeeded:
        return DecisionAttentionNeeded(event_id=f"att-{n}", occurred_at=at, decision_id=did(n), attempt=1,
                                       reason="in_doubt_too_long", detail="timeline unreadable: error page",
                                       in_doubt_since=since)

    ev += [queued(ATTENTION), started(ATTENTION, 1, t), lost(ATTENTION, 1, t + timedelta(seconds=30)),
           attention(ATTENTION, t + timedelta(hours=1), t + timedelta(seconds=30))]
    ev += [queued(RETRIED, kind="reply"),
           DecisionPostSkipped(event_id="ps-10", occurred_at=t, decision_id=did(RETRIED), reason="posting_disabled"),
           started(RETRIED, 1, t + timedelta(minutes=1)), lost(RETRIED, 1, t + timedelta(minutes=2)),
           attention(RETRIED, t + timedelta(hours=1), t + timedelta(minutes=2)),
           DecisionDoubtResolved(event_id="dr-10", occurred_at=t + timedelta(hours=2), decision_id=did(RETRIED),
                                 action="retry", actor="ops", note="not on the profile, with replies, or in search"),
           started(RETRIED, 2, t + timedelta(hours=2, minutes=1)),
           DecisionPosted(event_id="p-10", occurred_at=t + timedelta(hours=2, minutes=2), decision_id=did(RETRIED),
                          tweet_id="181000000000000000", posted_at=t + timedelta(hours=2, minutes=2),
                          decision_type="reply", bandit_arm="howto:story",
                          url="https://x.com/acct/status/181000000000000000")]
    ev += [queued(CLOSED), started(CLOSED, 1, t + timedelta(minutes=3)), lost(CLOSED, 1, t + timedelta(minutes=4)),
           DecisionPostFailed(event_id="f-11-1-nf", occurred_at=t + timedelta(minutes=40), decision_id=did(CLOSED),
                              attempt=1, error="attempt 1 in doubt and not on the timeline after 30 minutes",
                              error_code="not_found_after_grace"),
           started(CLOSED, 2, t + timedelta(minutes=41)),
           DecisionPostFailed(event_id="f-11-2", occurred_at=t + timedelta(minutes=42), decision_id=did(CLOSED),
                              attempt=2, error="rate limited", error_code="429",
                              paused_until=RATE_LIMITED_UNTIL)]
    ev += [queued(ABANDONED), started(ABANDONED, 1, t + timedelta(minutes=5)),
           lost(ABANDONED, 1, t + timedelta(minutes=6)),
           attention(ABANDONED, t + timedelta(hours=1), t + timedelta(minutes=6)),
           DecisionDoubtResolved(event_id="dr-12", occurred_at=t + timedelta(hours=3), decision_id=did(ABANDONED),
                                 action="abandon", actor="ana", note="not on X; too late to post now")]
    # the retried reply's first read at +15 min (a fraction of an hour: outcomes.horizon_hours is NUMERIC)
    at = t + timedelta(hours=2, minutes=17)
    ev.append(OutcomeRecorded(
        event_id=f"outcome:{did(RETRIED)}:0.25", occurred_at=at, decision_id=did(RETRIED),
        tweet_id="181000000000000000", horizon_hours=0.25, impressions=80, likes=3, retweets=0, replies=1,
        bookmarks=0, quotes=0, er_calculated=0.05, simulated=False, collected_at=at, bandit_arm="howto:story",
        decision_type="reply"))
    return ev


#: the second account of ``runner_story``
RUNNER = "runner"
RUNNER_PROFILE = AccountProfile(id=RUNNER, username="ana_runs", topics=("marathon_training", "nutrition"),
                                facts=("I have run 12 marathons",))
#: rows ``runner_story()`` makes: decisions, posted, real outcomes
RUNNER_DECISIONS, RUNNER_POSTED, RUNNER_OUTCOMES = 4, 1, 1


def at_account(event: Event, account: str, suffix: str | None = None) -> Event:
    """The same event in another account (its event id made unique with ``suffix``)."""
    return msgspec.structs.replace(event, account=account, event_id=f"{event.event_id}-{suffix or account}")


def runner_story() -> list[Event]:
    """A second account's few days, beside ``scenario()``'s default account: its configuration, drafts (one
    queued, one posted and measured, one gate-blocked, one in the queue after a post skip), its own model (same
    scope, arms and version as the default account's), LLM calls, a learn run named like the default's, and a 429.
    Every event carries ``account="runner"``, so its subjects are ``<ns>.evt.runner.<aggregate>.<id>.<name>``."""
    t = T0 + timedelta(hours=1)
    r = RUNNER
    ev: list[Event] = [AccountConfigured(event_id="acc-runner-1", occurred_at=T0, account=r, profile=RUNNER_PROFILE,
                                         digest=profile_digest(RUNNER_PROFILE), source="file:accounts.toml")]
    drafts = [queued(n, salt=r) for n in range(1, 5)]
    ev += [at_account(d, r) for d in drafts]
    q3 = drafts[2]
    ev.append(DecisionSkipped(**{**{f: getattr(q3, f) for f in q3.__struct_fields__ if f != "event_id"},
                                 "event_id": "s-runner-3", "account": r}, gate="quality",
                              skip_reason="score 0.5 < 0.7", score=0.5))
    ev.append(DecisionPostSkipped(event_id="ps-runner-4", occurred_at=t, account=r, decision_id=did(4, r),
                                  reason="outside_active_hours"))
    d2 = did(2, r)
    ev.append(DecisionPostStarted(event_id="st-runner-2", occurred_at=t, account=r, decision_id=d2, attempt=1,
                                  poster_id="poster-a"))
    ev.append(DecisionPosted(event_id="p-runner-2", occurred_at=t + timedelta(seconds=3), account=r, decision_id=d2,
                             tweet_id="182000000000000000", posted_at=t + timedelta(seconds=2),
                             decision_type="single", bandit_arm="howto:list", timing_arm="h11",
                             url="https://x.com/ana_runs/status/182000000000000000"))
    ev.append(OutcomeRecorded(
        event_id=f"outcome:{d2}:24", occurred_at=t + timedelta(hours=24), account=r, decision_id=d2,
        tweet_id="182000000000000000", horizon_hours=24, impressions=900, likes=30, retweets=2, replies=4,
        bookmarks=1, quotes=0, er_calculated=0.041111, simulated=False, collected_at=t + timedelta(hours=24),
        bandit_arm="howto:list", timing_arm="h11", decision_type="single"))
    ev.append(DecisionPostStarted(event_id="st-runner-1", occurred_at=t + timedelta(hours=1), account=r,
                                  decision_id=did(1, r), attempt=1, poster_id="poster-a"))
    ev.append(DecisionPostFailed(event_id="f-runner-1", occurred_at=t + timedelta(hours=1, seconds=5), account=r,
                                 decision_id=did(1, r), attempt=1, error="rate limited", error_code="429",
                                 paused_until=NOW + timedelta(minutes=10)))
    ev.append(ModelUpdated(
        event_id="m-runner-1", occurred_at=t + timedelta(hours=26), account=r, version=1,
        arms=[ArmState(arm=a, scope="content", alpha=7.0, beta=3.0, successes=6, failures=2)
              for a in ("howto:story", "howto:list")],
        slots=[SlotState(hour=h, n=1, mean_er=0.02) for h in range(6)], predictors=[],
        predictor_skipped_reason="insufficient outcomes (need 5)", outcomes_used=1, simulated_used=False,
        success_er_threshold=0.03))
    for i in range(2):
        ev.append(LlmCallCompleted(event_id=f"llm-runner-{i}", occurred_at=T0 + timedelta(minutes=i), account=r,
                                   request_id=f"req-runner-{i}", kind="chat", model="gpt-4o-mini",
                                   prompt_tokens=200, completion_tokens=60, total_tokens=260, cost_usd=0.00005,
                                   duration_ms=700.0, service="planner"))
    ev.append(LlmCallFailed(event_id="llm-runner-f", occurred_at=T0 + timedelta(minutes=5), account=r,
                            request_id="req-runner-f", kind="chat", model="gpt-4o-mini",
                            failure_reason="budget_exceeded", service="planner"))
    ev.append(JobCompleted(event_id="job-learn-1-runner", occurred_at=t + timedelta(hours=27), account=r,
                           run_id="learn-1", job="learn", service="learner", status="ok",
                           counts={"arms_trained": 2}))
    return ev


def two_accounts(n_bulk: int = 0) -> list[Event]:
    """``scenario()`` (the default account) with ``runner_story()`` woven in: the log of a stack of two accounts."""
    default, runner = scenario(n_bulk), runner_story()
    out: list[Event] = []
    for i, e in enumerate(default):
        out.append(e)
        if i % 3 == 0 and runner:
            out.append(runner.pop(0))
    return out + runner


async def project_all(bus, database_url: str, *, batch_size: int = 1000, name: str = "gateway") -> Projector:
    """Project everything now in the log, then stop (returns the stopped projector)."""
    p = Projector(bus, database_url, name=name, batch_size=batch_size, flush_s=0.001)
    await p.run(follow=False)
    await p.stop()
    return p


async def migrated(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


TOKEN = "s3cret-admin-token"
NOW = T0 + timedelta(days=1)


@contextlib.asynccontextmanager
async def make_gateway(
    bus: Any, database_url: str, *, admin_token: str | None = TOKEN, env: dict[str, str] | None = None,
    clock: Any = None,
) -> AsyncIterator[tuple[Gateway, Any]]:
    """A gateway on the test's bus and database, following the log; yields it and an httpx client."""
    import httpx

    from shared.flagstore import FlagStore

    await migrated(database_url)
    pool = await create_pool(database_url)
    flags = FlagStore(bus, env if env is not None else {"MODE": "live"})
    await flags.start()
    projector = Projector(bus, database_url, flush_s=0.001)
    projector.start()
    gw = Gateway(bus=bus, flags=flags, pool=pool, clock=clock or FixedClock(NOW), admin_token=admin_token,
                 projector=projector)
    app = create_app(gw)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            yield gw, client
    finally:
        await projector.stop()
        await flags.stop()
        await pool.close()


@contextlib.asynccontextmanager
async def own_bus_and_database(nats_url: str, admin_url: str) -> AsyncIterator[tuple[Any, str]]:
    """A namespace and a database of our own on the session's servers, for module-scoped fixtures (the
    harness's ``bus`` and ``database_url`` are per test); both removed afterwards."""
    from shared.bus import BusNames, JetStreamBus, StreamSettings
    from tests.conftest import delete_namespace

    ns = f"t{uuid.uuid4().hex[:10]}"
    bus = await JetStreamBus.connect(nats_url, names=BusNames(ns), settings=StreamSettings(duplicate_window_s=120))
    await bus.ensure()
    name = f"xbot_m_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield bus, f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        await delete_namespace(bus)
        await bus.close()
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def caught_up(gw: Gateway, timeout: float = 10.0) -> None:
    last = await gw.bus.last_seq()
    assert await gw.projector.wait_for(last, timeout), f"projector at {gw.projector.position}, log at {last}"


@pytest.mark.integration
async def test_seed_database_check_answers_as_the_seed_shows(bus, database_url) -> None:
    await migrated(database_url)
    await bus.publish_many(scenario())
    p = await project_all(bus, database_url)
    assert p.position == await bus.last_seq()
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, generation_source, decision_type, COUNT(*) FROM content_metadata GROUP BY 1,2,3 ORDER BY 1,2,3"
        )
        got = {(r[0], r[1], r[2]): r[3] for r in rows}
        assert got[("queued", "real", "single")] == 5  # 1, 2, 3, the approved 7 and 11 (its doubt closed)
        assert got == {
            ("queued", "real", "single"): 5, ("skipped", "real", "single"): 3,  # gate-blocked 4 and 13, rejected 8
            ("posted", "real", "thread"): 1, ("posted", "real", "reply"): 1, ("failed", "real", "reply"): 1,
            ("failed", "real", "single"): 1, ("in_doubt", "real", "single"): 1,
        }
        r1 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(1))
        assert r1["status"] == "queued" and r1["last_post_skip"] == "posting_disabled" and r1["last_seq"] > 0
        r4 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(4))
        assert (r4["status"], r4["gate"], r4["skip_reason"]) == ("skipped", "quality", "score 0.55 < 0.7")
        r6 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(6))
        assert r6["attempts"] == 2 and r6["error_message"] == "selector: compose box not found"
        # the claims gate's sentences: for the person approving (queued) and why it was blocked (skipped)
        r3 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(FLAGGED))
        assert (r3["status"], json.loads(r3["flagged_claims"]), r3["approval"]) == ("queued", [FLAGGED_CLAIM], None)
        assert FLAGGED_CLAIM in r3["content"]
        r13 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(UNSUPPORTED))
        assert (r13["status"], r13["gate"], r13["skip_reason"], json.loads(r13["flagged_claims"])) == (
            "skipped", "claims", "unsupported_claim", [UNSUPPORTED_CLAIM])
        assert await conn.fetchval("SELECT COUNT(*) FROM content_metadata WHERE flagged_claims <> '[]'") == 2
        # X's limit answers: the 226 and the 429 (its pause), each once
        limits = await conn.fetch("SELECT decision_id, error_code, attempt, paused_until, answered_at "
                                  "FROM x_limit_answers ORDER BY last_seq")
        assert [(str(x[0]), x[1], x[2], x[3], x[4]) for x in limits] == [
            (did(6), "226", 1, None, COOLDOWN_226_AT),
            (did(CLOSED), "429", 2, RATE_LIMITED_UNTIL, T0 + timedelta(hours=6, minutes=42))]
        r7 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(7))
        assert r7["approval"] == "approved" and r7["scheduled_at"] == T0 + timedelta(hours=5)
        r8 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(8))
        assert (r8["status"], r8["approval"], r8["skip_reason"]) == ("skipped", "rejected", "rejected: off brand")
        posted = await conn.fetch("SELECT * FROM posted_decisions ORDER BY tweet_id")
        assert [(p["tweet_id"], str(p["decision_id"])) for p in posted] == [
            ("180000000000000000", did(5)), ("181000000000000000", did(RETRIED))]
        # in doubt past the limit: the operator is asked, with why and since when
        r9 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(ATTENTION))
        assert (r9["status"], r9["attention_reason"], r9["attention_detail"], r9["attention_since"]) == (
            "in_doubt", "in_doubt_too_long", "timeline unreadable: error page",
            T0 + timedelta(hours=6, seconds=30))
        # answered retry, then posted: no attention, and no post skip from before it was posted
        r10 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(RETRIED))
        assert (r10["status"], r10["attention_reason"], r10["attention_since"], r10["last_post_skip"]) == (
            "posted", None, None, None)
        r11 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(CLOSED))
        assert (r11["status"], r11["attempts"], r11["error_message"]) == ("queued", 2, "429: rate limited")
        r12 = await conn.fetchrow("SELECT * FROM content_metadata WHERE decision_id = $1", did(ABANDONED))
        assert (r12["status"], r12["attention_reason"]) == ("failed", None)
        assert r12["error_message"] == "abandoned by ana: not on X; too late to post now"
        outs = await conn.fetch("SELECT horizon_hours, simulated, er_calculated FROM outcomes ORDER BY 1")
        assert [(o[0], o[1]) for o in outs] == [(Decimal("0.25"), False), (1, True), (24, False)]
        assert [str(o[0]) for o in outs] == ["0.25", "1", "24"]  # whole hours stored as before
        assert str(outs[1][2]) == "0.0425"  # the float's shortest form, not its binary expansion
        arms = await conn.fetch("SELECT arm_name, alpha, model_version FROM bandit_arms ORDER BY arm_name")
        assert [(a[0], float(a[1]), a[2]) for a in arms] == [
            ("howto:list", 5.0, 2), ("howto:story", 3.0, 2), ("opinion:data", 4.0, 2)]
        assert await conn.fetchval("SELECT COUNT(*) FROM timing_slots") == 24
        usage = await conn.fetch("SELECT status, failure_reason FROM api_usage ORDER BY request_id")
        assert [u["status"] for u in usage] == ["success"] * 3 + ["failed"]
        assert usage[3]["failure_reason"] == "rate_limited"
        counters = {(r[0], r[1]): r[2] for r in await conn.fetch("SELECT name, key, value FROM gateway_counters")}
        assert counters == {("posts_attempted", ""): 9, ("post_skipped", "posting_disabled"): 3,
                            ("bandit_arms_updated", ""): 6,
                            # real drafts queued, by type: singles 1-3, 7-9, 11, 12; replies 6, 10; thread 5
                            ("real_drafts_queued", "single"): 8, ("real_drafts_queued", "reply"): 2,
                            ("real_drafts_queued", "thread"): 1}
        assert await conn.fetchval("SELECT last_seq FROM projection_offsets WHERE projector='gateway'") == p.position
        # every registered read model is a table the migrations made, with each column its upsert writes
        for m in READ_MODELS:
            cols = {r[0] for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1", m.table)}
            assert set(m.upsert.names) <= cols, (m.table, set(m.upsert.names) - cols)
    finally:
        await conn.close()
