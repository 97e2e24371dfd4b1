"""The replier end to end on a real nats-server: wired by its own bootstrap, its state rebuilt from the log; the
LLM a local OpenAI-compatible server; candidates from the simulator (shadow) or the X port in live mode."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.replier.bootstrap import wire
from services.replier.config import ReplierSettings
from services.replier.domain import reply_decision_id
from services.replier.handlers import ReplyDeps
from shared.bus import JetStreamBus
from shared.clock import Clock
from shared.config import load_settings
from shared.errors import ConfigError
from shared.events import Command, DecisionQueued, LlmCallCompleted, LlmCallFailed, utcnow
from shared.flagstore import FlagStore
from shared.service import ServiceContext, ServiceRuntime
from shared.x.port import TweetView
from shared.x.simulator import SimulatedX
from tests.fakes.openai_server import FakeOpenAIServer, start_openai_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

OWN = "xbot_test"


@pytest.fixture(scope="module")
def openai_srv() -> Any:
    srv = start_openai_server()
    yield srv
    srv.stop()


@pytest.fixture
def fake_llm(openai_srv: FakeOpenAIServer) -> FakeOpenAIServer:
    openai_srv.set_mode("ok")
    yield openai_srv
    openai_srv.set_mode("ok")


class Replier:
    def __init__(self, runtime: ServiceRuntime, ctx: ServiceContext, deps: ReplyDeps):
        self.runtime, self.ctx, self.deps = runtime, ctx, deps

    async def run(self, run_id: str | None = None) -> dict[str, int]:
        cmd = Command(job="reply", run_id=run_id or f"reply-{uuid.uuid4().hex[:8]}", requested_at=utcnow())
        return await self.runtime.parts.jobs["reply"](cmd)

    async def stop(self) -> None:
        await self.runtime.stop()
        await self.ctx.flags.stop()


async def start_replier(bus: JetStreamBus, env: dict[str, str], x: Any = None) -> Replier:
    environ = {"LOG_FORMAT": "console", "REPLY_INTERVAL_MINUTES": "0", "X_USERNAME": OWN, **env}
    settings = load_settings(ReplierSettings, environ)
    flags = FlagStore(bus, environ)
    await flags.start()
    ctx = ServiceContext(name="replier", settings=settings, bus=bus, flags=flags, clock=Clock(), environ=environ)
    try:
        deps, parts = await wire(ctx)
    except BaseException:
        await flags.stop()
        raise
    if x is not None:  # the X port for live mode: a fake account instead of the browser
        async def open_x() -> Any:
            return x

        deps.open_live_x = open_x
    runtime = ServiceRuntime("replier", ctx, parts)
    await runtime.start()
    return Replier(runtime, ctx, deps)


@contextlib.asynccontextmanager
async def replier(bus: JetStreamBus, env: dict[str, str], x: Any = None) -> AsyncIterator[Replier]:
    r = await start_replier(bus, env, x)
    try:
        yield r
    finally:
        await r.stop()


def live_env(srv: FakeOpenAIServer, **extra: str) -> dict[str, str]:
    # The imitation answers with the synthetic templates, some of which claim results no account's facts hold;
    # with REQUIRE_APPROVAL=true the claims gate queues those for a person instead of skipping them, so these
    # tests of the reply pipeline see every draft queued (the claims gate has its own tests).
    return {"MODE": "live", "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": srv.base_url, "LLM_TIMEOUT_SECONDS": "5",
            "REQUIRE_APPROVAL": "true", **extra}


async def events_of(bus: JetStreamBus, *types: str) -> list[Any]:
    return [i.event async for i in bus.read(names=frozenset(types)) if i.event is not None]


class ReusableX(SimulatedX):
    """A simulator the job may close after each live run (as it closes the browser) and still use again."""

    async def close(self) -> None:
        self.closed_count = getattr(self, "closed_count", 0) + 1


async def test_shadow_replies_answer_simulated_tweets_with_target_fields(bus: JetStreamBus) -> None:
    env = {"MODE": "shadow", "REPLY_TARGET_ACCOUNTS": "@alice,bob", "REPLY_SEARCH_QUERIES": "AI agents",
           "REPLY_BATCH": "4"}
    async with replier(bus, env) as r:
        with capture_logs() as logs:
            counts = await r.run()
    assert counts["candidates"] > 4 and counts["queued"] + counts["skipped"] == 4 and counts["queued"] >= 3
    queued = await events_of(bus, "decision.queued")
    for q in queued:
        assert isinstance(q, DecisionQueued)
        assert q.decision_type == "reply" and q.generation_source == "synthetic"
        assert q.target_tweet_id and q.target_username and q.target_username.lower() != OWN
        assert q.decision_id == reply_decision_id(q.target_tweet_id)
        assert q.bandit_arm == q.angle and len(q.parts) == 1
        assert q.timing_arm == f"hour:{q.scheduled_at.hour}"
    times = sorted(q.scheduled_at for q in queued)
    assert all((b - a) >= timedelta(minutes=15) for a, b in zip(times, times[1:], strict=False))
    lines = [e["event"] for e in logs if e["event"].startswith("[REPLY_JOB] ✅ Synthetic reply generated")]
    assert len(lines) == counts["queued"]


async def test_a_restart_never_answers_the_same_tweet_twice(bus: JetStreamBus) -> None:
    env = {"MODE": "shadow", "REPLY_TARGET_ACCOUNTS": "alice", "REPLY_SEARCH_QUERIES": "", "REPLY_BATCH": "3"}
    async with replier(bus, env) as first:
        c1 = await first.run("run-1")
    answered = {q.target_tweet_id for q in await events_of(bus, "decision.queued", "decision.skipped")}
    assert c1["queued"] + c1["skipped"] == 3 and len(answered) == 3
    # a new process: its state comes from the log only; the simulator shows it the same tweets again
    async with replier(bus, env) as second:
        assert {t for t in second.deps.state.targets} == answered
        c2 = await second.run("run-1")  # the same command redelivered
        c3 = await second.run("run-2")
    drafts = await events_of(bus, "decision.queued", "decision.skipped")
    targets = [d.target_tweet_id for d in drafts]
    assert len(targets) == len(set(targets)) == 3 + c2["queued"] + c2["skipped"] + c3["queued"] + c3["skipped"]
    assert answered <= set(targets)


async def test_two_replicas_racing_on_the_same_tweets_answer_each_once(bus: JetStreamBus) -> None:
    env = {"MODE": "shadow", "REPLY_TARGET_ACCOUNTS": "carol", "REPLY_SEARCH_QUERIES": "", "REPLY_BATCH": "5"}
    async with replier(bus, env) as a, replier(bus, env) as b:
        ca, cb = await asyncio.gather(a.run("race-a"), b.run("race-b"))
    drafts = await events_of(bus, "decision.queued", "decision.skipped")
    targets = [d.target_tweet_id for d in drafts]
    assert len(targets) == len(set(targets))
    assert ca["queued"] + ca["skipped"] + cb["queued"] + cb["skipped"] == len(targets)
    assert ca["duplicate"] + cb["duplicate"] >= 1  # the loser of each race was refused by the log


async def test_the_daily_reply_cap_holds_across_runs(bus: JetStreamBus) -> None:
    env = {"MODE": "shadow", "REPLY_TARGET_ACCOUNTS": "alice,bob", "REPLY_SEARCH_QUERIES": "", "REPLY_BATCH": "5",
           "REPLY_MAX_PER_DAY": "2"}
    async with replier(bus, env) as r:
        first = await r.run()
        with capture_logs() as logs:
            second = await r.run()
    assert first["queued"] == 2
    assert second["queued"] == 0 and second.get("_skipped") == 1
    assert any(e["event"] == "[REPLY_JOB] ⏭️ Daily reply limit reached" for e in logs)
    assert len(await events_of(bus, "decision.queued")) == 2


async def test_live_replies_use_the_real_llm_and_skip_own_and_old_tweets(
    bus: JetStreamBus, fake_llm: FakeOpenAIServer
) -> None:
    now = datetime.now(UTC)
    x = ReusableX(username=OWN, seed=3)
    tweets = [
        TweetView(tweet_id="1800000000000000001", author="alice", text="Our LLM evals caught a prompt regression.",
                  created_at=now - timedelta(hours=2)),
        TweetView(tweet_id="1800000000000000002", author=OWN, text="Our own post about evals and prompts.",
                  created_at=now - timedelta(hours=1)),
        TweetView(tweet_id="1800000000000000003", author="alice", text="An old tweet about code review habits.",
                  created_at=now - timedelta(hours=30)),
    ]

    async def account_tweets(username: str, limit: int = 20) -> list[TweetView]:
        return [t for t in tweets if t.author == username][:limit]

    x.read_account_tweets = account_tweets  # type: ignore[method-assign]
    env = live_env(fake_llm, REPLY_TARGET_ACCOUNTS=f"alice,{OWN}", REPLY_SEARCH_QUERIES="")
    async with replier(bus, env, x=x) as r:
        with capture_logs() as logs:
            counts = await r.run()
    assert counts["candidates"] == 1 and counts["queued"] == 1
    (q,) = await events_of(bus, "decision.queued")
    assert q.generation_source == "real" and q.decision_type == "reply"
    assert (q.target_tweet_id, q.target_username) == ("1800000000000000001", "alice")
    assert q.embedding_model == "text-embedding-3-small"
    line = f"[REPLY_JOB] ✅ Real LLM reply generated (decision_id={q.decision_id}, status=queued, " \
           f"scheduled_at={q.scheduled_at.isoformat()})"
    assert any(e["event"] == line for e in logs)
    calls = await events_of(bus, "llm.call_completed")
    assert len(calls) == 2 and all(isinstance(c, LlmCallCompleted) and c.service == "replier" for c in calls)
    assert x.closed_count == 1  # the live X is closed after each run
    prompt = fake_llm.requests[-2]["body"]["messages"][-1]["content"]
    assert "Our LLM evals caught a prompt regression." in prompt  # the tweet is in context


@pytest.mark.parametrize("mode,flag,reason", [
    ("server_error", {}, "api_error"),
    ("rate_limit", {}, "rate_limited"),
    ("ok", {"AI_QUOTA_CIRCUIT_OPEN": "true"}, "circuit_open"),
])
async def test_live_failures_queue_nothing_and_leave_the_tweet_unanswered(
    bus: JetStreamBus, fake_llm: FakeOpenAIServer, mode: str, flag: dict[str, str], reason: str
) -> None:
    fake_llm.set_mode(mode)
    x = ReusableX(username=OWN, seed=4)
    env = live_env(fake_llm, REPLY_TARGET_ACCOUNTS="alice", REPLY_SEARCH_QUERIES="", **flag)
    async with replier(bus, env, x=x) as r:
        with capture_logs() as logs:
            counts = await r.run()
        assert counts["queued"] == 0 and counts["failed"] == 1
        assert not r.deps.state.targets  # nothing drafted: the tweet may be answered later
    assert await events_of(bus, "decision.queued", "decision.skipped") == []
    failed = await events_of(bus, "llm.call_failed")
    assert [f.failure_reason for f in failed] == [reason] and isinstance(failed[0], LlmCallFailed)
    assert any(e["event"] == "[REPLY_JOB] OpenAI failed, not queueing real content" for e in logs)


async def test_live_mode_without_a_key_or_an_account_does_not_start(bus: JetStreamBus) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is missing"):
        await start_replier(bus, {"MODE": "live"})
    with pytest.raises(ConfigError, match="X_USERNAME is missing"):
        await start_replier(bus, {"MODE": "live", "OPENAI_API_KEY": "k", "X_USERNAME": ""})
