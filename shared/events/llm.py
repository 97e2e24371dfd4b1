"""Events of LLM calls (the seed's ``api_usage``). Subject ``xbot.evt.llm.<request_id>.<name>``."""

from __future__ import annotations

from typing import ClassVar

from .base import Event

FAILURE_REASONS = (
    "circuit_open",
    "budget_exceeded",
    "rate_limited",
    "quota",
    "timeout",
    "invalid_response",
    "api_error",
)


class _LlmEvent(Event, frozen=True, kw_only=True):
    aggregate: ClassVar[str] = "llm"
    request_id: str
    kind: str  # chat | embedding
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    service: str = ""

    @property
    def aggregate_id(self) -> str:
        return self.request_id


class LlmCallCompleted(_LlmEvent, frozen=True, kw_only=True, tag="llm.call_completed"):
    name: ClassVar[str] = "call_completed"
    status: str = "success"
    #: what was repaired for free in the answer before it was accepted (e.g. ``joined_parts``); [] for none
    #: (and for events written before the field existed)
    repairs: list[str] = []


class LlmCallFailed(_LlmEvent, frozen=True, kw_only=True, tag="llm.call_failed"):
    name: ClassVar[str] = "call_failed"
    status: str = "failed"
    failure_reason: str
    detail: str = ""
    #: why an answer that came back (and was paid for) was rejected, for ``invalid_response``: ``parts_count``,
    #: ``too_long``, ``empty``, ``not_json``, ``truncated``, ``refused``, ... ("" when no answer came back, and
    #: for events written before the field existed)
    wasted_reason: str = ""
