"""Promise 3 across a whole live run. The log already holds an earlier shadow period (synthetic decisions,
simulated posts with ``sim-`` ids, simulated outcomes, a model trained on them, synthetic drafts still queued,
simulated posts still owed an outcome) and an earlier live period (real posts two hours old, whose +1 h
outcome is owed). Then, in ``MODE=live``, the planner (against the local OpenAI-compatible server), the
poster and the collector (headless Chromium against the X imitation) and the learner run as processes, each
job on command:

1. learn with no real outcome yet -> a failed training: skipped, nothing published;
2. plan -> real drafts from the LLM; the operator's "post now" on them; posting -> only real texts reach
   the browser, every recorded tweet id is one X assigned; the synthetic drafts stay queued, unclaimed;
3. collect -> outcomes of the real posts only (read from X, ``simulated=false``); the simulated posts that
   are owed an outcome in shadow get none;
4. learn -> one model trained on the real outcomes only (``outcomes_used`` counts them, ``simulated_used``
   false);
5. POSTING_DISABLED=true (through the flag store) -> posting posts nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.learner.domain import MODEL_SCOPE
from shared.bus import JetStreamBus
from shared.events import (
    ArmState,
    Command,
    DecisionPosted,
    DecisionPostSkipped,
    DecisionPostStarted,
    DecisionQueued,
    DecisionRescheduled,
    Event,
    JobCompleted,
    LlmCallCompleted,
    ModelUpdated,
    OutcomeRecorded,
    float32_bytes,
    utcnow,
)
from shared.flagstore import FlagStore
from shared.learning.arms import default_content_arms, split_arm, timing_arm
from tests.chaos.helpers import ServiceProc, check_log, log_events, of, stop_all
from tests.conftest import service_env
from tests.fakes.openai_server import start_openai_server
from tests.fakes.x_imitation import XImitation, start_x_imitation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="Debian chromium is not installed"),
]

ARMS = default_content_arms()[:5]
METRICS = {"impressions": 1000, "likes": 30, "retweets": 4, "replies": 3, "bookmarks": 2, "quotes": 1}


def _queued(n: int, source: str, at: datetime, salt: str, text: str | None = None) -> DecisionQueued:
    arm = ARMS[n % len(ARMS)]
    topic, angle = split_arm(arm)
    return DecisionQueued(
        event_id=f"q-{salt}-{n}", occurred_at=at, decision_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}/{n}")),
        decision_type="single", content=text or f"Shadow draft {salt} {n}: small batches, fast feedback.",
        parts=[], bandit_arm=arm, timing_arm=timing_arm(at.hour), quality_score=0.8, generation_source=source,  # type: ignore[arg-type]
        scheduled_at=at, topic_cluster=topic, angle=angle, content_hash=f"h-{salt}-{n}",
        features={"length": 90 + n, "has_question": n % 2 == 0}, embedding=float32_bytes([0.1, 0.2, 0.3]),
        embedding_model="hashing",
    )


def _posted(q: DecisionQueued, tweet_id: str, at: datetime, simulated: bool) -> list[Event]:
    return [
        DecisionPostStarted(event_id=f"st-{q.decision_id}", occurred_at=at, decision_id=q.decision_id, attempt=1,
                            poster_id="earlier", simulated=simulated),
        DecisionPosted(event_id=f"posted:{q.decision_id}", occurred_at=at, decision_id=q.decision_id,
                       tweet_id=tweet_id, posted_at=at, decision_type="single", bandit_arm=q.bandit_arm,
                       timing_arm=q.timing_arm, simulated=simulated),
    ]


def _outcome(q: DecisionQueued, tweet_id: str, posted_at: datetime, h: int) -> OutcomeRecorded:
    likes = 5 + (hash(q.decision_id) % 40)
    return OutcomeRecorded(
        event_id=f"outcome:{q.decision_id}:{h}", occurred_at=posted_at + timedelta(hours=h),
        decision_id=q.decision_id, tweet_id=tweet_id, horizon_hours=h, impressions=1000, likes=likes, retweets=1,
        replies=0, bookmarks=0, quotes=0, er_calculated=(likes + 1) / 1000, simulated=True,
        collected_at=posted_at + timedelta(hours=h), bandit_arm=q.bandit_arm, timing_arm=q.timing_arm,
        decision_type="single",
    )


def earlier_periods(x: XImitation, now: datetime) -> tuple[list[Event], dict[str, list[DecisionQueued]]]:
    """The log before the live run starts, and the decisions by kind."""
    ev: list[Event] = []
    kinds: dict[str, list[DecisionQueued]] = {"sim_done": [], "sim_owed": [], "sim_queued": [], "real_owed": [],
                                              "real_queued": []}
    for n in range(20):  # shadow: posted three days ago, both horizons measured (simulated)
        at = now - timedelta(days=3, minutes=-n * 20)
        q = _queued(n, "synthetic", at, "shadow")
        tid = f"sim-{uuid.uuid5(uuid.NAMESPACE_URL, q.decision_id).hex[:20]}"
        ev += [q, *_posted(q, tid, at, True), _outcome(q, tid, at, 1), _outcome(q, tid, at, 24)]
        kinds["sim_done"].append(q)
    for n, hours in enumerate((2, 3, 30)):  # shadow: posted lately, outcomes owed (in shadow mode)
        at = now - timedelta(hours=hours)
        q = _queued(100 + n, "synthetic", at, "shadow")
        ev += [q, *_posted(q, f"sim-owed{n:015d}", at, True)]
        kinds["sim_owed"].append(q)
    for n in range(3):  # shadow drafts never posted, due long ago
        q = _queued(200 + n, "synthetic", now - timedelta(hours=5), "shadow")
        ev.append(q)
        kinds["sim_queued"].append(q)
    ev.append(ModelUpdated(
        event_id="model:main:v1", occurred_at=now - timedelta(days=1), scope=MODEL_SCOPE, version=1,
        arms=[ArmState(arm=a, scope="content", alpha=3.0, beta=2.0, successes=2, failures=1) for a in ARMS],
        slots=[], predictors=[], outcomes_used=20, simulated_used=True, success_er_threshold=0.03,
    ))
    for n in range(6):  # live: real posts two hours old, on X, their +1 h outcome owed
        at = now - timedelta(hours=2, minutes=n)
        text = f"Earlier live post {n}: write the rollback before the rollout. {uuid.uuid4().hex[:6]}"
        tid = x.state.add_tweet("alice", text, created_at=at, metrics={**METRICS, "likes": 10 + 9 * n})
        q = _queued(300 + n, "real", at, "live", text)
        ev += [q, *_posted(q, tid, at, False)]
        kinds["real_owed"].append(q)
    q = _queued(400, "real", now - timedelta(minutes=3), "live",
                f"Queued for real: flags are cheaper than rollbacks. {uuid.uuid4().hex[:6]}")
    ev.append(q)
    kinds["real_queued"].append(q)
    return ev, kinds


async def run_job(bus: JetStreamBus, job: str, proc: ServiceProc, timeout: float = 90) -> JobCompleted:
    run_id = f"{job}-{uuid.uuid4().hex[:8]}"
    await bus.publish_command(Command(job=job, run_id=run_id, requested_at=utcnow(), requested_by="chaos"))
    deadline = time.monotonic() + timeout
    subject = f"{bus.names.evt_prefix}.job.{run_id}.completed"
    while time.monotonic() < deadline:
        done = [i.event async for i in bus.read(subject) if isinstance(i.event, JobCompleted)]
        if done:
            return done[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"{job} run did not complete in {timeout}s:\n{proc.tail()}")


async def test_a_live_run_over_a_log_with_a_shadow_past_makes_nothing_up(
    bus: JetStreamBus, nats_url: str, namespace: str, tmp_path: Path
) -> None:
    x = start_x_imitation(user="alice")
    llm = start_openai_server()
    now = utcnow()
    history, kinds = earlier_periods(x, now)
    await bus.publish_many(history)
    live_from = await bus.last_seq()
    before_on_x = {t.tweet_id for t in x.state.tweets.values()}
    env = service_env(
        nats_url, namespace, MODE="live", LIVE_POSTS="true", POSTING_DISABLED="false", REAL_METRICS_ENABLED="true",
        MAX_POSTS_PER_HOUR="100", MIN_POST_INTERVAL_MINUTES="0", OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=llm.base_url, PLAN_INTERVAL_MINUTES="0", PLAN_THREAD_RATIO="0", POSTING_INTERVAL_MINUTES="0",
        COLLECT_INTERVAL_HOURS="0", LEARN_INTERVAL_MINUTES="0", X_BASE_URL=x.base_url, X_USERNAME="alice",
        X_SESSION_FILE=str(x.write_session(tmp_path / "session.json")), CHROMIUM_PATH="/usr/bin/chromium",
        X_ARTIFACTS_DIR=str(tmp_path / "artifacts"), X_DWELL_MIN_MS="0", X_DWELL_MAX_MS="0", X_TIMEOUT_MS="20000",
        XBOT_HOME=str(tmp_path / "home"), LOG_FORMAT="json",
    )
    procs = {n: ServiceProc(n, env, tmp_path) for n in ("planner", "poster", "collector", "learner")}
    operator = FlagStore(bus, {})
    await operator.start()
    try:
        for p in procs.values():
            p.start()
        await asyncio.gather(*(p.wait_ready(90) for p in procs.values()))

        failed_training = await run_job(bus, "learn", procs["learner"])
        models_after_failed = of(ModelUpdated, await log_events(bus))

        plan = await run_job(bus, "plan", procs["planner"])
        drafts = [e for s, e in await log_events(bus) if s > live_from and isinstance(e, DecisionQueued)]
        for d in drafts:  # the operator's "post now"
            await bus.publish(DecisionRescheduled(event_id=f"now-{d.decision_id}", occurred_at=utcnow(),
                                                  decision_id=d.decision_id, scheduled_at=utcnow(), actor="ops"))
        posting = await run_job(bus, "posting", procs["poster"])
        collect = await run_job(bus, "collect", procs["collector"])
        learn = await run_job(bus, "learn", procs["learner"])

        await operator.set("POSTING_DISABLED", "true", actor="chaos-operator")
        late = _queued(500, "real", utcnow() - timedelta(minutes=1), "late",
                       f"Queued after the switch went off. {uuid.uuid4().hex[:6]}")
        await bus.publish(late)
        creates_before_off = x.state.create_requests
        posting_off = await run_job(bus, "posting", procs["poster"])
        creates_after_off = x.state.create_requests
        on_x = {t.tweet_id: t for t in x.state.tweets.values()}
    finally:
        await operator.stop()
        await asyncio.to_thread(stop_all, procs.values())
        llm.stop()
        x.stop()

    events = await log_events(bus)
    live = [(s, e) for s, e in events if s > live_from]
    report = check_log(events, mode="live", x_tweet_ids=set(on_x))
    assert report.violations == [], report.violations

    # 1. a failed training (no real outcome among 60 simulated ones) publishes nothing
    assert failed_training.status == "skipped", failed_training
    assert [m.version for m in models_after_failed] == [1]

    # 2. only real texts reach the browser; the synthetic drafts stay queued and unclaimed
    assert plan.status == "ok" and plan.counts["queued"] == len(drafts) >= 1, plan
    assert all(d.generation_source == "real" for d in drafts)
    assert of(LlmCallCompleted, live) and all(c.cost_usd > 0 for c in of(LlmCallCompleted, live))
    assert posting.counts.get("posted") == len(drafts) + 1, (posting, procs["poster"].tail())
    new_on_x = [t for tid, t in on_x.items() if tid not in before_on_x]
    real_texts = {d.content for d in drafts} | {kinds["real_queued"][0].content}
    assert sorted(t.text for t in new_on_x) == sorted(real_texts)
    synthetic_texts = {q.content for k in ("sim_done", "sim_owed", "sim_queued") for q in kinds[k]}
    assert not synthetic_texts & {t.text for t in on_x.values()}
    posted_live = of(DecisionPosted, live)
    assert {p.tweet_id for p in posted_live} == {t.tweet_id for t in new_on_x}
    assert all(not p.simulated and p.tweet_id.isdigit() for p in posted_live)
    synthetic_ids = {q.decision_id for k in ("sim_owed", "sim_queued") for q in kinds[k]}
    assert not [e for e in of(DecisionPostStarted, live) if e.decision_id in synthetic_ids]

    # 3. outcomes of the real posts only, read from X, never simulated
    outcomes = of(OutcomeRecorded, live)
    assert collect.counts.get("recorded") == 6, (collect, procs["collector"].tail())
    assert sorted(o.decision_id for o in outcomes) == sorted(q.decision_id for q in kinds["real_owed"])
    for o in outcomes:
        assert not o.simulated and o.horizon_hours == 1
        t = on_x[o.tweet_id]
        assert (o.impressions, o.likes) == (t.metrics["impressions"], t.metrics["likes"])

    # 4. the model is trained on the real outcomes only
    (model,) = of(ModelUpdated, live)
    assert learn.status == "ok" and model.version == 2
    assert model.outcomes_used == 6 and model.simulated_used is False
    assert sum(a.successes + a.failures for a in model.arms) == 6

    # 5. POSTING_DISABLED=true posts nothing
    assert creates_after_off == creates_before_off
    assert posting_off.counts.get("posting_disabled") == 1 and not posting_off.counts.get("posted"), posting_off
    skips = [e for e in of(DecisionPostSkipped, live) if e.decision_id == late.decision_id]
    assert [s.reason for s in skips] == ["posting_disabled"]
    print(f"\nLIVE invariants: {len(report.checked) + 12} checked; counts {report.counts}; "
          f"posted {len(posted_live)} real, {len(outcomes)} real outcomes, model v{model.version}")
