"""What every benchmark shares: the row of the table, the context (servers, progress) and the filler."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.bus import BusNames, JetStreamBus, StreamSettings
from shared.events import LlmCallCompleted
from xbot.embedded import EmbeddedNats, EmbeddedPostgres


@dataclass
class Row:
    benchmark: str
    figure: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Ctx:
    quick: bool
    nats: EmbeddedNats
    pg: EmbeddedPostgres
    progress: Callable[[str], None]

    async def bus(self, ns: str | None = None) -> JetStreamBus:
        b = await JetStreamBus.connect(
            self.nats.url, names=BusNames(ns or f"b{uuid.uuid4().hex[:8]}"),
            settings=StreamSettings(duplicate_window_s=60),
        )
        await b.ensure()
        return b


def _event(i: int) -> LlmCallCompleted:
    return LlmCallCompleted(
        event_id=f"e{i:09d}-{uuid.uuid4().hex[:8]}", occurred_at=datetime.now(UTC), correlation_id="bench-run",
        request_id=f"r{i:09d}", kind="chat", model="gpt-4o-mini", prompt_tokens=420, completion_tokens=96,
        total_tokens=516, cost_usd=0.0001206, duration_ms=812.5, service="planner",
    )


async def fill(bus: JetStreamBus, n: int, progress: Callable[[str], None], chunk: int = 20_000) -> None:
    done = 0
    while done < n:
        k = min(chunk, n - done)
        await bus.publish_many([_event(done + i) for i in range(k)])
        done += k
        progress(f"published {done:,}/{n:,} events")


def account_history(n: int, *, dim: int = 256, days: float = 365.0, seed: int = 1) -> Iterator[Any]:
    """``n`` events of a year of an account in shadow mode, in log order: per decision an LLM call, the queued
    draft (with a ``dim``-dimensional embedding), the claim, the post and outcomes at +1 h and +24 h, plus a
    model update every 200 decisions. What a service's state is built from, in realistic proportions."""
    import numpy as np

    from shared.events import (
        ArmState,
        DecisionPosted,
        DecisionPostStarted,
        DecisionQueued,
        ModelUpdated,
        OutcomeRecorded,
        float32_bytes,
    )

    rng = np.random.default_rng(seed)
    arms = [f"{t}:{a}" for t in ("ai_tools", "startups", "productivity", "devops") for a in ("how_to", "story", "data")]
    per_decision = 6
    decisions = max(1, n // per_decision)
    start = datetime.now(UTC) - timedelta(days=days)
    step = timedelta(days=days) / decisions
    emitted = 0
    k = 0
    run = uuid.uuid4().hex[:6]
    while emitted < n:
        at = start + step * k
        did = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xbot-bench/{run}/{k}"))  # the seed's tables key decisions by uuid
        arm = arms[k % len(arms)]
        topic, angle = arm.split(":")
        vec = rng.standard_normal(dim).astype(np.float32)
        batch: list[Any] = [
            LlmCallCompleted(event_id=f"{did}-llm", occurred_at=at, correlation_id="bench", request_id=f"{did}-r",
                             kind="chat", model="gpt-4o-mini", prompt_tokens=420, completion_tokens=96,
                             total_tokens=516, cost_usd=0.0001206, duration_ms=812.5, service="planner"),
            DecisionQueued(event_id=f"{did}-q", occurred_at=at, decision_id=did, decision_type="single",
                           content=f"Post {k}: one small, tested change a day beats a big rewrite.", parts=[],
                           bandit_arm=arm, timing_arm=f"hour:{at.hour}", quality_score=0.8, predicted_er=0.03,
                           generation_source="synthetic", scheduled_at=at, topic_cluster=topic, angle=angle,
                           content_hash=f"h{did}", features={"length": 90 + k % 50, "has_question": k % 2 == 0},
                           embedding=float32_bytes(vec), embedding_model=f"hashing-{dim}"),
            DecisionPostStarted(event_id=f"{did}-st", occurred_at=at, decision_id=did, attempt=1, poster_id="p",
                                simulated=True),
            DecisionPosted(event_id=f"{did}-p", occurred_at=at, decision_id=did, tweet_id=f"sim-{k}", posted_at=at,
                           decision_type="single", bandit_arm=arm, timing_arm=f"hour:{at.hour}", simulated=True),
        ]
        for h in (1, 24):
            likes = int(rng.integers(0, 40))
            batch.append(OutcomeRecorded(
                event_id=f"{did}-o{h}", occurred_at=at + timedelta(hours=h), decision_id=did, tweet_id=f"sim-{k}",
                horizon_hours=h, impressions=1000, likes=likes, retweets=0, replies=0, bookmarks=0, quotes=0,
                er_calculated=likes / 1000, simulated=True, collected_at=at + timedelta(hours=h), bandit_arm=arm,
                timing_arm=f"hour:{at.hour}", decision_type="single"))
        if k % 200 == 199:
            batch.append(ModelUpdated(
                event_id=f"{did}-m", occurred_at=at, version=k // 200 + 1,
                arms=[ArmState(arm=a, scope="content", alpha=2.0, beta=3.0, successes=1, failures=2) for a in arms],
                slots=[], predictors=[], outcomes_used=2 * k, simulated_used=True, success_er_threshold=0.03))
        yield from batch[: n - emitted]
        emitted += min(len(batch), n - emitted)
        k += 1


async def publish_stream(bus: JetStreamBus, events: Iterator[Any], n: int, progress: Callable[[str], None],
                         chunk: int = 20_000) -> None:
    done = 0
    while done < n:
        batch = [ev for _, ev in zip(range(min(chunk, n - done)), events, strict=False)]
        if not batch:
            break
        await bus.publish_many(batch)
        done += len(batch)
        progress(f"published {done:,}/{n:,} events")


async def readyz(port: int) -> dict[str, Any] | None:
    """A service's /readyz answer (its JSON body with ``status``), None while it does not answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 2)
        return dict(json.loads(raw.split(b"\r\n\r\n", 1)[1]), status=int(raw.split(b" ")[1]))
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    finally:
        writer.close()


def stop_process(proc: subprocess.Popen[bytes], *, crash: bool = False) -> None:
    """SIGTERM (a clean stop) or SIGKILL (``crash``), then wait; a process that will not stop is killed."""
    if crash:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
