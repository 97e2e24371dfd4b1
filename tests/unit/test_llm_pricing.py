"""The price table: list prices, dated snapshots, a conservative default, and LLM_PRICES_JSON overrides."""

import pytest

from shared.errors import ConfigError
from shared.llm.port import Usage
from shared.llm.pricing import (
    UNKNOWN_MODEL_PRICE,
    Price,
    PriceTable,
    actual_cost,
    estimate_cost,
    estimate_tokens,
)

pytestmark = pytest.mark.unit


def test_list_prices_per_million_tokens() -> None:
    t = PriceTable()
    assert t.price("gpt-4o-mini") == Price(0.15, 0.60)
    assert t.price("gpt-4o") == Price(2.50, 10.00)
    assert t.price("text-embedding-3-small") == Price(0.02, 0.0)
    assert t.price("text-embedding-3-large") == Price(0.13, 0.0)
    # 1M in + 1M out of gpt-4o-mini = 0.15 + 0.60
    assert t.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert t.cost("gpt-4o", 2_000, 500) == pytest.approx(2_000 * 2.5e-6 + 500 * 10e-6)


def test_estimate_uses_max_output_tokens_and_actual_uses_usage() -> None:
    assert estimate_cost("gpt-4o-mini", 1_000, 700) == pytest.approx(1_000 * 0.15e-6 + 700 * 0.60e-6)
    usage = Usage(prompt_tokens=1_000, completion_tokens=120, total_tokens=1_120)
    assert actual_cost("gpt-4o-mini", usage) == pytest.approx(1_000 * 0.15e-6 + 120 * 0.60e-6)
    assert actual_cost("gpt-4o-mini", usage) < estimate_cost("gpt-4o-mini", 1_000, 700)


def test_embedding_usage_with_only_a_total_is_priced_as_input() -> None:
    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=5_000)
    assert actual_cost("text-embedding-3-small", usage) == pytest.approx(5_000 * 0.02e-6)
    assert actual_cost("gpt-4o-mini", Usage()) == 0.0


def test_dated_snapshot_priced_as_its_base_model_longest_prefix_wins() -> None:
    t = PriceTable()
    assert t.price("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert t.price("gpt-4o-2024-08-06") == Price(2.50, 10.00)
    assert t.price("gpt-4oops") == UNKNOWN_MODEL_PRICE  # a prefix must end at a dash


def test_unknown_model_is_dearer_than_every_known_one() -> None:
    t = PriceTable()
    assert t.price("some-new-model") == UNKNOWN_MODEL_PRICE
    for p in t.prices.values():
        assert UNKNOWN_MODEL_PRICE.input_per_m >= p.input_per_m
        assert UNKNOWN_MODEL_PRICE.output_per_m >= p.output_per_m


def test_json_overrides_extend_and_replace() -> None:
    t = PriceTable.from_json(
        '{"gpt-4o-mini": {"input": 0.3, "output": 1.2}, "local-llama": [0, 0], "emb-x": 0.5,'
        ' "default": {"input": 99, "output": 199}}'
    )
    assert t.price("gpt-4o-mini") == Price(0.3, 1.2)
    assert t.price("local-llama") == Price(0.0, 0.0)
    assert t.price("emb-x") == Price(0.5, 0.0)
    assert t.price("gpt-4o") == Price(2.5, 10.0)  # untouched entries stay
    assert t.price("mystery") == Price(99, 199)
    assert estimate_cost("gpt-4o-mini", 1_000_000, 0, t) == pytest.approx(0.3)
    assert PriceTable.from_json("").prices == PriceTable().prices
    assert PriceTable.from_json(None).price("gpt-4o") == Price(2.5, 10.0)


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", '{"m": "cheap"}', '{"m": [1, 2, 3]}', '{"m": {"in": 1}}', '{"m": -1}',
     '{"m": true}', '{"m": [1, NaN]}'],
)
def test_invalid_json_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="LLM_PRICES_JSON"):
        PriceTable.from_json(text)


def test_token_estimate_is_on_the_high_side() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20  # ~ 200 real tokens
    assert estimate_tokens(text) >= len(text) / 4
    assert estimate_tokens("") == 1
