"""Read-side queries over the read models (and the log, for timelines and dead letters)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog

from shared.events import DEFAULT_ACCOUNT
from shared.flags import Flags

from .deps import Gateway
from .domain import (
    ARMS_UPDATED,
    IN_DOUBT,
    LLM_REPAIRED,
    LLM_WASTED,
    POST_SKIPPED,
    POSTS_ATTEMPTED,
    REAL_QUEUED,
    decision_status,
)

log = structlog.get_logger("gateway")


# --- /api/metrics ------------------------------------------------------------------------------------------
def budget_day(now: datetime) -> tuple[str, datetime]:
    """The UTC day the LLM budget counts (as ``shared.llm`` does), and its start."""
    d = now.astimezone(UTC).date()
    return d.isoformat(), datetime(d.year, d.month, d.day, tzinfo=UTC)


async def log_last_seq(gw: Gateway) -> int | None:
    try:
        return int(await gw.bus.last_seq())
    except Exception:
        return None


async def dead_letter_total(gw: Gateway) -> int | None:
    try:
        info = await gw.bus.js.stream_info(gw.bus.names.dlq_stream)
        return int(info.state.messages)
    except Exception:
        return None


METRICS_MAX_AGE_S = 1.0
#: past this age a request still gets the cached snapshot but starts its recomputation in the background, so under
#: steady load the snapshot is renewed before it expires and no request waits for PostgreSQL and NATS
METRICS_REFRESH_AHEAD_S = 0.5

SnapshotFn = Callable[[Gateway], Awaitable[dict[str, Any]]]


def _metrics_key(gw: Gateway) -> tuple[Any, Any]:
    return getattr(gw.projector, "position", None), getattr(gw.flags, "version", None)


async def cached_metrics_snapshot(
    gw: Gateway, *, compute: SnapshotFn | None = None, clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The snapshot, recomputed when the projector has applied new events or the flags changed (the request waits
    for it), or when it is older than METRICS_MAX_AGE_S (spend, lag and the log's end move without projector
    writes). A request that finds it older than METRICS_REFRESH_AHEAD_S gets it as it is and has it renewed in the
    background, so what a request gets is never older than METRICS_MAX_AGE_S nor from an older projector position
    or flag version. Concurrent requests share one computation, so load on /api/metrics does not become load on
    PostgreSQL and NATS."""
    key = _metrics_key(gw)
    cached = gw.metrics_cache
    if cached is not None and cached[0] == key:
        age = clock() - cached[1]
        if age < METRICS_MAX_AGE_S:
            if age >= METRICS_REFRESH_AHEAD_S and (gw.metrics_refresh is None or gw.metrics_refresh.done()):
                gw.metrics_refresh = asyncio.create_task(
                    _refresh_metrics(gw, compute or metrics_snapshot, clock), name="metrics-refresh")
            return cached[2]
    async with gw.metrics_lock:
        key = _metrics_key(gw)
        cached = gw.metrics_cache
        if cached is not None and cached[0] == key and clock() - cached[1] < METRICS_MAX_AGE_S:
            return cached[2]
        t0 = clock()
        snap = await (compute or metrics_snapshot)(gw)
        gw.metrics_cache = (key, t0, snap)
        return snap


async def _refresh_metrics(gw: Gateway, compute: SnapshotFn, clock: Callable[[], float]) -> None:
    try:
        async with gw.metrics_lock:
            key = _metrics_key(gw)
            cached = gw.metrics_cache
            if cached is not None and cached[0] == key and clock() - cached[1] < METRICS_REFRESH_AHEAD_S:
                return  # renewed meanwhile by a request that could not wait
            t0 = clock()
            snap = await compute(gw)
            gw.metrics_cache = (key, t0, snap)
    except Exception as exc:  # the next request past METRICS_MAX_AGE_S computes it itself and answers the error
        log.warning("metrics snapshot refresh failed", error=f"{type(exc).__name__}: {exc}")


