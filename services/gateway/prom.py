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
        """Each account's figures as series labelled ``account`` (every account of the snapshot's ``accounts``; a
        snapshot without ``accounts`` is one account's figures, unlabelled), and the stack's own unlabelled."""
        s = self.snapshot
        if not s:
            return
        accounts: dict[str, dict[str, Any]] = s.get("accounts") or {"": s}
        base = ["account"] if "accounts" in s else []

        def lv(account: str, *more: str) -> list[str]:
            return [account, *more] if base else list(more)

        counters = [
            ("xbot_openai_calls", "LLM calls recorded", "openaiCalls_total"),
            ("xbot_openai_calls_failed", "LLM calls failed", "openaiCalls_failed"),
            ("xbot_posts_attempted", "post attempts (claims)", "postsAttempted"),
            ("xbot_posts_posted", "decisions posted", "postsPosted"),
            ("xbot_outcomes_written", "real outcomes recorded (simulated=false)", "outcomesWritten"),
            ("xbot_outcomes_simulated", "simulated outcomes recorded", "outcomesSimulated"),
            ("xbot_learn_runs", "learn job runs", "learnRuns"),
            ("xbot_bandit_arms_updated", "arm states published by the learner", "banditArmsUpdated"),
            ("xbot_llm_draft_calls", "chat (draft) calls made", "llmDraftCalls"),
            ("xbot_llm_queued_posts", "LLM-written drafts queued", "llmQueuedPosts"),
        ]
        for name, doc, key in counters:
            fam = CounterMetricFamily(name, doc, labels=base)
            for a, f in accounts.items():
                fam.add_metric(lv(a), f[key])
            yield fam
        ratio = GaugeMetricFamily("xbot_llm_calls_per_queued_post", "chat calls per LLM-written draft queued",
                                  labels=base)
        for a, f in accounts.items():
            if f["llmCallsPerQueuedPost"] is not None:
                ratio.add_metric(lv(a), f["llmCallsPerQueuedPost"])
        if ratio.samples:
            yield ratio
        by_label: list[tuple[type[CounterMetricFamily] | type[GaugeMetricFamily], str, str, str, str]] = [
            (CounterMetricFamily, "xbot_openai_failures", "LLM failures by reason", "reason", "openaiFailureReasons"),
            (CounterMetricFamily, "xbot_llm_wasted_calls", "calls whose answer was rejected, by reason", "reason",
             "llmWastedReasons"),
            (CounterMetricFamily, "xbot_llm_repaired_answers", "answers accepted after a free repair", "repair",
             "llmRepairedAnswers"),
            (CounterMetricFamily, "xbot_post_skipped", "post skips by reason", "reason", "post_skipped_reason_counts"),
            (GaugeMetricFamily, "xbot_decisions", "decisions by status", "status", "decisionsByStatus"),
        ]
        for family, name, doc, label, key in by_label:
            labelled = family(name, doc, labels=[*base, label])
            for a, f in accounts.items():
                for k, n in f[key].items():
                    labelled.add_metric(lv(a, k), n)
            yield labelled
        gauges = [
            ("xbot_queue_size", "decisions queued", "queueSize"),
            ("xbot_spend_today_usd", "LLM spend today (UTC budget day)", "spendTodayUsd"),
            ("xbot_model_version", "latest model version (0 = none)", "modelVersion"),
            ("xbot_posts_in_doubt", "decisions whose last attempt is in doubt (sent, answer lost)", "postsInDoubt"),
            ("xbot_attention_needed", "decisions in doubt past the limit: the poster asks the operator",
             "attentionNeeded"),
            ("xbot_flagged_claims_pending", "queued drafts with unsupported claims waiting for a person",
             "flaggedClaimsPending"),
            ("xbot_x_rate_limited_seconds", "seconds left of X's 429 pause of posting (0 when not paused)",
             "xRateLimitedSeconds"),
            ("xbot_x_cooldown_seconds", "seconds left of the 226 cooldown of posting (0 when not paused)",
             "xCooldownSeconds"),
        ]
        for name, doc, key in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=base)
            for a, f in accounts.items():
                gauge.add_metric(lv(a), f.get(key) or 0)
            yield gauge
        stack = [
            ("xbot_daily_limit_usd", "DAILY_OPENAI_LIMIT_USD", s["dailyLimitUsd"]),
            ("xbot_projector_position", "last event sequence in the read models", s["projectorPosition"]),
            ("xbot_projector_lag", "events not yet in the read models", s["projectorLag"] or 0),
            ("xbot_dead_letters", "messages in the dead-letter stream", s["deadLetters"] or 0),
        ]
        for name, doc, value in stack:
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
