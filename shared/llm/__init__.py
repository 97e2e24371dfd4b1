"""The `LLM` and `Embedder` ports, their adapters, the price table, the shared budget and `GuardedLLM`.

Live mode: ``GuardedLLM(OpenAILLM, OpenAIEmbedder, KVBudgetStore, flags, clock, emit)`` is the only way a
service calls the model. Shadow mode: `SyntheticWriter` and `HashingEmbedder` directly (no budget, no events).
"""

from .budget import (
    BudgetStore,
    BudgetUnavailable,
    InMemoryBudgetStore,
    KVBudgetStore,
    Reservation,
    budget_key,
)
from .guarded import GuardedLLM, LLMCallRecord, LLMFlags, record_to_event
from .openai_adapter import OpenAIEmbedder, OpenAILLM, make_client, map_error, openai_adapters
from .port import (
    FAILURE_REASONS,
    LLM,
    Draft,
    DraftRequest,
    Embedder,
    EmbeddingResult,
    LLMFailure,
    LLMResult,
    Usage,
)
from .pricing import DEFAULT_PRICES, Price, PriceTable, actual_cost, estimate_cost
from .synthetic import HashingEmbedder, SyntheticWriter

__all__ = [
    "DEFAULT_PRICES",
    "FAILURE_REASONS",
    "LLM",
    "BudgetStore",
    "BudgetUnavailable",
    "Draft",
    "DraftRequest",
    "Embedder",
    "EmbeddingResult",
    "GuardedLLM",
    "HashingEmbedder",
    "InMemoryBudgetStore",
    "KVBudgetStore",
    "LLMCallRecord",
    "LLMFailure",
    "LLMFlags",
    "LLMResult",
    "OpenAIEmbedder",
    "OpenAILLM",
    "Price",
    "PriceTable",
    "Reservation",
    "SyntheticWriter",
    "Usage",
    "actual_cost",
    "budget_key",
    "estimate_cost",
    "make_client",
    "map_error",
    "openai_adapters",
    "record_to_event",
]
