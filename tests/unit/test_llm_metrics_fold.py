"""LLM calls per queued post and wasted calls per reason, as the gateway folds them from events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.gateway.domain import LLM_REPAIRED, LLM_WASTED, REAL_QUEUED, fold_batch
from services.gateway.prom import SnapshotCollector
from services.gateway.queries import llm_draft_figures
from shared.bus import ReadItem
from shared.events import LlmCallCompleted, LlmCallFailed, decode, encode
from tests.integration.test_projector_scenario import T0, queued

pytestmark = pytest.mark.unit


def items(events: list[Any]) -> list[ReadItem]:
    return [ReadItem(i, f"xbot.evt.{e.aggregate}.{e.aggregate_id}.{e.name}", b"", event=e)
            for i, e in enumerate(events, 1)]


def call(n: int, *, failed: str | None = None, wasted: str = "", repairs: tuple[str, ...] = (),
         kind: str = "chat") -> LlmCallCompleted | LlmCallFailed:
    common: dict[str, Any] = dict(event_id=f"llm-{n}", occurred_at=T0 + timedelta(seconds=n), request_id=f"r{n}",
                                  kind=kind, model="gpt-4o-mini", total_tokens=10, cost_usd=0.0001)
    if failed is None:
        return LlmCallCompleted(**common, repairs=list(repairs))
    return LlmCallFailed(**common, failure_reason=failed, wasted_reason=wasted)


def counters(events: list[Any]) -> dict[tuple[str, str], int]:
    return {k: v[0] for k, v in fold_batch(items(events), {}).counters.items()}


def test_wasted_calls_are_counted_by_reason_and_repairs_by_repair() -> None:
    c = counters([
        call(1, failed="invalid_response", wasted="parts_count"),
        call(2, failed="invalid_response", wasted="parts_count"),
        call(3, failed="invalid_response"),  # an event from before wasted_reason: counted as the reason itself
        call(4, failed="rate_limited"),  # no answer came back: nothing wasted on an answer
        call(5, failed="budget_exceeded"),
        call(6, repairs=("joined_parts",)),
        call(7, repairs=("split_parts", "merged_parts")),
        call(8),
    ])
    assert {k: v for k, v in c.items() if k[0] == LLM_WASTED} == {
        (LLM_WASTED, "parts_count"): 2, (LLM_WASTED, "invalid_response"): 1}
    assert {k: v for k, v in c.items() if k[0] == LLM_REPAIRED} == {
        (LLM_REPAIRED, "joined_parts"): 1, (LLM_REPAIRED, "split_parts"): 1, (LLM_REPAIRED, "merged_parts"): 1}


def test_only_the_first_draft_of_a_real_decision_counts_as_queued() -> None:
    first = queued(1)
    again = queued(1, salt="d")  # the same decision's draft seen a second time
    c = counters([first, again, queued(2, kind="thread"), queued(3, source="synthetic"), queued(4, kind="reply")])
    assert {k: v for k, v in c.items() if k[0] == REAL_QUEUED} == {
        (REAL_QUEUED, "single"): 1, (REAL_QUEUED, "thread"): 1, (REAL_QUEUED, "reply"): 1}


def test_old_llm_events_decode_with_the_new_fields_defaulted() -> None:
    for ev in (call(1, failed="timeout"), call(2)):
        raw = encode(ev).replace(b',"wasted_reason":""', b"").replace(b',"repairs":[]', b"")
        assert b"wasted_reason" not in raw and b"repairs" not in raw
        assert decode(raw) == ev


def test_the_figures_and_their_prometheus_families() -> None:
    figures = llm_draft_figures(23, 20, {"parts_count": 2, "too_long": 1}, {"joined_parts": 4})
    assert figures == {
        "llmDraftCalls": 23, "llmQueuedPosts": 20, "llmCallsPerQueuedPost": 1.15, "llmWastedCalls": 3,
        "llmWastedReasons": {"parts_count": 2, "too_long": 1}, "llmRepairedAnswers": {"joined_parts": 4},
    }
    assert llm_draft_figures(2, 0, {}, {})["llmCallsPerQueuedPost"] is None
    collector = SnapshotCollector()
    collector.snapshot = {
        "openaiCalls_total": 0, "openaiCalls_failed": 0, "postsAttempted": 0, "postsPosted": 0,
        "outcomesWritten": 0, "outcomesSimulated": 0, "learnRuns": 0, "banditArmsUpdated": 0,
        "openaiFailureReasons": {}, "post_skipped_reason_counts": {}, "decisionsByStatus": {}, "queueSize": 0,
        "spendTodayUsd": 0.0, "dailyLimitUsd": 1.0, "modelVersion": None, "projectorPosition": 0,
        "projectorLag": 0, "deadLetters": 0, "postsInDoubt": 0, "attentionNeeded": 0, **figures,
    }
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for m in collector.collect() for s in m.samples}
    assert samples[("xbot_llm_draft_calls_total", ())] == 23
    assert samples[("xbot_llm_queued_posts_total", ())] == 20
    assert samples[("xbot_llm_calls_per_queued_post", ())] == 1.15
    assert samples[("xbot_llm_wasted_calls_total", (("reason", "parts_count"),))] == 2
    assert samples[("xbot_llm_repaired_answers_total", (("repair", "joined_parts"),))] == 4
