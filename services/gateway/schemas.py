"""HTTP shapes (not events): what the gateway's endpoints answer, documented in the OpenAPI at /docs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: the seed's four, and ``in_doubt``: an attempt was sent and its answer lost (it may be on X)
Status = Literal["queued", "posted", "skipped", "failed", "in_doubt"]
DecisionType = Literal["single", "thread", "reply"]


class Problem(BaseModel):
    detail: str = Field(description="What is wrong, in words")


class Health(BaseModel):
    ok: bool
    service: str = "gateway"


class Ready(BaseModel):
    ready: bool
    nats: bool = Field(description="connected to NATS")
    database: bool = Field(description="PostgreSQL answers and the projector can write")
    migrations: bool = Field(description="every migration is applied")
    projector_lag: int | None = Field(description="events in the log not yet in the read models")
    max_lag: int
    projector_position: int
    log_last_seq: int | None
    reasons: list[str] = Field(description="why not ready (empty when ready)")


class EnvView(BaseModel):
    """The seed's ``GET /env`` JSON, plus where each value came from."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "AI_QUOTA_CIRCUIT_OPEN": False, "POSTING_DISABLED": True, "LIVE_POSTS": False,
        "REAL_METRICS_ENABLED": False, "MODE": "live", "OPENAI_MODEL": "gpt-4o-mini", "llmAllowed": True,
        "postingAllowed": False, "analyticsAllowed": False,
        "summary": "MODE=live LLM=ON POSTING=OFF(posting_disabled) REAL_METRICS=OFF(real_metrics_disabled) "
                   "BUDGET=$10/day MODEL=gpt-4o-mini",
        "sources": {"MODE": "env", "POSTING_DISABLED": "default"},
    }})

    AI_QUOTA_CIRCUIT_OPEN: bool
    POSTING_DISABLED: bool
    LIVE_POSTS: bool
    REAL_METRICS_ENABLED: bool
    MODE: Literal["shadow", "live"]
    OPENAI_MODEL: str
    llmAllowed: bool
    postingAllowed: bool
    analyticsAllowed: bool
    summary: str
    sources: dict[str, Literal["default", "env", "override"]] = Field(
        description="for every flag: default, env (the gateway's environment) or override (runtime, KV)")


class AttentionItem(BaseModel):
    """A decision the poster asks the operator about: answer retry (it is not on X) or abandon."""

    decision_id: str
    decision_type: str
    reason: str = Field(description="why the poster asks (from decision.attention_needed)")
    detail: str | None = Field(description="what the poster read when it gave up looking")
    since: datetime | None = Field(description="in doubt since")
    attempts: int
    content: str = Field(description="what was sent (first 280 characters): look for it on X")


