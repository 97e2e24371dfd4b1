"""The ``reply`` job: read candidate tweets through the X port, draft replies, gate them, queue or skip each one.

Dependencies are parameters (``ReplyDeps``), wired in ``bootstrap.py``. Shadow mode reads the simulator's
invented tweets and writes synthetic replies (``generation_source='synthetic'``); live mode reads X through the
browser and writes with the real LLM through ``GuardedLLM`` (``generation_source='real'``). A failed LLM call
in live mode queues nothing for its candidate; an unusable answer (``invalid_response``) ends that reply only,
any other failure (circuit, budget, rate limit, quota, timeout, API error) stops the run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import numpy as np
import structlog

from shared.drafting import (
    GateRules,
    Predictor,
    Proposal,
    RecentDecisions,
    draft_event,
    draft_features,
    judge_draft,
    predicted_er,
    publish_draft,
)
from shared.drafting.voice import AccountVoice, with_voice
from shared.events import DEFAULT_ACCOUNT, Command, DecisionQueued, float32_bytes
from shared.flags import Flags
from shared.gates import ClaimPolicy, format_block_line
from shared.learning.arms import timing_arm
from shared.llm.port import DraftRequest, LLMFailure
from shared.llm.writers import Writer
from shared.x.port import TweetView, XAccount, XError

from .domain import (
    capacity,
    choose_style,
    guess_topic,
    reply_decision_id,
    reply_gate_config,
    reply_schedule,
    select_candidates,
)

log = structlog.get_logger("replier")

LLM_FAILED_LINE = "[REPLY_JOB] OpenAI failed, not queueing real content"

Publish = Callable[..., Awaitable[int]]


@dataclass
class ReplyDeps:
    state: RecentDecisions
    flags: Callable[[], Flags]
    clock: Callable[[], datetime]
    publish: Publish
    local: Writer
    live: Callable[[], Writer | None]
    #: shadow mode's X (the simulator, kept for the service's life)
    simulated_x: XAccount
    #: opens live mode's X (the browser) for one run; None when not configured
    open_live_x: Callable[[], Awaitable[XAccount]] | None
    own_username: str
    accounts: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    max_age: timedelta = timedelta(hours=24)
    batch: int = 3
    per_source: int = 20
    seed: int = 7
    catch_up: Callable[[], Awaitable[None]] | None = None
    #: the latest model's ER predictor (None: predicted_er stays null)
    predict: Predictor | None = None
    #: the account's facts and languages: the prompt offers them, the claims gate holds live replies to them
    claims: ClaimPolicy = field(default_factory=ClaimPolicy)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: the account replied for, what its profile asks of its drafts, and every account of the stack (never
    #: answered: our accounts never reply to each other)
    account: str = DEFAULT_ACCOUNT
    voice: AccountVoice | None = None
    ours: frozenset[str] = frozenset()


def run_rng(seed: int, run_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|reply|{run_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


async def read_candidates(x: XAccount, deps: ReplyDeps) -> tuple[list[TweetView], int]:
    """Every tweet of the target accounts and the searches; a source that fails is logged and passed over."""
    tweets: list[TweetView] = []
    errors = 0
    sources: list[tuple[str, str]] = [("account", a.lstrip("@")) for a in deps.accounts]
    sources += [("search", q) for q in deps.queries]
    for kind, key in sources:
        try:
            if kind == "account":
                tweets += await x.read_account_tweets(key, limit=deps.per_source)
            else:
                tweets += await x.search(key, limit=deps.per_source)
        except XError as exc:
            errors += 1
            log.warning("[REPLY_JOB] could not read candidates", source=kind, key=key, code=exc.code, error=str(exc))
    return tweets, errors


async def reply_job(cmd: Command, deps: ReplyDeps, *, caught_up: bool = False) -> dict[str, int]:
    async with deps.lock:
        return await _reply(cmd, deps, caught_up)


async def _reply(cmd: Command, deps: ReplyDeps, caught_up: bool = False) -> dict[str, int]:
    if deps.catch_up is not None and not caught_up:  # a run of many accounts catches up once, first
        await deps.catch_up()
    flags = deps.flags()
    live = flags.live
    counts = {"queued": 0, "skipped": 0, "failed": 0, "duplicate": 0, "candidates": 0, "read_errors": 0,
              "own_accounts": 0}
    now = deps.clock()
    deps.state.prune(now)
    room = capacity(deps.state, now, flags.REPLY_MAX_PER_DAY)
    if room == 0:
        log.info("[REPLY_JOB] ⏭️ Daily reply limit reached", limit=flags.REPLY_MAX_PER_DAY)
        return {**counts, "_skipped": 1}
    writer = deps.live() if live else deps.local
    if writer is None:
        log.error(LLM_FAILED_LINE, reason="not_configured", detail="MODE=live without OPENAI_API_KEY")
        counts["failed"] += 1
        return {**counts, "_skipped": 1}
    if live:
        if deps.open_live_x is None:
            log.error("[REPLY_JOB] X is not configured (X_USERNAME), no candidates read")
            return {**counts, "_skipped": 1}
        x = await deps.open_live_x()
    else:
        x = deps.simulated_x
    try:
        tweets, counts["read_errors"] = await read_candidates(x, deps)
    finally:
        if live:
            await x.close()
    ours: list[TweetView] = []
    candidates = select_candidates(
        tweets, own_username=deps.own_username, state=deps.state, now=now, max_age=deps.max_age,
        ours=deps.ours, skipped_ours=ours,
    )
    for t in ours:
        log.info("[REPLY_JOB] ⏭️ Not answering one of our own accounts", account=deps.account,
                 target_tweet_id=t.tweet_id, target_username=t.author.lstrip("@"), reason="own_account")
    counts["own_accounts"] = len(ours)
    counts["candidates"] = len(candidates)
    gate = reply_gate_config(flags)
    if deps.voice is not None and deps.voice.banned_phrases:
        gate = msgspec.structs.replace(gate, banned_phrases=deps.voice.banned_phrases)
    rules = GateRules(live=live, gate=gate, claims=deps.claims, flag_claims=flags.REQUIRE_APPROVAL)
    gap = timedelta(minutes=flags.MIN_POST_INTERVAL_MINUTES)
    rng = run_rng(deps.seed, cmd.run_id if deps.account == DEFAULT_ACCOUNT else f"{cmd.run_id}:{deps.account}")
    source = "real" if live else "synthetic"
    drafted = 0
    for tweet in candidates:
        if drafted >= deps.batch or counts["queued"] >= room:
            break
        decision_id = reply_decision_id(tweet.tweet_id, deps.account)
        if deps.state.answered(tweet.tweet_id):  # answered by another replica since we read the log
            counts["duplicate"] += 1
            continue
        drafted += 1
        now = deps.clock()
        style = choose_style(deps.state, now, rng, gate)
        topic = guess_topic(tweet.text, deps.voice.topics) if deps.voice and deps.voice.topics \
            else guess_topic(tweet.text)
        request = with_voice(DraftRequest(kind="reply", topic=topic, angle=style, context=tweet.text,
                                          seed=int(rng.integers(0, 2**31 - 1)), facts=deps.claims.facts,
                                          languages=deps.claims.languages), deps.voice)
        try:
            result = await writer.draft(request, correlation_id=cmd.run_id)
            embedded = await writer.embed([result.draft.text], correlation_id=cmd.run_id, account=deps.account,
                                          account_budget_usd=deps.voice.budget_usd if deps.voice else None)
        except LLMFailure as exc:
            counts["failed"] += 1
            if live:
                log.warning(LLM_FAILED_LINE, decision_id=decision_id, reason=exc.reason, detail=exc.detail[:300],
                            wasted_reason=exc.wasted_reason or None, run_stopped=exc.stops_run)
            else:
                log.warning("[REPLY_JOB] synthetic writer failed", decision_id=decision_id, reason=exc.reason)
            if exc.stops_run:
                break  # the next call would meet the same circuit, budget, quota or outage
            continue  # an unusable answer ends this reply only
        now = deps.clock()
        at = reply_schedule(deps.state, now, gap)
        parts = result.draft.parts[:1]
        proposal = Proposal(
            decision_id=decision_id,
            decision_type="reply",
            parts=parts,
            account=deps.account,
            bandit_arm=style,
            topic=topic,
            angle=style,
            embedding=float32_bytes(embedded.vectors[0]),
            embedding_model=embedded.model,
            generation_source=source,
            model_version=deps.state.model.version if deps.state.model else None,
            target_tweet_id=tweet.tweet_id,
            target_username=tweet.author.lstrip("@"),
            correlation_id=cmd.run_id,
            event_id=f"{decision_id}:draft",
        )
        verdict = judge_draft(proposal, deps.state, rules, now)
        outcome = verdict.outcome
        feats = verdict.scored(draft_features(parts, decision_type="reply", topic=topic, angle=style, hour=at.hour))
        event = draft_event(proposal, verdict, now=now, scheduled_at=at, timing_arm=timing_arm(at.hour),
                            features=feats, predicted_er=predicted_er(deps.state.model, feats, deps.predict))
        if not await publish_draft(deps.publish, event):
            counts["duplicate"] += 1
            continue
        if isinstance(event, DecisionQueued):
            counts["queued"] += 1
            line = "Real LLM reply generated" if live else "Synthetic reply generated"
            log.info(f"[REPLY_JOB] ✅ {line} (decision_id={decision_id}, status=queued, scheduled_at={at.isoformat()})",
                     target_tweet_id=tweet.tweet_id, target_username=event.target_username)
            if event.flagged_claims:
                log.warning("[REPLY_JOB] claims the account's facts do not hold, queued for approval",
                            decision_id=decision_id, flagged_claims=event.flagged_claims)
        else:
            counts["skipped"] += 1
            assert outcome.blocked_by is not None
            log.info(format_block_line(decision_id, outcome.blocked_by), target_tweet_id=tweet.tweet_id)
    return counts
