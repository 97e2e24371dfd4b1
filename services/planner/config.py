"""Planner settings (pydantic-settings), built in ``main``. MODE, the thresholds, OPENAI_MODEL, EMBED_MODEL and
the budget are flags (``shared.flags``), so an operator can change them at runtime; these are the rest."""

from __future__ import annotations

from pydantic import Field

from shared.llm.writers import LLMSettings


class PlannerSettings(LLMSettings):
    #: how often ``cmd.plan`` runs, in minutes of the service clock (0 = only on demand)
    PLAN_INTERVAL_MINUTES: float = Field(60.0, ge=0)
    #: drafts written per run
    PLAN_BATCH: int = Field(3, ge=1, le=100)
    #: share of drafts written as threads (2-7 parts); the rest are single posts
    PLAN_THREAD_RATIO: float = Field(0.25, ge=0, le=1)
    #: plan nothing while this many posts are already queued (the queue cannot grow without bound when
    #: planning outpaces MAX_POSTS_PER_HOUR)
    PLAN_MAX_QUEUED: int = Field(
        24, ge=1, le=10_000, description="a plan run drafts nothing while this many posts are queued"
    )