class AccountMetrics(BaseModel):
    """The seed's ``GET /api/metrics`` keys of one account (all derived from events, so they survive restarts),
    plus extras. The log's and the projector's figures (projectorPosition, projectorLag, logLastSeq, deadLetters,
    mode, budgetDay, dailyLimitUsd) are the stack's, the same in every account."""

    openaiCalls_total: int = Field(description="LLM calls recorded (llm.call_completed + llm.call_failed)")
    openaiCalls_failed: int
    openaiFailureReasons: dict[str, int]
    queueSize: int = Field(description="COUNT(*) FROM content_metadata WHERE status='queued'")
    postsAttempted: int = Field(description="post attempts (claims, decision.post_started)")
    postsPosted: int
    post_skipped_reason_counts: dict[str, int]
    outcomesWritten: int = Field(description="COUNT(*) FROM outcomes WHERE simulated=false")
    learnRuns: int
    banditArmsUpdated: int = Field(description="arm states published by the learner, all runs")
    predictorVersion: str = Field(description="v<n> of the latest model with fitted predictors, or 'none'")
    # extras
    outcomesSimulated: int
    decisionsByStatus: dict[str, int]
    modelVersion: int | None
    spendTodayUsd: float
    dailyLimitUsd: float
    budgetDay: str
    projectorPosition: int
    projectorLag: int | None
    logLastSeq: int | None
    deadLetters: int | None
    mode: str
    postsInDoubt: int = Field(description="decisions whose last attempt is in doubt (sent, answer lost: it may be "
                                          "on X); the poster reconciles them against the account's timeline")
    attentionNeeded: int = Field(description="decisions in doubt past the poster's limit: it stopped retrying and "
                                             "asks the operator (POST /admin/decisions/{id}/resolve)")
    attentionDecisions: list[AttentionItem] = Field(
        description="the decisions needing attention, longest waiting first (at most 20)")
    llmDraftCalls: int = Field(description="chat (draft) calls made, failed ones included; the circuit's and the "
                                           "budget's refusals made no call and are not counted")
    llmQueuedPosts: int = Field(description="LLM-written drafts queued (decision.queued, generation_source=real)")
    llmCallsPerQueuedPost: float | None = Field(
        description="llmDraftCalls / llmQueuedPosts (null before the first one is queued)")
    llmWastedCalls: int = Field(description="calls whose answer came back and was rejected (invalid_response)")
    llmWastedReasons: dict[str, int] = Field(
        description="wasted calls by reason: parts_count, too_long, empty, not_json, truncated, refused, ...")
    llmRepairedAnswers: dict[str, int] = Field(
        description="answers accepted after a free repair, by repair (joined_parts, split_parts, ...)")
    flaggedClaimsPending: int = Field(
        description="queued drafts whose claims the account's facts do not hold (the claims gate flagged them) "
                    "waiting for a person: not approved or rejected yet")
    xRateLimitedUntil: datetime | None = Field(
        description="X answered 429: no post to the account before this time (the latest paused_until of "
                    "decision.post_failed with error_code 429); null when not paused")
    xRateLimitedSeconds: float = Field(description="seconds left of the 429 pause (0 when not paused)")
    xCooldownUntil: datetime | None = Field(
        description="X answered 226: posting paused until the latest 226 + X_COOLDOWN_MINUTES; null when not")
    xCooldownSeconds: float = Field(description="seconds left of the 226 cooldown (0 when not paused)")


class ApiMetrics(AccountMetrics):
    """``GET /api/metrics``: the seed's keys with the default account's figures (or, with ``?account=``, that
    account's), and ``accounts``: every account's figures by id (with ``?account=``, just that one)."""

    accounts: dict[str, AccountMetrics] = Field(
        description="account id -> the same figures for that account (the default account, every configured "
                    "account and any whose events are in the read models)")


class AccountSummary(BaseModel):
    id: str
    username: str
    publisher: str
    digest: str = Field(description="sha256 of the profile's canonical JSON")
    source: str = Field(description="file:<path>, env or admin")
    actor: str
    configured_at: datetime


class AccountSaved(BaseModel):
    ok: bool = True
    account: str
    digest: str
    seq: int = Field(description="the sequence of the account.configured event")
    event: str = "account.configured"


class AccountUnchanged(BaseModel):
    unchanged: bool = True
    account: str
    digest: str


class AccountProblems(BaseModel):
    detail: str = Field(description="every problem, one line each, naming the account and the field")
    problems: list[str]


class DecisionItem(BaseModel):
    decision_id: str
    account: str = Field("default", description="the X account the decision belongs to")
    decision_type: str
    status: str
    content: str
    parts: list[str]
    bandit_arm: str | None
    timing_arm: str | None
    quality_score: float | None
    predicted_er: float | None
    generation_source: str
    scheduled_at: datetime | None
    topic_cluster: str | None
    angle: str | None
    content_hash: str | None
    skip_reason: str | None
    gate: str | None
    error_message: str | None
    target_tweet_id: str | None
    target_username: str | None
    approval: str | None
    last_post_skip: str | None
    attempts: int
    attention_reason: str | None = Field(None, description="set while the poster asks the operator about an "
                                                           "attempt in doubt (status in_doubt)")
    attention_detail: str | None = None
    attention_since: datetime | None = Field(None, description="in doubt since")
    flagged_claims: list[str] = Field(
        [], description="sentences asserting what the account's facts do not hold (the claims gate): on a queued "
                        "draft what the person approving must check, on a skipped one why it was blocked")
    created_at: datetime
    updated_at: datetime
    last_seq: int
    tweet_id: str | None = None
    tweet_url: str | None = None
    posted_at: datetime | None = None
    simulated: bool | None = None


