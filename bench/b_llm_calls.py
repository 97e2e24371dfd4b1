"""LLM calls per queued post in live mode, against an OpenAI-compatible server that answers as structured
outputs allow, not as our prompt asks.

A planner is wired by its own bootstrap (``services.planner.bootstrap.wire``) in ``MODE=live`` over a bus of its
own, its LLM the imitation in ``schema`` mode (``tests/fakes/openai_server.py``): each answer is generated from
the request's json_schema alone (any part count and any string length the schema allows). The bench asks for
plan runs (``plan_job``, the planner's own path: the guard, the budget, the gates, the events) and counts, from
the log, the chat calls made (``llm.call_completed`` / ``llm.call_failed`` of kind chat) and the drafts queued
(``decision.queued``).

Figure: our drafting (a schema per request with the part count, free repairs, ``LLM_DRAFT_RETRIES``).
Baseline, measured in the same run against the same server: the same planner with the adapter as it was (the
schema with any number of parts, every answer not exactly of the shape asked for rejected, no retry).

Every draft is judged by the whole gate chain; ``REQUIRE_APPROVAL=true`` as in the live tests (the imitation's
sentences come from templates, and some state results no account's facts hold: with approval on they are queued
for a person, flagged, rather than skipped). A draft skipped by a gate is a call without a queued post, and counts.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from shared.events import Command, DecisionQueued, LlmCallCompleted, LlmCallFailed, utcnow

from .core import Ctx, Row

GOAL = 1.15


async def _variant(ctx: Ctx, base_url: str, *, old: bool, runs: int, batch: int) -> dict[str, Any]:
    from services.planner.bootstrap import wire
    from services.planner.config import PlannerSettings
    from shared.clock import Clock
    from shared.config import load_settings
    from shared.flagstore import FlagStore
    from shared.llm import GuardedLLM, OpenAILLM
    from shared.service import ServiceContext, ServiceRuntime

    bus = await ctx.bus()
    environ = {
        "MODE": "live", "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": base_url, "LLM_TIMEOUT_SECONDS": "10",
        "REQUIRE_APPROVAL": "true", "PLAN_BATCH": str(batch), "PLAN_MAX_QUEUED": str(runs * batch + 1),
        "PLAN_INTERVAL_MINUTES": "0", "LOG_FORMAT": "console", "LOG_LEVEL": "ERROR", "DAILY_OPENAI_LIMIT_USD": "100",
    }
    settings = load_settings(PlannerSettings, environ)
    flags = FlagStore(bus, environ)
    await flags.start()
    pctx = ServiceContext(name="planner", settings=settings, bus=bus, flags=flags, clock=Clock(), environ=environ)
    deps, parts = await wire(pctx)
    runtime = ServiceRuntime("planner", pctx, parts)
    await runtime.start()
    try:
        if old:  # the adapter as it was: one schema for every request, no repair, no second call
            guarded = deps.live()
            assert isinstance(guarded, GuardedLLM) and isinstance(guarded.llm, OpenAILLM)
            guarded.llm = OpenAILLM(guarded.llm.client, model=guarded.llm.model, per_request_schema=False,
                                    repair=False)
            guarded.draft_retries = 0
        counts: Counter[str] = Counter()
        t0 = time.perf_counter()
        for i in range(runs):
            cmd = Command(job="plan", run_id=f"bench-llm-{uuid.uuid4().hex[:8]}-{i}", requested_at=utcnow())
            counts.update(await parts.jobs["plan"](cmd))
        elapsed = time.perf_counter() - t0
        chat = queued = 0
        wasted: Counter[str] = Counter()
        repaired: Counter[str] = Counter()
        async for item in bus.read(names=frozenset({"llm.call_completed", "llm.call_failed", "decision.queued"})):
            ev = item.event
            if isinstance(ev, DecisionQueued):
                queued += ev.generation_source == "real"
            elif isinstance(ev, LlmCallCompleted | LlmCallFailed) and ev.kind == "chat":
                chat += 1
                if isinstance(ev, LlmCallFailed):
                    wasted[ev.wasted_reason or ev.failure_reason] += 1
                else:
                    repaired.update(ev.repairs)
        assert queued == counts["queued"], (queued, counts)
        return {"chat": chat, "queued": queued, "counts": counts, "wasted": wasted, "repaired": repaired,
                "elapsed": elapsed}
    finally:
        await runtime.stop()
        await flags.stop()
        await bus.close()


def _per_post(v: dict[str, Any]) -> float | None:
    return v["chat"] / v["queued"] if v["queued"] else None


def _imitation() -> Any:
    """The OpenAI imitation lives with the tests (``tests/fakes``), beside ``bench/`` in the checkout; an installed
    ``xbot`` has only the packages on its path, so the checkout's root is added for this import."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.append(root)
    from tests.fakes.openai_server import start_openai_server

    return start_openai_server


async def bench_llm_calls(ctx: Ctx) -> list[Row]:
    start_openai_server = _imitation()

    runs, batch = (2, 3) if ctx.quick else (12, 3)
    srv = start_openai_server("schema", seed=20251002)
    try:
        with capture_logs():  # the planner's lines (every rejected answer is one) stay out of the table
            ctx.progress(f"LLM calls per queued post: {runs} plan runs of {batch}, per-request schema")
            ours = await _variant(ctx, srv.base_url, old=False, runs=runs, batch=batch)
            ctx.progress(f"LLM calls per queued post: {runs} plan runs of {batch}, the old schema")
            base = await _variant(ctx, srv.base_url, old=True, runs=runs, batch=batch)
    finally:
        srv.stop()
    figure, baseline = _per_post(ours), _per_post(base)
    ratio = figure / baseline if figure is not None and baseline else None

    def story(v: dict[str, Any]) -> str:
        skipped = v["counts"]["skipped"]
        wasted = ", ".join(f"{k} {n}" for k, n in sorted(v["wasted"].items())) or "none"
        return f"{v['chat']} calls, {v['queued']} queued, {skipped} skipped by gates, wasted: {wasted}"

    repaired = ", ".join(f"{k} {n}" for k, n in sorted(ours["repaired"].items())) or "none"
    note = (f"ours: {story(ours)}; repaired for free: {repaired}. baseline: {story(base)}. "
            f"{runs * batch} drafts each ({ours['elapsed']:.1f} s)")
    return [Row("LLM calls per queued post (live, schema-conforming imitation)", figure, "calls", baseline,
                "old unconstrained schema, no repair", ratio, f"<= {GOAL}",
                None if figure is None else figure <= GOAL, note)]