#: per account: what /api/metrics counts, each query grouped by account (one round trip each, whatever the number
#: of accounts)
_ACCOUNT_SQL = {
    "usage": """
        SELECT account, COUNT(*) AS calls_total, COUNT(*) FILTER (WHERE status <> 'success') AS calls_failed,
               COUNT(*) FILTER (WHERE kind = 'chat'
                 AND COALESCE(failure_reason, '') NOT IN ('circuit_open', 'budget_exceeded')) AS draft_calls,
               COALESCE(SUM(cost_usd) FILTER (WHERE created_at >= $1 AND created_at < $2), 0) AS spend_today
        FROM api_usage GROUP BY account""",
    "posted": "SELECT account, COUNT(*) AS posts_posted FROM posted_decisions GROUP BY account",
    "outcomes": """
        SELECT account, COUNT(*) FILTER (WHERE NOT simulated) AS outcomes_real,
               COUNT(*) FILTER (WHERE simulated) AS outcomes_sim
        FROM outcomes GROUP BY account""",
    "learn": "SELECT account, COUNT(*) AS learn_runs FROM job_runs WHERE job = 'learn' GROUP BY account",
    "models": """
        SELECT account, MAX(version) FILTER (WHERE jsonb_array_length(predictors) > 0) AS predictor_v,
               MAX(version) AS model_v
        FROM model_versions GROUP BY account""",
    "limits": """
        SELECT account, MAX(paused_until) FILTER (WHERE error_code = '429') AS paused_429,
               MAX(answered_at) FILTER (WHERE error_code = '226') AS last_226
        FROM x_limit_answers GROUP BY account""",
}
_STATUS_SQL = """
SELECT account, status, COUNT(*) AS n,
       COUNT(*) FILTER (WHERE approval IS NULL AND flagged_claims <> '[]'::jsonb) AS flagged
FROM content_metadata GROUP BY 1, 2 ORDER BY 1, 2
"""
_REASONS_SQL = """
SELECT account, COALESCE(failure_reason, 'unknown') AS r, COUNT(*) AS n FROM api_usage
WHERE status <> 'success' GROUP BY 1, 2 ORDER BY 1, 2
"""
#: the accounts configured (account.configured), with the per-account flags that change a figure
_ACCOUNTS_SQL = "SELECT account, profile -> 'flags' ->> 'X_COOLDOWN_MINUTES' AS cooldown FROM accounts"


