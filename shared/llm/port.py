"""The `LLM` and `Embedder` ports: what a service may ask of a language model, and what it answers.

Adapters: `shared.llm.openai_adapter` (OpenAI's API, live mode) and `shared.llm.synthetic` (deterministic
templates and a hashing embedder, shadow mode and tests). Services never call an adapter directly in live
mode: they go through `shared.llm.guarded.GuardedLLM`, which applies the circuit breaker and the shared budget
and reports every call.

Every failure is an `LLMFailure` whose ``reason`` is one of `FAILURE_REASONS` (the seed's ``failure_reason``),
so callers decide what to do without parsing messages; the adapters never retry (the caller decides).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import msgspec
import numpy as np

Kind = Literal["plan", "reply"]
DecisionType = Literal["single", "thread"]
FailureReason = Literal[
    "circuit_open", "budget_exceeded", "rate_limited", "quota", "timeout", "invalid_response", "api_error"
]
FAILURE_REASONS: tuple[str, ...] = (
    "circuit_open",
    "budget_exceeded",
    "rate_limited",
    "quota",
    "timeout",
    "invalid_response",
    "api_error",
)

#: the failures that end only the draft they happened to: the answer came back and was not usable (another draft
#: of the same run may well get a good one). Every other reason stops the run: the circuit and the budget refuse
#: the next call as well, and a rate limit, a spent quota, a timeout or an API error is the provider's state,
#: which the next call of the same run would meet again.
DRAFT_LOCAL_REASONS: frozenset[str] = frozenset({"invalid_response"})

#: A thread has this many parts (inclusive); a single post and a reply have exactly one.
THREAD_MIN_PARTS = 2
THREAD_MAX_PARTS = 7
#: the characters a part may have, as the prompt asks for (X's own limit, 280 weighted, is what is checked)
PART_MAX_CHARS = 260


class DraftRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What to write. ``context`` is the text of the tweet replied to (``kind="reply"``); ``angle`` is the
    content angle of a post or the reply style of a reply. A reply is always one part, whatever
    ``decision_type`` says."""

    kind: Kind
    topic: str
    angle: str
    decision_type: DecisionType = "single"
    context: str | None = None
    seed: int = 0
    #: what the account may state about itself (the prompt offers these and no others; ``ClaimPolicy.facts``)
    facts: tuple[str, ...] = ()
    #: the languages the account writes in (``ClaimPolicy.languages``)
    languages: tuple[str, ...] = ("en",)
    #: the X account the draft is for, and its own daily LLM budget (None: only the stack's holds)
    account: str = "default"
    account_budget_usd: float | None = None
    #: the account's own niche and voice (its profile); all empty: the built-in tech / AI account
    niche: tuple[str, ...] = ()
    persona: str = ""
    never_say: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()

    @property
    def parts_range(self) -> tuple[int, int]:
        """How many parts a valid draft for this request has (min, max)."""
        if self.kind == "plan" and self.decision_type == "thread":
            return THREAD_MIN_PARTS, THREAD_MAX_PARTS
        return 1, 1


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    parts: list[str]
    topic: str
    angle: str
    hook: str | None = None

    @property
    def text(self) -> str:
        """All parts, blank-line separated (the seed's ``content`` column)."""
        return "\n\n".join(self.parts)


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class LLMResult(msgspec.Struct, frozen=True, kw_only=True):
    draft: Draft
    usage: Usage
    model: str
    request_id: str
    #: what was repaired for free before the answer was accepted (see ``shared.llm.prompts.repair_parts``)
    repairs: tuple[str, ...] = ()


class EmbeddingResult(msgspec.Struct, frozen=True, kw_only=True):
    """``vectors`` is a float32 array of shape (len(texts), dim), each row an L2 unit vector."""

    vectors: np.ndarray
    usage: Usage
    model: str
    request_id: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


class LLMFailure(Exception):
    """A call that produced nothing usable. ``usage`` is set when the provider still reported (and billed) it."""

    def __init__(self, reason: str, detail: str = "", *, usage: Usage | None = None, status: int | None = None,
                 wasted_reason: str = ""):
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown LLM failure reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.usage = usage
        self.status = status
        #: for ``invalid_response``: why the answer (which came back, and was billed) was rejected
        self.wasted_reason = wasted_reason or (reason if reason == "invalid_response" else "")

    @property
    def stops_run(self) -> bool:
        """True when the next call of the same run would fail the same way (see ``DRAFT_LOCAL_REASONS``)."""
        return self.reason not in DRAFT_LOCAL_REASONS


@runtime_checkable
class LLM(Protocol):
    """Writes drafts. ``max_output_tokens`` bounds the completion (it is what the budget reserves)."""

    @property
    def model(self) -> str: ...

    @property
    def max_output_tokens(self) -> int: ...

    async def draft(self, request: DraftRequest, *, request_id: str | None = None) -> LLMResult: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 unit vectors of ``dim`` dimensions."""

    @property
    def model(self) -> str: ...

    @property
    def dim(self) -> int: ...

    async def embed(self, texts: Sequence[str], *, request_id: str | None = None) -> EmbeddingResult: ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (an all-zero row stays zero)."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32, copy=False)
