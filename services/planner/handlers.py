"""The ``plan`` job: write ``PLAN_BATCH`` drafts, gate them, queue or skip each one.

A run picks every draft's arm and type first, writes the drafts, embeds them all in ONE call (one OpenAI
round trip per run in live mode, not one per draft), compares them with the uniqueness index in one matrix
product (``UniquenessIndex.prepare``), then judges, slots (once it has passed every gate) and publishes them one
after another, each against the state with the run's earlier drafts applied (read-your-writes), so the gates see
exactly what they would one draft at a time. A skipped draft changes nothing a later draft is judged against, so its event is sent
without waiting for the server's ack; the run collects those acks at its end, before it reports its counts.

Dependencies are parameters (``PlanDeps``), wired in ``bootstrap.py``. Shadow mode writes with the synthetic
writer and the local embedder (``generation_source='synthetic'``); live mode with the real LLM through
``GuardedLLM`` (circuit breaker, shared budget, an ``llm.*`` event per call; ``generation_source='real'``).
A failed LLM call in live mode queues nothing for its draft and logs the seed's line. An answer that came back
unusable (``invalid_response``, after the free repairs and the guard's retries) ends that draft only: the run's
other drafts are still written. Any other failure (circuit open, budget spent, rate limit, quota, timeout, API
error) stops the run's drafting: the next call would meet the same refusal or outage.

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

from shared.bus import FIRST_EVENT, WrongSequence
from shared.drafting import (
    GateRules,
    Predictor,
    Proposal,
    RecentDecisions,
    draft_features,
    judge_draft,
    predicted_er,
    publish_draft,
    queued_event,
    skipped_event,
)
from shared.drafting.voice import AccountVoice, with_voice
from shared.events import DEFAULT_ACCOUNT, Command, DecisionQueued, DecisionSkipped, float32_bytes
from shared.flags import Flags
from shared.gates import ChainOutcome, ClaimPolicy, format_block_line
from shared.learning.arms import HOURS, timing_arm
from shared.llm.port import Draft, DraftRequest, LLMFailure
from shared.llm.writers import Writer

from .domain import PendingPicks, Pick, PlanPolicy, pick, policy_from, slot

log = structlog.get_logger("planner")

#: namespace of the planner's decision ids: uuid5(PLAN_NAMESPACE, "<run_id>:<i>")
PLAN_NAMESPACE = uuid.UUID("4f1d1c1e-4a47-5e0b-9a51-706c616e6e65")
LLM_FAILED_LINE = "[PLAN_JOB] OpenAI failed, not queueing real content"

Publish = Callable[..., Awaitable[int]]
#: sends an event and returns at once; the future gives its sequence once the server has acked it
PublishBegin = Callable[..., Awaitable["asyncio.Future[int]"]]
#: how long a run waits, at its end, for the acks of the skipped drafts it sent
ACK_TIMEOUT_S = 30.0


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
    #: send a skipped draft's event without waiting for its ack (None: ``publish`` it like the others)
    publish_begin: PublishBegin | None = None
    batch: int = 3
    #: queued posts beyond which a run plans nothing
    max_queued: int = 24
    thread_ratio: float = 0.25
    seed: int = 7
    #: bring the state up to the log's end before deciding (other replicas' decisions)
    catch_up: Callable[[], Awaitable[None]] | None = None
    service: str = "planner"
    #: the account's facts and languages: the prompt offers them, the claims gate holds live drafts to them
    claims: ClaimPolicy = field(default_factory=ClaimPolicy)
    #: the account planned for, and what its profile asks of its drafts (arms, voice, banned phrases)
    account: str = DEFAULT_ACCOUNT
    voice: AccountVoice | None = None
    #: one run at a time in this process (runs of other replicas are kept apart by the log and the poster)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def decision_id_for(run_id: str, i: int, account: str = DEFAULT_ACCOUNT) -> str:
    """The id of draft ``i`` of a run for an account (the default account's ids are those of a single-account
    stack, so a run redelivered across the upgrade writes the same decisions)."""
    key = f"{run_id}:{i}" if account == DEFAULT_ACCOUNT else f"{run_id}:{account}:{i}"
    return str(uuid.uuid5(PLAN_NAMESPACE, key))


def run_rng(seed: int, run_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|plan|{run_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


async def plan_job(cmd: Command, deps: PlanDeps, *, caught_up: bool = False) -> dict[str, int]:
    """One ``plan`` run. Returns counts: queued, skipped, failed, duplicate (and ``_skipped`` when nothing ran)."""
    async with deps.lock:
        return await _plan(cmd, deps, caught_up)


async def _plan(cmd: Command, deps: PlanDeps, caught_up: bool = False) -> dict[str, int]:
    if deps.catch_up is not None and not caught_up:  # a run of many accounts catches up once, first
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
    voice = deps.voice
    policy = policy_from(flags, thread_ratio=deps.thread_ratio, arms=voice.arms if voice else (),
                         banned_phrases=voice.banned_phrases if voice else (),
                         hours=voice.utc_hours(deps.clock()) if voice else HOURS)
    rng = run_rng(deps.seed, cmd.run_id if deps.account == DEFAULT_ACCOUNT else f"{cmd.run_id}:{deps.account}")
    deps.state.prune(deps.clock())

    # 1. what each draft will be about (arm, type), every pick counting the run's earlier picks as queued
    picks: list[Pick] = []
    earlier = PendingPicks(deps.state.rotation)
    for i in range(n):
        decision_id = decision_id_for(cmd.run_id, i, deps.account)
        if decision_id in deps.state.decisions:
            counts["duplicate"] += 1  # a redelivered run: this draft is already in the log
            continue
        p = pick(deps.state, policy, deps.clock(), rng, decision_id=decision_id, pending=earlier)
        earlier.add(p.topic, p.angle)
        picks.append(p)

    # 2. the drafts, then 3. their embeddings in one call
    drafts: list[tuple[Pick, Draft]] = []
    for p in picks:
        request = with_voice(DraftRequest(
            kind="plan", topic=p.topic, angle=p.angle, decision_type=p.decision_type,  # type: ignore[arg-type]
            seed=p.seed, facts=deps.claims.facts, languages=deps.claims.languages,
        ), voice)
        try:
            drafts.append((p, (await writer.draft(request, correlation_id=cmd.run_id)).draft))
        except LLMFailure as exc:
            counts["failed"] += 1
            _log_failure(exc, p.decision_id, live)
            if exc.stops_run:
                break  # the next call would meet the same circuit, budget, quota or outage
            # an unusable answer ends this draft only
    if not drafts:
        return counts
    try:
        embedded = await writer.embed([d.text for _, d in drafts], correlation_id=cmd.run_id, account=deps.account,
                                      account_budget_usd=voice.budget_usd if voice else None)
    except LLMFailure as exc:
        counts["failed"] += len(drafts)
        _log_failure(exc, drafts[0][0].decision_id, live)
        return counts
    embeddings = [float32_bytes(v) for v in embedded.vectors]

    # 4. judge one after another, each against the state with the run's earlier drafts applied: the similarities
    # to the rows indexed before the run come from one matrix product, the rest is computed per draft
    index = deps.state.index_for(embedded.model)
    index.prepare(embeddings)
    rules = GateRules(live=live, gate=policy.gate, claims=deps.claims, flag_claims=flags.REQUIRE_APPROVAL)
    sent: list[Sent] = []
    try:
        for (p, draft), embedding in zip(drafts, embeddings, strict=True):
            s = await _judge_and_publish(p, draft, embedding, embedded.model, deps, policy, rules, rng, cmd,
                                         counts, source=source)
            if s is not None:
                sent.append(s)
    except BaseException:
        for s in sent:
            s.seq.cancel()  # the run fails as it is; nobody will read these acks
        raise
    finally:
        index.forget_prepared()
    await _settle(sent, counts)
    return counts


class Sent:
    """A skipped draft's event on its way: counted and logged once the server has acked it."""

    __slots__ = ("decision_id", "outcome", "seq")

    def __init__(self, decision_id: str, outcome: ChainOutcome, seq: asyncio.Future[int]):
        self.decision_id, self.outcome, self.seq = decision_id, outcome, seq


