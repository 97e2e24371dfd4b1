"""What a call costs: USD per 1M input / output tokens, per model.

The table has OpenAI's list prices for the models we use and a conservative default (dearer than any of them)
for a model it does not know, so an unknown model can only make the budget stricter. ``LLM_PRICES_JSON``
overrides or extends it, e.g. ``{"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "my-model": [1.0, 2.0],
"text-embedding-3-small": 0.02, "default": [20, 80]}`` (an object, an ``[input, output]`` pair, or a single
input price for embedding models).

Dated snapshots (``gpt-4o-mini-2024-07-18``) are priced as their base model: the longest known name that the
model's name starts with wins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from ..errors import ConfigError
from .port import Usage

PER_TOKENS = 1_000_000


class Price(msgspec.Struct, frozen=True):
    """USD per 1M tokens."""

    input_per_m: float
    output_per_m: float = 0.0


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "text-embedding-3-small": Price(0.02),
    "text-embedding-3-large": Price(0.13),
}
#: For a model the table does not know: dearer than every listed one, so the budget errs on the safe side.
UNKNOWN_MODEL_PRICE = Price(15.00, 60.00)


class PriceTable:
    def __init__(self, prices: Mapping[str, Price] | None = None, default: Price = UNKNOWN_MODEL_PRICE):
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)
        self.default = default

    @classmethod
    def from_json(cls, text: str | None, base: Mapping[str, Price] | None = None) -> PriceTable:
        """The default table (or ``base``) overridden by ``text`` (the ``LLM_PRICES_JSON`` setting)."""
        table = cls(base)
        if not text or not text.strip():
            return table
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"LLM_PRICES_JSON is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError("LLM_PRICES_JSON must be a JSON object of model -> price")
        for model, value in raw.items():
            price = _parse_price(str(model), value)
            if model == "default":
                table.default = price
            else:
                table.prices[str(model)] = price
        return table

    def price(self, model: str) -> Price:
        if model in self.prices:
            return self.prices[model]
        best = max((name for name in self.prices if model.startswith(name + "-")), key=len, default=None)
        return self.prices[best] if best is not None else self.default

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        p = self.price(model)
        return (max(0, prompt_tokens) * p.input_per_m + max(0, completion_tokens) * p.output_per_m) / PER_TOKENS

    def estimate_cost(self, model: str, prompt_tokens: int, max_output_tokens: int) -> float:
        """The most a call can cost: the prompt plus a completion of ``max_output_tokens``."""
        return self.cost(model, prompt_tokens, max_output_tokens)

    def actual_cost(self, model: str, usage: Usage) -> float:
        """What a call cost, from the usage the provider reported."""
        completion = usage.completion_tokens
        prompt = usage.prompt_tokens
        if prompt == 0 and completion == 0 and usage.total_tokens > 0:
            prompt = usage.total_tokens  # embeddings report only a total
        return self.cost(model, prompt, completion)


def _parse_price(model: str, value: Any) -> Price:
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            price = Price(float(value))
        elif isinstance(value, list | tuple) and 1 <= len(value) <= 2:
            price = Price(*(float(v) for v in value))
        elif isinstance(value, dict) and set(value) <= {"input", "output"} and "input" in value:
            price = Price(float(value["input"]), float(value.get("output", 0.0)))
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise ConfigError(
            f"LLM_PRICES_JSON[{model!r}] must be a number, [input, output] or {{'input': .., 'output': ..}}"
        ) from None
    if not all(math.isfinite(x) and x >= 0 for x in (price.input_per_m, price.output_per_m)):
        raise ConfigError(f"LLM_PRICES_JSON[{model!r}] must be finite and >= 0")
    return price


def estimate_cost(model: str, prompt_tokens: int, max_output_tokens: int, table: PriceTable | None = None) -> float:
    return (table or PriceTable()).estimate_cost(model, prompt_tokens, max_output_tokens)


def actual_cost(model: str, usage: Usage, table: PriceTable | None = None) -> float:
    return (table or PriceTable()).actual_cost(model, usage)


def estimate_tokens(text: str) -> int:
    """A deliberately high token count for ``text`` (English averages ~4 characters a token; we assume 3)."""
    return math.ceil(len(text) / 3) + 1