async def metrics_snapshot(gw: Gateway) -> dict[str, Any]:
    """The seed's figures of the default account at the top (the seed's shape), and ``accounts``: every account
    (the default one, those configured, and any whose events are in the read models) with the same figures."""
    flags: Flags = gw.flags.current()
    now = gw.clock.now()
    day, start = budget_day(now)
    async with gw.pool.acquire() as conn:
        position = await conn.fetchval("SELECT last_seq FROM projection_offsets WHERE projector = $1",
                                       gw.projector_name)
        # the log's end (read after the position, so the lag is never understated) and the dead letters, from
        # NATS while PostgreSQL answers the rest: the snapshot takes the longer of the two, not their sum
        from_nats = asyncio.gather(log_last_seq(gw), dead_letter_total(gw))
        try:
            grouped = {name: await conn.fetch(q, *((start, start + timedelta(days=1)) if name == "usage" else ()))
                       for name, q in _ACCOUNT_SQL.items()}
            reasons = await conn.fetch(_REASONS_SQL)
            statuses = await conn.fetch(_STATUS_SQL)
            attention = await conn.fetch(ATTENTION_SQL, ATTENTION_LIST_MAX)
            counters = await conn.fetch("SELECT account, name, key, value FROM gateway_counters")
            configured = await conn.fetch(_ACCOUNTS_SQL)
        except BaseException:
            from_nats.cancel()
            raise
    last, dead = await from_nats
    position = int(position or 0)
    cooldowns: dict[str, float] = {}
    for r in configured:
        with contextlib.suppress(TypeError, ValueError):
            if r["cooldown"] is not None:
                cooldowns[r["account"]] = float(r["cooldown"])
    ids = {DEFAULT_ACCOUNT, *(r["account"] for r in configured)}
    for rows in (*grouped.values(), reasons, statuses, attention, counters):
        ids.update(r["account"] for r in rows)
    by_account = {a: _AccountRows() for a in sorted(ids)}
    for rows in grouped.values():
        for r in rows:
            by_account[r["account"]].row.update({k: v for k, v in r.items() if k != "account"})
    for r in reasons:
        by_account[r["account"]].reasons[r["r"]] = int(r["n"])
    for r in statuses:
        acc = by_account[r["account"]]
        acc.by_status[r["status"]] = int(r["n"])
        if r["status"] == "queued":
            acc.flagged_pending = int(r["flagged"])
    for r in attention:
        by_account[r["account"]].attention.append(r)
    for r in counters:
        by_account[r["account"]].counters.append(r)
    common = {
        "dailyLimitUsd": float(flags.DAILY_OPENAI_LIMIT_USD),
        "budgetDay": day,
        "projectorPosition": position,
        "projectorLag": None if last is None else max(0, last - position),
        "logLastSeq": last,
        "deadLetters": dead,
        "mode": flags.MODE,
    }
    figures = {a: rows.figures(now, common, cooldowns.get(a, float(flags.X_COOLDOWN_MINUTES)))
               for a, rows in by_account.items()}
    return {**figures[DEFAULT_ACCOUNT], "accounts": figures}


def metrics_of(snapshot: dict[str, Any], account: str | None) -> dict[str, Any]:
    """/api/metrics: the whole snapshot (the default account's figures at the top), or one account's figures with
    ``accounts`` holding just it. ``KeyError`` for an account the snapshot does not know."""
    if account is None:
        return snapshot
    figures = snapshot["accounts"][account]
    return {**figures, "accounts": {account: figures}}


@dataclass
class _AccountRows:
    """One account's answers from the grouped queries, and the figures /api/metrics makes of them."""

    row: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    flagged_pending: int = 0
    attention: list[Any] = field(default_factory=list)
    counters: list[Any] = field(default_factory=list)

    def figures(self, now: datetime, common: dict[str, Any], cooldown_minutes: float) -> dict[str, Any]:
        row = self.row
        skipped: dict[str, int] = {}
        wasted: dict[str, int] = {}
        repaired: dict[str, int] = {}
        attempted = arms = real_queued = 0
        for c in self.counters:
            if c["name"] == POST_SKIPPED:
                skipped[c["key"]] = int(c["value"])
            elif c["name"] == LLM_WASTED:
                wasted[c["key"]] = int(c["value"])
            elif c["name"] == LLM_REPAIRED:
                repaired[c["key"]] = int(c["value"])
            elif c["name"] == REAL_QUEUED:
                real_queued += int(c["value"])
            elif c["name"] == POSTS_ATTEMPTED:
                attempted = int(c["value"])
            elif c["name"] == ARMS_UPDATED:
                arms = int(c["value"])
        by_status = self.by_status
        predictor_v = row.get("predictor_v")
        return {
            "openaiCalls_total": int(row.get("calls_total") or 0),
            "openaiCalls_failed": int(row.get("calls_failed") or 0),
            "openaiFailureReasons": dict(self.reasons),
            "queueSize": by_status.get("queued", 0),
            "postsAttempted": attempted,
            "postsPosted": int(row.get("posts_posted") or 0),
            "post_skipped_reason_counts": dict(sorted(skipped.items())),
            "outcomesWritten": int(row.get("outcomes_real") or 0),
            "learnRuns": int(row.get("learn_runs") or 0),
            "banditArmsUpdated": arms,
            "predictorVersion": f"v{predictor_v}" if predictor_v is not None else "none",
            "outcomesSimulated": int(row.get("outcomes_sim") or 0),
            "decisionsByStatus": dict(by_status),
            "modelVersion": row.get("model_v"),
            "spendTodayUsd": round(float(row.get("spend_today") or 0), 6),
            **common,
            "postsInDoubt": by_status.get(IN_DOUBT, 0),
            "attentionNeeded": int(self.attention[0]["total"]) if self.attention else 0,
            "attentionDecisions": [attention_item(r) for r in self.attention],
            **llm_draft_figures(int(row.get("draft_calls") or 0), real_queued, wasted, repaired),
            "flaggedClaimsPending": self.flagged_pending,
            **x_pause_figures(now, row.get("paused_429"), row.get("last_226"), cooldown_minutes),
        }


