"""The ``plan`` job: write ``PLAN_BATCH`` drafts, gate them, queue or skip each one.

Dependencies are parameters (``PlanDeps``), wired in ``bootstrap.py``. Shadow mode writes with the synthetic
writer and the local embedder (``generation_source='synthetic'``); live mode with the real LLM through
``GuardedLLM`` (circuit breaker, shared budget, an ``llm.*`` event per call; ``generation_source='real'``).
A failed LLM call in live mode queues nothing: the run logs the seed's line and stops.

Idempotent: the decision ids of a run are derived from its ``run_id`` (``uuid5``), and each draft event is
published with "no event yet on ``decision.<id>.*``" as the expected last subject sequence, so a redelivered
command never queues a second draft for the same slot of the same run, whatever replica runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import structlog

from shared.decisions import (
    Predictor,
    RecentDecisions,
    Writer,
    draft_features,
    judge_draft,
    predicted_er,
    publish_draft,
)
from shared.events import Command, DecisionQueued, float32_bytes
from shared.flags import Flags
from shared.gates import format_block_line
from shared.llm.port import DraftRequest, LLMFailure

from .domain import choose, policy_from

log = structlog.get_logger("planner")

#: namespace of the planner's decision ids: uuid5(PLAN_NAMESPACE, "<run_id>:<i>")
PLAN_NAMESPACE = uuid.UUID("4f1d1c1e-4a47-5e0b-9a51-706c616e6e65")
LLM_FAILED_LINE = "[PLAN_JOB] OpenAI failed, not queueing real content"

Publish = Callable[..., Awaitable[int]]


@dataclass
class PlanDeps:
    state: RecentDecisions
    flags: Callable[[], Flags]
    clock: Callable[[], datetime]
    #: publish an event and wait until our own state has applied it (read-your-writes)
    publish: Publish
    #: shadow mode's writer (synthetic drafts, local embeddings)
    local: Writer
    #: live mode's writer (GuardedLLM) for the current flags; returns None when not configured
    live: Callable[[], Writer | None]
    #: the latest model's ER predictor (None: predicted_er stays null)
    predict: Predictor | None = None
    batch: int = 3
    #: queued posts beyond which a run plans nothing
    max_queued: int = 24
    thread_ratio: float = 0.25
    seed: int = 7
    #: bring the state up to the log's end before deciding (other replicas' decisions)
    catch_up: Callable[[], Awaitable[None]] | None = None
    service: str = "planner"
    #: one run at a time in this process (runs of other replicas are kept apart by the log and the poster)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def decision_id_for(run_id: str, i: int) -> str:
    return str(uuid.uuid5(PLAN_NAMESPACE, f"{run_id}:{i}"))


def run_rng(seed: int, run_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|plan|{run_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


async def plan_job(cmd: Command, deps: PlanDeps, *, evt_prefix: str) -> dict[str, int]:
    """One ``plan`` run. Returns counts: queued, skipped, failed, duplicate (and ``_skipped`` when nothing ran)."""
    async with deps.lock:
        return await _plan(cmd, deps, evt_prefix)


async def _plan(cmd: Command, deps: PlanDeps, evt_prefix: str) -> dict[str, int]:
    if deps.catch_up is not None:
        await deps.catch_up()
    flags = deps.flags()
    live = flags.live
    counts = {"queued": 0, "skipped": 0, "failed": 0, "duplicate": 0}
    writer = deps.live() if live else deps.local
    if writer is None:
        log.error(LLM_FAILED_LINE, reason="not_configured", detail="MODE=live without OPENAI_API_KEY")
        counts["failed"] += 1
        return {**counts, "_skipped": 1}
    source = "real" if live else "synthetic"
    pending = sum(1 for d in deps.state.queued(replies=False) if d.generation_source == source)
    n = min(deps.batch, deps.max_queued - pending)
    if n <= 0:
        log.info("[PLAN_JOB] ⏭️ Queue full, nothing planned", queued=pending, max_queued=deps.max_queued)
        return {**counts, "_skipped": 1}
    policy = policy_from(flags, thread_ratio=deps.thread_ratio)
    rng = run_rng(deps.seed, cmd.run_id)
    deps.state.prune(deps.clock())

    for i in range(n):
        decision_id = decision_id_for(cmd.run_id, i)
        if decision_id in deps.state.decisions:
            counts["duplicate"] += 1  # a redelivered run: this draft is already in the log
            continue
        now = deps.clock()
        choice = choose(deps.state, policy, now, rng, decision_id=decision_id)
        request = DraftRequest(
            kind="plan", topic=choice.topic, angle=choice.angle, decision_type=choice.decision_type,  # type: ignore[arg-type]
            seed=choice.seed,
        )
        try:
            result = await writer.draft(request, correlation_id=cmd.run_id)
            draft = result.draft
            embedded = await writer.embed([draft.text], correlation_id=cmd.run_id)
        except LLMFailure as exc:
            counts["failed"] += 1
            if live:
                log.warning(LLM_FAILED_LINE, decision_id=decision_id, reason=exc.reason, detail=exc.detail[:300])
            else:
                log.warning("[PLAN_JOB] synthetic writer failed", decision_id=decision_id, reason=exc.reason)
            break  # the next call would meet the same circuit, budget or outage
        now = deps.clock()
        features = draft_features(
            draft.parts, decision_type=choice.decision_type, topic=choice.topic, angle=choice.angle, hour=choice.hour
        )
        event, outcome = judge_draft(
            decision_id=decision_id,
            decision_type=choice.decision_type,
            parts=draft.parts,
            bandit_arm=choice.bandit_arm,
            topic=choice.topic,
            angle=choice.angle,
            embedding=float32_bytes(embedded.vectors[0]),
            embedding_model=embedded.model,
            generation_source=source,
            state=deps.state,
            now=now,
            live=live,
            gate=policy.gate,
            scheduled_at=choice.scheduled_at,
            timing_arm=choice.timing_arm,
            predict=lambda f: predicted_er(deps.state.model, f, deps.predict),
            features=features,
            model_version=choice.model_version,
            correlation_id=cmd.run_id,
            event_id=f"{decision_id}:draft",
        )
        if not await publish_draft(deps.publish, event, evt_prefix):
            counts["duplicate"] += 1
            continue
        if isinstance(event, DecisionQueued):
            counts["queued"] += 1
            at = event.scheduled_at.isoformat() if event.scheduled_at else None
            if live:
                log.info(f"[PLAN_JOB] ✅ Real LLM content generated (decision_id={decision_id}, status=queued, "
                         f"scheduled_at={at})")
            else:
                log.info(f"[PLAN_JOB] ✅ Synthetic content generated (decision_id={decision_id}, status=queued, "
                         f"scheduled_at={at})")
        else:
            counts["skipped"] += 1
            assert outcome.blocked_by is not None
            log.info(format_block_line(decision_id, outcome.blocked_by), details=outcome.blocked_by.details)
    return counts
