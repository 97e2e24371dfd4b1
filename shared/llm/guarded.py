"""`GuardedLLM`: the one entry point services use for a live LLM or embedding call.

Every call, in order:

1. reads the flags (``flags_provider()``, fresh each call, so a runtime override applies at once);
   ``AI_QUOTA_CIRCUIT_OPEN=true`` fails it with ``circuit_open`` and no call is made. Nothing else blocks the
   LLM: ``POSTING_DISABLED`` and ``LIVE_POSTS`` govern posting only (DESIGN.md promise 4).
2. with ``DISABLE_LLM_WHEN_BUDGET_HIT=true``, reserves the most the call can cost (prompt estimate + the
   adapter's ``max_output_tokens``) against ``DAILY_OPENAI_LIMIT_USD`` in the shared `BudgetStore`; no room
   (or a budget store that cannot answer) fails it with ``budget_exceeded`` and no call is made (promise 5).
3. makes the call through the adapter (which never retries);
4. settles the reservation with the real cost from the response's ``usage`` (a failure settles what its usage
   says, usually 0; a success without usage settles the estimate; a cancelled call keeps the estimate, since
   it may have been billed). With the budget switch off, the real cost is still added to the day's spend.
5. reports the call, success or failure, blocked calls included, as an `LLMCallRecord` through ``emit`` (the
   service publishes it as ``llm.call_completed`` / ``llm.call_failed``; see `record_to_event`).

Failures reach the caller as `LLMFailure(reason, detail)`. A draft whose answer came back unusable even after
the free repairs (``invalid_response``) is asked for again ``draft_retries`` times (each one a call of its own,
guarded, budgeted and reported like the first, with another variation seed); no other failure is retried here.
The records say what each call wasted (``wasted_reason``) or repaired (``repairs``).

Shadow mode does not come through here: it uses `SyntheticWriter` and `HashingEmbedder` directly, which cost
nothing and call nothing, so there is no budget to hold and no ``llm.*`` event to emit.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec
import structlog

from .budget import BudgetStore, Reservation
from .port import DRAFT_LOCAL_REASONS, DraftRequest, Embedder, EmbeddingResult, LLMFailure, LLMResult, Usage
from .port import LLM as LLMPort
from .pricing import PriceTable, estimate_tokens
from .prompts import estimate_prompt_tokens

log = structlog.get_logger("llm")

T = TypeVar("T", LLMResult, EmbeddingResult)
#: a retried draft asks with this much added to its variation seed (a new answer, still reproducible)
RETRY_SEED_STEP = 7919


class LLMFlags(Protocol):
    """The three flags the guard reads (``shared.flags.Flags`` has them)."""

    @property
    def AI_QUOTA_CIRCUIT_OPEN(self) -> bool: ...  # noqa: N802

    @property
    def DAILY_OPENAI_LIMIT_USD(self) -> float: ...  # noqa: N802

    @property
    def DISABLE_LLM_WHEN_BUDGET_HIT(self) -> bool: ...  # noqa: N802


class LLMCallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One LLM call, as the seed's ``api_usage`` row has it."""

    request_id: str
    kind: str  # chat | embedding
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    status: str  # success | failed
    failure_reason: str | None
    started_at: datetime
    duration_ms: float
    correlation_id: str | None = None
    detail: str = ""
    #: a failed call whose answer came back and was rejected: why (``parts_count``, ``too_long``, ``not_json``...)
    wasted_reason: str = ""
    #: a successful call: what was repaired for free in its answer
    repairs: tuple[str, ...] = ()
    #: the X account the call was made for (its event carries it)
    account: str = "default"


Emit = Callable[[LLMCallRecord], Awaitable[None]]

_EVENT_NS = uuid.UUID("6f1f3a52-3f55-4d0e-9b7c-6c3b3c0a11a7")


def record_to_event(record: LLMCallRecord, *, service: str = "", causation_id: str | None = None) -> Any:
    """The ``llm.call_completed`` / ``llm.call_failed`` event of a record. Its ``event_id`` derives from the
    request id, so publishing the same record twice is deduplicated (``Nats-Msg-Id``)."""
    from ..events.llm import LlmCallCompleted, LlmCallFailed

    common: dict[str, Any] = {
        "event_id": uuid.uuid5(_EVENT_NS, record.request_id).hex,
        "occurred_at": record.started_at,
        "correlation_id": record.correlation_id,
        "causation_id": causation_id,
        "request_id": record.request_id,
        "kind": record.kind,
        "model": record.model,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.total_tokens,
        "cost_usd": record.cost_usd,
        "duration_ms": record.duration_ms,
        "service": service,
        "account": record.account,
    }
    if record.status == "success":
        return LlmCallCompleted(**common, repairs=list(record.repairs))
    return LlmCallFailed(**common, failure_reason=record.failure_reason or "api_error", detail=record.detail,
                         wasted_reason=record.wasted_reason)