def x_pause_figures(now: datetime, paused_429: datetime | None, last_226: datetime | None,
                    cooldown_minutes: float) -> dict[str, Any]:
    """The account's posting pauses as the poster derives them from the log: a 429 pauses it until the latest
    ``paused_until``, a 226 for X_COOLDOWN_MINUTES after the latest one. Null (0 seconds) when not paused."""
    rate = paused_429 if paused_429 is not None and paused_429 > now else None
    cool = None if last_226 is None else last_226 + timedelta(minutes=cooldown_minutes)
    cool = cool if cool is not None and cool > now else None
    return {
        "xRateLimitedUntil": rate,
        "xRateLimitedSeconds": round((rate - now).total_seconds(), 3) if rate is not None else 0.0,
        "xCooldownUntil": cool,
        "xCooldownSeconds": round((cool - now).total_seconds(), 3) if cool is not None else 0.0,
    }


def llm_draft_figures(draft_calls: int, real_queued: int, wasted: dict[str, int], repaired: dict[str, int]
                      ) -> dict[str, Any]:
    """What drafting with the LLM costs per post: chat calls made (the circuit's and the budget's refusals made
    none), LLM-written drafts queued, their ratio, and the calls wasted on answers rejected, by reason."""
    return {
        "llmDraftCalls": draft_calls,
        "llmQueuedPosts": real_queued,
        "llmCallsPerQueuedPost": round(draft_calls / real_queued, 4) if real_queued else None,
        "llmWastedCalls": sum(wasted.values()),
        "llmWastedReasons": dict(sorted(wasted.items())),
        "llmRepairedAnswers": dict(sorted(repaired.items())),
    }


#: decisions whose attempt stayed in doubt past the poster's limit (it asks the operator), longest waiting first
ATTENTION_SQL = """
SELECT * FROM (
  SELECT account, decision_id, decision_type, attention_reason, attention_detail, attention_since, attempts, content,
         COUNT(*) OVER (PARTITION BY account) AS total,
         ROW_NUMBER() OVER (PARTITION BY account ORDER BY attention_since NULLS LAST, decision_id) AS n
  FROM content_metadata WHERE attention_reason IS NOT NULL
) a WHERE n <= $1 ORDER BY account, n
"""
ATTENTION_LIST_MAX = 20


def attention_item(r: Any) -> dict[str, Any]:
    return {
        "decision_id": str(r["decision_id"]),
        "decision_type": r["decision_type"],
        "reason": r["attention_reason"],
        "detail": r["attention_detail"],
        "since": r["attention_since"],
        "attempts": r["attempts"],
        "content": r["content"][:280],
    }


# --- decisions ---------------------------------------------------------------------------------------------
_ITEM_SQL = """
SELECT c.*, p.tweet_id, p.url AS tweet_url, p.posted_at, p.simulated
FROM content_metadata c LEFT JOIN posted_decisions p ON p.decision_id = c.decision_id
"""


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def hours(v: Any) -> int | float:
    """A horizon from the NUMERIC column: whole hours as int (as before fractions), a fraction as float."""
    f = float(v)
    return int(f) if f.is_integer() else f