async def _settle(sent: list[Sent], counts: dict[str, int]) -> None:
    if not sent:
        return
    acks = await asyncio.wait_for(asyncio.gather(*(s.seq for s in sent), return_exceptions=True), ACK_TIMEOUT_S)
    failure: BaseException | None = None
    for s, ack in zip(sent, acks, strict=True):
        if isinstance(ack, WrongSequence):
            counts["duplicate"] += 1  # another run wrote this decision first
        elif isinstance(ack, BaseException):
            failure = failure or ack
        else:
            _count_skipped(s.decision_id, s.outcome, counts)
    if failure is not None:
        raise failure  # as a failed publish would: the run fails and is retried (its decision ids are stable)


def _count_skipped(decision_id: str, outcome: ChainOutcome, counts: dict[str, int]) -> None:
    counts["skipped"] += 1
    assert outcome.blocked_by is not None
    log.info(format_block_line(decision_id, outcome.blocked_by), details=outcome.blocked_by.details)


def _log_failure(exc: LLMFailure, decision_id: str, live: bool) -> None:
    if live:
        log.warning(LLM_FAILED_LINE, decision_id=decision_id, reason=exc.reason, detail=exc.detail[:300],
                    wasted_reason=exc.wasted_reason or None, run_stopped=exc.stops_run)
    else:
        log.warning("[PLAN_JOB] synthetic writer failed", decision_id=decision_id, reason=exc.reason)