class DecisionPage(BaseModel):
    items: list[DecisionItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class TimelineEntry(BaseModel):
    seq: int
    subject: str
    type: str | None
    occurred_at: datetime | None
    data: dict[str, Any] | None = Field(description="the event (embedding left out)")
    error: str | None = Field(None, description="why the message could not be decoded")


class DecisionDetail(BaseModel):
    decision: DecisionItem | None = Field(description="the read-model row (null while not projected yet)")
    status: str | None = Field(description="the status its history folds to")
    timeline: list[TimelineEntry]
    outcomes: list[dict[str, Any]]


class Accepted(BaseModel):
    ok: bool = True
    decision_id: str
    event: str
    seq: int
    status: str


class ScheduleRequest(BaseModel):
    scheduled_at: datetime | Literal["now"] = Field(
        description="when to post: an ISO-8601 time, or 'now' (the operator's post-now)")


class RejectRequest(BaseModel):
    reason: str = Field("", max_length=500)


class ResolveRequest(BaseModel):
    """The operator's answer to an attempt in doubt. Check X by hand first (RUNBOOK: "Needs attention")."""

    model_config = ConfigDict(json_schema_extra={"example": {"action": "retry",
                                                             "note": "not on the profile, replies or search"}})

    action: Literal["retry", "abandon"] = Field(
        description="retry: it is not on X, close the attempt and post again (a retry of a tweet that is on X "
                    "posts it twice); abandon: give the decision up (failed)")
    note: str = Field("", max_length=500, description="what you checked, recorded in the event")


class JobAccepted(BaseModel):
    ok: bool = True
    job: str
    run_id: str
    status: Literal["queued"] = "queued"
    requested_at: datetime
    account: str | None = Field(None, description="the account the run is for (null: every account)")


class JobRun(BaseModel):
    run_id: str
    service: str
    job: str
    status: str
    counts: dict[str, int]
    detail: str
    completed_at: datetime


class FlagSpecOut(BaseModel):
    name: str
    kind: str
    default: Any
    doc: str


class FlagsView(BaseModel):
    flags: dict[str, Any] = Field(description="effective values")
    sources: dict[str, str]
    overrides: dict[str, str] = Field(description="runtime overrides in the KV bucket")
    specs: list[FlagSpecOut]
    summary: str


class FlagsUpdate(BaseModel):
    """Set runtime overrides; a null value removes the override (back to env/default)."""

    model_config = ConfigDict(json_schema_extra={"example": {"values": {"POSTING_DISABLED": False,
                                                                        "LIVE_POSTS": True}, "actor": "ops"}})

    values: dict[str, bool | int | float | str | None] = Field(description="flag name -> new value or null")
    actor: str | None = Field(None, max_length=200, description="who (defaults to the X-Actor header or 'admin')")


class ArmOut(BaseModel):
    scope: str
    arm_name: str
    successes: int
    failures: int
    alpha: float
    beta: float
    mean: float
    sd: float
    model_version: int
    updated_at: datetime


class SlotOut(BaseModel):
    scope: str
    hour: int
    n: int
    mean_er: float | None
    model_version: int


class LearningView(BaseModel):
    arms: list[ArmOut]
    slots: list[SlotOut]
    models: list[dict[str, Any]]


class DeadLetter(BaseModel):
    seq: int
    subject: str
    consumer: str | None
    error: str | None
    original_subject: str | None
    original_seq: int | None
    at: datetime | None
    data: str = Field(description="the message as received (first 500 characters)")


class DeadLetters(BaseModel):
    total: int
    items: list[DeadLetter]