def tweet_link(tweet_id: str | None, url: str | None, simulated: bool | None) -> str | None:
    """A link to X for a real tweet; simulated ids are never made to look like X's."""
    if simulated or not tweet_id:
        return None
    return url or f"https://x.com/i/web/status/{tweet_id}"


def json_list(v: Any) -> list[Any]:
    """A JSONB list column (asyncpg gives it as text)."""
    return json.loads(v) if isinstance(v, str) else list(v or [])


def item(r: Any) -> dict[str, Any]:
    return {
        "decision_id": str(r["decision_id"]),
        "account": r["account"],
        "decision_type": r["decision_type"],
        "status": r["status"],
        "content": r["content"],
        "parts": json_list(r["parts"]),
        "bandit_arm": r["bandit_arm"],
        "timing_arm": r["timing_arm"],
        "quality_score": _num(r["quality_score"]),
        "predicted_er": _num(r["predicted_er"]),
        "generation_source": r["generation_source"],
        "scheduled_at": r["scheduled_at"],
        "topic_cluster": r["topic_cluster"],
        "angle": r["angle"],
        "content_hash": r["content_hash"],
        "skip_reason": r["skip_reason"],
        "gate": r["gate"],
        "error_message": r["error_message"],
        "target_tweet_id": r["target_tweet_id"],
        "target_username": r["target_username"],
        "approval": r["approval"],
        "last_post_skip": r["last_post_skip"],
        "attempts": r["attempts"],
        "attention_reason": r["attention_reason"],
        "attention_detail": r["attention_detail"],
        "attention_since": r["attention_since"],
        "flagged_claims": json_list(r["flagged_claims"]),
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "last_seq": r["last_seq"],
        "tweet_id": r["tweet_id"],
        "tweet_url": tweet_link(r["tweet_id"], r["tweet_url"], r["simulated"]),
        "posted_at": r["posted_at"],
        "simulated": r["simulated"],
    }


UNSCHEDULED = datetime(9999, 12, 31, tzinfo=UTC)


class BadCursor(ValueError):
    pass


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, did = json.loads(raw)
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at, str(uuid.UUID(did))
    except Exception:
        raise BadCursor("cursor is not one this API gave out") from None


async def list_decisions(
    gw: Gateway, *, status: str | None, kind: str | None, limit: int, cursor: str | None, account: str | None = None,
) -> dict[str, Any]:
    """Newest first; the queue (``status=queued``) in posting order (scheduled_at, oldest first). Keyset
    pagination: the cursor holds the last row's sort key. Every account's decisions, or ``account``'s only."""
    queue_order = status == "queued"
    sort = "COALESCE(c.scheduled_at, '9999-12-31T00:00:00Z'::timestamptz)" if queue_order else "c.created_at"
    where: list[str] = []
    args: list[Any] = []
    if status:
        args.append(status)
        where.append(f"c.status = ${len(args)}")
    if kind:
        args.append(kind)
        where.append(f"c.decision_type = ${len(args)}")
    if account:
        args.append(account)
        where.append(f"c.account = ${len(args)}")
    if cursor:
        at, did = decode_cursor(cursor)
        args += [at, did]
        op = ">" if queue_order else "<"
        where.append(f"({sort}, c.decision_id) {op} (${len(args) - 1}, ${len(args)}::uuid)")
    order = "ASC" if queue_order else "DESC"
    args.append(limit + 1)
    q = (_ITEM_SQL + (" WHERE " + " AND ".join(where) if where else "")
         + f" ORDER BY {sort} {order}, c.decision_id {order} LIMIT ${len(args)}")
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch(q, *args)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more and rows:
        last = rows[-1]
        key = last["scheduled_at"] if queue_order else last["created_at"]
        if key is None:  # unscheduled drafts sort last, as the SQL's sentinel
            key = UNSCHEDULED
        nxt = encode_cursor([key, str(last["decision_id"])])
    return {"items": [item(r) for r in rows], "next_cursor": nxt}


