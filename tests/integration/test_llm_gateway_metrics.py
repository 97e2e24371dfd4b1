"""/api/metrics and /metrics count LLM calls per queued post and the calls wasted on rejected answers."""

from __future__ import annotations

import pytest

from tests.integration.test_projector_scenario import caught_up, make_gateway, queued
from tests.unit.test_llm_metrics_fold import call

pytestmark = pytest.mark.integration


async def test_calls_per_queued_post_and_wasted_calls_are_derived_from_events(bus, database_url) -> None:
    events = [
        call(1), call(2, repairs=("joined_parts",)), call(3, failed="invalid_response", wasted="parts_count"),
        call(4), call(5, kind="embedding"), call(6, failed="circuit_open"),  # no call was made
        queued(1), queued(2, kind="thread"), queued(3, source="synthetic"),
    ]
    await bus.publish_many(events)
    async with make_gateway(bus, database_url) as (gateway, client):
        await caught_up(gateway)
        m = (await client.get("/api/metrics")).json()
        assert {k: m[k] for k in m if k.startswith("llm")} == {
            "llmDraftCalls": 4, "llmQueuedPosts": 2, "llmCallsPerQueuedPost": 2.0, "llmWastedCalls": 1,
            "llmWastedReasons": {"parts_count": 1}, "llmRepairedAnswers": {"joined_parts": 1},
        }
        assert m["openaiCalls_total"] == 6 and m["openaiFailureReasons"] == {"circuit_open": 1,
                                                                              "invalid_response": 1}
        text = (await client.get("/metrics")).text
        assert 'xbot_llm_calls_per_queued_post{account="default"} 2.0' in text
        assert 'xbot_llm_wasted_calls_total{account="default",reason="parts_count"} 1.0' in text
        assert 'xbot_llm_draft_calls_total{account="default"} 4.0' in text