async def _judge_and_publish(
    p: Pick, draft: Draft, embedding: bytes, embedding_model: str, deps: PlanDeps, policy: PlanPolicy,
    rules: GateRules, rng: np.random.Generator, cmd: Command, counts: dict[str, int], *,
    source: str,
) -> Sent | None:
    """Judge one draft, slot it once it passed every gate, and write its event. A skipped one is only sent when
    ``deps.publish_begin`` is given (returned, to be settled by the caller); a queued one is published and
    applied before this returns."""
    live = rules.live
    now = deps.clock()
    decision_id = p.decision_id
    features = draft_features(draft.parts, decision_type=p.decision_type, topic=p.topic, angle=p.angle, hour=None)
    proposal = Proposal(
        decision_id=decision_id,
        decision_type=p.decision_type,
        parts=draft.parts,
        account=deps.account,
        bandit_arm=p.bandit_arm,
        topic=p.topic,
        angle=p.angle,
        embedding=embedding,
        embedding_model=embedding_model,
        generation_source=source,
        model_version=p.model_version,
        correlation_id=cmd.run_id,
        event_id=f"{decision_id}:draft",
    )
    verdict = judge_draft(proposal, deps.state, rules, now)
    outcome = verdict.outcome
    event: DecisionQueued | DecisionSkipped
    if verdict.passed:
        hour, scheduled_at = slot(deps.state, policy, now, rng)  # only a draft every gate passed is slotted
        feats = verdict.scored({**features, "hour": hour})
        event = queued_event(proposal, verdict, now=now, scheduled_at=scheduled_at, timing_arm=timing_arm(hour),
                             features=feats, predicted_er=predicted_er(deps.state.model, feats, deps.predict))
    else:
        feats = verdict.scored(features)
        event = skipped_event(proposal, verdict, now=now, features=feats,
                              predicted_er=predicted_er(deps.state.model, feats, deps.predict))
    if isinstance(event, DecisionSkipped) and deps.publish_begin is not None:
        seq = await deps.publish_begin(event, expect=FIRST_EVENT)
        return Sent(decision_id, outcome, seq)
    if not await publish_draft(deps.publish, event):
        counts["duplicate"] += 1
        return None
    if isinstance(event, DecisionQueued):
        counts["queued"] += 1
        at = event.scheduled_at.isoformat() if event.scheduled_at else None
        if event.flagged_claims:
            log.warning("[PLAN_JOB] claims the account's facts do not hold, queued for approval",
                        decision_id=decision_id, flagged_claims=event.flagged_claims)
        if live:
            log.info(f"[PLAN_JOB] ✅ Real LLM content generated (decision_id={decision_id}, status=queued, "
                     f"scheduled_at={at})")
        else:
            log.info(f"[PLAN_JOB] ✅ Synthetic content generated (decision_id={decision_id}, status=queued, "
                     f"scheduled_at={at})")
    else:
        _count_skipped(decision_id, outcome, counts)
    return None
