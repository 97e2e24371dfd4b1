"""The replier in live mode end to end: candidates read through the real browser adapter (headless Chromium)
from the X imitation's profile and search pages, replies written by the LLM (a local OpenAI-compatible
server), all on a real nats-server."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.replier.bootstrap import build
from services.replier.config import ReplierSettings
from shared.config import load_settings
from shared.events import Command, DecisionQueued, utcnow
from shared.service import ServiceRuntime, build_context
from tests.conftest import service_env
from tests.fakes.openai_server import start_openai_server
from tests.fakes.x_imitation import start_x_imitation

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not (Path("/usr/bin/chromium").exists() or shutil.which("chromium")), reason="needs Chromium"
    ),
]


@pytest.fixture
def servers() -> Any:
    x = start_x_imitation(user="xbot", users=("xbot", "alice", "bob"))
    llm = start_openai_server()
    yield x, llm
    llm.stop()
    x.stop()


async def test_live_replies_to_tweets_read_from_x_pages(nats_url: str, namespace: str, bus: Any, servers: Any) -> None:
    x, llm = servers
    now = datetime.now(UTC)
    fresh = x.state.add_tweet("alice", "Our LLM evals caught a prompt regression before launch.",
                              created_at=now - timedelta(hours=1))
    old = x.state.add_tweet("alice", "An old thought on code review habits.", created_at=now - timedelta(hours=40))
    x.state.add_tweet("xbot", "Our own thoughts on agents and evals.", created_at=now - timedelta(minutes=30))
    found = x.state.add_tweet("bob", "Are AI agents ready for production work?", created_at=now - timedelta(hours=3))
    env = service_env(
        nats_url, namespace, MODE="live", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm.base_url,
        X_USERNAME="xbot", X_BASE_URL=x.base_url, X_SESSION_B64=x.session_b64(), X_DWELL_MIN_MS="0",
        X_DWELL_MAX_MS="0", X_TIMEOUT_MS="5000", REPLY_INTERVAL_MINUTES="0",
        REPLY_TARGET_ACCOUNTS="alice,xbot", REPLY_SEARCH_QUERIES="agents",
        # the imitation's template replies may claim results ("we cut my review time in half"): with approval on
        # the claims gate queues them flagged instead of skipping them
        REQUIRE_APPROVAL="true",
    )
    settings = load_settings(ReplierSettings, env)
    ctx = await build_context("replier", settings, env)
    rt = ServiceRuntime("replier", ctx, await build(ctx))
    await rt.start()
    try:
        counts = await rt.parts.jobs["reply"](Command(job="reply", run_id="live-1", requested_at=utcnow()))
        again = await rt.parts.jobs["reply"](Command(job="reply", run_id="live-2", requested_at=utcnow()))
    finally:
        await rt.stop()
        await ctx.flags.stop()
        await ctx.bus.close()
    assert counts["read_errors"] == 0 and counts["queued"] == 2, counts
    assert again["queued"] == 0 and again["candidates"] == 0  # both answered; ours and the old one never
    queued = [i.event async for i in bus.read(names=frozenset({"decision.queued"})) if i.event is not None]
    assert all(isinstance(q, DecisionQueued) and q.generation_source == "real" for q in queued)
    assert {(q.target_tweet_id, q.target_username) for q in queued} == {(fresh, "alice"), (found, "bob")}
    assert old not in {q.target_tweet_id for q in queued}