async def _no_emit(record: LLMCallRecord) -> None:
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def account_budget_day(day: str, account: str) -> str:
    """The budget store's "day" of one account's own spend (its key: ``spend.<day>.<account>``)."""
    return f"{day}.{account}"


class GuardedLLM:
    def __init__(
        self,
        llm: LLMPort,
        embedder: Embedder,
        budget_store: BudgetStore,
        flags_provider: Callable[[], LLMFlags],
        clock: Callable[[], datetime] | None = None,
        emit: Emit | None = None,
        *,
        prices: PriceTable | None = None,
        new_id: Callable[[], str] | None = None,
        draft_retries: int = 0,
    ):
        self.llm = llm
        self.embedder = embedder
        self.budget = budget_store
        self.flags_provider = flags_provider
        self.clock = clock or _utc_now
        self.emit = emit or _no_emit
        self.prices = prices or PriceTable()
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        if draft_retries < 0:
            raise ValueError("draft_retries must be >= 0")
        self.draft_retries = draft_retries

    # ------------------------------------------------------------------------------------------ public API
    async def draft(self, request: DraftRequest, *, correlation_id: str | None = None) -> LLMResult:
        """A draft, asked for again (``draft_retries`` times, another seed each time) while the answers come back
        unusable; any other failure, and the last unusable answer, reaches the caller."""
        attempt = 0
        while True:
            try:
                return await self._draft_once(request, correlation_id)
            except LLMFailure as exc:
                if exc.reason not in DRAFT_LOCAL_REASONS or attempt >= self.draft_retries:
                    raise
                attempt += 1
                log.info("llm_draft_retry", attempt=attempt, wasted_reason=exc.wasted_reason, topic=request.topic,
                         decision_type=request.decision_type, kind=request.kind)
                request = msgspec.structs.replace(request, seed=request.seed + RETRY_SEED_STEP)

    async def _draft_once(self, request: DraftRequest, correlation_id: str | None) -> LLMResult:
        model = self.llm.model
        estimate = self.prices.estimate_cost(model, estimate_prompt_tokens(request), self.llm.max_output_tokens)

        async def call(request_id: str) -> LLMResult:
            return await self.llm.draft(request, request_id=request_id)

        return await self._run("chat", model, estimate, call, correlation_id, request.account,
                               request.account_budget_usd)

    async def embed(self, texts: Sequence[str], *, correlation_id: str | None = None, account: str = "default",
                    account_budget_usd: float | None = None) -> EmbeddingResult:
        texts = list(texts)
        model = self.embedder.model
        estimate = self.prices.estimate_cost(model, sum(estimate_tokens(t) for t in texts), 0)

        async def call(request_id: str) -> EmbeddingResult:
            return await self.embedder.embed(texts, request_id=request_id)

        return await self._run("embedding", model, estimate, call, correlation_id, account, account_budget_usd)

    def day(self, at: datetime | None = None) -> str:
        """The budget day (UTC) of ``at`` (default: now on the clock)."""
        at = at or self.clock()
        return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()

    async def spent_today(self) -> float:
        return await self.budget.spent(self.day())

    # ------------------------------------------------------------------------------------------ the guard
    async def _run(
        self,
        kind: str,
        model: str,
        estimate: float,
        call: Callable[[str], Awaitable[T]],
        correlation_id: str | None,
        account: str = "default",
        account_cap: float | None = None,
    ) -> T:
        """One call under the guard: the circuit, the stack's budget, and -- ``account_cap`` -- the account's own
        daily budget (a second reservation on the account's key: both must hold, and both are settled)."""
        request_id = self._new_id()
        started = self.clock()
        t0 = time.monotonic()
        day = self.day(started)

        async def report(
            status: str, usage: Usage, cost: float, reason: str | None = None, detail: str = "", used: str = model,
            wasted: str = "", repairs: tuple[str, ...] = (),
        ) -> None:
            record = LLMCallRecord(
                request_id=request_id, kind=kind, model=used, prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, total_tokens=usage.total_tokens, cost_usd=cost,
                status=status, failure_reason=reason, started_at=started,
                duration_ms=round((time.monotonic() - t0) * 1000, 3), correlation_id=correlation_id, detail=detail,
                wasted_reason=wasted, repairs=repairs, account=account,
            )
            try:
                await self.emit(record)
            except Exception as exc:  # the call's outcome stands; the spend is already in the budget store
                log.warning("llm_record_emit_failed", request_id=request_id, error=str(exc))

        async def blocked(reason: str, detail: str) -> LLMFailure:
            await report("failed", Usage(), 0.0, reason, detail)
            log.info("llm_call_blocked", kind=kind, reason=reason, detail=detail, request_id=request_id)
            return LLMFailure(reason, detail)

        try:
            flags = self.flags_provider()
            circuit_open = bool(flags.AI_QUOTA_CIRCUIT_OPEN)
            enforce = bool(flags.DISABLE_LLM_WHEN_BUDGET_HIT)
            cap = float(flags.DAILY_OPENAI_LIMIT_USD)
        except Exception as exc:  # flags fail closed
            raise await blocked("circuit_open", f"flags unavailable: {exc}") from exc
        if circuit_open:
            raise await blocked("circuit_open", "AI_QUOTA_CIRCUIT_OPEN=true")

        reservation: Reservation | None = None
        if enforce:
            try:
                reservation = await self.budget.reserve(day, estimate, cap)
            except Exception as exc:  # a budget we cannot check is a budget we may not spend
                raise await blocked("budget_exceeded", f"budget store unavailable: {exc}") from exc
            if reservation is None:
                raise await blocked(
                    "budget_exceeded", f"estimate ${estimate:.6f} would pass DAILY_OPENAI_LIMIT_USD=${cap:g} on {day}"
                )
        account_day = account_budget_day(day, account)
        account_reservation: Reservation | None = None
        if account_cap is not None:
            try:
                account_reservation = await self.budget.reserve(account_day, estimate, account_cap)
            except Exception as exc:
                await self._settle(day, reservation, 0.0)
                raise await blocked("budget_exceeded", f"budget store unavailable: {exc}") from exc
            if account_reservation is None:
                await self._settle(day, reservation, 0.0)  # the stack's reservation is given back
                raise await blocked(
                    "budget_exceeded",
                    f"estimate ${estimate:.6f} would pass account {account}'s daily budget ${account_cap:g} on {day}",
                )

        async def settle(cost: float) -> None:
            await self._settle(day, reservation, cost)
            if account_cap is not None:
                await self._settle(account_day, account_reservation, cost)

        try:
            result = await call(request_id)
        except asyncio.CancelledError:
            await asyncio.shield(settle(estimate))
            raise
        except Exception as exc:
            failure = exc if isinstance(exc, LLMFailure) else LLMFailure("api_error", f"{type(exc).__name__}: {exc}")
            usage = failure.usage or Usage()
            cost = self.prices.actual_cost(model, usage)
            await settle(cost)
            await report("failed", usage, cost, failure.reason, failure.detail, wasted=failure.wasted_reason)
            log.warning("llm_call_failed", kind=kind, reason=failure.reason, detail=failure.detail,
                        wasted_reason=failure.wasted_reason, request_id=request_id)
            if failure is exc:
                raise
            raise failure from exc

        usage = result.usage
        cost = self.prices.actual_cost(result.model, usage) if usage.total_tokens > 0 else estimate
        await settle(cost)
        repairs = tuple(getattr(result, "repairs", ()))
        await report("success", usage, cost, used=result.model or model, repairs=repairs)
        if repairs:
            log.info("llm_answer_repaired", kind=kind, repairs=list(repairs), request_id=request_id)
        return result

    async def _settle(self, day: str, reservation: Reservation | None, cost: float) -> None:
        try:
            if reservation is None:
                if cost <= 0:
                    return
                reservation = await self.budget.reserve(day, 0.0, math.inf)  # record spend with no cap
                if reservation is None:
                    return
            await self.budget.settle(reservation, cost)
        except Exception as exc:  # the reservation stays held: the budget errs on the safe side
            log.warning("llm_budget_settle_failed", day=day, cost_usd=cost, error=str(exc))