async def decision_row(gw: Gateway, decision_id: str) -> dict[str, Any] | None:
    try:
        key = uuid.UUID(decision_id)
    except ValueError:
        return None
    async with gw.pool.acquire() as conn:
        r = await conn.fetchrow(_ITEM_SQL + " WHERE c.decision_id = $1", key)
    return item(r) if r is not None else None


_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def valid_id(decision_id: str) -> bool:
    """Ids go into subjects: letters, digits, '-' and '_' only (no dots, wildcards, spaces or unicode)."""
    return bool(_ID.match(decision_id))


def id_forms(decision_id: str) -> list[str]:
    """The id as given, then its other UUID spellings (hyphenated, hex): subjects carry whichever the
    producer used."""
    forms = [decision_id]
    with contextlib.suppress(ValueError):
        u = uuid.UUID(decision_id)
        forms += [f for f in (str(u), u.hex) if f not in forms]
    return forms


async def decision_account(gw: Gateway, decision_id: str) -> str:
    """The account a decision belongs to, as its read-model row says (the default account while it has none)."""
    try:
        key = uuid.UUID(decision_id)
    except ValueError:
        return DEFAULT_ACCOUNT
    async with gw.pool.acquire() as conn:
        account = await conn.fetchval("SELECT account FROM content_metadata WHERE decision_id = $1", key)
    return str(account) if account else DEFAULT_ACCOUNT


async def decision_history(gw: Gateway, decision_id: str, aggregate: str = "decision",
                           account: str = DEFAULT_ACCOUNT) -> tuple[str, list[Any]]:
    """The aggregate's events of ``account`` (CAUGHT_UP markers dropped) and the id spelling its subjects use."""
    for form in id_forms(decision_id):
        items = [i for i in await gw.bus.aggregate_history(aggregate, form, account) if not i.caught_up]
        if items:
            return form, items
    return decision_id, []


def timeline_entry(it: Any) -> dict[str, Any]:
    ev = it.event
    data = None
    if ev is not None:
        data = {k: v for k, v in msgspec.to_builtins(ev).items() if k != "embedding"}
    return {
        "seq": it.seq,
        "subject": it.subject,
        "type": ev.type if ev is not None else None,
        "occurred_at": getattr(ev, "occurred_at", None),
        "data": data,
        "error": it.error,
    }


async def decision_detail(gw: Gateway, decision_id: str) -> dict[str, Any] | None:
    row = await decision_row(gw, decision_id)
    account = row["account"] if row is not None else DEFAULT_ACCOUNT
    form, history = await decision_history(gw, decision_id, account=account)
    _, outcomes = await decision_history(gw, form, "outcome", account=account)
    if not history and not outcomes and row is None:
        return None
    timeline = sorted(history + outcomes, key=lambda i: i.seq)
    outs = [timeline_entry(i)["data"] for i in outcomes if i.event is not None and i.event.type == "outcome.recorded"]
    return {
        "decision": row,
        "status": decision_status(i.event for i in history if i.event is not None),
        "timeline": [timeline_entry(i) for i in timeline],
        "outcomes": outs,
    }


async def recent_posts(gw: Gateway, limit: int = 10) -> list[dict[str, Any]]:
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch(
            _ITEM_SQL.replace("LEFT JOIN", "JOIN") + " ORDER BY p.posted_at DESC, c.decision_id LIMIT $1", limit
        )
        ers = await conn.fetch(
            "SELECT DISTINCT ON (decision_id) decision_id, er_calculated, horizon_hours FROM outcomes "
            "WHERE decision_id = ANY($1::uuid[]) ORDER BY decision_id, horizon_hours DESC",
            [r["decision_id"] for r in rows],
        )
    er = {str(r["decision_id"]): (_num(r["er_calculated"]), hours(r["horizon_hours"])) for r in ers}
    out = []
    for r in rows:
        d = item(r)
        d["er"], d["er_horizon"] = er.get(d["decision_id"], (None, None))
        out.append(d)
    return out


