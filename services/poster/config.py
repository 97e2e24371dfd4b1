"""The poster's settings (built in ``main``, never at import time). Flags (POSTING_DISABLED, LIVE_POSTS, the
rate limits, REQUIRE_APPROVAL, X_COOLDOWN_MINUTES...) are not settings: they come from ``ctx.flags``."""

from __future__ import annotations

from pydantic import Field

from shared.x.settings import XSettings

CRASH_POINTS = ("after_claim", "after_click", "after_readback")


class PosterSettings(XSettings):
    POSTING_INTERVAL_MINUTES: float = Field(5.0, ge=0)  # 0 = no schedule (admin trigger only)
    POSTING_BATCH: int = Field(5, ge=1, le=100)
    POSTING_MAX_ATTEMPTS: int = Field(3, ge=1, le=10)
    #: first backoff after a failed attempt; doubles each time
    POST_RETRY_BASE_SECONDS: float = Field(5.0, ge=0)
    #: a backoff up to this long is waited out within the run; a longer one leaves the decision to a later run
    POST_RETRY_INLINE_MAX_SECONDS: float = Field(30.0, ge=0)
    #: an attempt in doubt and not on the timeline is retried only after being quiet this long
    RECONCILE_GRACE_MINUTES: float = Field(10.0, ge=0)
    RECONCILE_TIMELINE_LIMIT: int = Field(50, ge=1, le=500)
    #: an attempt still in doubt after this long (timeline unreadable, or landed and not found) is not retried:
    #: the poster asks the operator (decision.attention_needed)
    RECONCILE_ATTENTION_MINUTES: float = Field(60.0, gt=0)
    #: a 429 without X's reset header pauses posting this long, doubling with each 429 in a row
    RATE_LIMIT_BACKOFF_SECONDS: float = Field(60.0, gt=0)
    #: TEST ONLY: kill -9 this process at one point of a post (after_claim | after_click | after_readback),
    #: so the crash matrix can prove at-most-once. Never set it in a deployment.
    XBOT_TEST_CRASH_AT: str = Field("", pattern=r"^(|after_claim|after_click|after_readback)$")
