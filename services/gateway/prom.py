"""Prometheus: request latencies, and the /api/metrics figures exposed through a collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "xbot_gateway_http_request_duration_seconds", "HTTP request latency by route",
        ["method", "route", "status"], registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )


class SnapshotCollector:
    """Exposes the latest /api/metrics snapshot (taken right before each scrape) to prometheus-client."""

    def __init__(self, projector: Any = None):
        self.snapshot: dict[str, Any] = {}
        self.projector = projector

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if not s:
            return
        counters = [
            ("xbot_openai_calls", "LLM calls recorded", "openaiCalls_total"),
            ("xbot_openai_calls_failed", "LLM calls failed", "openaiCalls_failed"),
            ("xbot_posts_attempted", "post attempts (claims)", "postsAttempted"),
            ("xbot_posts_posted", "decisions posted", "postsPosted"),
            ("xbot_outcomes_written", "real outcomes recorded (simulated=false)", "outcomesWritten"),
            ("xbot_outcomes_simulated", "simulated outcomes recorded", "outcomesSimulated"),
            ("xbot_learn_runs", "learn job runs", "learnRuns"),
            ("xbot_bandit_arms_updated", "arm states published by the learner", "banditArmsUpdated"),
        ]
        for name, doc, key in counters:
            yield CounterMetricFamily(name, doc, value=s[key])
        reasons = CounterMetricFamily("xbot_openai_failures", "LLM failures by reason", labels=["reason"])
        for r, n in s["openaiFailureReasons"].items():
            reasons.add_metric([r], n)
        yield reasons
        yield CounterMetricFamily("xbot_llm_draft_calls", "chat (draft) calls made", value=s["llmDraftCalls"])
        yield CounterMetricFamily("xbot_llm_queued_posts", "LLM-written drafts queued", value=s["llmQueuedPosts"])
        if s["llmCallsPerQueuedPost"] is not None:
            yield GaugeMetricFamily("xbot_llm_calls_per_queued_post", "chat calls per LLM-written draft queued",
                                    value=s["llmCallsPerQueuedPost"])
        wasted = CounterMetricFamily("xbot_llm_wasted_calls", "calls whose answer was rejected, by reason",
                                     labels=["reason"])
        for r, n in s["llmWastedReasons"].items():
            wasted.add_metric([r], n)
        yield wasted
        repaired = CounterMetricFamily("xbot_llm_repaired_answers", "answers accepted after a free repair",
                                       labels=["repair"])
        for r, n in s["llmRepairedAnswers"].items():
            repaired.add_metric([r], n)
        yield repaired
        skips = CounterMetricFamily("xbot_post_skipped", "post skips by reason", labels=["reason"])
        for r, n in s["post_skipped_reason_counts"].items():
            skips.add_metric([r], n)
        yield skips
        statuses = GaugeMetricFamily("xbot_decisions", "decisions by status", labels=["status"])
        for st, n in s["decisionsByStatus"].items():
            statuses.add_metric([st], n)
        yield statuses
        gauges = [
            ("xbot_queue_size", "decisions queued", s["queueSize"]),
            ("xbot_spend_today_usd", "LLM spend today (UTC budget day)", s["spendTodayUsd"]),
            ("xbot_daily_limit_usd", "DAILY_OPENAI_LIMIT_USD", s["dailyLimitUsd"]),
            ("xbot_model_version", "latest model version (0 = none)", s["modelVersion"] or 0),
            ("xbot_projector_position", "last event sequence in the read models", s["projectorPosition"]),
            ("xbot_projector_lag", "events not yet in the read models", s["projectorLag"] or 0),
            ("xbot_dead_letters", "messages in the dead-letter stream", s["deadLetters"] or 0),
            ("xbot_posts_in_doubt", "decisions whose last attempt is in doubt (sent, answer lost)",
             s["postsInDoubt"]),
            ("xbot_attention_needed", "decisions in doubt past the limit: the poster asks the operator",
             s["attentionNeeded"]),
            ("xbot_flagged_claims_pending", "queued drafts with unsupported claims waiting for a person",
             s.get("flaggedClaimsPending", 0)),
            ("xbot_x_rate_limited_seconds", "seconds left of X's 429 pause of posting (0 when not paused)",
             s.get("xRateLimitedSeconds", 0.0)),
            ("xbot_x_cooldown_seconds", "seconds left of the 226 cooldown of posting (0 when not paused)",
             s.get("xCooldownSeconds", 0.0)),
        ]
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        p = self.projector
        if p is not None:
            yield CounterMetricFamily("xbot_projector_events", "events applied by this projector",
                                      value=p.events_applied)
            yield CounterMetricFamily("xbot_projector_batches", "batches committed by this projector",
                                      value=p.batches)
            yield CounterMetricFamily("xbot_projector_dead_lettered", "events this projector dead-lettered",
                                      value=p.dead_lettered)
            yield GaugeMetricFamily("xbot_projector_db_ok", "1 while the projector can write", value=int(p.db_ok))