# --- learning, outcomes, jobs ------------------------------------------------------------------------------
def beta_mean_sd(alpha: float, beta: float) -> tuple[float, float]:
    s = alpha + beta
    if s <= 0:
        return 0.0, 0.0
    mean = alpha / s
    return mean, math.sqrt(alpha * beta / (s * s * (s + 1)))


async def learning(gw: Gateway) -> dict[str, Any]:
    async with gw.pool.acquire() as conn:
        arms = await conn.fetch("SELECT * FROM bandit_arms ORDER BY scope, arm_name")
        slots = await conn.fetch("SELECT * FROM timing_slots ORDER BY scope, hour")
        models = await conn.fetch(
            "SELECT scope, version, outcomes_used, simulated_used, predictor_skipped_reason, arms_count, "
            "created_at, jsonb_array_length(predictors) AS predictors FROM model_versions "
            "ORDER BY created_at DESC, version DESC LIMIT 10"
        )
    out_arms = []
    for a in arms:
        mean, sd = beta_mean_sd(float(a["alpha"]), float(a["beta"]))
        out_arms.append({
            "scope": a["scope"], "arm_name": a["arm_name"], "successes": a["successes"], "failures": a["failures"],
            "alpha": float(a["alpha"]), "beta": float(a["beta"]), "mean": mean, "sd": sd,
            "model_version": a["model_version"], "updated_at": a["updated_at"],
        })
    return {
        "arms": out_arms,
        "slots": [{"scope": s["scope"], "hour": s["hour"], "n": s["n"], "mean_er": _num(s["mean_er"]),
                   "model_version": s["model_version"]} for s in slots],
        "models": [dict(m) for m in models],
    }


async def outcome_series(gw: Gateway, limit: int = 500) -> list[tuple[datetime, float, bool, int | float]]:
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT collected_at, er_calculated, simulated, horizon_hours FROM ("
            "  SELECT * FROM outcomes WHERE er_calculated IS NOT NULL ORDER BY collected_at DESC LIMIT $1"
            ") o ORDER BY collected_at", limit,
        )
    return [(r["collected_at"], float(r["er_calculated"]), r["simulated"], hours(r["horizon_hours"])) for r in rows]


async def job_runs(gw: Gateway, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
    async with gw.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM job_runs WHERE ($2::text IS NULL OR job = $2) ORDER BY completed_at DESC, run_id LIMIT $1",
            limit, job,
        )
    return [{**dict(r), "counts": json.loads(r["counts"]) if isinstance(r["counts"], str) else r["counts"]}
            for r in rows]


async def dead_letters(gw: Gateway, limit: int = 20) -> dict[str, Any]:
    """The latest messages of the dead-letter stream (every consumer's), newest first."""
    js, stream = gw.bus.js, gw.bus.names.dlq_stream
    try:
        info = await js.stream_info(stream)
    except Exception:
        return {"total": 0, "items": []}
    items: list[dict[str, Any]] = []
    seq = info.state.last_seq
    while seq >= max(1, info.state.first_seq) and len(items) < limit:
        try:
            m = await js.get_msg(stream, seq)
        except Exception:
            seq -= 1
            continue
        h = m.headers or {}
        oseq = h.get("Xbot-Original-Seq")
        items.append({
            "seq": m.seq or seq,
            "subject": m.subject or "",
            "consumer": h.get("Xbot-Consumer"),
            "error": h.get("Xbot-Error"),
            "original_subject": h.get("Xbot-Original-Subject"),
            "original_seq": int(oseq) if oseq and oseq.isdigit() else None,
            "at": m.time,
            "data": (m.data or b"").decode("utf-8", "replace")[:500],
        })
        seq -= 1
    return {"total": int(info.state.messages), "items": items}
