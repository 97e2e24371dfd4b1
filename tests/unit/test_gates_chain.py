"""Gate chain: order, stop at the first block, fail closed on any exception, and the seed's log line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.gates import (
    GateConfig,
    GateResult,
    RotationWindow,
    UniquenessIndex,
    content_hash,
    format_block_line,
    guarded,
    run_gate_chain,
)

pytestmark = pytest.mark.unit

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
GOOD = "Why do most side projects die? They ship to nobody. Find 10 users before you write a line of code."


def vec(seed: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim, dtype=np.float32)


def state(n_topic_a: int = 0) -> tuple[UniquenessIndex, RotationWindow]:
    index, window = UniquenessIndex(window_days=30), RotationWindow()
    topics = ["A"] * n_topic_a + [f"t{i}" for i in range(10 - n_topic_a)]
    for i, topic in enumerate(topics):
        at = NOW - timedelta(hours=i + 1)
        index.add(f"d{i}", vec(i), content_hash(f"earlier decision {i}"), at)
        window.add(f"d{i}", topic, f"angle{i % 4}", at)
    return index, window


def chain(
    text=GOOD, *, embedding=None, topic="fresh", angle="fresh", index=None, window=None, live=True, **kw
):
    if index is None or window is None:
        index, window = state()
    return run_gate_chain(
        parts=[text] if isinstance(text, str) else text,
        decision_type=kw.pop("decision_type", "single"),
        embedding=vec(1000) if embedding is None else embedding,
        topic=topic,
        angle=angle,
        index=index,
        window=window,
        now=NOW,
        live=live,
        **kw,
    )


def test_a_good_draft_passes_all_three_gates_in_order():
    out = chain()
    assert out.passed and out.blocked_by is None
    assert [r.gate for r in out.results] == ["quality", "uniqueness", "rotation"]
    assert all(r.passed for r in out.results)
    assert out.result("quality").score == 1.0


def test_quality_block_stops_the_chain():
    out = chain("Let us delve into remote work and")
    assert not out.passed and [r.gate for r in out.results] == ["quality"]
    assert out.blocked_by is out.results[0] and out.blocked_by.reason == "truncated"


def test_uniqueness_block_stops_before_rotation():
    out = chain(embedding=vec(3) * 2)
    assert not out.passed and [r.gate for r in out.results] == ["quality", "uniqueness"]
    assert out.blocked_by.reason == "too_similar" and out.blocked_by.details["nearest_decision_id"] == "d3"


def test_content_hash_defaults_to_the_hash_of_the_parts():
    index, window = state()
    index.add("same", vec(77), content_hash(GOOD), NOW - timedelta(minutes=5))
    out = chain(GOOD.upper(), index=index, window=window)
    assert out.blocked_by.gate == "uniqueness" and out.blocked_by.reason == "duplicate_hash"
    assert out.blocked_by.details["duplicate_of"] == "same"


def test_rotation_block_is_last():
    index, window = state(n_topic_a=4)
    out = chain(topic="A", index=index, window=window)
    assert not out.passed and [r.gate for r in out.results] == ["quality", "uniqueness", "rotation"]
    assert out.blocked_by.reason == "topic_share_exceeded" and out.blocked_by.score == pytest.approx(5 / 11)


def test_config_thresholds_are_used():
    assert not chain(config=GateConfig(min_quality_score=1.01)).passed
    assert chain(embedding=vec(3) * 2, config=GateConfig(dup_cosine_threshold=1.01)).passed
    index, window = state(n_topic_a=4)
    assert chain(topic="A", index=index, window=window, config=GateConfig(topic_max=0.5)).passed


class ExplodingIndex(UniquenessIndex):
    def check(self, *args, **kwargs):
        raise RuntimeError("index corrupted")


@pytest.mark.parametrize("live", [True, False])
def test_an_exception_in_a_gate_blocks_in_both_modes(live):
    _, window = state()
    out = chain(index=ExplodingIndex(), window=window, live=live)
    assert not out.passed
    blocked = out.blocked_by
    assert blocked.gate == "uniqueness"
    assert blocked.reason == "gate_error:uniqueness:RuntimeError"
    assert blocked.score is None
    assert blocked.details["shadow"] is (not live)
    assert "index corrupted" in blocked.details["error"]
    assert [r.gate for r in out.results] == ["quality", "uniqueness"]


def test_bad_inputs_fail_closed_with_the_exception_name():
    out = chain(decision_type="quote")
    assert out.blocked_by.reason == "gate_error:quality:ValueError"
    out = chain(embedding=np.zeros(16, dtype=np.float32))
    assert out.blocked_by.reason == "gate_error:uniqueness:ValueError"
    out = chain(embedding=vec(1, dim=8))  # wrong dimension for the index
    assert out.blocked_by.reason == "gate_error:uniqueness:ValueError"
    _, window = state()
    out = chain(topic=None, index=UniquenessIndex(), window=window)  # type: ignore[arg-type]
    assert out.blocked_by.gate == "rotation" and out.blocked_by.reason == "gate_error:rotation:AttributeError"


def test_guarded_never_passes_a_non_result():
    r = guarded("quality", lambda: True, live=True)  # type: ignore[arg-type,return-value]
    assert not r.passed and r.reason == "gate_error:quality:TypeError"
    ok = GateResult("rotation", True, "ok", 0.2, {})
    assert guarded("rotation", lambda: ok, live=False) is ok


def test_format_block_line_is_the_seed_line():
    r = GateResult("uniqueness", False, "too_similar", 0.91234, {"nearest_decision_id": "x"})
    assert format_block_line("abc-123", r) == (
        "[GATE_CHAIN] \u26d4 Blocked (uniqueness) decision_id=abc-123, reason=too_similar, score=0.912"
    )
    q = GateResult("quality", False, "placeholder", 0.0, {})
    assert (
        format_block_line("d1", q)
        == "[GATE_CHAIN] ⛔ Blocked (quality) decision_id=d1, reason=placeholder, score=0.000"
    )
    err = chain(decision_type="quote").blocked_by
    assert format_block_line("d2", err) == (
        "[GATE_CHAIN] ⛔ Blocked (quality) decision_id=d2, reason=gate_error:quality:ValueError, score=nan"
    )
    rot = chain(topic="A", index=state(4)[0], window=state(4)[1]).blocked_by
    assert format_block_line("d3", rot).startswith("[GATE_CHAIN] ⛔ Blocked (rotation) decision_id=d3, ")
